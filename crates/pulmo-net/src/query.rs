//! Study Root C-FIND SCU: a patient's studies (STUDY level) and a study's series (SERIES level),
//! each match read into a typed struct; failure and cancel statuses are typed errors.

use std::fmt;
use std::time::Duration;

use dicom_dictionary_std::uids;
use tracing::{debug, warn};

use crate::assembler::Message;
use crate::dimse::{field, status_kind, tag, StatusKind};
use crate::identifier::{self as id, Received, Request};
use crate::scu::{Operation, Peer, QrRequest, ScuOptions};
use crate::NetError;
use pulmo_dicom::valid_uid;

/// Matches are a few hundred bytes; a larger identifier is refused, not kept.
const MAX_IDENTIFIER_BYTES: u64 = 1 << 20;

/// The studies of one patient, optionally of one modality and up to a date.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StudyQuery {
    /// Matched exactly: wildcards are refused, they would return other patients' studies.
    pub patient_id: String,
    pub issuer_of_patient_id: Option<String>,
    /// ModalitiesInStudy, e.g. "CT". A PACS that cannot match it may return other modalities:
    /// check `StudyMatch::modalities_in_study`.
    pub modality: Option<String>,
    /// StudyDate upper bound, inclusive: "YYYYMMDD" or the range form "-YYYYMMDD".
    pub before_date: Option<String>,
}

/// One study the PACS has (return keys it left empty are `None`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StudyMatch {
    pub study_instance_uid: String,
    /// YYYYMMDD.
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub modalities_in_study: Vec<String>,
    pub study_description: Option<String>,
    pub accession_number: Option<String>,
    pub patient_id: Option<String>,
    pub issuer_of_patient_id: Option<String>,
    pub number_of_study_related_instances: Option<u32>,
}

/// One series of a study.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesMatch {
    pub series_uid: String,
    pub modality: Option<String>,
    pub series_number: Option<i32>,
    pub number_of_series_related_instances: Option<u32>,
    pub series_description: Option<String>,
}

// Debug leaves out patient identifiers and accession numbers: these structs end up in logs.
impl fmt::Debug for StudyQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StudyQuery")
            .field("modality", &self.modality)
            .field("before_date", &self.before_date)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for StudyMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StudyMatch")
            .field("study_instance_uid", &self.study_instance_uid)
            .field("study_date", &self.study_date)
            .field("study_time", &self.study_time)
            .field("modalities_in_study", &self.modalities_in_study)
            .field("study_description", &self.study_description)
            .field(
                "number_of_study_related_instances",
                &self.number_of_study_related_instances,
            )
            .finish_non_exhaustive()
    }
}

/// C-FIND at STUDY level: every study of `query.patient_id` the PACS matches, in its order.
/// `timeout` bounds the connection and each wait for a response.
pub async fn find_studies(
    peer: &Peer,
    calling_ae: &str,
    query: &StudyQuery,
    timeout: Duration,
) -> Result<Vec<StudyMatch>, NetError> {
    let identifier = query.identifier()?;
    find(peer, calling_ae, identifier, timeout, StudyMatch::read).await
}

/// C-FIND at SERIES level: the series of `study_uid`, e.g. to choose the CT series to move.
pub async fn find_series(
    peer: &Peer,
    calling_ae: &str,
    study_uid: &str,
    timeout: Duration,
) -> Result<Vec<SeriesMatch>, NetError> {
    if !valid_uid(study_uid) {
        return Err(NetError::InvalidInput(format!(
            "invalid Study Instance UID {study_uid:?}"
        )));
    }
    let identifier = Request::new("SERIES")
        .key(id::STUDY_INSTANCE_UID, Some(study_uid))
        .key(id::SERIES_INSTANCE_UID, None)
        .key(id::MODALITY, None)
        .key(id::SERIES_NUMBER, None)
        .key(id::SERIES_DESCRIPTION, None)
        .key(id::NUMBER_OF_SERIES_RELATED_INSTANCES, None);
    find(peer, calling_ae, identifier, timeout, SeriesMatch::read).await
}

