//! The analysis job queue: one job per (study, version), claimed by workers one at a time.
//! Jobs that were running when the process died are requeued at start-up.

use rusqlite::{params, OptionalExtension, Row};

use crate::db::Store;
use crate::error::{Result, SqlContext, StoreError};
use crate::model::{Job, JobId, JobState};
use crate::studies::get_u32;
use crate::time::Timestamp;
use crate::uid::Uid;

pub(crate) const JOB_COLUMNS: &str =
    "id, study_uid, study_version, state, attempts, created_at, started_at, finished_at, error";

impl Store {
    /// Atomically move the oldest queued job to `running` (one UPDATE ... RETURNING, so two
    /// workers can never claim the same job). `None` when the queue is empty.
    pub fn claim_next_job(&self, now: Timestamp) -> Result<Option<Job>> {
        let job = self.write(|tx| {
            tx.prepare_cached(&format!(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, started_at = ?1,
                     finished_at = NULL, error = NULL
                 WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1)
                 RETURNING {JOB_COLUMNS}"
            ))
            .and_then(|mut st| st.query_row([now], job_from_row).optional())
            .ctx("claim next job")
        })?;
        if let Some(job) = &job {
            tracing::info!(job = %job.id, study = %job.study_uid, version = job.study_version, "job claimed");
        }
        Ok(job)
    }

    /// Record the end of a running job: `Ok` → `done`, `Err(message)` → `failed` with the message.
    /// Finishing a job that is not running (unknown id, or already finished) is `NotFound`.
    pub fn finish_job(&self, id: JobId, result: Result<(), &str>, now: Timestamp) -> Result<()> {
        let (state, error) = match result {
            Ok(()) => (JobState::Done, None),
            Err(message) => (JobState::Failed, Some(message)),
        };
        let changed = self.write(|tx| {
            tx.prepare_cached(
                "UPDATE jobs SET state = ?2, finished_at = ?3, error = ?4
                 WHERE id = ?1 AND state = 'running'",
            )
            .and_then(|mut st| st.execute(params![id, state, now, error]))
            .ctx("finish job")
        })?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: "running job",
                id: id.to_string(),
            });
        }
        tracing::info!(job = %id, %state, "job finished");
        Ok(())
    }

    /// At start-up, before workers start: jobs left `running` by a dead process go back to
    /// `queued` (their attempt still counts). Returns how many.
    pub fn requeue_running_jobs(&self) -> Result<usize> {
        let n = self.write(|tx| {
            tx.execute(
                "UPDATE jobs SET state = 'queued', started_at = NULL WHERE state = 'running'",
                [],
            )
            .ctx("requeue running jobs")
        })?;
        if n > 0 {
            tracing::warn!(count = n, "requeued jobs interrupted by a restart");
        }
        Ok(n)
    }

    pub fn job(&self, id: JobId) -> Result<Option<Job>> {
        self.read(|tx| {
            tx.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))
                .and_then(|mut st| st.query_row([id], job_from_row).optional())
                .ctx("read job")
        })
    }

    /// All jobs of a study, oldest first.
    pub fn study_jobs(&self, study_uid: &Uid) -> Result<Vec<Job>> {
        self.read(|tx| {
            let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE study_uid = ?1 ORDER BY id");
            let mut st = tx.prepare_cached(&sql).ctx("prepare study jobs")?;
            let rows = st
                .query_map([study_uid], job_from_row)
                .ctx("read study jobs")?;
            rows.collect::<rusqlite::Result<_>>().ctx("read study jobs")
        })
    }
}

pub(crate) fn job_from_row(r: &Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        id: r.get(0)?,
        study_uid: r.get(1)?,
        study_version: r.get(2)?,
        state: r.get(3)?,
        attempts: get_u32(r, 4)?,
        created_at: r.get(5)?,
        started_at: r.get(6)?,
        finished_at: r.get(7)?,
        error: r.get(8)?,
    })
}
