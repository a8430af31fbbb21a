//! Comprehensive 3D SR (PS3.3 A.35.13, SOP Class 1.2.840.10008.5.1.4.1.1.88.34) with the
//! content of TID 1500 "Measurement Report": what pulmo measured and concluded about each
//! nodule of a `StudyFindings`, tied to the nodule's segment in pulmo's SEG by tracking UID.
//!
//! Each nodule gets two measurement groups sharing its tracking identifier and UID: a
//! volumetric one (TID 1411: the referenced segment, sizes, volume, attenuation, risk estimates
//! and coded evaluations) and a planar one (TID 1410: the long axis as a polyline on its key
//! slice, which is what OHIF draws), both with this study's time point. The exam's Lung-RADS
//! category and recommendations close the report. Against a prior, each matched nodule's group
//! adds the prior's size and the change since, the exam names the prior and its nodules without
//! a match, and the prior's SR and SEG are pertinent other evidence. What DICOM has no codes
//! for (density class, Lung-RADS, the risk models, the change) is coded in pulmo's private
//! scheme 99PULMO, declared in the SOP Common module.
//!
//! Modules: Patient, General Study, SR Document Series, General and Enhanced General Equipment,
//! SR Document General, SR Document Content, SOP Common.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use pulmo_clinical::density::Density;
use pulmo_clinical::fleischner::SizeBand;
use pulmo_clinical::growth::VolumeChange;
use pulmo_clinical::lung_rads::Category;
use pulmo_findings::{
    ChangeSincePrior, FleischnerAdvice, NoduleChange, NoduleFinding, PriorComparison, PriorObject, Side, StudyFindings, UnmatchedPrior,
};

use super::kos::{evidence, sop_reference, ReferencedInstance};
use super::seg::SEGMENTATION_STORAGE;
use super::{
    check_context, check_source_slices, check_text, check_uid, code_item, invalid, laterality_code, lung_code, part10, put_ds, put_sequence, put_text, put_us, slice_reference,
    Equipment, NewInstance, StudyContext, WriteError,
};

pub const COMPREHENSIVE_3D_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.34";

/// pulmo's private coding scheme, for what DICOM and SNOMED have no verified codes for.
pub const PRIVATE_SCHEME: &str = "99PULMO";

