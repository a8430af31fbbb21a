//! The DICOM objects pulmo makes from a study's findings (so far the SEG), built alike by
//! `pulmo analyze` and by the node's analyze profile, which only differ in where they go.

use pulmo_dicom::write::seg::SEGMENTATION_STORAGE;
use pulmo_dicom::write::{Equipment, NewInstance, NoduleSegmentation, StudyContext, WriteError, SEG_SERIES_NUMBER};
use pulmo_findings::StudyFindings;
use pulmo_store::Timestamp;

/// One encoded Part-10 object and the UIDs it is filed under.
pub struct OutputObject {
    pub sop_class_uid: &'static str,
    pub series_uid: String,
    pub sop_instance_uid: String,
    pub bytes: Vec<u8>,
}

/// The SEG of the findings' nodules; `None` without nodules (a SEG needs a segment). `seed`
/// fixes the UIDs: the same seed replaces, in a PACS, what an earlier run sent.
pub fn segmentation(findings: &StudyFindings, study: &StudyContext, seed: &str) -> Result<Option<OutputObject>, WriteError> {
    if findings.nodules.is_empty() {
        return Ok(None);
    }
    let (date, time) = Timestamp::now().dicom_date_time();
    let instance = NewInstance::derived(&format!("{seed}/seg"), SEG_SERIES_NUMBER, &date, &time);
    let equipment = Equipment::pulmo(&host_name());
    let bytes = NoduleSegmentation { findings, study, instance: &instance, equipment: &equipment }.to_part10()?;
    Ok(Some(OutputObject {
        sop_class_uid: SEGMENTATION_STORAGE,
        series_uid: instance.series_uid,
        sop_instance_uid: instance.sop_instance_uid,
        bytes,
    }))
}

/// This machine's name: the installation the objects' DeviceSerialNumber names.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
