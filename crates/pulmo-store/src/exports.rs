//! The export queue: result objects to send to configured destinations, one row per object per
//! destination, claimed per study (one association), retried with exponential backoff, parked.

use std::path::PathBuf;

use rusqlite::{params, OptionalExtension, Row, Transaction};

use crate::db::Store;
use crate::error::{Result, SqlContext, StoreError};
use crate::model::{Export, ExportBatch, ExportId, ExportObject, ExportRetry, ExportState};
use crate::studies::get_u32;
use crate::time::Timestamp;
use crate::uid::Uid;

pub(crate) const EXPORT_COLUMNS: &str =
    "id, study_uid, destination, sop_instance_uid, sop_class_uid, \
     path, state, attempts, next_attempt_at, last_error";

impl Store {
    /// Queue `objects` of `study_uid` for `destination`, due at once, in one transaction.
    /// An object already queued for that destination (same SOP Instance UID) is left as it is,
    /// so a worker that reruns after a crash does not send twice. Returns how many were added.
    pub fn queue_exports(
        &self,
        study_uid: &Uid,
        destination: &str,
        objects: &[ExportObject],
        now: Timestamp,
    ) -> Result<usize> {
        let paths = objects
            .iter()
            .map(|o| path_text(&o.path))
            .collect::<Result<Vec<_>>>()?;
        self.write(|tx| {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO exports (study_uid, destination, sop_instance_uid, sop_class_uid,
                         path, state, attempts, next_attempt_at, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'queued', 0, ?6, ?6, ?6)
                     ON CONFLICT (destination, sop_instance_uid) DO NOTHING",
                )
                .ctx("prepare queue export")?;
            let mut added = 0;
            for (object, path) in objects.iter().zip(&paths) {
                added += st
                    .execute(params![
                        study_uid,
                        destination,
                        object.sop_instance_uid,
                        object.sop_class_uid,
                        path,
                        now
                    ])
                    .ctx("queue export")?;
            }
            Ok(added)
        })
    }

    /// Claim the due exports of `destination` (queued, `next_attempt_at <= now`), grouped by
    /// study, for at most `max_studies` studies (most overdue first). Claimed exports move to
    /// `sending` with their attempt counted; report each with `export_done` / `export_failed`.
    pub fn claim_due_exports(
        &self,
        destination: &str,
        now: Timestamp,
        max_studies: usize,
    ) -> Result<Vec<ExportBatch>> {
        self.write(|tx| {
            let studies = due_export_studies(tx, destination, now, max_studies)?;
            let mut batches = Vec::with_capacity(studies.len());
            for study_uid in studies {
                let mut exports = claim_study(tx, destination, &study_uid, now)?;
                exports.sort_by_key(|e| e.id); // RETURNING order is unspecified
                batches.push(ExportBatch {
                    study_uid,
                    destination: destination.to_owned(),
                    exports,
                });
            }
            Ok(batches)
        })
    }

    /// When the next queued export of `destination` is due, so the sender knows how long to sleep.
    pub fn next_export_due(&self, destination: &str) -> Result<Option<Timestamp>> {
        self.read(|tx| {
            tx.prepare_cached(
                "SELECT min(next_attempt_at) FROM exports WHERE destination = ?1 AND state = 'queued'",
            )
            .and_then(|mut st| st.query_row([destination], |r| r.get(0)))
            .ctx("read next export due")
        })
    }

    /// The object was stored by the destination.
    pub fn export_done(&self, id: ExportId, now: Timestamp) -> Result<()> {
        let changed = self.write(|tx| {
            tx.prepare_cached(
                "UPDATE exports SET state = 'done', updated_at = ?2 WHERE id = ?1 AND state = 'sending'",
            )
            .and_then(|mut st| st.execute(params![id, now]))
            .ctx("mark export done")
        })?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: "sending export",
                id: id.to_string(),
            });
        }
        Ok(())
    }

    /// The send failed (no connection, association rejected, failure status): queue it again
    /// after the backoff for its attempt count, or park it as `failed` once it has had
    /// `max_attempts` attempts.
    pub fn export_failed(&self, id: ExportId, error: &str, now: Timestamp) -> Result<ExportRetry> {
        let backoff = self.inner.config.export_backoff;
        let retry = self.write(|tx| {
            let attempts = sending_attempts(tx, id)?
                .ok_or_else(|| StoreError::NotFound { what: "sending export", id: id.to_string() })?;
            let retry = if attempts >= backoff.max_attempts {
                ExportRetry::Parked
            } else {
                ExportRetry::RetryAt(now.plus(backoff.delay(attempts)))
            };
            let (state, next) = match retry {
                ExportRetry::Parked => (ExportState::Failed, now),
                ExportRetry::RetryAt(at) => (ExportState::Queued, at),
            };
            tx.prepare_cached(
                "UPDATE exports SET state = ?2, next_attempt_at = ?3, last_error = ?4, updated_at = ?5
                 WHERE id = ?1",
            )
            .and_then(|mut st| st.execute(params![id, state, next, error, now]))
            .ctx("mark export failed")?;
            Ok(retry)
        })?;
        match retry {
            ExportRetry::Parked => {
                tracing::error!(export = %id, error, "export parked after its last attempt")
            }
            ExportRetry::RetryAt(at) => {
                tracing::warn!(export = %id, error, retry_at = at.millis(), "export failed; will retry")
            }
        }
        Ok(retry)
    }

    /// At start-up: exports left `sending` by a dead process are queued again, due at once
    /// (their attempt still counts). Returns how many.
    pub fn requeue_sending_exports(&self) -> Result<usize> {
        self.write(|tx| {
            tx.execute(
                "UPDATE exports SET state = 'queued' WHERE state = 'sending'",
                [],
            )
            .ctx("requeue sending exports")
        })
    }

    /// Operator action: give parked exports (of one destination, or all) a fresh set of
    /// attempts, due at `now`. Returns how many.
    pub fn retry_parked_exports(&self, destination: Option<&str>, now: Timestamp) -> Result<usize> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE exports SET state = 'queued', attempts = 0, next_attempt_at = ?2, updated_at = ?2
                 WHERE state = 'failed' AND (?1 IS NULL OR destination = ?1)",
            )
            .and_then(|mut st| st.execute(params![destination, now]))
            .ctx("retry parked exports")
        })
    }

    /// All exports of a study, to every destination, oldest first.
    pub fn study_exports(&self, study_uid: &Uid) -> Result<Vec<Export>> {
        self.read(|tx| {
            let sql =
                format!("SELECT {EXPORT_COLUMNS} FROM exports WHERE study_uid = ?1 ORDER BY id");
            let mut st = tx.prepare_cached(&sql).ctx("prepare study exports")?;
            let rows = st
                .query_map([study_uid], export_from_row)
                .ctx("read study exports")?;
            rows.collect::<rusqlite::Result<_>>()
                .ctx("read study exports")
        })
    }
}