/// A code: (value, scheme designator, meaning).
pub(crate) type Code = (&'static str, &'static str, &'static str);

// Report structure (DCM).
pub(crate) const REPORT: Code = ("126000", "DCM", "Imaging Measurement Report");
const LANGUAGE: Code = ("121049", "DCM", "Language of Content Item and Descendants");
const ENGLISH_US: Code = ("en-US", "RFC5646", "English (United States)");
const OBSERVER_TYPE: Code = ("121005", "DCM", "Observer Type");
const DEVICE: Code = ("121007", "DCM", "Device");
const DEVICE_OBSERVER_UID: Code = ("121012", "DCM", "Device Observer UID");
const DEVICE_OBSERVER_NAME: Code = ("121013", "DCM", "Device Observer Name");
const DEVICE_OBSERVER_MANUFACTURER: Code = ("121014", "DCM", "Device Observer Manufacturer");
const DEVICE_OBSERVER_MODEL_NAME: Code = ("121015", "DCM", "Device Observer Model Name");
const DEVICE_OBSERVER_SERIAL_NUMBER: Code = ("121016", "DCM", "Device Observer Serial Number");
const PROCEDURE_REPORTED: Code = ("121058", "DCM", "Procedure reported");
const CT_PROCEDURE: Code = ("25045-6", "LN", "CT unspecified body region");
const IMAGE_LIBRARY: Code = ("111028", "DCM", "Image Library");
const IMAGE_LIBRARY_GROUP: Code = ("126200", "DCM", "Image Library Group");
pub(crate) const IMAGING_MEASUREMENTS: Code = ("126010", "DCM", "Imaging Measurements");
const QUALITATIVE_EVALUATIONS: Code = ("C0034375", "UMLS", "Qualitative Evaluations");
pub(crate) const MEASUREMENT_GROUP: Code = ("125007", "DCM", "Measurement Group");
pub(crate) const TRACKING_IDENTIFIER: Code = ("112039", "DCM", "Tracking Identifier");
pub(crate) const TRACKING_UID: Code = ("112040", "DCM", "Tracking Unique Identifier");
pub(crate) const REFERENCED_SEGMENT: Code = ("121191", "DCM", "Referenced Segment");
pub(crate) const SOURCE_SERIES_FOR_SEGMENTATION: Code = ("121232", "DCM", "Source series for segmentation");
pub(crate) const IMAGE_REGION: Code = ("111030", "DCM", "Image Region");
const RECOMMENDATION: Code = ("121075", "DCM", "Recommendation");
const TIME_POINT: Code = ("C2348792", "UMLS", "Time Point");

// The finding and its measurements (SCT, DCM), with modifiers and units (UCUM).
const FINDING: Code = ("121071", "DCM", "Finding");
const NODULE: Code = ("27925004", "SCT", "Nodule");
const FINDING_SITE: Code = ("363698007", "SCT", "Finding Site");
const LATERALITY: Code = ("272741003", "SCT", "Laterality");
pub(crate) const LONG_AXIS: Code = ("103339001", "SCT", "Long axis");
pub(crate) const SHORT_AXIS: Code = ("103340004", "SCT", "Short axis");
pub(crate) const DIAMETER: Code = ("81827009", "SCT", "Diameter");
pub(crate) const VOLUME: Code = ("118565006", "SCT", "Volume");
const ATTENUATION: Code = ("112031", "DCM", "Attenuation Coefficient");
const PROBABILITY_OF_CANCER: Code = ("111047", "DCM", "Probability of cancer");
const DERIVATION: Code = ("121401", "DCM", "Derivation");
const MEASUREMENT_METHOD: Code = ("370129005", "SCT", "Measurement Method");
const MEAN: Code = ("373098007", "SCT", "Mean");
const MINIMUM: Code = ("255605001", "SCT", "Minimum");
const MAXIMUM: Code = ("56851009", "SCT", "Maximum");
const STANDARD_DEVIATION: Code = ("386136009", "SCT", "Standard Deviation");
const YES: Code = ("373066001", "SCT", "Yes");
const NO: Code = ("373067005", "SCT", "No");
const MM: Code = ("mm", "UCUM", "millimeter");
const MM3: Code = ("mm3", "UCUM", "cubic millimeter");
const HU: Code = ("[hnsf'U]", "UCUM", "Hounsfield unit");
const PERCENT: Code = ("%", "UCUM", "Percent");
const DAY: Code = ("d", "UCUM", "day");

// Private concepts (99PULMO); docs/dicom-outputs.md lists them all.
pub(crate) const DENSITY: Code = ("DENSITY", PRIVATE_SCHEME, "Nodule density class");
const CALCIFICATION: Code = ("CALCIFICATION", PRIVATE_SCHEME, "Calcification");
const SPICULATION: Code = ("SPICULATION", PRIVATE_SCHEME, "Spiculated margin");
pub(crate) const LUNG_RADS: Code = ("LUNGRADS", PRIVATE_SCHEME, "Lung-RADS v2022 category");
const FLEISCHNER: Code = ("FLEISCHNER", PRIVATE_SCHEME, "Fleischner 2017 recommendation");
pub(crate) const SOLID_DIAMETER: Code = ("SOLID-DIAMETER", PRIVATE_SCHEME, "Solid component mean diameter");
// Follow-up (99PULMO): the prior's values and the change since, in a matched nodule's group.
pub(crate) const PRIOR_DIAMETER: Code = ("PRIOR-DIAMETER", PRIVATE_SCHEME, "Mean diameter on prior");
pub(crate) const PRIOR_VOLUME: Code = ("PRIOR-VOLUME", PRIVATE_SCHEME, "Volume on prior");
pub(crate) const PRIOR_INTERVAL: Code = ("PRIOR-INTERVAL", PRIVATE_SCHEME, "Interval since prior");
const DIAMETER_CHANGE: Code = ("DIAMETER-CHANGE", PRIVATE_SCHEME, "Mean diameter change since prior");
const SOLID_CHANGE: Code = ("SOLID-CHANGE", PRIVATE_SCHEME, "Solid component change since prior");
const VOLUME_CHANGE: Code = ("VOLUME-CHANGE", PRIVATE_SCHEME, "Volume change since prior");
const DOUBLING_TIME: Code = ("VDT", PRIVATE_SCHEME, "Volume doubling time");
const CHANGE: Code = ("CHANGE", PRIVATE_SCHEME, "Change since prior");
const NEW: Code = ("NEW", PRIVATE_SCHEME, "New");
const GROWING: Code = ("GROWING", PRIVATE_SCHEME, "Growing");
const SLOWLY_GROWING: Code = ("SLOWLY-GROWING", PRIVATE_SCHEME, "Slowly growing");
const STABLE: Code = ("STABLE", PRIVATE_SCHEME, "Stable");
const SHRINKING: Code = ("SHRINKING", PRIVATE_SCHEME, "Shrinking");
// ... and in the exam's evaluations: which prior, and its nodules without a match.
const PRIOR_STUDY: Code = ("PRIOR-STUDY", PRIVATE_SCHEME, "Compared with prior");
const PRIOR_UNMATCHED: Code = ("PRIOR-UNMATCHED", PRIVATE_SCHEME, "Prior nodule without a match");
const PRIOR_LOOKBACK: Code = ("PRIOR-LOOKBACK", PRIVATE_SCHEME, "Nodule found on the prior CT only now");

const CONTAINS: &str = "CONTAINS";
const HAS_CONCEPT_MOD: &str = "HAS CONCEPT MOD";
const HAS_OBS_CONTEXT: &str = "HAS OBS CONTEXT";
const SELECTED_FROM: &str = "SELECTED FROM";

/// The SEG whose segments the report's groups point at (segment N = findings.nodules[N-1]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentationRef {
    pub series_uid: String,
    pub sop_instance_uid: String,
}

impl SegmentationRef {
    fn instance(&self) -> ReferencedInstance {
        ReferencedInstance {
            series_uid: self.series_uid.clone(),
            sop_class_uid: SEGMENTATION_STORAGE.into(),
            sop_instance_uid: self.sop_instance_uid.clone(),
        }
    }
}

