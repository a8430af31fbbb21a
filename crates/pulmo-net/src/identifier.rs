//! Query/retrieve identifiers: building the data set a C-FIND/C-MOVE/C-GET request carries, and
//! reading the peer's, in the negotiated transfer syntax, with errors naming the field.

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use pulmo_dicom::valid_uid;

/// An attribute used as a query key or return key: tag, VR and name (for messages).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key(pub Tag, pub VR, pub &'static str);

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:04X},{:04X})", self.2, self.0.group(), self.0.element())
    }
}

pub(crate) const QUERY_RETRIEVE_LEVEL: Key = Key(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "QueryRetrieveLevel");
pub(crate) const SPECIFIC_CHARACTER_SET: Key = Key(tags::SPECIFIC_CHARACTER_SET, VR::CS, "SpecificCharacterSet");
pub(crate) const PATIENT_ID: Key = Key(tags::PATIENT_ID, VR::LO, "PatientID");
pub(crate) const ISSUER_OF_PATIENT_ID: Key = Key(tags::ISSUER_OF_PATIENT_ID, VR::LO, "IssuerOfPatientID");
pub(crate) const STUDY_INSTANCE_UID: Key = Key(tags::STUDY_INSTANCE_UID, VR::UI, "StudyInstanceUID");
pub(crate) const STUDY_DATE: Key = Key(tags::STUDY_DATE, VR::DA, "StudyDate");
pub(crate) const STUDY_TIME: Key = Key(tags::STUDY_TIME, VR::TM, "StudyTime");
pub(crate) const MODALITIES_IN_STUDY: Key = Key(tags::MODALITIES_IN_STUDY, VR::CS, "ModalitiesInStudy");
pub(crate) const STUDY_DESCRIPTION: Key = Key(tags::STUDY_DESCRIPTION, VR::LO, "StudyDescription");
pub(crate) const ACCESSION_NUMBER: Key = Key(tags::ACCESSION_NUMBER, VR::SH, "AccessionNumber");
pub(crate) const NUMBER_OF_STUDY_RELATED_INSTANCES: Key = Key(
    tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
    VR::IS,
    "NumberOfStudyRelatedInstances",
);
pub(crate) const SERIES_INSTANCE_UID: Key = Key(tags::SERIES_INSTANCE_UID, VR::UI, "SeriesInstanceUID");
pub(crate) const MODALITY: Key = Key(tags::MODALITY, VR::CS, "Modality");
pub(crate) const SERIES_NUMBER: Key = Key(tags::SERIES_NUMBER, VR::IS, "SeriesNumber");
pub(crate) const SERIES_DESCRIPTION: Key = Key(tags::SERIES_DESCRIPTION, VR::LO, "SeriesDescription");
pub(crate) const NUMBER_OF_SERIES_RELATED_INSTANCES: Key = Key(
    tags::NUMBER_OF_SERIES_RELATED_INSTANCES,
    VR::IS,
    "NumberOfSeriesRelatedInstances",
);

/// The identifier of a request: the level, then matching keys (with a value) and return keys
/// (empty, asking the peer to fill them in).
pub(crate) struct Request {
    object: InMemDicomObject,
    non_ascii: bool,
}

impl Request {
    pub fn new(level: &str) -> Self {
        let mut object = InMemDicomObject::new_empty();
        object.put_str(QUERY_RETRIEVE_LEVEL.0, QUERY_RETRIEVE_LEVEL.1, level);
        Request {
            object,
            non_ascii: false,
        }
    }

    /// A matching key with `value`, or a return key when `None`.
    pub fn key(mut self, key: Key, value: Option<&str>) -> Self {
        match value {
            Some(v) => {
                self.non_ascii |= !v.is_ascii();
                self.object.put_str(key.0, key.1, v);
            }
            None => {
                self.object.put(DataElement::new(key.0, key.1, PrimitiveValue::Empty));
            }
        }
        self
    }