fn due_export_studies(
    tx: &Transaction<'_>,
    destination: &str,
    now: Timestamp,
    max_studies: usize,
) -> Result<Vec<Uid>> {
    let limit = i64::try_from(max_studies).unwrap_or(i64::MAX);
    let mut st = tx
        .prepare_cached(
            "SELECT study_uid FROM exports
             WHERE destination = ?1 AND state = 'queued' AND next_attempt_at <= ?2
             GROUP BY study_uid ORDER BY min(next_attempt_at), min(id) LIMIT ?3",
        )
        .ctx("prepare due export studies")?;
    let rows = st
        .query_map(params![destination, now, limit], |r| r.get(0))
        .ctx("read due export studies")?;
    rows.collect::<rusqlite::Result<_>>()
        .ctx("read due export studies")
}

fn claim_study(
    tx: &Transaction<'_>,
    destination: &str,
    study_uid: &Uid,
    now: Timestamp,
) -> Result<Vec<Export>> {
    let mut st = tx
        .prepare_cached(&format!(
            "UPDATE exports SET state = 'sending', attempts = attempts + 1, updated_at = ?3
             WHERE destination = ?1 AND study_uid = ?2 AND state = 'queued' AND next_attempt_at <= ?3
             RETURNING {EXPORT_COLUMNS}"
        ))
        .ctx("prepare claim exports")?;
    let rows = st
        .query_map(params![destination, study_uid, now], export_from_row)
        .ctx("claim exports")?;
    rows.collect::<rusqlite::Result<_>>().ctx("claim exports")
}

fn sending_attempts(tx: &Transaction<'_>, id: ExportId) -> Result<Option<u32>> {
    tx.prepare_cached("SELECT attempts FROM exports WHERE id = ?1 AND state = 'sending'")
        .and_then(|mut st| st.query_row([id], |r| get_u32(r, 0)).optional())
        .ctx("read export attempts")
}

fn path_text(path: &std::path::Path) -> Result<String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| StoreError::NonUtf8Path {
            path: path.to_owned(),
        })
}

pub(crate) fn export_from_row(r: &Row<'_>) -> rusqlite::Result<Export> {
    let path: String = r.get(5)?;
    Ok(Export {
        id: r.get(0)?,
        study_uid: r.get(1)?,
        destination: r.get(2)?,
        object: ExportObject {
            sop_instance_uid: r.get(3)?,
            sop_class_uid: r.get(4)?,
            path: PathBuf::from(path),
        },
        state: r.get(6)?,
        attempts: get_u32(r, 7)?,
        next_attempt_at: r.get(8)?,
        last_error: r.get(9)?,
    })
}