/// The TID 1500 measurement report of a study's nodules.
#[derive(Debug, Clone)]
pub struct NoduleReport<'a> {
    pub findings: &'a StudyFindings,
    pub study: &'a StudyContext,
    pub instance: &'a NewInstance,
    pub equipment: &'a Equipment,
    /// Required when there are nodules: each volumetric group references its segment.
    pub segmentation: Option<&'a SegmentationRef>,
}

/// One NUM content item: the value, what it measures, and at most one modifier (derivation
/// or method). `field` names the value in the findings for errors.
struct Measurement {
    field: &'static str,
    concept: Code,
    value: f64,
    unit: Code,
    modifier: Option<(Code, InMemDicomObject)>,
}

impl Measurement {
    fn new(field: &'static str, concept: Code, value: f64, unit: Code) -> Measurement {
        Measurement { field, concept, value, unit, modifier: None }
    }

    fn derived(self, derivation: Code) -> Measurement {
        Measurement { modifier: Some((DERIVATION, coded(derivation))), ..self }
    }

    fn by_method(self, method: InMemDicomObject) -> Measurement {
        Measurement { modifier: Some((MEASUREMENT_METHOD, method)), ..self }
    }
}

impl NoduleReport<'_> {
    /// The complete data set (no file meta group).
    pub fn to_dataset(&self) -> Result<InMemDicomObject, WriteError> {
        self.validate()?;
        // SR Document Series.
        let description = "pulmo lung nodules (report)";
        let mut o = self.instance.start_dataset(COMPREHENSIVE_3D_SR_STORAGE, self.all_ascii(), self.study, "SR", description);
        put_sequence(&mut o, tags::CODING_SCHEME_IDENTIFICATION_SEQUENCE, vec![private_scheme()]);
        put_sequence(&mut o, tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE, Vec::new());
        self.equipment.put(&mut o);

        // SR Document General. pulmo's findings are complete but nobody has verified them.
        put_text(&mut o, tags::INSTANCE_NUMBER, VR::IS, &self.instance.instance_number.to_string());
        put_text(&mut o, tags::COMPLETION_FLAG, VR::CS, "COMPLETE");
        put_text(&mut o, tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED");
        put_text(&mut o, tags::CONTENT_DATE, VR::DA, &self.instance.content_date);
        put_text(&mut o, tags::CONTENT_TIME, VR::TM, &self.instance.content_time);
        let evidence = evidence(&self.study.study_uid, &self.evidence_instances());
        put_sequence(&mut o, tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE, vec![evidence]);
        let prior_objects = self.findings.prior.as_ref().map_or(&[][..], |p| &p.prior_objects[..]);
        if !prior_objects.is_empty() {
            // The prior's SR and SEG: where a reader finds the nodules the change refers to.
            put_sequence(&mut o, tags::PERTINENT_OTHER_EVIDENCE_SEQUENCE, pertinent_evidence(prior_objects));
        }
        put_sequence(&mut o, tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, Vec::new());

        // SR Document Content (TID 1500).
        self.put_content(&mut o);
        Ok(o)
    }

    /// A Part-10 file in Explicit VR Little Endian with pulmo's file meta group.
    pub fn to_part10(&self) -> Result<Vec<u8>, WriteError> {
        let dataset = self.to_dataset()?;
        part10(COMPREHENSIVE_3D_SR_STORAGE, &self.instance.sop_instance_uid, &dataset)
    }

    fn validate(&self) -> Result<(), WriteError> {
        check_context(self.findings, self.study, self.instance, self.equipment)?;
        // Key slices and evidence are the CT's own instances.
        check_source_slices(&self.findings.source)?;
        match self.segmentation {
            Some(seg) => {
                check_uid("segmentation.series_uid", &seg.series_uid)?;
                check_uid("segmentation.sop_instance_uid", &seg.sop_instance_uid)?;
            }
            None if !self.findings.nodules.is_empty() => {
                return Err(WriteError::Empty { field: "segmentation (each nodule's TID 1411 group references its segment)".into() });
            }
            None => {}
        }
        if self.findings.nodules.len() > usize::from(u16::MAX) {
            return Err(invalid("findings.nodules", &self.findings.nodules.len().to_string(), "more nodules than segments a SEG can number"));
        }
        for (i, n) in self.findings.nodules.iter().enumerate() {
            check_nodule(i, n)?;
        }
        let exam = &self.findings.exam;
        check_text("findings.exam.management", VR::UT, &exam.management)?;
        if let Some(f) = &exam.fleischner {
            check_text("findings.exam.fleischner", VR::UT, &fleischner_text(f))?;
        }
        check_text("findings.source.study_date", VR::UT, &self.time_point())?;
        match &self.findings.prior {
            Some(prior) => check_prior(prior),
            None => Ok(()),
        }
    }

    /// Whether every text is ASCII (else the object declares ISO_IR 192).
    fn all_ascii(&self) -> bool {
        let e = self.equipment;
        let exam = &self.findings.exam;
        self.study.is_ascii()
            && [&e.manufacturer, &e.model_name, &e.device_serial_number, &exam.management].iter().all(|t| t.is_ascii())
            && exam.fleischner.as_ref().is_none_or(|f| fleischner_text(f).is_ascii())
            && self.findings.nodules.iter().flat_map(model_names).flatten().all(str::is_ascii)
            && self.time_point().is_ascii()
            && self.findings.prior.iter().flat_map(prior_texts).all(|(_, t)| t.is_ascii())
            && lookback_texts(&self.findings.nodules).all(|(_, t)| t.is_ascii())
    }

    /// TID 1502's time point of every group: this study's date (ISO 8601), or "current" when
    /// the date is unknown. Baselines carry it too, so that a later study's report and this
    /// one line up by time point as they do by tracking UID.
    fn time_point(&self) -> String {
        let date = self.findings.source.study_date.as_deref().or(self.study.study_date.as_deref()).map(str::trim);
        date.filter(|d| !d.is_empty()).map_or("current".to_string(), pulmo_clinical::dates::display)
    }

    /// Every instance of the analysed series, and the SEG: the report is about the whole
    /// series, and 3D Slicer finds the SEG through this list.
    fn evidence_instances(&self) -> Vec<ReferencedInstance> {
        let source = &self.findings.source;
        let mut seen = std::collections::HashSet::new();
        let mut references: Vec<ReferencedInstance> = source
            .slices
            .iter()
            .filter(|s| seen.insert(s.sop_instance_uid.as_str()))
            .map(|s| ReferencedInstance {
                series_uid: source.series_uid.clone(),
                sop_class_uid: s.sop_class_uid.clone(),
                sop_instance_uid: s.sop_instance_uid.clone(),
            })
            .collect();
        references.extend(self.segmentation.map(SegmentationRef::instance));
        references
    }

    fn key_slice(&self, nodule: &NoduleFinding) -> usize {
        nodule.key_slice(&self.findings.source.geometry, self.findings.source.dims[0])
    }

    /// Root CONTAINER (TID 1500): language, device observer, procedure, then the image library
    /// and one pair of measurement groups per nodule, then the exam's evaluations.
    fn put_content(&self, o: &mut InMemDicomObject) {
        put_text(o, tags::VALUE_TYPE, VR::CS, "CONTAINER");
        put_sequence(o, tags::CONCEPT_NAME_CODE_SEQUENCE, vec![coded(REPORT)]);
        put_text(o, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
        put_sequence(o, tags::CONTENT_TEMPLATE_SEQUENCE, vec![template("1500")]);
        let mut items = vec![code(HAS_CONCEPT_MOD, LANGUAGE, coded(ENGLISH_US))];
        items.extend(self.observer_context());
        items.push(code(HAS_CONCEPT_MOD, PROCEDURE_REPORTED, coded(CT_PROCEDURE)));
        // Without nodules there is nothing to measure: no image library and no groups.
        if let Some(seg) = self.segmentation.filter(|_| !self.findings.nodules.is_empty()) {
            items.push(self.image_library());
            items.push(self.imaging_measurements(seg));
        }
        items.push(self.exam_evaluations());
        put_sequence(o, tags::CONTENT_SEQUENCE, items);
    }

    /// TID 1001/1004: the observer is a device, pulmo at this installation.
    fn observer_context(&self) -> Vec<InMemDicomObject> {
        let e = self.equipment;
        let (manufacturer, model, serial) = (e.manufacturer.trim(), e.model_name.trim(), e.device_serial_number.trim());
        let uid = crate::derived_uid(&format!("device observer/{manufacturer}/{model}/{serial}"));
        vec![
            code(HAS_OBS_CONTEXT, OBSERVER_TYPE, coded(DEVICE)),
            uidref(HAS_OBS_CONTEXT, DEVICE_OBSERVER_UID, &uid),
            text(HAS_OBS_CONTEXT, DEVICE_OBSERVER_NAME, "pulmo"),
            text(HAS_OBS_CONTEXT, DEVICE_OBSERVER_MANUFACTURER, manufacturer),
            text(HAS_OBS_CONTEXT, DEVICE_OBSERVER_MODEL_NAME, model),
            text(HAS_OBS_CONTEXT, DEVICE_OBSERVER_SERIAL_NUMBER, serial),
        ]
    }

    /// TID 1600: the key slices, once each, in slice order.
    fn image_library(&self) -> InMemDicomObject {
        let mut slices: Vec<usize> = self.findings.nodules.iter().map(|n| self.key_slice(n)).collect();
        slices.sort_unstable();
        slices.dedup();
        let images = slices.into_iter().map(|z| image(CONTAINS, None, slice_reference(&self.findings.source.slices, z))).collect();
        let group = container(CONTAINS, IMAGE_LIBRARY_GROUP, None, images);
        container(CONTAINS, IMAGE_LIBRARY, None, vec![group])
    }

    fn imaging_measurements(&self, seg: &SegmentationRef) -> InMemDicomObject {
        let groups = self
            .findings
            .nodules
            .iter()
            .enumerate()
            .flat_map(|(i, n)| [self.volumetric_group(i as u16 + 1, n, seg), self.planar_group(n)])
            .collect();
        container(CONTAINS, IMAGING_MEASUREMENTS, None, groups)
    }

    /// TID 1411 for nodule `n`, which is segment `segment` of the SEG.
    fn volumetric_group(&self, segment: u16, n: &NoduleFinding, seg: &SegmentationRef) -> InMemDicomObject {
        let mut reference = sop_reference(&seg.instance());
        put_us(&mut reference, tags::REFERENCED_SEGMENT_NUMBER, &[segment]);
        let mut items = group_identity(n);
        items.push(image(CONTAINS, Some(REFERENCED_SEGMENT), reference));
        items.push(uidref(CONTAINS, SOURCE_SERIES_FOR_SEGMENTATION, &self.findings.source.series_uid));
        items.push(finding_site(n.zone.map(|z| z.side)));
        items.push(text(HAS_OBS_CONTEXT, TIME_POINT, &self.time_point()));
        items.extend(measurements(n).into_iter().map(num));
        items.extend(evaluations(n));
        container(CONTAINS, MEASUREMENT_GROUP, Some("1411"), items)
    }

    /// TID 1410 for nodule `n`: its long axis drawn on the key slice, in image coordinates
    /// (column, row) whose origin is the top-left corner of the top-left pixel, so a voxel's
    /// centre lies at its index + 0.5.
    fn planar_group(&self, n: &NoduleFinding) -> InMemDicomObject {
        let source = &self.findings.source;
        let points = n.measurements.long_axis_lps_mm.iter().flat_map(|p| {
            let [_, row, column] = source.geometry.lps_to_index(*p);
            [(column + 0.5) as f32, (row + 0.5) as f32]
        });
        let mut region = item(CONTAINS, "SCOORD", IMAGE_REGION);
        put_text(&mut region, tags::GRAPHIC_TYPE, VR::CS, "POLYLINE");
        region.put(DataElement::new(tags::GRAPHIC_DATA, VR::FL, PrimitiveValue::F32(points.collect())));
        let slice = slice_reference(&source.slices, self.key_slice(n));
        put_sequence(&mut region, tags::CONTENT_SEQUENCE, vec![image(SELECTED_FROM, None, slice)]);
        let mut items = group_identity(n);
        items.push(text(HAS_OBS_CONTEXT, TIME_POINT, &self.time_point()));
        items.push(region);
        items.push(num(Measurement::new("measurements.long_axis_mm", LONG_AXIS, n.measurements.long_axis_mm, MM)));
        container(CONTAINS, MEASUREMENT_GROUP, Some("1410"), items)
    }

    /// The exam's Lung-RADS category, its management, the Fleischner advice when given, and
    /// against a prior which prior it was and its nodules that no nodule matches.
    fn exam_evaluations(&self) -> InMemDicomObject {
        let exam = &self.findings.exam;
        let mut items = vec![code(CONTAINS, LUNG_RADS, lung_rads_code(exam.lung_rads))];
        if !exam.management.trim().is_empty() {
            items.push(text(CONTAINS, RECOMMENDATION, exam.management.trim()));
        }
        if let Some(f) = &exam.fleischner {
            items.push(text(CONTAINS, FLEISCHNER, &fleischner_text(f)));
        }
        let prior = self.findings.prior.iter().flat_map(prior_texts).chain(lookback_texts(&self.findings.nodules));
        items.extend(prior.map(|(concept, value)| text(CONTAINS, concept, &value)));
        container(CONTAINS, QUALITATIVE_EVALUATIONS, None, items)
    }
}

/// The checks of one nodule (number `i` from 0), naming the field at fault.
fn check_nodule(i: usize, n: &NoduleFinding) -> Result<(), WriteError> {
    check_uid(format!("findings.nodules[{i}].tracking_uid"), &n.tracking_uid)?;
    // The tracking UID is what ties the nodule's groups here to the prior report's.
    // (One found on the prior's CT only now had none there.)
    let matched = n.change.as_ref().filter(|c| !c.found_on_prior_ct).map(|c| &c.prior);
    if let Some(prior) = matched.filter(|p| p.tracking_uid != n.tracking_uid) {
        let reason = format!("a matched nodule keeps the prior's tracking UID ({})", prior.tracking_uid);
        return Err(invalid(&format!("findings.nodules[{i}].tracking_uid"), &n.tracking_uid, reason));
    }
    let ends = n.measurements.long_axis_lps_mm;
    if ends.iter().flatten().any(|c| !c.is_finite()) {
        return Err(invalid(&format!("findings.nodules[{i}].measurements.long_axis_lps_mm"), &format!("{ends:?}"), "not finite"));
    }
    for m in measurements(n) {
        if !m.value.is_finite() {
            return Err(invalid(&format!("findings.nodules[{i}].{}", m.field), &m.value.to_string(), "not finite"));
        }
    }
    for (field, model) in ["brock", "mayo"].into_iter().zip(model_names(n)) {
        let Some(model) = model else { continue };
        let field = format!("findings.nodules[{i}].{field}.estimate.model");
        if model.trim().is_empty() {
            return Err(WriteError::Empty { field }); // the method code's meaning
        }
        check_text(&field, VR::LO, model)?;
    }
    Ok(())
}

/// What the report says of the prior: its UIDs and date (in the exam's texts) and its objects
/// (referenced, each instance once).
fn check_prior(prior: &PriorComparison) -> Result<(), WriteError> {
    check_uid("findings.prior.study_uid", &prior.study_uid)?;
    check_uid("findings.prior.series_uid", &prior.series_uid)?;
    check_text("findings.prior.study_date", VR::UT, prior.study_date.as_deref().unwrap_or(""))?;
    for (i, u) in prior.unmatched_prior.iter().enumerate() {
        check_uid(format!("findings.prior.unmatched_prior[{i}].nodule.tracking_uid"), &u.nodule.tracking_uid)?;
    }
    let mut seen = std::collections::HashSet::new();
    for (i, o) in prior.prior_objects.iter().enumerate() {
        let field = |name: &str| format!("findings.prior.prior_objects[{i}].{name}");
        check_uid(field("study_uid"), &o.study_uid)?;
        check_uid(field("series_uid"), &o.series_uid)?;
        check_uid(field("sop_class_uid"), &o.sop_class_uid)?;
        check_uid(field("sop_instance_uid"), &o.sop_instance_uid)?;
        if !seen.insert(o.sop_instance_uid.as_str()) {
            return Err(WriteError::DuplicateReference { field: "findings.prior.prior_objects".into(), uid: o.sop_instance_uid.clone() });
        }
    }
    Ok(())
}

/// The prior's objects as Hierarchical SOP Instance References, one item per study.
fn pertinent_evidence(objects: &[PriorObject]) -> Vec<InMemDicomObject> {
    let mut studies: Vec<(&str, Vec<ReferencedInstance>)> = Vec::new();
    for o in objects {
        let reference = ReferencedInstance {
            series_uid: o.series_uid.clone(),
            sop_class_uid: o.sop_class_uid.clone(),
            sop_instance_uid: o.sop_instance_uid.clone(),
        };
        match studies.iter_mut().find(|(uid, _)| *uid == o.study_uid) {
            Some((_, references)) => references.push(reference),
            None => studies.push((&o.study_uid, vec![reference])),
        }
    }
    studies.into_iter().map(|(study, references)| evidence(study, &references)).collect()
}

/// The exam's TEXT items about the prior: which study it was, then per prior nodule without a
/// match why (resolved, or outside this scan and so not evaluated).
fn prior_texts(p: &PriorComparison) -> Vec<(Code, String)> {
    let comparison = format!(
        "CT of {} (study {}, series {}), {}; lungs registered with Dice {:.2}",
        p.date_text(),
        p.study_uid,
        p.series_uid,
        p.interval_text(),
        p.registration.lung_dice
    );
    let mut texts = vec![(PRIOR_STUDY, comparison)];
    texts.extend(p.unmatched_prior.iter().map(|u| (PRIOR_UNMATCHED, unmatched_text(u))));
    texts
}

/// Per nodule the prior's findings missed but its CT shows: that its prior values were
/// measured now, on the prior's CT.
fn lookback_texts(nodules: &[NoduleFinding]) -> impl Iterator<Item = (Code, String)> + '_ {
    nodules.iter().filter_map(|n| n.change.as_ref().filter(|c| c.found_on_prior_ct).map(|c| (n.id, &c.prior))).map(|(id, p)| {
        let text = format!(
            "Nodule {id} is not in the prior's findings; measured now on the prior CT where the registration places it: {}, mean diameter {:.1} mm, {:.0} mm3",
            p.density.label(),
            p.mean_diameter_mm,
            p.volume_mm3
        );
        (PRIOR_LOOKBACK, text)
    })
}

