//! Writers for the DICOM objects pulmo emits, built as plain typed values and turned into
//! data sets (dicom-object has no IOD builders). Each validates its input and names the field
//! at fault in a [`WriteError`].

pub mod kos;
pub mod sc;
pub mod seg;
pub mod sr;
mod study;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use pulmo_findings::{Side, SourceSeries, SourceSlice, StudyFindings};

pub use kos::{DocumentTitle, KeyObjectSelection, ReferencedInstance};
pub use sc::{RgbImage, SecondaryCapture};
pub use seg::NoduleSegmentation;
pub use sr::{NoduleReport, SegmentationRef};
pub use study::StudyContext;

/// Series numbers of pulmo's objects in the viewer's series list, after the scanner's own.
pub const RECEIPT_SERIES_NUMBER: i32 = 9001;
pub const SEG_SERIES_NUMBER: i32 = 9002;
pub const SR_SERIES_NUMBER: i32 = 9003;
pub const SUMMARY_SERIES_NUMBER: i32 = 9004;
pub const KEY_IMAGES_SERIES_NUMBER: i32 = 9005;

/// Explicit VR Little Endian: the transfer syntax every writer here encodes in.
pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{field} must not be empty")]
    Empty { field: String },
    #[error("{field}: {value:?} is not a valid UID (1-64 chars, digits and dots, no empty or zero-led component)")]
    InvalidUid { field: String, value: String },
    #[error("{field}: {value:?} is not valid: {reason}")]
    InvalidValue { field: String, value: String, reason: String },
    #[error("{field}: SOP instance {uid} is referenced twice")]
    DuplicateReference { field: String, uid: String },
    #[error("encoding the data set failed: {0}")]
    Encode(String),
}

pub use crate::valid_uid;

pub(crate) fn check_uid(field: impl Into<String>, value: &str) -> Result<(), WriteError> {
    if valid_uid(value) {
        Ok(())
    } else {
        Err(WriteError::InvalidUid { field: field.into(), value: value.to_string() })
    }
}

pub(crate) fn invalid(field: &str, value: &str, reason: impl Into<String>) -> WriteError {
    WriteError::InvalidValue { field: field.to_string(), value: value.to_string(), reason: reason.into() }
}

/// Checks a single-valued text value against its VR's rules (length in characters, no
/// backslash or control characters; DA/TM/CS grammar).
pub(crate) fn check_text(field: &str, vr: VR, value: &str) -> Result<(), WriteError> {
    let chars = value.chars().count();
    let max = match vr {
        VR::SH => 16,
        VR::LO => 64,
        VR::CS => 16,
        VR::PN => 64 * 3 + 2,
        VR::UT => usize::MAX,
        _ => usize::MAX,
    };
    if chars > max {
        return Err(invalid(field, value, format!("longer than {max} characters ({})", vr.to_string())));
    }
    let control_ok = |c: char| matches!(vr, VR::UT) && matches!(c, '\r' | '\n' | '\t' | '\x0c');
    if value.chars().any(|c| c.is_control() && !control_ok(c)) {
        return Err(invalid(field, value, "contains control characters"));
    }
    if vr != VR::UT && value.contains('\\') {
        return Err(invalid(field, value, "contains a backslash (value separator)"));
    }
    match vr {
        VR::PN if value.split('=').any(|g| g.chars().count() > 64) => {
            Err(invalid(field, value, "a PN component group is longer than 64 characters"))
        }
        VR::PN if value.split('=').count() > 3 => Err(invalid(field, value, "more than 3 PN component groups")),
        VR::DA if !valid_da(value) => Err(invalid(field, value, "not a date YYYYMMDD")),
        VR::TM if !valid_tm(value) => Err(invalid(field, value, "not a time HH[MM[SS[.F{1,6}]]]")),
        VR::CS if !value.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ' || b == b'_') => {
            Err(invalid(field, value, "CS allows only A-Z, 0-9, space and underscore"))
        }
        _ => Ok(()),
    }
}

