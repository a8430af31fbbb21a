//! The DICOM objects pulmo makes from a study's findings (SEG, TID 1500 SR, summary page, key
//! images), built alike by `pulmo analyze` and by the node's analyze profile, which only
//! differ in where the objects go.

use pulmo_dicom::write::kos::{DocumentTitle, KeyObjectSelection, ReferencedInstance, KEY_OBJECT_SELECTION_STORAGE};
use pulmo_dicom::write::sc::SECONDARY_CAPTURE_STORAGE;
use pulmo_dicom::write::seg::SEGMENTATION_STORAGE;
use pulmo_dicom::write::sr::COMPREHENSIVE_3D_SR_STORAGE;
use pulmo_dicom::write::{
    Equipment, NewInstance, NoduleReport, NoduleSegmentation, RgbImage, SecondaryCapture, SegmentationRef, StudyContext, WriteError,
    KEY_IMAGES_SERIES_NUMBER, SEG_SERIES_NUMBER, SR_SERIES_NUMBER, SUMMARY_SERIES_NUMBER,
};
use pulmo_findings::StudyFindings;
use pulmo_store::Timestamp;
use pulmo_volume::Volume;

/// One encoded Part-10 object and the UIDs it is filed under.
pub struct OutputObject {
    /// File name `pulmo analyze` gives it.
    pub file_name: &'static str,
    pub sop_class_uid: &'static str,
    pub series_uid: String,
    pub sop_instance_uid: String,
    pub bytes: Vec<u8>,
}

impl OutputObject {
    fn reference(&self) -> ReferencedInstance {
        ReferencedInstance {
            series_uid: self.series_uid.clone(),
            sop_class_uid: self.sop_class_uid.into(),
            sop_instance_uid: self.sop_instance_uid.clone(),
        }
    }
}

/// Everything that goes back to the PACS for one analysis: the SEG (only with nodules: a SEG
/// needs a segment), the SR referencing it, the summary page, and the key images (each
/// nodule's key slice, the SEG, the SR and the page). A CT that had to be resampled has no
/// source image under its grid's slices for a SEG or SR to point at: it gets the page and the
/// key images only (its findings' notes say it was resampled). `seed` fixes the UIDs: the
/// same seed replaces, in a PACS, what an earlier run sent.
pub fn study_objects(findings: &StudyFindings, ct: &Volume<i16>, study: &StudyContext, seed: &str) -> Result<Vec<OutputObject>, WriteError> {
    let (date, time) = Timestamp::now().dicom_date_time();
    let new = |kind: &str, series_number| NewInstance::derived(&format!("{seed}/{kind}"), series_number, &date, &time);
    let equipment = Equipment::pulmo(&host_name());
    let on_source_slices = !findings.source.slices.is_empty();
    let mut objects = Vec::new();
    let mut segmentation = None;
    if on_source_slices && !findings.nodules.is_empty() {
        let instance = new("seg", SEG_SERIES_NUMBER);
        let bytes = NoduleSegmentation { findings, study, instance: &instance, equipment: &equipment }.to_part10()?;
        segmentation = Some(SegmentationRef { series_uid: instance.series_uid.clone(), sop_instance_uid: instance.sop_instance_uid.clone() });
        objects.push(object("seg.dcm", SEGMENTATION_STORAGE, instance, bytes));
    }
    if on_source_slices {
        let instance = new("sr", SR_SERIES_NUMBER);
        let report = NoduleReport { findings, study, instance: &instance, equipment: &equipment, segmentation: segmentation.as_ref() };
        let bytes = report.to_part10()?;
        objects.push(object("sr.dcm", COMPREHENSIVE_3D_SR_STORAGE, instance, bytes));
    }

    let page = pulmo_render::summary_page(findings, ct);
    let instance = new("summary", SUMMARY_SERIES_NUMBER);
    let image = RgbImage { width: page.width, height: page.height, rgb: &page.rgb };
    let description = "pulmo lung nodules (summary page)";
    let bytes = SecondaryCapture { study, instance: &instance, equipment: &equipment, series_description: description, image }.to_part10()?;
    objects.push(object("summary.dcm", SECONDARY_CAPTURE_STORAGE, instance, bytes));

    let key_images = key_images(findings, study, new("key-images", KEY_IMAGES_SERIES_NUMBER), &equipment, &objects)?;
    objects.push(key_images);
    Ok(objects)
}

/// A Key Object Selection "Of Interest": each nodule's key slice, then pulmo's objects.
fn key_images(
    findings: &StudyFindings,
    study: &StudyContext,
    instance: NewInstance,
    equipment: &Equipment,
    objects: &[OutputObject],
) -> Result<OutputObject, WriteError> {
    let source = &findings.source;
    let slices: Vec<usize> = findings.nodules.iter().map(|n| n.key_slice(&source.geometry, source.dims[0])).collect();
    let mut references: Vec<ReferencedInstance> = Vec::new();
    for slice in slices.iter().filter_map(|&z| source.slices.get(z)) {
        let reference = ReferencedInstance {
            series_uid: source.series_uid.clone(),
            sop_class_uid: slice.sop_class_uid.clone(),
            sop_instance_uid: slice.sop_instance_uid.clone(),
        };
        if !references.contains(&reference) {
            references.push(reference);
        }
    }
    references.extend(objects.iter().map(OutputObject::reference));
    let description = match findings.nodules.len() {
        0 => "pulmo: no lung nodules; report and summary page".to_string(),
        n => format!("pulmo: key slices of {n} lung nodule(s), their segmentation, report and summary page"),
    };
    let kos = KeyObjectSelection {
        study: study.clone(),
        series_uid: instance.series_uid.clone(),
        sop_instance_uid: instance.sop_instance_uid.clone(),
        series_number: instance.series_number,
        instance_number: instance.instance_number,
        content_datetime: (instance.content_date.clone(), instance.content_time.clone()),
        title: DocumentTitle::OfInterest,
        description: Some(description),
        references,
        manufacturer: equipment.manufacturer.clone(),
        software_version: equipment.software_version.clone(),
    };
    let bytes = kos.to_part10()?;
    Ok(object("key-images.dcm", KEY_OBJECT_SELECTION_STORAGE, instance, bytes))
}

fn object(file_name: &'static str, sop_class_uid: &'static str, instance: NewInstance, bytes: Vec<u8>) -> OutputObject {
    OutputObject { file_name, sop_class_uid, series_uid: instance.series_uid, sop_instance_uid: instance.sop_instance_uid, bytes }
}

/// This machine's name: the installation the objects' DeviceSerialNumber names.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