fn unmatched_text(u: &UnmatchedPrior) -> String {
    let n = &u.nodule;
    format!(
        "Prior nodule {} (tracking UID {}; {}, mean diameter {:.1} mm, {:.0} mm3, Lung-RADS {}): {}",
        n.id,
        n.tracking_uid,
        n.density.label(),
        n.mean_diameter_mm,
        n.volume_mm3,
        n.lung_rads.code(),
        u.disappearance.label()
    )
}

/// The Brock and Mayo model names, when estimated.
fn model_names(n: &NoduleFinding) -> [Option<&str>; 2] {
    [n.brock.as_ref().map(|r| r.estimate.model.as_str()), n.mayo.as_ref().map(|r| r.estimate.model.as_str())]
}

/// The NUM items of a volumetric group, in TID 1419 order.
fn measurements(n: &NoduleFinding) -> Vec<Measurement> {
    let m = &n.measurements;
    let mut list = vec![
        Measurement::new("measurements.long_axis_mm", LONG_AXIS, m.long_axis_mm, MM),
        Measurement::new("measurements.short_axis_mm", SHORT_AXIS, m.short_axis_mm, MM),
        Measurement::new("measurements.mean_diameter_mm", DIAMETER, m.mean_diameter_mm, MM).derived(MEAN),
        Measurement::new("measurements.volume_mm3", VOLUME, m.volume_mm3, MM3),
    ];
    // Lung-RADS sizes a part-solid nodule by its solid component.
    if let Some(core) = &m.solid_core {
        list.push(Measurement::new("measurements.solid_core.mean_diameter_mm", SOLID_DIAMETER, core.mean_diameter_mm, MM));
    }
    list.extend([
        Measurement::new("measurements.hu.mean", ATTENUATION, m.hu.mean, HU).derived(MEAN),
        Measurement::new("measurements.hu.min", ATTENUATION, m.hu.min, HU).derived(MINIMUM),
        Measurement::new("measurements.hu.max", ATTENUATION, m.hu.max, HU).derived(MAXIMUM),
        Measurement::new("measurements.hu.sd", ATTENUATION, m.hu.sd, HU).derived(STANDARD_DEVIATION),
    ]);
    if let Some(brock) = &n.brock {
        // risk::brock uses model 2b exactly when spiculation is known, 2a otherwise.
        let variant = if brock.inputs.spiculation.is_some() { "BROCK-2B" } else { "BROCK-2A" };
        let percent = brock.estimate.probability * 100.0;
        let method = code_item(variant, PRIVATE_SCHEME, &brock.estimate.model);
        list.push(Measurement::new("brock.estimate.probability", PROBABILITY_OF_CANCER, percent, PERCENT).by_method(method));
    }
    if let Some(mayo) = &n.mayo {
        let percent = mayo.estimate.probability * 100.0;
        let method = code_item("MAYO", PRIVATE_SCHEME, &mayo.estimate.model);
        list.push(Measurement::new("mayo.estimate.probability", PROBABILITY_OF_CANCER, percent, PERCENT).by_method(method));
    }
    list.extend(n.change.iter().flat_map(change_measurements));
    list
}