fn valid_da(s: &str) -> bool {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let month: u32 = s[4..6].parse().unwrap_or(0);
    let day: u32 = s[6..8].parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

fn valid_tm(s: &str) -> bool {
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if !digits(main) || !matches!(main.len(), 2 | 4 | 6) {
        return false;
    }
    if let Some(f) = frac {
        if main.len() != 6 || f.is_empty() || f.len() > 6 || !digits(f) {
            return false;
        }
    }
    let part = |i: usize| main.get(i..i + 2).map(|p| p.parse::<u32>().unwrap_or(99));
    part(0).is_some_and(|h| h < 24) && part(2).is_none_or(|m| m < 60) && part(4).is_none_or(|s| s < 61)
}

/// Who made an object: the General and Enhanced General Equipment modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equipment {
    pub manufacturer: String,
    pub model_name: String,
    /// Names this installation (e.g. the node's AE title or host name).
    pub device_serial_number: String,
    pub software_version: String,
}

impl Equipment {
    /// pulmo itself, this build, at the installation `serial` names.
    pub fn pulmo(serial: &str) -> Equipment {
        Equipment {
            manufacturer: "pulmo".into(),
            model_name: "pulmo lung nodule analysis".into(),
            device_serial_number: serial.into(),
            software_version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    fn check(&self) -> Result<(), WriteError> {
        let values = [
            ("equipment.manufacturer", &self.manufacturer),
            ("equipment.model_name", &self.model_name),
            ("equipment.device_serial_number", &self.device_serial_number),
            ("equipment.software_version", &self.software_version),
        ];
        for (field, value) in values {
            if value.trim().is_empty() {
                return Err(WriteError::Empty { field: field.into() });
            }
            check_text(field, VR::LO, value.trim())?;
        }
        Ok(())
    }

    /// General Equipment and Enhanced General Equipment (all four values type 1 there).
    fn put(&self, o: &mut InMemDicomObject) {
        put_text(o, tags::MANUFACTURER, VR::LO, self.manufacturer.trim());
        put_text(o, tags::MANUFACTURER_MODEL_NAME, VR::LO, self.model_name.trim());
        put_text(o, tags::DEVICE_SERIAL_NUMBER, VR::LO, self.device_serial_number.trim());
        put_text(o, tags::SOFTWARE_VERSIONS, VR::LO, self.software_version.trim());
    }
}

/// An output object's own identity: a new series in the source study, numbered for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInstance {
    pub series_uid: String,
    pub sop_instance_uid: String,
    pub series_number: i32,
    pub instance_number: i32,
    /// ContentDate (YYYYMMDD) and ContentTime (HHMMSS[.F]).
    pub content_date: String,
    pub content_time: String,
}

impl NewInstance {
    /// UIDs derived from `seed` (e.g. source series, study version and object kind), so that
    /// writing the same results again replaces the object in the PACS instead of adding one.
    pub fn derived(seed: &str, series_number: i32, content_date: &str, content_time: &str) -> NewInstance {
        NewInstance {
            series_uid: crate::derived_uid(&format!("{seed}/series")),
            sop_instance_uid: crate::derived_uid(&format!("{seed}/instance")),
            series_number,
            instance_number: 1,
            content_date: content_date.into(),
            content_time: content_time.into(),
        }
    }