impl StudyQuery {
    /// The STUDY-level identifier: the matching keys given, every other key of `StudyMatch`
    /// as an empty return key.
    fn identifier(&self) -> Result<Request, NetError> {
        let invalid = |what: String| NetError::InvalidInput(format!("study query: {what}"));
        check_lo(id::PATIENT_ID, Some(&self.patient_id)).map_err(invalid)?;
        check_lo(id::ISSUER_OF_PATIENT_ID, self.issuer_of_patient_id.as_deref()).map_err(invalid)?;
        check_modality(self.modality.as_deref()).map_err(invalid)?;
        let date = date_bound(self.before_date.as_deref()).map_err(invalid)?;
        Ok(Request::new("STUDY")
            .key(id::PATIENT_ID, Some(&self.patient_id))
            .key(id::ISSUER_OF_PATIENT_ID, self.issuer_of_patient_id.as_deref())
            .key(id::MODALITIES_IN_STUDY, self.modality.as_deref())
            .key(id::STUDY_DATE, date.as_deref())
            .key(id::STUDY_INSTANCE_UID, None)
            .key(id::STUDY_TIME, None)
            .key(id::STUDY_DESCRIPTION, None)
            .key(id::ACCESSION_NUMBER, None)
            .key(id::NUMBER_OF_STUDY_RELATED_INSTANCES, None))
    }
}

/// A single-valued LO matching key: no wildcard, no backslash, no control characters.
fn check_lo(key: id::Key, value: Option<&str>) -> Result<(), String> {
    let Some(v) = value else { return Ok(()) };
    if v.trim().is_empty() {
        return Err(format!("{key} is empty (it would match every patient)"));
    }
    if v.chars().count() > 64 || v.chars().any(|c| c.is_control() || matches!(c, '*' | '?' | '\\')) {
        return Err(format!(
            "{key} must be at most 64 characters without wildcards, backslashes or controls"
        ));
    }
    Ok(())
}

/// Modality code(s): CS characters, values of at most 16, several separated by backslashes.
fn check_modality(value: Option<&str>) -> Result<(), String> {
    let Some(v) = value else { return Ok(()) };
    let valid_code = |code: &str| {
        !code.is_empty()
            && code.len() <= 16
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    };
    if !v.split('\\').all(valid_code) {
        return Err(format!("modality {v:?} is not a modality code (e.g. CT)"));
    }
    Ok(())
}

/// "YYYYMMDD" or "-YYYYMMDD" as the StudyDate range "-YYYYMMDD" (studies on or before).
fn date_bound(value: Option<&str>) -> Result<Option<String>, String> {
    let Some(v) = value else { return Ok(None) };
    let date = v.strip_prefix('-').unwrap_or(v);
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("before_date {v:?} is not YYYYMMDD or -YYYYMMDD"));
    }
    Ok(Some(format!("-{date}")))
}

impl StudyMatch {
    fn read(r: &Received) -> Result<StudyMatch, String> {
        Ok(StudyMatch {
            study_instance_uid: r.required_uid(id::STUDY_INSTANCE_UID)?,
            study_date: r.date(id::STUDY_DATE)?,
            study_time: r.time(id::STUDY_TIME)?,
            modalities_in_study: r.texts(id::MODALITIES_IN_STUDY)?,
            study_description: r.text(id::STUDY_DESCRIPTION)?,
            accession_number: r.text(id::ACCESSION_NUMBER)?,
            patient_id: r.text(id::PATIENT_ID)?,
            issuer_of_patient_id: r.text(id::ISSUER_OF_PATIENT_ID)?,
            number_of_study_related_instances: r.count(id::NUMBER_OF_STUDY_RELATED_INSTANCES)?,
        })
    }
}

impl SeriesMatch {
    fn read(r: &Received) -> Result<SeriesMatch, String> {
        Ok(SeriesMatch {
            series_uid: r.required_uid(id::SERIES_INSTANCE_UID)?,
            modality: r.text(id::MODALITY)?,
            series_number: r.integer(id::SERIES_NUMBER)?,
            number_of_series_related_instances: r.count(id::NUMBER_OF_SERIES_RELATED_INSTANCES)?,
            series_description: r.text(id::SERIES_DESCRIPTION)?,
        })
    }
}