    /// The data set in `ts_uid` (one of the uncompressed syntaxes we propose). Non-ASCII
    /// values are sent as UTF-8, declared so: every PACS that can match them reads ISO_IR 192.
    pub fn encode(mut self, ts_uid: &str) -> Result<Vec<u8>, String> {
        if self.non_ascii {
            self.object
                .put_str(SPECIFIC_CHARACTER_SET.0, SPECIFIC_CHARACTER_SET.1, "ISO_IR 192");
        }
        let ts = TransferSyntaxRegistry
            .get(ts_uid)
            .ok_or_else(|| format!("unknown transfer syntax {ts_uid}"))?;
        let mut out = Vec::new();
        self.object
            .write_dataset_with_ts(&mut out, ts)
            .map_err(|e| format!("cannot encode the identifier: {e}"))?;
        Ok(out)
    }
}

/// An identifier received from the peer (a C-FIND match, a retrieve's final identifier).
pub(crate) struct Received(InMemDicomObject);

impl Received {
    pub fn decode(bytes: &[u8], ts_uid: &str) -> Result<Self, String> {
        // The cheap walk checks every top-level length against the bytes before dicom-object
        // sizes buffers by them: a bogus 4 GiB length is an error, not an allocation.
        pulmo_dicom::wire::read_filing_attributes(bytes, ts_uid).map_err(|e| format!("malformed identifier: {e}"))?;
        let ts = TransferSyntaxRegistry
            .get(ts_uid)
            .ok_or_else(|| format!("unknown transfer syntax {ts_uid}"))?;
        InMemDicomObject::read_dataset_with_ts(bytes, ts)
            .map(Received)
            .map_err(|e| format!("malformed identifier: {e}"))
    }

    /// The value as text, trimmed; `None` when absent or empty.
    pub fn text(&self, key: Key) -> Result<Option<String>, String> {
        let Some(element) = self.0.get(key.0) else {
            return Ok(None);
        };
        let text = element.to_str().map_err(|_| format!("{key} is not a text value"))?;
        let text = text.trim_matches([' ', '\0']);
        Ok((!text.is_empty()).then(|| text.to_string()))
    }

    /// All values (backslash-separated), trimmed, empty ones left out.
    pub fn texts(&self, key: Key) -> Result<Vec<String>, String> {
        let Some(element) = self.0.get(key.0) else {
            return Ok(Vec::new());
        };
        let values = element
            .to_multi_str()
            .map_err(|_| format!("{key} is not a text value"))?;
        Ok(values
            .iter()
            .flat_map(|v| v.split('\\'))
            .map(|v| v.trim_matches([' ', '\0']))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// A UID the match cannot do without.
    pub fn required_uid(&self, key: Key) -> Result<String, String> {
        let uid = self.text(key)?.ok_or_else(|| format!("{key} is missing"))?;
        if !valid_uid(&uid) {
            return Err(format!("{key} {uid:?} is not a valid UID"));
        }
        Ok(uid)
    }

    /// A DA value, YYYYMMDD.
    pub fn date(&self, key: Key) -> Result<Option<String>, String> {
        let date = self.text(key)?;
        match &date {
            Some(d) if !(d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit())) => {
                Err(format!("{key} {d:?} is not a date (YYYYMMDD)"))
            }
            _ => Ok(date),
        }
    }

    /// A TM value, HHMMSS.FFFFFF (or a prefix of it; the colons of old ACR-NEMA times pass).
    pub fn time(&self, key: Key) -> Result<Option<String>, String> {
        let time = self.text(key)?;
        match &time {
            Some(t) if !t.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b':') => {
                Err(format!("{key} {t:?} is not a time"))
            }
            _ => Ok(time),
        }
    }

    /// An IS value that counts something.
    pub fn count(&self, key: Key) -> Result<Option<u32>, String> {
        self.text(key)?
            .map(|v| {
                v.trim_start_matches('+')
                    .parse::<u32>()
                    .map_err(|_| format!("{key} {v:?} is not a count"))
            })
            .transpose()
    }