/// A matched nodule's prior size, the interval, and the change since: mean diameter and solid
/// component in mm (negative when smaller), volume in %, and the volume doubling time only
/// while the volume grows (a shrinking nodule has no doubling time, never a negative one).
fn change_measurements(c: &NoduleChange) -> Vec<Measurement> {
    let mut list = vec![
        Measurement::new("change.prior.mean_diameter_mm", PRIOR_DIAMETER, c.prior.mean_diameter_mm, MM),
        Measurement::new("change.prior.volume_mm3", PRIOR_VOLUME, c.prior.volume_mm3, MM3),
    ];
    if let Some(days) = c.interval_days {
        list.push(Measurement::new("change.interval_days", PRIOR_INTERVAL, days, DAY));
    }
    list.push(Measurement::new("change.mean_diameter_change_mm", DIAMETER_CHANGE, c.mean_diameter_change_mm, MM));
    if let Some(mm) = c.solid_core_change_mm {
        list.push(Measurement::new("change.solid_core_change_mm", SOLID_CHANGE, mm, MM));
    }
    list.push(Measurement::new("change.volume_change_percent", VOLUME_CHANGE, c.volume_change_percent, PERCENT));
    if let Some(VolumeChange::Growing { doubling_time_days: days }) = c.volume_change {
        if days > 0.0 {
            list.push(Measurement::new("change.volume_change.doubling_time_days", DOUBLING_TIME, days, DAY));
        }
    }
    list
}

