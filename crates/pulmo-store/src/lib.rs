//! pulmo's durable state: the SQLite database and the spool directory of received instances.
//! Every arrow of the flow that crosses a process restart goes through here.
//!
//! # What lives where
//!
//! - [`Spool`]: received files at `<spool>/<study_uid>/<series_uid>/<sop_instance_uid>.dcm`,
//!   named only from validated [`Uid`]s, written by temp file + fsync + rename + directory fsync.
//! - [`Store`]: the SQLite database (WAL, `synchronous=FULL`) with tables `studies`, `instances`,
//!   `jobs`, `exports`, `associations` and `findings` ([`Store::put_findings`]); the schema is migrated via `PRAGMA user_version`.
//!
//! # Receiving: [`Store::put_instance`]
//!
//! One call makes an instance durable: the spool file first, then the `instances` row and the
//! study update in one transaction. The SCP acknowledges only after it returns `Ok`, so an
//! acknowledged instance is always both on disk and in the database. A crash between the two
//! leaves at most an unrecorded file that was never acknowledged; the sender resends it.
//!
//! **Known SOP Instance UID policy.** Identity is the stored file's bytes, or, when
//! those differ, the caller's [`NewInstance::same_content`] test against the stored file (senders
//! re-encode one data set differently).
//! - Same UID, same content: [`Outcome::Duplicate`]: nothing changes (no version bump, no new
//!   `last_received_at`), so a resent study is not analysed again. (If its spool file had been
//!   deleted by hand, the file is written again.)
//! - Same UID, different content: [`Outcome::Replaced`]: the newest wins. The file and the row are
//!   replaced; the study is touched exactly like by a new arrival: `last_received_at` moves
//!   forward, and if the study was `complete` its version is bumped and it goes back to
//!   `receiving`, so the corrected content gets its own analysis. A replacement that arrives while
//!   the study is still `receiving` belongs to the pending version (no bump: nothing has been
//!   analysed yet). If the new bytes name a different study or series, the instance moves: the old
//!   study loses it (and is touched likewise) and the old file is deleted after the commit.
//!
//! # Studies, versions, jobs
//!
//! A study is `receiving` from its first instance; it is due when `last_received_at` is at least
//! the quiet time in the past ([`Store::due_studies`]). Completing it ([`Store::complete_study`],
//! or [`Store::complete_due_studies`] for the timer) marks it `complete` and queues exactly one
//! job for (study, version) in the same transaction; `UNIQUE (study_uid, study_version)` backs
//! this. New content for a complete study makes version n+1 `receiving`, and its completion a
//! new job. Jobs left `running` by a crash go back to `queued` ([`Store::requeue_running_jobs`]).
//!
//! # Exports
//!
//! One row per (destination, object), because C-STORE status is per object. The sender claims
//! per destination, grouped by study ([`Store::claim_due_exports`]): one association per batch.
//! A failed attempt n is retried `min(base * 2^(n-1), cap)` later ([`Backoff`], default 2 s
//! doubling to 5 min); after `max_attempts` (default 20) the export is parked as `failed` until
//! [`Store::retry_parked_exports`]. Exports left `sending` are requeued at start-up.
//!
//! # Retention
//!
//! [`Store::expire_studies`] removes the received images of complete studies past a [`Retention`]
//! (age since the last instance, and/or a byte budget, oldest first), never while a job or an
//! export of the study is pending. The study row and its findings stay: follow-up still knows the
//! prior and retrieves its images from the PACS again when it needs them.
//!
//! # Time
//!
//! All times are integer milliseconds since the Unix epoch ([`Timestamp`]), and every
//! time-dependent method takes `now` as a parameter, so behaviour is deterministic in tests.
//!
//! # Start-up sequence
//!
//! `Store::open`, then `spool().sweep_temp_files()`, `requeue_running_jobs()` and
//! `requeue_sending_exports()` before serving and before workers start.
//!
//! # Threads
//!
//! [`Store`] is `Clone + Send + Sync`; its methods block, so async code calls them from
//! `spawn_blocking`. Patient IDs are PHI: they are stored, never logged, and [`PatientId`]'s
//! `Debug` is redacted.

mod associations;
mod db;
mod durable_file;
mod error;
mod exports;
mod findings;
mod ingest;
mod jobs;
mod model;
mod retention;
mod schema;
mod spool;
mod status;
mod studies;
mod time;
mod uid;

pub use db::{Store, StoreConfig};
pub use error::{Result, StoreError};
pub use findings::StoredFindings;
pub use model::{
    AssociationEnd, AssociationId, AssociationOutcome, AssociationRecord, AssociationStart,
    Backoff, CompletedStudy, DueStudy, Export, ExportBatch, ExportId, ExportObject, ExportRetry,
    ExportState, InstanceRecord, Job, JobId, JobState, NewInstance, Outcome, PatientId,
    SameContent, Study, StudyState,
};
pub use retention::{Expired, Retention};
pub use schema::SCHEMA_VERSION;
pub use spool::{Spool, SpoolPath};
pub use status::{DestinationExports, ExportGroup, FindingsSummary, SeriesSummary, StoreStatus, StudyReport};
pub use time::Timestamp;
pub use uid::{Uid, UidError, UidErrorReason, MAX_UID_LEN};
