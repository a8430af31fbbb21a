//! What the analysis found, per study version and series: the `StudyFindings` as JSON, so that
//! the outputs, `pulmo status` and follow-up comparisons read them back exactly.

use pulmo_findings::StudyFindings;
use rusqlite::params;

use crate::db::Store;
use crate::error::{Result, SqlContext, StoreError};
use crate::time::Timestamp;
use crate::uid::Uid;

/// Findings as stored for one analysed series of a study version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFindings {
    pub study_version: i64,
    pub created_at: Timestamp,
    pub findings: StudyFindings,
}

impl Store {
    /// Records the findings of one series of a study version; a re-run replaces them.
    pub fn put_findings(&self, study_uid: &Uid, study_version: i64, findings: &StudyFindings, now: Timestamp) -> Result<()> {
        let json = serde_json::to_string(findings).map_err(|source| StoreError::Findings { study: study_uid.to_string(), source })?;
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO findings (study_uid, study_version, series_uid, nodules, lung_rads, created_at, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    study_uid,
                    study_version,
                    findings.source.series_uid,
                    findings.nodules.len() as i64,
                    findings.exam.lung_rads.code(),
                    now,
                    json
                ])
            })
            .ctx("insert findings")
        })?;
        Ok(())
    }

    /// Every stored analysis of a study, oldest version first.
    pub fn study_findings(&self, study_uid: &Uid) -> Result<Vec<StoredFindings>> {
        let rows: Vec<(i64, Timestamp, String)> = self.read(|tx| {
            let mut st = tx
                .prepare_cached("SELECT study_version, created_at, json FROM findings WHERE study_uid = ?1 ORDER BY study_version, series_uid")
                .ctx("prepare findings")?;
            let rows = st.query_map([study_uid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).ctx("read findings")?;
            rows.collect::<rusqlite::Result<_>>().ctx("read findings")
        })?;
        rows.into_iter()
            .map(|(study_version, created_at, json)| {
                let findings = serde_json::from_str(&json).map_err(|source| StoreError::Findings { study: study_uid.to_string(), source })?;
                Ok(StoredFindings { study_version, created_at, findings })
            })
            .collect()
    }
}