/// The coded qualitative evaluations of a nodule (spiculation only when assessed).
fn evaluations(n: &NoduleFinding) -> Vec<InMemDicomObject> {
    let m = &n.measurements;
    let mut items = vec![code(CONTAINS, DENSITY, density_code(m.density)), code(CONTAINS, CALCIFICATION, yes_no(m.calcified))];
    if let Some(spiculated) = m.spiculated {
        items.push(code(CONTAINS, SPICULATION, yes_no(spiculated)));
    }
    items.push(code(CONTAINS, LUNG_RADS, lung_rads_code(n.lung_rads.category)));
    if let Some(change) = change_code(n) {
        items.push(code(CONTAINS, CHANGE, coded(change)));
    }
    items
}

/// The change since the prior as its 99PULMO code; `None` for a baseline.
fn change_code(n: &NoduleFinding) -> Option<Code> {
    n.change_since_prior().map(|change| match change {
        ChangeSincePrior::New => NEW,
        ChangeSincePrior::Growing => GROWING,
        ChangeSincePrior::SlowlyGrowing => SLOWLY_GROWING,
        ChangeSincePrior::Stable => STABLE,
        ChangeSincePrior::Shrinking => SHRINKING,
    })
}

/// The tracking identifier and UID (TID 4108) and the finding, shared by a nodule's groups.
fn group_identity(n: &NoduleFinding) -> Vec<InMemDicomObject> {
    vec![
        text(HAS_OBS_CONTEXT, TRACKING_IDENTIFIER, &format!("Nodule {}", n.id)),
        uidref(HAS_OBS_CONTEXT, TRACKING_UID, &n.tracking_uid),
        code(CONTAINS, FINDING, coded(NODULE)),
    ]
}

