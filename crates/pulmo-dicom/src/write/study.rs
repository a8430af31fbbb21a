//! The patient and study an output object belongs to, copied from the source study: the
//! Patient and General Study modules that every object pulmo writes begins with.

use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::{check_text, check_uid, put_text, WriteError};
use crate::attrs::string;
use crate::PatientStudy;

/// Patient and General Study attributes copied from the source study. `None` (or an empty
/// string) is written as an empty type-2 value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StudyContext {
    pub patient_name: Option<String>,
    pub patient_id: Option<String>,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
    pub study_uid: String,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub accession_number: Option<String>,
    pub referring_physician: Option<String>,
    pub study_id: Option<String>,
}

impl StudyContext {
    /// Reads the context from any instance of the study.
    pub fn from_dataset(obj: &InMemDicomObject) -> Option<StudyContext> {
        Some(StudyContext {
            patient_name: string(obj, tags::PATIENT_NAME),
            patient_id: string(obj, tags::PATIENT_ID),
            patient_birth_date: string(obj, tags::PATIENT_BIRTH_DATE),
            patient_sex: string(obj, tags::PATIENT_SEX),
            study_uid: string(obj, tags::STUDY_INSTANCE_UID)?,
            study_date: string(obj, tags::STUDY_DATE),
            study_time: string(obj, tags::STUDY_TIME),
            accession_number: string(obj, tags::ACCESSION_NUMBER),
            referring_physician: string(obj, tags::REFERRING_PHYSICIAN_NAME),
            study_id: string(obj, tags::STUDY_ID),
        })
    }

    /// Checks every value against its VR, naming the field at fault (`study.…`).
    pub fn check(&self) -> Result<(), WriteError> {
        check_uid("study.study_uid", &self.study_uid)?;
        let texts: [(&str, VR, &Option<String>); 9] = [
            ("study.patient_name", VR::PN, &self.patient_name),
            ("study.patient_id", VR::LO, &self.patient_id),
            ("study.patient_birth_date", VR::DA, &self.patient_birth_date),
            ("study.patient_sex", VR::CS, &self.patient_sex),
            ("study.study_date", VR::DA, &self.study_date),
            ("study.study_time", VR::TM, &self.study_time),
            ("study.accession_number", VR::SH, &self.accession_number),
            ("study.referring_physician", VR::PN, &self.referring_physician),
            ("study.study_id", VR::SH, &self.study_id),
        ];
        for (field, vr, value) in texts {
            let value = value.as_deref().unwrap_or("").trim();
            if !value.is_empty() {
                check_text(field, vr, value)?;
            }
        }
        match self.patient_sex.as_deref().map(str::trim) {
            None | Some("" | "M" | "F" | "O") => Ok(()),
            Some(sex) => Err(WriteError::InvalidValue {
                field: "study.patient_sex".into(),
                value: sex.into(),
                reason: "PatientSex is M, F or O".into(),
            }),
        }
    }

    /// Whether every text is ASCII (else the object declares ISO_IR 192).
    pub(crate) fn is_ascii(&self) -> bool {
        [&self.patient_name, &self.patient_id, &self.accession_number, &self.referring_physician, &self.study_id]
            .into_iter()
            .flatten()
            .all(|v| v.is_ascii())
    }

    /// Writes the Patient and General Study modules (all type 2 but the Study Instance UID).
    pub(crate) fn put(&self, o: &mut InMemDicomObject) {
        let opt = |v: &Option<String>| v.as_deref().unwrap_or("").trim().to_string();
        put_text(o, tags::PATIENT_NAME, VR::PN, &opt(&self.patient_name));
        put_text(o, tags::PATIENT_ID, VR::LO, &opt(&self.patient_id));
        put_text(o, tags::PATIENT_BIRTH_DATE, VR::DA, &opt(&self.patient_birth_date));
        put_text(o, tags::PATIENT_SEX, VR::CS, &opt(&self.patient_sex));
        put_text(o, tags::STUDY_INSTANCE_UID, VR::UI, &self.study_uid);
        put_text(o, tags::STUDY_DATE, VR::DA, &opt(&self.study_date));
        put_text(o, tags::STUDY_TIME, VR::TM, &opt(&self.study_time));
        put_text(o, tags::REFERRING_PHYSICIAN_NAME, VR::PN, &opt(&self.referring_physician));
        put_text(o, tags::STUDY_ID, VR::SH, &opt(&self.study_id));
        put_text(o, tags::ACCESSION_NUMBER, VR::SH, &opt(&self.accession_number));
    }
}

/// From an instance header (which carries neither ReferringPhysicianName nor StudyID).
impl From<&PatientStudy> for StudyContext {
    fn from(p: &PatientStudy) -> Self {
        StudyContext {
            patient_name: p.patient_name.clone(),
            patient_id: p.patient_id.clone(),
            patient_birth_date: p.birth_date.clone(),
            patient_sex: p.sex.clone(),
            study_uid: p.study_uid.clone(),
            study_date: p.study_date.clone(),
            study_time: p.study_time.clone(),
            accession_number: p.accession_number.clone(),
            referring_physician: None,
            study_id: None,
        }
    }
}
