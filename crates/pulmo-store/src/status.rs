//! Read-only summaries for `pulmo status` and for "what happened to this study": plain serde
//! structs, each read in one snapshot. Patient IDs are never part of them.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, Transaction};
use serde::Serialize;

use crate::associations::select_recent;
use crate::db::Store;
use crate::error::{Result, SqlContext};
use crate::exports::{export_from_row, EXPORT_COLUMNS};
use crate::jobs::{job_from_row, JOB_COLUMNS};
use crate::model::{AssociationRecord, Export, ExportState, Job, JobState, Study, StudyState};
use crate::studies::{get_u32, get_u64, study_from_row, STUDY_COLUMNS};
use crate::time::Timestamp;
use crate::uid::Uid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreStatus {
    /// Every state is present, with 0 where nothing is in it.
    pub studies: BTreeMap<StudyState, u64>,
    pub jobs: BTreeMap<JobState, u64>,
    pub exports: Vec<DestinationExports>,
    /// Exports not yet done (queued, sending, parked), per destination and study, parked first.
    pub pending_exports: Vec<ExportGroup>,
    /// Most recent jobs, newest first.
    pub recent_jobs: Vec<Job>,
    /// Most recent associations, newest first.
    pub recent_associations: Vec<AssociationRecord>,
    /// Most recent analyses, newest first.
    pub recent_findings: Vec<FindingsSummary>,
}

/// One analysed series of a study version, as listed by `pulmo status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingsSummary {
    pub study_uid: Uid,
    pub study_version: i64,
    pub series_uid: String,
    pub nodules: u64,
    /// The exam's Lung-RADS category, e.g. "4A".
    pub lung_rads: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestinationExports {
    pub destination: String,
    pub counts: BTreeMap<ExportState, u64>,
}

/// The exports of one study to one destination that share a state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportGroup {
    pub destination: String,
    pub study_uid: Uid,
    pub state: ExportState,
    pub objects: u64,
    /// The highest attempt count among the objects.
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    /// The error of the most recently updated object, if any.
    pub last_error: Option<String>,
}

/// Everything the store knows about one study.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StudyReport {
    pub study: Study,
    pub series: Vec<SeriesSummary>,
    pub jobs: Vec<Job>,
    pub exports: Vec<Export>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesSummary {
    pub series_uid: Uid,
    pub instances: u64,
    pub bytes: u64,
    pub last_received_at: Timestamp,
}

impl Store {
    /// The summary `pulmo status` prints; `limit` bounds each list (pending exports, recent jobs,
    /// recent associations).
    pub fn status(&self, limit: usize) -> Result<StoreStatus> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|tx| {
            Ok(StoreStatus {
                studies: state_counts(tx, "studies", StudyState::ALL)?,
                jobs: state_counts(tx, "jobs", JobState::ALL)?,
                exports: destination_counts(tx)?,
                pending_exports: pending_exports(tx, limit)?,
                recent_jobs: select_all(
                    tx,
                    &format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?1"),
                    limit,
                    job_from_row,
                )?,
                recent_associations: select_recent(
                    tx,
                    usize::try_from(limit).unwrap_or(usize::MAX),
                )?,
                recent_findings: select_all(
                    tx,
                    "SELECT study_uid, study_version, series_uid, nodules, lung_rads, created_at
                     FROM findings ORDER BY created_at DESC, study_uid LIMIT ?1",
                    limit,
                    findings_summary_from_row,
                )?,
            })
        })
    }

    /// The study, its series, its jobs and its exports, or `None` for an unknown study.
    pub fn study_report(&self, study_uid: &Uid) -> Result<Option<StudyReport>> {
        self.read(|tx| {
            let study = tx
                .prepare_cached(&format!(
                    "SELECT {STUDY_COLUMNS} FROM studies WHERE study_uid = ?1"
                ))
                .and_then(|mut st| st.query_row([study_uid], study_from_row).optional())
                .ctx("read study")?;
            let Some(study) = study else { return Ok(None) };
            let jobs = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE study_uid = ?1 ORDER BY id");
            let exports =
                format!("SELECT {EXPORT_COLUMNS} FROM exports WHERE study_uid = ?1 ORDER BY id");
            Ok(Some(StudyReport {
                series: series_summaries(tx, study_uid)?,
                jobs: select_all(tx, &jobs, study_uid, job_from_row)?,
                exports: select_all(tx, &exports, study_uid, export_from_row)?,
                study,
            }))
        })
    }
}