/// Lung, with its laterality when known (as the SEG's anatomic region says it).
fn finding_site(side: Option<Side>) -> InMemDicomObject {
    let mut site = code(HAS_CONCEPT_MOD, FINDING_SITE, lung_code());
    if let Some(side) = side {
        put_sequence(&mut site, tags::CONTENT_SEQUENCE, vec![code(HAS_CONCEPT_MOD, LATERALITY, laterality_code(side))]);
    }
    site
}

fn fleischner_text(f: &FleischnerAdvice) -> String {
    let band = match f.size_band {
        SizeBand::Below6 => "<6 mm",
        SizeBand::From6To8 => "6-8 mm",
        SizeBand::Above8 => ">8 mm",
    };
    format!("Nodule {} ({band}): low clinical risk: {}; high clinical risk: {}. {}", f.nodule_id, f.low_risk, f.high_risk, f.applies_to)
}

/// The 99PULMO code of a density class (value, meaning).
pub(crate) fn density_names(density: Density) -> (&'static str, &'static str) {
    match density {
        Density::Solid => ("SOLID", "Solid"),
        Density::PartSolid => ("PART-SOLID", "Part-solid"),
        Density::GroundGlass => ("GROUND-GLASS", "Ground-glass"),
    }
}

fn density_code(density: Density) -> InMemDicomObject {
    let (value, meaning) = density_names(density);
    code_item(value, PRIVATE_SCHEME, meaning)
}

