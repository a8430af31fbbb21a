//! The domain types the store reads and writes: states, ids, and the records of studies,
//! instances, jobs, exports and associations. Plain data; all SQL lives in the store modules.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

use crate::spool::SpoolPath;
use crate::time::Timestamp;
use crate::uid::Uid;

/// A state column: stored as its lowercase name, so the database reads well in `sqlite3`.
macro_rules! state_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                match value.as_str()? {
                    $($text => Ok($name::$variant),)+
                    other => Err(FromSqlError::Other(
                        format!("unknown {} {other:?}", stringify!($name)).into(),
                    )),
                }
            }
        }
    };
}

state_enum!(
    /// `receiving` until the quiet time has passed since the last instance, then `complete`.
    /// A new instance for a complete study bumps its version and puts it back to `receiving`.
    StudyState { Receiving => "receiving", Complete => "complete" }
);

state_enum!(
    JobState { Queued => "queued", Running => "running", Done => "done", Failed => "failed" }
);

state_enum!(
    /// `failed` means parked: out of attempts, waiting for an operator (`retry_parked_exports`).
    ExportState { Queued => "queued", Sending => "sending", Done => "done", Failed => "failed" }
);

state_enum!(
    AssociationOutcome {
        Released => "released",
        Aborted => "aborted",
        Rejected => "rejected",
        Error => "error",
    }
);

macro_rules! id_type {
    ($name:ident) => {
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(self.0.into())
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                i64::column_result(value).map($name)
            }
        }
    };
}

id_type!(JobId);
id_type!(ExportId);
id_type!(AssociationId);

/// A Patient ID: PHI. Its `Debug` is redacted so that it cannot reach a log line by accident;
/// use [`PatientId::as_str`] where the value is really needed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PatientId(String);

impl PatientId {
    pub fn new(id: impl Into<String>) -> Self {
        PatientId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PatientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PatientId(<redacted>)")
    }
}

impl FromSql for PatientId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        String::column_result(value).map(PatientId)
    }
}

/// Whether a stored file (its bytes given) holds the same data set as the instance being put.
pub type SameContent<'a> = dyn Fn(&[u8]) -> bool + 'a;

/// One received instance, as the SCP hands it to [`crate::Store::put_instance`]. The UIDs are
/// already validated ([`Uid::from_dicom`]); they name the spool file.
#[derive(Clone, Copy)]
pub struct NewInstance<'a> {
    pub sop_instance_uid: &'a Uid,
    pub sop_class_uid: &'a Uid,
    pub study_uid: &'a Uid,
    pub series_uid: &'a Uid,
    /// PHI: stored, never logged.
    pub patient_id: &'a str,
    pub transfer_syntax: &'a Uid,
    pub calling_ae: &'a str,
    pub called_ae: &'a str,
    pub received_at: Timestamp,
    /// The complete Part 10 file exactly as it goes to disk, in two consecutive pieces (file
    /// meta header, data set) so that a received data set is not copied into one buffer first.
    /// Either may be empty.
    pub file: [&'a [u8]; 2],
    /// Asked only when this SOP Instance UID is stored with different bytes: does the stored
    /// file (its bytes given) hold the same data set in another encoding? DCMTK rewrites
    /// undefined-length sequences, for one, so a resend need not be byte-identical. `None`:
    /// only identical bytes are the same instance.
    pub same_content: Option<&'a SameContent<'a>>,
}

impl NewInstance<'_> {
    /// Size of the file in bytes.
    pub fn file_size(&self) -> u64 {
        self.file.iter().map(|p| p.len() as u64).sum()
    }
}

impl fmt::Debug for NewInstance<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewInstance")
            .field("sop_instance_uid", &self.sop_instance_uid.as_str())
            .field("study_uid", &self.study_uid.as_str())
            .field("series_uid", &self.series_uid.as_str())
            .field("bytes", &self.file_size())
            .finish_non_exhaustive()
    }
}

