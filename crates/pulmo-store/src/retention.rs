//! Retention: received images stay in the spool only as long as follow-up may need them. An
//! expired study gives back its files but keeps its row, findings and export history.

use std::time::Duration;

use rusqlite::{params, Transaction};

use crate::db::Store;
use crate::error::{Result, SqlContext, StoreError};
use crate::time::Timestamp;
use crate::uid::Uid;

/// How long the spool keeps a study's images; `None` fields do not limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Since the study's last received instance.
    pub max_age: Option<Duration>,
    /// Bytes of received instances in the spool: the oldest studies go first beyond it.
    pub max_bytes: Option<u64>,
}

/// A study whose received images were removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub study_uid: Uid,
    pub instances: u64,
    pub bytes: u64,
}

/// A complete study with nothing pending, its instances' bytes and last arrival.
struct Candidate {
    study_uid: Uid,
    instances: u64,
    bytes: u64,
    last_received_at: Timestamp,
}

impl Store {
    /// Removes the received instances (rows, then the study's spool folder, pulmo's own
    /// outputs in it included) of complete studies past `retention` at `now`, oldest first.
    /// A study still receiving, or with a job or export not finished, is never touched. Its
    /// findings stay, so a later study still sees this one as its prior (whose images then
    /// come from the PACS).
    pub fn expire_studies(&self, retention: Retention, now: Timestamp) -> Result<Vec<Expired>> {
        let expired = self.write(|tx| {
            let held: i64 = tx.query_row("SELECT COALESCE(SUM(size_bytes), 0) FROM instances", [], |r| r.get(0)).ctx("spool bytes")?;
            let chosen = choose(idle_complete_studies(tx)?, held.max(0) as u64, retention, now);
            for e in &chosen {
                tx.execute("DELETE FROM instances WHERE study_uid = ?1", [&e.study_uid]).ctx("expire instances")?;
                tx.execute("UPDATE studies SET instance_count = 0 WHERE study_uid = ?1", [&e.study_uid]).ctx("expire study")?;
            }
            Ok(chosen)
        })?;
        for e in &expired {
            let dir = self.spool().root().join(e.study_uid.as_str());
            match std::fs::remove_dir_all(&dir) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(StoreError::io("remove expired study", dir, err)),
                _ => {}
            }
        }
        Ok(expired)
    }
}

fn idle_complete_studies(tx: &Transaction<'_>) -> Result<Vec<Candidate>> {
    let mut st = tx
        .prepare_cached(
            "SELECT s.study_uid, COUNT(i.sop_instance_uid), COALESCE(SUM(i.size_bytes), 0), s.last_received_at
             FROM studies s JOIN instances i ON i.study_uid = s.study_uid
             WHERE s.state = 'complete'
               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.study_uid = s.study_uid AND j.state IN ('queued', 'running'))
               AND NOT EXISTS (SELECT 1 FROM exports e WHERE e.study_uid = s.study_uid AND e.state IN ('queued', 'sending'))
             GROUP BY s.study_uid
             ORDER BY s.last_received_at, s.study_uid",
        )
        .ctx("prepare retention candidates")?;
    let rows = st
        .query_map(params![], |r| {
            let count = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
            Ok(Candidate { study_uid: r.get(0)?, instances: count(1)?, bytes: count(2)?, last_received_at: r.get(3)? })
        })
        .ctx("read retention candidates")?;
    rows.collect::<rusqlite::Result<_>>().ctx("read retention candidates")
}

/// Oldest first: every study past the age limit, then more until the spool's `held` bytes fit
/// the budget (studies with work pending count against it but cannot be freed).
fn choose(candidates: Vec<Candidate>, mut held: u64, retention: Retention, now: Timestamp) -> Vec<Expired> {
    let cutoff = retention.max_age.map(|age| now.minus(age));
    let mut chosen = Vec::new();
    for c in candidates {
        let too_old = cutoff.is_some_and(|cut| c.last_received_at < cut);
        let over_budget = retention.max_bytes.is_some_and(|max| held > max);
        if !(too_old || over_budget) {
            break;
        }
        held = held.saturating_sub(c.bytes);
        chosen.push(Expired { study_uid: c.study_uid, instances: c.instances, bytes: c.bytes });
    }
    chosen
}