/// The 99PULMO code value of a Lung-RADS category: "LUNGRADS-" and the category.
pub(crate) const LUNG_RADS_PREFIX: &str = "LUNGRADS-";

fn lung_rads_code(category: Category) -> InMemDicomObject {
    code_item(&format!("{LUNG_RADS_PREFIX}{}", category.code()), PRIVATE_SCHEME, &format!("Lung-RADS {}", category.code()))
}

fn yes_no(flag: bool) -> InMemDicomObject {
    coded(if flag { YES } else { NO })
}

/// The CodingSchemeIdentificationSequence item declaring 99PULMO.
fn private_scheme() -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_text(&mut item, tags::CODING_SCHEME_DESIGNATOR, VR::SH, PRIVATE_SCHEME);
    put_text(&mut item, tags::CODING_SCHEME_NAME, VR::ST, "pulmo lung nodule findings");
    put_text(&mut item, tags::CODING_SCHEME_RESPONSIBLE_ORGANIZATION, VR::ST, "pulmo");
    item
}

fn coded((value, scheme, meaning): Code) -> InMemDicomObject {
    code_item(value, scheme, meaning)
}

fn template(id: &str) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_text(&mut item, tags::MAPPING_RESOURCE, VR::CS, "DCMR");
    put_text(&mut item, tags::TEMPLATE_IDENTIFIER, VR::CS, id);
    item
}

/// A content item's relationship to its parent, value type and concept name.
fn item(relationship: &str, value_type: &str, concept: Code) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_text(&mut item, tags::RELATIONSHIP_TYPE, VR::CS, relationship);
    put_text(&mut item, tags::VALUE_TYPE, VR::CS, value_type);
    put_sequence(&mut item, tags::CONCEPT_NAME_CODE_SEQUENCE, vec![coded(concept)]);
    item
}

fn container(relationship: &str, concept: Code, template_id: Option<&str>, children: Vec<InMemDicomObject>) -> InMemDicomObject {
    let mut c = item(relationship, "CONTAINER", concept);
    put_text(&mut c, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    if let Some(id) = template_id {
        put_sequence(&mut c, tags::CONTENT_TEMPLATE_SEQUENCE, vec![template(id)]);
    }
    put_sequence(&mut c, tags::CONTENT_SEQUENCE, children);
    c
}

fn code(relationship: &str, concept: Code, value: InMemDicomObject) -> InMemDicomObject {
    let mut c = item(relationship, "CODE", concept);
    put_sequence(&mut c, tags::CONCEPT_CODE_SEQUENCE, vec![value]);
    c
}

fn text(relationship: &str, concept: Code, value: &str) -> InMemDicomObject {
    let mut t = item(relationship, "TEXT", concept);
    put_text(&mut t, tags::TEXT_VALUE, VR::UT, value);
    t
}

fn uidref(relationship: &str, concept: Code, uid: &str) -> InMemDicomObject {
    let mut u = item(relationship, "UIDREF", concept);
    put_text(&mut u, tags::UID, VR::UI, uid);
    u
}

/// An IMAGE item; the image library's entries and SELECTED FROM sources have no concept name.
fn image(relationship: &str, concept: Option<Code>, reference: InMemDicomObject) -> InMemDicomObject {
    let mut i = match concept {
        Some(concept) => item(relationship, "IMAGE", concept),
        None => {
            let mut i = InMemDicomObject::new_empty();
            put_text(&mut i, tags::RELATIONSHIP_TYPE, VR::CS, relationship);
            put_text(&mut i, tags::VALUE_TYPE, VR::CS, "IMAGE");
            i
        }
    };
    put_sequence(&mut i, tags::REFERENCED_SOP_SEQUENCE, vec![reference]);
    i
}

fn num(m: Measurement) -> InMemDicomObject {
    let mut value = InMemDicomObject::new_empty();
    put_ds(&mut value, tags::NUMERIC_VALUE, &[m.value]);
    put_sequence(&mut value, tags::MEASUREMENT_UNITS_CODE_SEQUENCE, vec![coded(m.unit)]);
    let mut n = item(CONTAINS, "NUM", m.concept);
    put_sequence(&mut n, tags::MEASURED_VALUE_SEQUENCE, vec![value]);
    if let Some((concept, value)) = m.modifier {
        put_sequence(&mut n, tags::CONTENT_SEQUENCE, vec![code(HAS_CONCEPT_MOD, concept, value)]);
    }
    n
}
