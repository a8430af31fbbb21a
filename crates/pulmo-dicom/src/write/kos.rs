//! Key Object Selection Document (PS3.3 A.35.4, SOP Class 1.2.840.10008.5.1.4.1.1.88.59,
//! content per TID 2010): a titled list of instances of one study. pulmo writes one to
//! acknowledge a received study and, later, to flag key images.
//!
//! Modules: Patient, General Study, Key Object Document Series, General Equipment,
//! Key Object Document, SR Document Content, SOP Common.

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::{check_text, check_uid, code_item, part10, put_sequence, put_text, StudyContext, WriteError};
use crate::InstanceHeader;

pub const KEY_OBJECT_SELECTION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.59";

/// An instance the document points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferencedInstance {
    pub series_uid: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
}

impl From<&InstanceHeader> for ReferencedInstance {
    fn from(h: &InstanceHeader) -> Self {
        ReferencedInstance {
            series_uid: h.series_uid.clone(),
            sop_class_uid: h.sop_class_uid.clone(),
            sop_instance_uid: h.sop_instance_uid.clone(),
        }
    }
}

/// The document title: a code of CID 7010 "Key Object Selection Document Title" (DCM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentTitle {
    /// (113000, DCM, "Of Interest")
    OfInterest,
    /// (113002, DCM, "For Referring Provider")
    ForReferringProvider,
    /// (113004, DCM, "For Teaching")
    ForTeaching,
    /// (113009, DCM, "For Research")
    ForResearch,
    /// (113010, DCM, "Quality Issue")
    QualityIssue,
    /// (113013, DCM, "Best In Set")
    BestInSet,
    /// (113020, DCM, "For Report Attachment")
    ForReportAttachment,
    /// (113030, DCM, "Manifest")
    Manifest,
    /// (113032, DCM, "Complete Study Content")
    CompleteStudyContent,
}