fn findings_summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FindingsSummary> {
    Ok(FindingsSummary {
        study_uid: r.get(0)?,
        study_version: r.get(1)?,
        series_uid: r.get(2)?,
        nodules: get_u64(r, 3)?,
        lung_rads: r.get(4)?,
        created_at: r.get(5)?,
    })
}

fn select_all<P: rusqlite::ToSql, T>(
    tx: &Transaction<'_>,
    sql: &str,
    param: P,
    map: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut st = tx.prepare_cached(sql).ctx("prepare status query")?;
    let rows = st.query_map([param], map).ctx("status query")?;
    rows.collect::<rusqlite::Result<_>>().ctx("status query")
}

/// `SELECT state, count(*) ... GROUP BY state`, with a zero for every state not present.
/// `table` is one of our own constant table names, never input.
fn state_counts<S>(tx: &Transaction<'_>, table: &str, all: &[S]) -> Result<BTreeMap<S, u64>>
where
    S: rusqlite::types::FromSql + Ord + Copy,
{
    let mut counts: BTreeMap<S, u64> = all.iter().map(|&s| (s, 0)).collect();
    let mut st = tx
        .prepare_cached(&format!(
            "SELECT state, count(*) FROM {table} GROUP BY state"
        ))
        .ctx("prepare state counts")?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, S>(0)?, get_u64(r, 1)?)))
        .ctx("count states")?;
    for row in rows {
        let (state, n) = row.ctx("count states")?;
        counts.insert(state, n);
    }
    Ok(counts)
}

fn destination_counts(tx: &Transaction<'_>) -> Result<Vec<DestinationExports>> {
    let mut st = tx
        .prepare_cached("SELECT destination, state, count(*) FROM exports GROUP BY destination, state ORDER BY destination")
        .ctx("prepare export counts")?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, ExportState>(1)?,
                get_u64(r, 2)?,
            ))
        })
        .ctx("count exports")?;
    let mut out: Vec<DestinationExports> = Vec::new();
    for row in rows {
        let (destination, state, n) = row.ctx("count exports")?;
        if out.last().is_none_or(|d| d.destination != destination) {
            let counts = ExportState::ALL.iter().map(|&s| (s, 0)).collect();
            out.push(DestinationExports {
                destination,
                counts,
            });
        }
        if let Some(last) = out.last_mut() {
            last.counts.insert(state, n);
        }
    }
    Ok(out)
}

fn pending_exports(tx: &Transaction<'_>, limit: i64) -> Result<Vec<ExportGroup>> {
    // last_error comes from a correlated subquery: SQLite's "bare column next to max()" rule is
    // ambiguous when a query has several min()/max() aggregates, as this one does.
    let mut st = tx
        .prepare_cached(
            "SELECT destination, study_uid, state, count(*), max(attempts), min(next_attempt_at),
                    (SELECT l.last_error FROM exports AS l
                     WHERE l.destination = e.destination AND l.study_uid = e.study_uid
                       AND l.state = e.state AND l.last_error IS NOT NULL
                     ORDER BY l.updated_at DESC, l.id DESC LIMIT 1)
             FROM exports AS e WHERE state != 'done'
             GROUP BY destination, study_uid, state
             ORDER BY state = 'failed' DESC, min(next_attempt_at)
             LIMIT ?1",
        )
        .ctx("prepare pending exports")?;
    let rows = st
        .query_map([limit], |r| {
            Ok(ExportGroup {
                destination: r.get(0)?,
                study_uid: r.get(1)?,
                state: r.get(2)?,
                objects: get_u64(r, 3)?,
                attempts: get_u32(r, 4)?,
                next_attempt_at: r.get(5)?,
                last_error: r.get(6)?,
            })
        })
        .ctx("read pending exports")?;
    rows.collect::<rusqlite::Result<_>>()
        .ctx("read pending exports")
}

fn series_summaries(tx: &Transaction<'_>, study_uid: &Uid) -> Result<Vec<SeriesSummary>> {
    let mut st = tx
        .prepare_cached(
            "SELECT series_uid, count(*), sum(size_bytes), max(received_at) FROM instances
             WHERE study_uid = ?1 GROUP BY series_uid ORDER BY series_uid",
        )
        .ctx("prepare series summaries")?;
    let rows = st
        .query_map([study_uid], |r| {
            Ok(SeriesSummary {
                series_uid: r.get(0)?,
                instances: get_u64(r, 1)?,
                bytes: get_u64(r, 2)?,
                last_received_at: r.get(3)?,
            })
        })
        .ctx("read series summaries")?;
    rows.collect::<rusqlite::Result<_>>()
        .ctx("read series summaries")
}
