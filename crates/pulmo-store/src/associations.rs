//! The association log: who connected, when, what they sent and how it ended; pruned to the
//! most recent `association_log_limit` rows so it never grows without bound.

use rusqlite::{params, Row};

use crate::db::Store;
use crate::error::{Result, SqlContext};
use crate::model::{AssociationEnd, AssociationId, AssociationRecord, AssociationStart};
use crate::studies::get_u64;

pub(crate) const ASSOCIATION_COLUMNS: &str =
    "id, calling_ae, called_ae, peer_addr, started_at, ended_at, instances, bytes, outcome, reason";

impl Store {
    /// Log an association as it starts (or is rejected), pruning the oldest rows beyond the limit.
    pub fn log_association_start(&self, start: &AssociationStart<'_>) -> Result<AssociationId> {
        let keep = i64::from(self.inner.config.association_log_limit);
        self.write(|tx| {
            let id: AssociationId = tx
                .prepare_cached(
                    "INSERT INTO associations (calling_ae, called_ae, peer_addr, started_at)
                     VALUES (?1, ?2, ?3, ?4) RETURNING id",
                )
                .and_then(|mut st| {
                    st.query_row(
                        params![
                            start.calling_ae,
                            start.called_ae,
                            start.peer_addr,
                            start.started_at
                        ],
                        |r| r.get(0),
                    )
                })
                .ctx("log association start")?;
            // Ids are AUTOINCREMENT (never reused), so "older than the last N" is an id range.
            tx.prepare_cached("DELETE FROM associations WHERE id <= ?1 - ?2")
                .and_then(|mut st| st.execute(params![id, keep]))
                .ctx("prune association log")?;
            Ok(id)
        })
    }

    /// Log how an association ended. An id already pruned from the log is silently ignored.
    pub fn log_association_end(&self, id: AssociationId, end: &AssociationEnd<'_>) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE associations SET ended_at = ?2, instances = ?3, bytes = ?4, outcome = ?5,
                     reason = ?6
                 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    id,
                    end.ended_at,
                    i64::try_from(end.instances).unwrap_or(i64::MAX),
                    i64::try_from(end.bytes).unwrap_or(i64::MAX),
                    end.outcome,
                    end.reason,
                ])
            })
            .ctx("log association end")?;
            Ok(())
        })
    }

    /// The most recent associations, newest first.
    pub fn recent_associations(&self, limit: usize) -> Result<Vec<AssociationRecord>> {
        self.read(|tx| select_recent(tx, limit))
    }
}

pub(crate) fn select_recent(
    tx: &rusqlite::Transaction<'_>,
    limit: usize,
) -> Result<Vec<AssociationRecord>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = format!("SELECT {ASSOCIATION_COLUMNS} FROM associations ORDER BY id DESC LIMIT ?1");
    let mut st = tx.prepare_cached(&sql).ctx("prepare recent associations")?;
    let rows = st
        .query_map([limit], association_from_row)
        .ctx("read recent associations")?;
    rows.collect::<rusqlite::Result<_>>()
        .ctx("read recent associations")
}

fn association_from_row(r: &Row<'_>) -> rusqlite::Result<AssociationRecord> {
    Ok(AssociationRecord {
        id: r.get(0)?,
        calling_ae: r.get(1)?,
        called_ae: r.get(2)?,
        peer_addr: r.get(3)?,
        started_at: r.get(4)?,
        ended_at: r.get(5)?,
        instances: get_u64(r, 6)?,
        bytes: get_u64(r, 7)?,
        outcome: r.get(8)?,
        reason: r.get(9)?,
    })
}
