//! Study completion (the persisted quiet-time logic) and the queries on studies and instances.
//! Completing a study and queueing its job happen in one transaction, once per study version.

use std::time::Duration;

use rusqlite::{params, OptionalExtension, Row, Transaction};

use crate::db::Store;
use crate::error::{Result, SqlContext};
use crate::model::{CompletedStudy, DueStudy, InstanceRecord, JobId, Study};
use crate::spool::SpoolPath;
use crate::time::Timestamp;
use crate::uid::Uid;

impl Store {
    /// Studies still `receiving` whose last instance arrived at least `quiet` before `now`,
    /// oldest first. Because `last_received_at` is in the database, the timers survive restarts.
    pub fn due_studies(&self, now: Timestamp, quiet: Duration) -> Result<Vec<DueStudy>> {
        self.read(|tx| select_due(tx, now.minus(quiet)))
    }

    /// Mark `study_uid` complete at `version` and queue its job, in one transaction. Returns the
    /// new job, or `None` if the study is not `receiving` at that version (already completed, or
    /// new instances arrived and bumped the version): calling it twice queues one job.
    ///
    /// It does not re-check the quiet time; the timer should prefer
    /// [`complete_due_studies`](Store::complete_due_studies), which checks and completes atomically.
    pub fn complete_study(
        &self,
        study_uid: &Uid,
        version: i64,
        now: Timestamp,
    ) -> Result<Option<JobId>> {
        self.write(|tx| complete(tx, study_uid, version, now))
    }

    /// The quiet timer's one call: complete every due study and queue one job per study version,
    /// all in one transaction, so an instance arriving concurrently either makes it in before
    /// completion or starts the next version.
    pub fn complete_due_studies(
        &self,
        now: Timestamp,
        quiet: Duration,
    ) -> Result<Vec<CompletedStudy>> {
        self.write(|tx| {
            let mut completed = Vec::new();
            for due in select_due(tx, now.minus(quiet))? {
                if let Some(job_id) = complete(tx, &due.study_uid, due.version, now)? {
                    completed.push(CompletedStudy {
                        study_uid: due.study_uid,
                        version: due.version,
                        job_id,
                    });
                }
            }
            Ok(completed)
        })
    }

    pub fn study(&self, study_uid: &Uid) -> Result<Option<Study>> {
        self.read(|tx| {
            tx.prepare_cached(&format!(
                "SELECT {STUDY_COLUMNS} FROM studies WHERE study_uid = ?1"
            ))
            .and_then(|mut st| st.query_row([study_uid], study_from_row).optional())
            .ctx("read study")
        })
    }

    /// The patient's other studies (same Patient ID), most recently received first: where a
    /// follow-up looks for its prior. Patient ID is PHI: it stays in the database and the
    /// caller's memory, never in logs.
    pub fn patient_studies(&self, patient_id: &str, except: &Uid) -> Result<Vec<Study>> {
        self.read(|tx| {
            let sql = format!(
                "SELECT {STUDY_COLUMNS} FROM studies WHERE patient_id = ?1 AND study_uid <> ?2
                 ORDER BY last_received_at DESC"
            );
            let mut st = tx.prepare_cached(&sql).ctx("prepare patient studies")?;
            let rows = st.query_map(params![patient_id, except], study_from_row).ctx("read patient studies")?;
            rows.collect::<rusqlite::Result<_>>().ctx("read patient studies")
        })
    }

    /// The current instances of a study (what a job analyses), by series then SOP Instance UID.
    pub fn study_instances(&self, study_uid: &Uid) -> Result<Vec<InstanceRecord>> {
        self.read(|tx| {
            let sql = format!(
                "SELECT {INSTANCE_COLUMNS} FROM instances WHERE study_uid = ?1
                 ORDER BY series_uid, sop_instance_uid"
            );
            let mut st = tx.prepare_cached(&sql).ctx("prepare study instances")?;
            let rows = st
                .query_map([study_uid], instance_from_row)
                .ctx("read study instances")?;
            rows.collect::<rusqlite::Result<_>>()
                .ctx("read study instances")
        })
    }

