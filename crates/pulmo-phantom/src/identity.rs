//! StudyIdentity: who and when a synthetic study is (patient, dates, accession) and its UIDs,
//! all derived deterministically so the same inputs give the same DICOM identity.

use serde::{Deserialize, Serialize};

use pulmo_clinical::dates;
use crate::seeds;
use crate::spec::PatientInfo;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyIdentity {
    pub patient: PatientInfo,
    /// PatientAge on the study date, e.g. "062Y".
    pub patient_age: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub frame_of_reference_uid: String,
    /// "YYYYMMDD" / "HHMMSS".
    pub study_date: String,
    pub study_time: String,
    pub study_id: String,
    pub accession_number: String,
    pub study_description: String,
    pub series_number: u32,
    pub series_description: String,
    /// SOPInstanceUID of each slice, in slice index order (file CT000001.dcm is index 0).
    pub sop_instance_uids: Vec<String>,
}

impl StudyIdentity {
    /// UIDs come from `uid_seed` and `label`, so a baseline, its follow-ups and insertions
    /// never collide while each stays reproducible.
    pub(crate) fn new(
        uid_seed: u64,
        label: &str,
        patient: &PatientInfo,
        study_date: &str,
        study_time: &str,
        description: &str,
        slices: usize,
    ) -> StudyIdentity {
        let uid = |what: &str| seeds::uid(uid_seed, &format!("{label}/{what}"));
        let series_instance_uid = uid("series");
        let sop_instance_uids = (0..slices).map(|k| seeds::uid(uid_seed, &format!("{label}/sop/{k}"))).collect();
        let number = seeds::sub_seed(uid_seed, &format!("{label}/accession")) % 100_000_000;
        StudyIdentity {
            patient: patient.clone(),
            patient_age: dates::patient_age(&patient.birth_date, study_date).unwrap_or_default(),
            study_instance_uid: uid("study"),
            frame_of_reference_uid: uid("frame-of-reference"),
            series_instance_uid,
            study_date: study_date.to_string(),
            study_time: study_time.to_string(),
            study_id: format!("{}", number % 10_000),
            accession_number: format!("PH{number:08}"),
            study_description: description.to_string(),
            series_number: 2,
            series_description: "pulmo phantom chest CT".to_string(),
            sop_instance_uids,
        }
    }
}
