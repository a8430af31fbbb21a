//! The database schema as an ordered list of migrations, tracked in `PRAGMA user_version`.
//! Append new migrations at the end; never edit one that has shipped.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Result, SqlContext, StoreError};

/// Migration `i` (0-based) brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: instances, studies, jobs, exports, associations.
    r#"
    CREATE TABLE studies (
        study_uid         TEXT PRIMARY KEY NOT NULL,
        patient_id        TEXT NOT NULL,              -- PHI
        state             TEXT NOT NULL CHECK (state IN ('receiving', 'complete')),
        version           INTEGER NOT NULL CHECK (version >= 1),
        first_received_at INTEGER NOT NULL,           -- ms since Unix epoch
        last_received_at  INTEGER NOT NULL,
        instance_count    INTEGER NOT NULL CHECK (instance_count >= 0),
        completed_at      INTEGER                     -- completion of the current version
    ) WITHOUT ROWID;
    -- due_studies: state = 'receiving' AND last_received_at <= ?
    CREATE INDEX studies_due ON studies (state, last_received_at);

    CREATE TABLE instances (
        sop_instance_uid TEXT PRIMARY KEY NOT NULL,
        sop_class_uid    TEXT NOT NULL,
        study_uid        TEXT NOT NULL REFERENCES studies (study_uid),
        series_uid       TEXT NOT NULL,
        patient_id       TEXT NOT NULL,               -- PHI
        transfer_syntax  TEXT NOT NULL,
        path             TEXT NOT NULL,               -- relative to the spool root
        size_bytes       INTEGER NOT NULL,
        sha256           TEXT NOT NULL,               -- dropped by migration 2
        content_key      TEXT NOT NULL,               -- dropped by migration 2
        received_at      INTEGER NOT NULL,
        study_version    INTEGER NOT NULL,            -- study version it arrived in
        calling_ae       TEXT NOT NULL,
        called_ae        TEXT NOT NULL                -- selects the pipeline profile
    ) WITHOUT ROWID;
    CREATE INDEX instances_by_study ON instances (study_uid, series_uid);

    CREATE TABLE jobs (
        id            INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, so logs stay unambiguous
        study_uid     TEXT NOT NULL REFERENCES studies (study_uid),
        study_version INTEGER NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
        attempts      INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL,
        started_at    INTEGER,
        finished_at   INTEGER,
        error         TEXT,
        UNIQUE (study_uid, study_version)              -- one run per study version
    );
    CREATE INDEX jobs_by_state ON jobs (state, id);

    -- One row per object per destination: C-STORE status is per object, so is retry state.
    CREATE TABLE exports (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        study_uid        TEXT NOT NULL,
        destination      TEXT NOT NULL,
        sop_instance_uid TEXT NOT NULL,
        sop_class_uid    TEXT NOT NULL,
        path             TEXT NOT NULL,
        state            TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'done', 'failed')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  INTEGER NOT NULL,
        last_error       TEXT,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        UNIQUE (destination, sop_instance_uid)          -- queueing the same object twice is a no-op
    );
    CREATE INDEX exports_due ON exports (destination, state, next_attempt_at);
    CREATE INDEX exports_by_study ON exports (study_uid);

    CREATE TABLE associations (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        calling_ae TEXT NOT NULL,
        called_ae  TEXT NOT NULL,
        peer_addr  TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at   INTEGER,
        instances  INTEGER NOT NULL DEFAULT 0,
        bytes      INTEGER NOT NULL DEFAULT 0,
        outcome    TEXT,
        reason     TEXT
    );
    "#,
    // 2: a resend is compared with the stored file (bytes, then decoded content) only when its
    // SOP Instance UID is known; hashing and decoding every received instance cost more CPU than
    // everything else on the ingest path.
    "ALTER TABLE instances DROP COLUMN content_key; ALTER TABLE instances DROP COLUMN sha256;",
    // 3: the findings of each analysed study version and series (StudyFindings as JSON, with
    // the columns that listings and follow-up lookups need).
    r#"
    CREATE TABLE findings (
        study_uid     TEXT NOT NULL REFERENCES studies (study_uid),
        study_version INTEGER NOT NULL,
        series_uid    TEXT NOT NULL,
        nodules       INTEGER NOT NULL CHECK (nodules >= 0),
        lung_rads     TEXT NOT NULL,                  -- exam category, e.g. "4A"
        created_at    INTEGER NOT NULL,
        json          TEXT NOT NULL,                  -- pulmo_findings::StudyFindings
        PRIMARY KEY (study_uid, study_version, series_uid)
    ) WITHOUT ROWID;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Bring the database up to [`SCHEMA_VERSION`]. Each migration runs in its own immediate
/// transaction together with its `user_version` bump, so a crash leaves a consistent version and
/// two processes opening the same file cannot both apply one.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin migration")?;
        let current: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .ctx("read user_version")?;
        let Some(next) = usize::try_from(current)
            .ok()
            .filter(|&v| v <= MIGRATIONS.len())
        else {
            return Err(StoreError::UnknownSchemaVersion {
                found: current,
                supported: SCHEMA_VERSION,
            });
        };
        let Some(sql) = MIGRATIONS.get(next) else {
            return Ok(()); // up to date
        };
        tx.execute_batch(sql).ctx("apply migration")?;
        tx.pragma_update(None, "user_version", current + 1)
            .ctx("write user_version")?;
        tx.commit().ctx("commit migration")?;
        tracing::info!(version = current + 1, "store schema migrated");
    }
}