impl DocumentTitle {
    /// (CodeValue, CodeMeaning); the scheme is DCM.
    pub fn code(self) -> (&'static str, &'static str) {
        match self {
            DocumentTitle::OfInterest => ("113000", "Of Interest"),
            DocumentTitle::ForReferringProvider => ("113002", "For Referring Provider"),
            DocumentTitle::ForTeaching => ("113004", "For Teaching"),
            DocumentTitle::ForResearch => ("113009", "For Research"),
            DocumentTitle::QualityIssue => ("113010", "Quality Issue"),
            DocumentTitle::BestInSet => ("113013", "Best In Set"),
            DocumentTitle::ForReportAttachment => ("113020", "For Report Attachment"),
            DocumentTitle::Manifest => ("113030", "Manifest"),
            DocumentTitle::CompleteStudyContent => ("113032", "Complete Study Content"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyObjectSelection {
    pub study: StudyContext,
    /// The KO series this document belongs to (a new series, not the source's).
    pub series_uid: String,
    pub sop_instance_uid: String,
    pub series_number: i32,
    pub instance_number: i32,
    /// ContentDate (YYYYMMDD) and ContentTime (HHMMSS[.F]).
    pub content_datetime: (String, String),
    pub title: DocumentTitle,
    /// Key Object Description (113012, DCM): a CONTAINS TEXT item.
    pub description: Option<String>,
    /// At least one; all of `study`. Order is kept (evidence grouped by series, first seen first).
    pub references: Vec<ReferencedInstance>,
    pub manufacturer: String,
    pub software_version: String,
}

impl KeyObjectSelection {
    /// The complete data set (no file meta group).
    pub fn to_dataset(&self) -> Result<InMemDicomObject, WriteError> {
        self.validate()?;
        let mut o = InMemDicomObject::new_empty();

        // SOP Common.
        if !self.all_ascii() {
            put_text(&mut o, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
        }
        put_text(&mut o, tags::SOP_CLASS_UID, VR::UI, KEY_OBJECT_SELECTION_STORAGE);
        put_text(&mut o, tags::SOP_INSTANCE_UID, VR::UI, &self.sop_instance_uid);

        self.study.put(&mut o);

        // Key Object Document Series.
        put_text(&mut o, tags::MODALITY, VR::CS, "KO");
        put_text(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, &self.series_uid);
        put_text(&mut o, tags::SERIES_NUMBER, VR::IS, &self.series_number.to_string());
        o.put(DataElement::new(tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE, VR::SQ, DataSetSequence::empty()));

        // General Equipment.
        put_text(&mut o, tags::MANUFACTURER, VR::LO, self.manufacturer.trim());
        if !self.software_version.trim().is_empty() {
            put_text(&mut o, tags::SOFTWARE_VERSIONS, VR::LO, self.software_version.trim());
        }

        // Key Object Document.
        put_text(&mut o, tags::INSTANCE_NUMBER, VR::IS, &self.instance_number.to_string());
        put_text(&mut o, tags::CONTENT_DATE, VR::DA, &self.content_datetime.0);
        put_text(&mut o, tags::CONTENT_TIME, VR::TM, &self.content_datetime.1);
        put_sequence(&mut o, tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE, vec![evidence(&self.study.study_uid, &self.references)]);

        // SR Document Content (TID 2010).
        self.put_content(&mut o);
        Ok(o)
    }

    /// A Part-10 file in Explicit VR Little Endian with pulmo's file meta group.
    pub fn to_part10(&self) -> Result<Vec<u8>, WriteError> {
        let dataset = self.to_dataset()?;
        part10(KEY_OBJECT_SELECTION_STORAGE, &self.sop_instance_uid, &dataset)
    }

    fn validate(&self) -> Result<(), WriteError> {
        self.study.check()?;
        check_uid("series_uid", &self.series_uid)?;
        check_uid("sop_instance_uid", &self.sop_instance_uid)?;
        if self.references.is_empty() {
            return Err(WriteError::Empty { field: "references".into() });
        }
        if self.series_uid == self.study.study_uid {
            return Err(WriteError::InvalidValue {
                field: "series_uid".into(),
                value: self.series_uid.clone(),
                reason: "equals the StudyInstanceUID".into(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for (i, r) in self.references.iter().enumerate() {
            check_uid(format!("references[{i}].series_uid"), &r.series_uid)?;
            check_uid(format!("references[{i}].sop_class_uid"), &r.sop_class_uid)?;
            check_uid(format!("references[{i}].sop_instance_uid"), &r.sop_instance_uid)?;
            if !seen.insert(r.sop_instance_uid.as_str()) {
                return Err(WriteError::DuplicateReference {
                    field: format!("references[{i}].sop_instance_uid"),
                    uid: r.sop_instance_uid.clone(),
                });
            }
            if r.series_uid == self.series_uid {
                return Err(WriteError::InvalidValue {
                    field: "series_uid".into(),
                    value: self.series_uid.clone(),
                    reason: format!("is the series of references[{i}]: a KO document needs its own series"),
                });
            }
            if r.sop_instance_uid == self.sop_instance_uid {
                return Err(WriteError::InvalidValue {
                    field: format!("references[{i}].sop_instance_uid"),
                    value: r.sop_instance_uid.clone(),
                    reason: "the document references itself".into(),
                });
            }
        }
        if self.series_number < 0 {
            return Err(WriteError::InvalidValue {
                field: "series_number".into(),
                value: self.series_number.to_string(),
                reason: "negative".into(),
            });
        }
        if self.instance_number < 0 {
            return Err(WriteError::InvalidValue {
                field: "instance_number".into(),
                value: self.instance_number.to_string(),
                reason: "negative".into(),
            });
        }
        let texts: [(&str, VR, Option<&str>); 5] = [
            ("content_datetime.0 (ContentDate)", VR::DA, Some(&self.content_datetime.0)),
            ("content_datetime.1 (ContentTime)", VR::TM, Some(&self.content_datetime.1)),
            ("description", VR::UT, self.description.as_deref()),
            ("manufacturer", VR::LO, Some(&self.manufacturer)),
            ("software_version", VR::LO, Some(&self.software_version)),
        ];
        for (field, vr, value) in texts {
            let value = value.unwrap_or("").trim();
            // Type 1 here: ContentDate/Time. Everything else may be empty.
            if value.is_empty() {
                if field.starts_with("content_datetime") {
                    return Err(WriteError::Empty { field: field.into() });
                }
                continue;
            }
            check_text(field, vr, value)?;
        }
        Ok(())
    }

    fn all_ascii(&self) -> bool {
        self.study.is_ascii() && [self.description.as_deref().unwrap_or(""), &self.manufacturer, &self.software_version].iter().all(|v| v.is_ascii())
    }

    /// Root CONTAINER titled by the document title (DCMR TID 2010, SEPARATE), holding the
    /// optional description and one IMAGE / WAVEFORM / COMPOSITE item per reference.
    fn put_content(&self, o: &mut InMemDicomObject) {
        let (value, meaning) = self.title.code();
        put_text(o, tags::VALUE_TYPE, VR::CS, "CONTAINER");
        put_sequence(o, tags::CONCEPT_NAME_CODE_SEQUENCE, vec![code_item(value, "DCM", meaning)]);
        put_text(o, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
        let mut template = InMemDicomObject::new_empty();
        put_text(&mut template, tags::MAPPING_RESOURCE, VR::CS, "DCMR");
        put_text(&mut template, tags::TEMPLATE_IDENTIFIER, VR::CS, "2010");
        put_sequence(o, tags::CONTENT_TEMPLATE_SEQUENCE, vec![template]);

        let mut items = Vec::with_capacity(self.references.len() + 1);
        if let Some(text) = self.description.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let mut item = content_item("TEXT");
            put_sequence(&mut item, tags::CONCEPT_NAME_CODE_SEQUENCE, vec![code_item("113012", "DCM", "Key Object Description")]);
            put_text(&mut item, tags::TEXT_VALUE, VR::UT, text);
            items.push(item);
        }
        for r in &self.references {
            let mut item = content_item(value_type_for(&r.sop_class_uid));
            put_sequence(&mut item, tags::REFERENCED_SOP_SEQUENCE, vec![sop_reference(r)]);
            items.push(item);
        }
        put_sequence(o, tags::CONTENT_SEQUENCE, items);
    }
}

/// A Hierarchical SOP Instance Reference item (evidence): one study item ->
/// ReferencedSeriesSequence (series in first-seen order) -> ReferencedSOPSequence.
pub(crate) fn evidence(study_uid: &str, references: &[ReferencedInstance]) -> InMemDicomObject {
    let mut series: Vec<(&str, Vec<InMemDicomObject>)> = Vec::new();
    for r in references {
        let item = sop_reference(r);
        match series.iter_mut().find(|(uid, _)| *uid == r.series_uid) {
            Some((_, items)) => items.push(item),
            None => series.push((&r.series_uid, vec![item])),
        }
    }
    let series_items = series
        .into_iter()
        .map(|(uid, sops)| {
            let mut item = InMemDicomObject::new_empty();
            put_text(&mut item, tags::SERIES_INSTANCE_UID, VR::UI, uid);
            put_sequence(&mut item, tags::REFERENCED_SOP_SEQUENCE, sops);
            item
        })
        .collect();
    let mut study = InMemDicomObject::new_empty();
    put_text(&mut study, tags::STUDY_INSTANCE_UID, VR::UI, study_uid);
    put_sequence(&mut study, tags::REFERENCED_SERIES_SEQUENCE, series_items);
    study
}

fn content_item(value_type: &str) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_text(&mut item, tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS");
    put_text(&mut item, tags::VALUE_TYPE, VR::CS, value_type);
    item
}

pub(crate) fn sop_reference(r: &ReferencedInstance) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_text(&mut item, tags::REFERENCED_SOP_CLASS_UID, VR::UI, &r.sop_class_uid);
    put_text(&mut item, tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, &r.sop_instance_uid);
    item
}

/// TID 2010 value type for a referenced storage class: WAVEFORM for the waveform classes
/// (…1.1.9.*), COMPOSITE for non-image composites (SR, KOS, presentation states, encapsulated
/// documents, RT plan/structure set, raw data, spatial registration/fiducials, measurements),
/// IMAGE otherwise.
pub fn value_type_for(sop_class_uid: &str) -> &'static str {
    const STORAGE: &str = "1.2.840.10008.5.1.4.1.1.";
    let Some(rest) = sop_class_uid.strip_prefix(STORAGE) else { return "COMPOSITE" };
    let first = rest.split('.').next().unwrap_or("");
    match first {
        "9" => "WAVEFORM",
        "66" if rest == "66.4" || rest == "66.7" => "IMAGE", // SEG and label-map SEG are images
        "481" if rest == "481.1" || rest == "481.2" => "IMAGE", // RT Image, RT Dose
        "88" | "11" | "104" | "66" | "67" | "68" | "78" | "79" | "90" | "200" | "481" => "COMPOSITE",
        _ => "IMAGE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::string;

    fn sample() -> KeyObjectSelection {
        KeyObjectSelection {
            study: StudyContext { study_uid: "1.2.3".into(), patient_sex: Some("F".into()), ..Default::default() },
            series_uid: "1.2.3.9".into(),
            sop_instance_uid: "1.2.3.9.1".into(),
            series_number: 9000,
            instance_number: 1,
            content_datetime: ("20240131".into(), "120000".into()),
            title: DocumentTitle::OfInterest,
            description: Some("Received by pulmo".into()),
            references: vec![
                ReferencedInstance { series_uid: "1.2.3.4".into(), sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(), sop_instance_uid: "1.2.3.4.1".into() },
                ReferencedInstance { series_uid: "1.2.3.5".into(), sop_class_uid: "1.2.840.10008.5.1.4.1.1.88.34".into(), sop_instance_uid: "1.2.3.5.1".into() },
            ],
            manufacturer: "pulmo".into(),
            software_version: "0.1".into(),
        }
    }

    #[test]
    fn errors_name_the_field() {
        let mut k = sample();
        k.references.clear();
        assert!(matches!(k.to_dataset(), Err(WriteError::Empty { field }) if field == "references"));
        let mut k = sample();
        k.references[1].sop_instance_uid = "1.2.03".into();
        let e = k.to_dataset().unwrap_err();
        assert!(e.to_string().contains("references[1].sop_instance_uid"), "{e}");
        let mut k = sample();
        k.content_datetime.0 = "2024-01-31".into();
        assert!(k.to_dataset().unwrap_err().to_string().contains("ContentDate"));
        let mut k = sample();
        k.references[1].sop_instance_uid = k.references[0].sop_instance_uid.clone();
        assert!(matches!(k.to_dataset(), Err(WriteError::DuplicateReference { .. })));
        let mut k = sample();
        k.study.accession_number = Some("x".repeat(17));
        assert!(k.to_dataset().unwrap_err().to_string().contains("study.accession_number"));
    }

    #[test]
    fn content_and_charset() {
        let o = sample().to_dataset().unwrap();
        assert!(o.get(tags::SPECIFIC_CHARACTER_SET).is_none(), "ASCII only: no SpecificCharacterSet");
        let content = o.get(tags::CONTENT_SEQUENCE).unwrap().value().items().unwrap();
        let vt: Vec<String> = content.iter().map(|i| string(i, tags::VALUE_TYPE).unwrap()).collect();
        assert_eq!(vt, ["TEXT", "IMAGE", "COMPOSITE"]);
        let mut k = sample();
        k.study.patient_name = Some("Müller^Jürgen".into());
        let o = k.to_dataset().unwrap();
        assert_eq!(string(&o, tags::SPECIFIC_CHARACTER_SET).as_deref(), Some("ISO_IR 192"));
        let bytes = k.to_part10().unwrap();
        let back = crate::DicomFile::from_bytes(std::path::Path::new("k.dcm"), &bytes).unwrap();
        assert_eq!(string(&back.object, tags::PATIENT_NAME).as_deref(), Some("Müller^Jürgen"));
    }

    #[test]
    fn value_types() {
        assert_eq!(value_type_for("1.2.840.10008.5.1.4.1.1.2"), "IMAGE");
        assert_eq!(value_type_for("1.2.840.10008.5.1.4.1.1.66.4"), "IMAGE");
        assert_eq!(value_type_for("1.2.840.10008.5.1.4.1.1.66"), "COMPOSITE");
        assert_eq!(value_type_for("1.2.840.10008.5.1.4.1.1.88.59"), "COMPOSITE");
        assert_eq!(value_type_for("1.2.840.10008.5.1.4.1.1.11.1"), "COMPOSITE");
        assert_eq!(value_type_for("1.2.840.10008.5.1.4.1.1.104.1"), "COMPOSITE");
        assert_eq!(value_type_for("1.2.840.10008.5.1.4.1.1.9.1.1"), "WAVEFORM");
        assert_eq!(value_type_for("1.2.840.10008.5.1.4.1.1.481.2"), "IMAGE");
        assert_eq!(value_type_for("1.2.840.10008.5.1.4.1.1.481.3"), "COMPOSITE");
    }
}