    pub fn instance(&self, sop_instance_uid: &Uid) -> Result<Option<InstanceRecord>> {
        self.read(|tx| {
            let sql =
                format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE sop_instance_uid = ?1");
            tx.prepare_cached(&sql)
                .and_then(|mut st| {
                    st.query_row([sop_instance_uid], instance_from_row)
                        .optional()
                })
                .ctx("read instance")
        })
    }
}

fn select_due(tx: &Transaction<'_>, received_before: Timestamp) -> Result<Vec<DueStudy>> {
    let mut st = tx
        .prepare_cached(
            "SELECT study_uid, version, last_received_at FROM studies
             WHERE state = 'receiving' AND last_received_at <= ?1
             ORDER BY last_received_at, study_uid",
        )
        .ctx("prepare due studies")?;
    let rows = st
        .query_map([received_before], |r| {
            Ok(DueStudy {
                study_uid: r.get(0)?,
                version: r.get(1)?,
                last_received_at: r.get(2)?,
            })
        })
        .ctx("read due studies")?;
    rows.collect::<rusqlite::Result<_>>()
        .ctx("read due studies")
}

fn complete(
    tx: &Transaction<'_>,
    study_uid: &Uid,
    version: i64,
    now: Timestamp,
) -> Result<Option<JobId>> {
    let changed = tx
        .prepare_cached(
            "UPDATE studies SET state = 'complete', completed_at = ?3
             WHERE study_uid = ?1 AND version = ?2 AND state = 'receiving'",
        )
        .and_then(|mut st| st.execute(params![study_uid, version, now]))
        .ctx("complete study")?;
    if changed == 0 {
        return Ok(None);
    }
    // UNIQUE (study_uid, study_version) makes a second job for one version impossible even if
    // the state logic above were wrong; DO NOTHING then returns no row.
    let job = tx
        .prepare_cached(
            "INSERT INTO jobs (study_uid, study_version, state, created_at)
             VALUES (?1, ?2, 'queued', ?3)
             ON CONFLICT (study_uid, study_version) DO NOTHING
             RETURNING id",
        )
        .and_then(|mut st| {
            st.query_row(params![study_uid, version, now], |r| r.get(0))
                .optional()
        })
        .ctx("queue job")?;
    tracing::info!(study = %study_uid, version, job = ?job, "study complete");
    Ok(job)
}

pub(crate) const STUDY_COLUMNS: &str = "study_uid, patient_id, state, version, first_received_at, \
     last_received_at, instance_count, completed_at";

pub(crate) fn study_from_row(r: &Row<'_>) -> rusqlite::Result<Study> {
    Ok(Study {
        study_uid: r.get(0)?,
        patient_id: r.get(1)?,
        state: r.get(2)?,
        version: r.get(3)?,
        first_received_at: r.get(4)?,
        last_received_at: r.get(5)?,
        instance_count: get_u64(r, 6)?,
        completed_at: r.get(7)?,
    })
}

const INSTANCE_COLUMNS: &str =
    "sop_instance_uid, sop_class_uid, study_uid, series_uid, patient_id, \
     transfer_syntax, path, size_bytes, received_at, study_version, calling_ae, called_ae";

fn instance_from_row(r: &Row<'_>) -> rusqlite::Result<InstanceRecord> {
    let path: String = r.get(6)?;
    let path = SpoolPath::parse(&path).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(InstanceRecord {
        sop_instance_uid: r.get(0)?,
        sop_class_uid: r.get(1)?,
        study_uid: r.get(2)?,
        series_uid: r.get(3)?,
        patient_id: r.get(4)?,
        transfer_syntax: r.get(5)?,
        path,
        size_bytes: get_u64(r, 7)?,
        received_at: r.get(8)?,
        study_version: r.get(9)?,
        calling_ae: r.get(10)?,
        called_ae: r.get(11)?,
    })
}

/// Counts and sizes are `INTEGER` (i64) in SQLite and never negative by construction.
pub(crate) fn get_u64(r: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = r.get(idx)?;
    u64::try_from(v).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Integer, Box::new(e))
    })
}

pub(crate) fn get_u32(r: &Row<'_>, idx: usize) -> rusqlite::Result<u32> {
    let v: i64 = r.get(idx)?;
    u32::try_from(v).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Integer, Box::new(e))
    })
}