    /// An IS value.
    pub fn integer(&self, key: Key) -> Result<Option<i32>, String> {
        self.text(key)?
            .map(|v| v.parse::<i32>().map_err(|_| format!("{key} {v:?} is not an integer")))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ELE: &str = "1.2.840.10008.1.2.1";
    const ILE: &str = "1.2.840.10008.1.2";

    fn request() -> Request {
        Request::new("STUDY")
            .key(PATIENT_ID, Some("P-1"))
            .key(STUDY_DATE, Some("-20240101"))
            .key(STUDY_INSTANCE_UID, None)
            .key(NUMBER_OF_STUDY_RELATED_INSTANCES, None)
    }

    #[test]
    fn a_request_reads_back_with_values_and_empty_return_keys() {
        for ts in [ELE, ILE] {
            let bytes = request().encode(ts).unwrap();
            let r = Received::decode(&bytes, ts).unwrap();
            assert_eq!(r.text(QUERY_RETRIEVE_LEVEL).unwrap().as_deref(), Some("STUDY"));
            assert_eq!(r.text(PATIENT_ID).unwrap().as_deref(), Some("P-1"));
            assert_eq!(r.text(STUDY_DATE).unwrap().as_deref(), Some("-20240101"));
            assert_eq!(r.text(STUDY_INSTANCE_UID).unwrap(), None);
            assert!(r.0.get(tags::STUDY_INSTANCE_UID).is_some(), "return key present, empty");
            assert_eq!(r.count(NUMBER_OF_STUDY_RELATED_INSTANCES).unwrap(), None);
            assert_eq!(r.text(SPECIFIC_CHARACTER_SET).unwrap(), None);
        }
    }

    #[test]
    fn non_ascii_values_declare_utf8() {
        let bytes = Request::new("STUDY")
            .key(PATIENT_ID, Some("Müller"))
            .encode(ELE)
            .unwrap();
        let r = Received::decode(&bytes, ELE).unwrap();
        assert_eq!(r.text(SPECIFIC_CHARACTER_SET).unwrap().as_deref(), Some("ISO_IR 192"));
        assert_eq!(r.text(PATIENT_ID).unwrap().as_deref(), Some("Müller"));
    }

    fn received(pairs: &[(Key, &str)]) -> Received {
        let mut o = InMemDicomObject::new_empty();
        for (k, v) in pairs {
            o.put_str(k.0, k.1, *v);
        }
        Received(o)
    }

    #[test]
    fn malformed_values_name_the_field() {
        let r = received(&[
            (STUDY_DATE, "2024-01-01"),
            (STUDY_TIME, "10h30"),
            (NUMBER_OF_STUDY_RELATED_INSTANCES, "-3"),
            (SERIES_NUMBER, "x"),
            (STUDY_INSTANCE_UID, "1.02.3"),
            (MODALITIES_IN_STUDY, "CT\\ \\SEG"),
        ]);
        assert!(r.date(STUDY_DATE).unwrap_err().contains("StudyDate (0008,0020)"));
        assert!(r.time(STUDY_TIME).unwrap_err().contains("StudyTime"));
        assert!(r
            .count(NUMBER_OF_STUDY_RELATED_INSTANCES)
            .unwrap_err()
            .contains("(0020,1208)"));
        assert!(r.integer(SERIES_NUMBER).unwrap_err().contains("SeriesNumber"));
        assert!(r
            .required_uid(STUDY_INSTANCE_UID)
            .unwrap_err()
            .contains("not a valid UID"));
        assert!(r.required_uid(SERIES_INSTANCE_UID).unwrap_err().contains("missing"));
        assert_eq!(r.texts(MODALITIES_IN_STUDY).unwrap(), vec!["CT", "SEG"]);
        let ok = received(&[(STUDY_DATE, "20240101 "), (NUMBER_OF_STUDY_RELATED_INSTANCES, " 12")]);
        assert_eq!(ok.date(STUDY_DATE).unwrap().as_deref(), Some("20240101"));
        assert_eq!(ok.count(NUMBER_OF_STUDY_RELATED_INSTANCES).unwrap(), Some(12));
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        let good = request().encode(ELE).unwrap();
        for cut in 0..good.len() {
            let _ = Received::decode(&good[..cut], ELE);
            let _ = Received::decode(&good[..cut], ILE);
        }
        // An element claiming 4 GiB.
        let mut huge = good.clone();
        huge.extend_from_slice(&[0x08, 0x00, 0x30, 0x10, b'U', b'T', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF]);
        assert!(Received::decode(&huge, ELE).is_err());
        let junk: Vec<u8> = (0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let _ = Received::decode(&junk, ELE);
        let _ = Received::decode(&junk, ILE);
        assert!(Received::decode(&good, "1.2.3.4").is_err());
    }
}