/// One Study Root C-FIND on its own association; `read` turns each match into a `T`.
async fn find<T>(
    peer: &Peer,
    calling_ae: &str,
    identifier: Request,
    timeout: Duration,
    read: fn(&Received) -> Result<T, String>,
) -> Result<Vec<T>, NetError> {
    let request = QrRequest {
        request_field: field::C_FIND_RQ,
        sop_class_uid: uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND,
        move_destination: None,
        identifier,
        storage: Vec::new(),
        max_data: MAX_IDENTIFIER_BYTES,
    };
    let mut op = Operation::start(peer, calling_ae, request, &ScuOptions::with_timeout(timeout)).await?;
    let result = collect(&mut op, read).await;
    op.end(result).await
}

/// Reads responses until the final one: pending ones carry the matches.
async fn collect<T>(op: &mut Operation, read: fn(&Received) -> Result<T, String>) -> Result<Vec<T>, NetError> {
    let mut matches = Vec::new();
    loop {
        let (status, message) = op.next_response().await?;
        match status_kind(status) {
            StatusKind::Pending => matches.push(read_match(op, message, matches.len() + 1, read)?),
            StatusKind::Success => break,
            // C-FIND defines no warning; a peer sending one still ended the matches.
            StatusKind::Warning => {
                warn!(
                    peer = op.peer(),
                    status = format_args!("0x{status:04X}"),
                    "C-FIND ended with a warning"
                );
                break;
            }
            StatusKind::Cancel | StatusKind::Failure => {
                return Err(NetError::OperationFailed {
                    peer: op.peer().to_string(),
                    operation: "C-FIND",
                    status,
                    comment: message.command.text(tag::ERROR_COMMENT),
                    report: None,
                });
            }
        }
    }
    debug!(peer = op.peer(), matches = matches.len(), "C-FIND complete");
    Ok(matches)
}

/// The identifier of the `n`th pending response, read; errors name the match and field.
fn read_match<T>(
    op: &Operation,
    message: Message,
    n: usize,
    read: fn(&Received) -> Result<T, String>,
) -> Result<T, NetError> {
    if message.oversized {
        return Err(op.protocol(format!("C-FIND match {n} is larger than {MAX_IDENTIFIER_BYTES} bytes")));
    }
    let Some(data) = message.data else {
        return Err(op.protocol(format!("pending C-FIND response {n} without an identifier")));
    };
    Received::decode(&data, op.transfer_syntax())
        .and_then(|identifier| read(&identifier))
        .map_err(|e| op.protocol(format!("C-FIND match {n}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> StudyQuery {
        StudyQuery {
            patient_id: "P-1".into(),
            ..StudyQuery::default()
        }
    }

    #[test]
    fn query_keys_are_checked() {
        assert!(query().identifier().is_ok());
        for bad_id in ["", "  ", "P*", "P?", "A\\B", "P\n"] {
            let q = StudyQuery {
                patient_id: bad_id.into(),
                ..query()
            };
            assert!(matches!(q.identifier(), Err(NetError::InvalidInput(_))), "{bad_id:?}");
        }
        for (modality, ok) in [
            ("CT", true),
            ("CT\\PT", true),
            ("ct", false),
            ("C*", false),
            ("", false),
        ] {
            let q = StudyQuery {
                modality: Some(modality.into()),
                ..query()
            };
            assert_eq!(q.identifier().is_ok(), ok, "{modality:?}");
        }
        assert_eq!(date_bound(Some("20240131")).unwrap().as_deref(), Some("-20240131"));
        assert_eq!(date_bound(Some("-20240131")).unwrap().as_deref(), Some("-20240131"));
        for bad in ["2024-01-31", "20240131-", "--20240131", "2024013"] {
            assert!(date_bound(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_patient_identifiers() {
        let m = StudyMatch {
            study_instance_uid: "1.2.3".into(),
            patient_id: Some("SECRET-ID".into()),
            accession_number: Some("ACC-SECRET".into()),
            ..StudyMatch::default()
        };
        let text = format!(
            "{m:?} {:?}",
            StudyQuery {
                patient_id: "SECRET-ID".into(),
                ..query()
            }
        );
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("1.2.3"));
    }
}