/// What [`crate::Store::put_instance`] did. In every case the instance is durable and the SCP
/// may answer success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A new SOP Instance UID: file written, row inserted.
    Stored,
    /// Same SOP Instance UID, identical bytes: nothing changed.
    Duplicate,
    /// Same SOP Instance UID, different bytes: the newest replaced file and row.
    Replaced,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceRecord {
    pub sop_instance_uid: Uid,
    pub sop_class_uid: Uid,
    pub study_uid: Uid,
    pub series_uid: Uid,
    #[serde(skip)]
    pub patient_id: PatientId,
    pub transfer_syntax: Uid,
    #[serde(serialize_with = "crate::model::display")]
    pub path: SpoolPath,
    pub size_bytes: u64,
    pub received_at: Timestamp,
    pub study_version: i64,
    pub calling_ae: String,
    pub called_ae: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Study {
    pub study_uid: Uid,
    #[serde(skip)]
    pub patient_id: PatientId,
    pub state: StudyState,
    pub version: i64,
    pub first_received_at: Timestamp,
    pub last_received_at: Timestamp,
    pub instance_count: u64,
    pub completed_at: Option<Timestamp>,
}

/// A study whose quiet time has passed, at the version that would be completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DueStudy {
    pub study_uid: Uid,
    pub version: i64,
    pub last_received_at: Timestamp,
}

/// A study completed by [`crate::Store::complete_due_studies`], with the job queued for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompletedStudy {
    pub study_uid: Uid,
    pub version: i64,
    pub job_id: JobId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    pub id: JobId,
    pub study_uid: Uid,
    pub study_version: i64,
    pub state: JobState,
    /// Number of times the job was claimed (a restart during a run counts as an attempt).
    pub attempts: u32,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub error: Option<String>,
}

/// One object to send to one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportObject {
    pub sop_instance_uid: Uid,
    pub sop_class_uid: Uid,
    /// Where the DICOM file is (absolute, or relative to the process's working directory).
    pub path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Export {
    pub id: ExportId,
    pub study_uid: Uid,
    pub destination: String,
    pub object: ExportObject,
    pub state: ExportState,
    /// Number of sends started (incremented when claimed).
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
}

/// The due exports of one study to one destination: what one association sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportBatch {
    pub study_uid: Uid,
    pub destination: String,
    pub exports: Vec<Export>,
}

/// What [`crate::Store::export_failed`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportRetry {
    /// Queued again, due at this time.
    RetryAt(Timestamp),
    /// Out of attempts: state `failed` until an operator retries it.
    Parked,
}

/// Exponential backoff for exports: after the n-th failed attempt the next one is due
/// `min(base * 2^(n-1), cap)` later; after `max_attempts` attempts the export is parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// 2 s doubling to 5 min, 20 attempts: about 68 minutes of retries before parking, enough
    /// to ride out a PACS restart or a short maintenance window.
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(300),
            max_attempts: 20,
        }
    }
}

impl Backoff {
    /// The wait after the `attempts`-th failed attempt (1-based).
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.base.saturating_mul(1u32 << doublings).min(self.cap)
    }
}

/// The start of an association, logged when it is accepted or rejected.
#[derive(Debug, Clone, Copy)]
pub struct AssociationStart<'a> {
    pub calling_ae: &'a str,
    pub called_ae: &'a str,
    pub peer_addr: &'a str,
    pub started_at: Timestamp,
}

#[derive(Debug, Clone, Copy)]
pub struct AssociationEnd<'a> {
    pub ended_at: Timestamp,
    pub instances: u64,
    pub bytes: u64,
    pub outcome: AssociationOutcome,
    pub reason: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssociationRecord {
    pub id: AssociationId,
    pub calling_ae: String,
    pub called_ae: String,
    pub peer_addr: String,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub instances: u64,
    pub bytes: u64,
    pub outcome: Option<AssociationOutcome>,
    pub reason: Option<String>,
}

pub(crate) fn display<T: fmt::Display, S: serde::Serializer>(
    v: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}