    /// What every object pulmo writes begins with: SOP Common (character set when `ascii` is
    /// false, class, instance), the patient and study, and this new series.
    fn start_dataset(&self, sop_class_uid: &str, ascii: bool, study: &StudyContext, modality: &str, description: &str) -> InMemDicomObject {
        let mut o = InMemDicomObject::new_empty();
        if !ascii {
            put_text(&mut o, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
        }
        put_text(&mut o, tags::SOP_CLASS_UID, VR::UI, sop_class_uid);
        put_text(&mut o, tags::SOP_INSTANCE_UID, VR::UI, &self.sop_instance_uid);
        study.put(&mut o);
        put_text(&mut o, tags::MODALITY, VR::CS, modality);
        put_text(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, &self.series_uid);
        put_text(&mut o, tags::SERIES_NUMBER, VR::IS, &self.series_number.to_string());
        put_text(&mut o, tags::SERIES_DESCRIPTION, VR::LO, description);
        o
    }

    fn check(&self, study_uid: &str) -> Result<(), WriteError> {
        check_uid("instance.series_uid", &self.series_uid)?;
        check_uid("instance.sop_instance_uid", &self.sop_instance_uid)?;
        if self.series_uid == study_uid || self.series_uid == self.sop_instance_uid {
            return Err(invalid("instance.series_uid", &self.series_uid, "must differ from the study and instance UIDs"));
        }
        for (field, n) in [("instance.series_number", self.series_number), ("instance.instance_number", self.instance_number)] {
            if n < 0 {
                return Err(invalid(field, &n.to_string(), "negative"));
            }
        }
        for (field, vr, value) in [("instance.content_date", VR::DA, &self.content_date), ("instance.content_time", VR::TM, &self.content_time)] {
            if value.is_empty() {
                return Err(WriteError::Empty { field: field.into() });
            }
            check_text(field, vr, value)?;
        }
        Ok(())
    }
}

/// The checks every writer of a study's results makes: its own identity and equipment, the
/// findings being about `study`, and the source series they point at.
fn check_context(findings: &StudyFindings, study: &StudyContext, instance: &NewInstance, equipment: &Equipment) -> Result<(), WriteError> {
    let source = &findings.source;
    study.check()?;
    instance.check(&study.study_uid)?;
    equipment.check()?;
    if study.study_uid != source.study_uid {
        return Err(invalid("study.study_uid", &study.study_uid, format!("the findings are about study {}", source.study_uid)));
    }
    check_uid("findings.source.series_uid", &source.series_uid)
}

/// Every slice of the analysed grid has a source image to reference (a resampled grid has
/// none), with valid UIDs.
fn check_source_slices(source: &SourceSeries) -> Result<(), WriteError> {
    let slices = source.dims[0];
    if source.slices.len() != slices || slices == 0 {
        return Err(invalid(
            "findings.source.slices",
            &source.slices.len().to_string(),
            format!("the grid has {slices} slices; a resampled grid has no source image per slice to reference"),
        ));
    }
    for (i, s) in source.slices.iter().enumerate() {
        check_uid(format!("findings.source.slices[{i}].sop_class_uid"), &s.sop_class_uid)?;
        check_uid(format!("findings.source.slices[{i}].sop_instance_uid"), &s.sop_instance_uid)?;
    }
    Ok(())
}

/// A decimal string of at most 16 characters (the DS limit), as precise as that allows.
pub fn ds(value: f64) -> String {
    let value = if value == 0.0 { 0.0 } else { value }; // no "-0"
    for decimals in (0..=6).rev() {
        let text = format!("{value:.decimals$}");
        let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
        let text = if text == "-0" { "0".to_string() } else { text };
        if text.len() <= 16 {
            return text;
        }
    }
    format!("{value:.6e}")
}

pub(crate) fn put_ds(o: &mut InMemDicomObject, tag: Tag, values: &[f64]) {
    let strings: dicom_core::value::C<String> = values.iter().map(|v| ds(*v)).collect();
    o.put(DataElement::new(tag, VR::DS, PrimitiveValue::Strs(strings)));
}

pub(crate) fn put_us(o: &mut InMemDicomObject, tag: Tag, values: &[u16]) {
    o.put(DataElement::new(tag, VR::US, PrimitiveValue::U16(values.iter().copied().collect())));
}

pub(crate) fn put_ul(o: &mut InMemDicomObject, tag: Tag, values: &[u32]) {
    o.put(DataElement::new(tag, VR::UL, PrimitiveValue::U32(values.iter().copied().collect())));
}

pub(crate) fn put_tag(o: &mut InMemDicomObject, tag: Tag, value: Tag) {
    o.put(DataElement::new(tag, VR::AT, PrimitiveValue::Tags(std::iter::once(value).collect())));
}

/// Puts a multi-valued code string (e.g. ImageType).
pub(crate) fn put_codes(o: &mut InMemDicomObject, tag: Tag, values: &[&str]) {
    let strings: dicom_core::value::C<String> = values.iter().map(|v| v.to_string()).collect();
    o.put(DataElement::new(tag, VR::CS, PrimitiveValue::Strs(strings)));
}

/// Puts a text element; an empty value is written zero-length (type 2).
pub(crate) fn put_text(o: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    let value = if value.is_empty() { PrimitiveValue::Empty } else { PrimitiveValue::from(value) };
    o.put(DataElement::new(tag, vr, value));
}

pub(crate) fn put_sequence(o: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    o.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
}

/// A Code Sequence item (Basic Code Sequence macro).
pub(crate) fn code_item(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_text(&mut item, tags::CODE_VALUE, VR::SH, value);
    put_text(&mut item, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    put_text(&mut item, tags::CODE_MEANING, VR::LO, meaning);
    item
}

/// Lung (SCT), the anatomy pulmo's SEG segments and SR findings name.
pub(crate) fn lung_code() -> InMemDicomObject {
    code_item("39607008", "SCT", "Lung")
}

/// The laterality qualifier (SCT) of a side.
pub(crate) fn laterality_code(side: Side) -> InMemDicomObject {
    match side {
        Side::Right => code_item("24028007", "SCT", "Right"),
        Side::Left => code_item("7771000", "SCT", "Left"),
    }
}

/// A reference to the source image of grid slice `z`: its SOP class and instance, and its frame
/// when some instance of the series gives more than one slice (an enhanced, multi-frame CT).
pub(crate) fn slice_reference(slices: &[SourceSlice], z: usize) -> InMemDicomObject {
    let slice = &slices[z];
    let mut item = InMemDicomObject::new_empty();
    put_text(&mut item, tags::REFERENCED_SOP_CLASS_UID, VR::UI, &slice.sop_class_uid);
    put_text(&mut item, tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, &slice.sop_instance_uid);
    if slices.iter().any(|s| s.frame > 1) {
        put_text(&mut item, tags::REFERENCED_FRAME_NUMBER, VR::IS, &slice.frame.to_string());
    }
    item
}

/// A Part-10 file of `dataset` in Explicit VR Little Endian, with pulmo's file meta group.
pub(crate) fn part10(sop_class_uid: &str, sop_instance_uid: &str, dataset: &InMemDicomObject) -> Result<Vec<u8>, WriteError> {
    let ts = TransferSyntaxRegistry
        .get(EXPLICIT_VR_LITTLE_ENDIAN)
        .ok_or_else(|| WriteError::Encode("Explicit VR Little Endian not registered".into()))?;
    let mut bytes = Vec::with_capacity(16 * 1024);
    dataset.write_dataset_with_ts(&mut bytes, ts).map_err(|e| WriteError::Encode(e.to_string()))?;
    Ok(crate::part10_bytes(sop_class_uid, sop_instance_uid, EXPLICIT_VR_LITTLE_ENDIAN, &bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_syntax() {
        assert!(valid_uid("1.2.840.10008.5.1.4.1.1.88.59"));
        assert!(valid_uid("2.25.0"));
        for bad in ["", "1..2", "1.02", "1.2.", "1.2a", &"1.".repeat(33)] {
            assert!(!valid_uid(bad), "{bad}");
        }
    }

    #[test]
    fn decimal_strings_fit_16_characters() {
        assert_eq!(ds(0.5), "0.5");
        assert_eq!(ds(-0.0), "0");
        assert_eq!(ds(-1e-9), "0");
        assert_eq!(ds(12.0), "12");
        assert_eq!(ds(-123.456789123), "-123.456789");
        assert_eq!(ds(-123456789.123456), "-123456789.12346");
        for v in [1e20, -1e-20, 1234567890123456.7, std::f64::consts::PI * 1e9] {
            let text = ds(v);
            assert!(text.len() <= 16, "{v}: {text}");
            assert!((text.parse::<f64>().unwrap() - v).abs() <= v.abs() * 1e-6 + 1e-6, "{v}: {text}");
        }
    }

    #[test]
    fn text_rules() {
        assert!(check_text("d", VR::DA, "20240131").is_ok());
        assert!(check_text("d", VR::DA, "2024-01-31").is_err());
        assert!(check_text("t", VR::TM, "235959").is_ok());
        assert!(check_text("t", VR::TM, "120000.123").is_ok());
        assert!(check_text("t", VR::TM, "2500").is_err());
        assert!(check_text("s", VR::SH, "12345678901234567").is_err());
        assert!(check_text("s", VR::LO, "a\\b").is_err());
        assert!(check_text("s", VR::CS, "M").is_ok());
        assert!(check_text("s", VR::CS, "m").is_err());
        assert!(check_text("u", VR::UT, "line\r\nline").is_ok());
    }
}
