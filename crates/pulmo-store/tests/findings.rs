//! Findings per study version: stored as written, read back in version order, replaced by a
//! re-run of the same series, and a clear error for a row this build cannot read.

mod common;

use common::*;
use pulmo_clinical::lung_rads::Category;
use pulmo_findings::{
    Algorithm, ExamAssessment, LungSummary, PatientFacts, Processing, SourceSeries, StudyFindings, SCHEMA_VERSION,
};
use pulmo_store::StoreError;
use pulmo_volume::Geometry;

fn findings(series: &str, note: &str) -> StudyFindings {
    StudyFindings {
        schema_version: SCHEMA_VERSION,
        source: SourceSeries {
            study_uid: "1.2.7".into(),
            series_uid: series.into(),
            frame_of_reference_uid: Some("1.2.7.9".into()),
            study_date: Some("20260101".into()),
            dims: [3, 4, 5],
            geometry: Geometry::axial([-100.0, -120.0, 30.0], [2.5, 0.7, 0.7]).unwrap(),
            slices: Vec::new(),
        },
        algorithm: Algorithm { name: "pulmo".into(), version: "0.1.0".into(), models: Vec::new() },
        patient: PatientFacts { age_years: Some(64.0), female: Some(true) },
        lungs: LungSummary { right: None, left: None, carina_z_mm: None, laa950_fraction: 0.02, emphysema: false },
        nodules: Vec::new(),
        prior: None,
        exam: ExamAssessment { lung_rads: Category::One, management: "Continue annual screening".into(), fleischner: None },
        notes: vec![note.into()],
        processing: Processing { device: "cpu".into(), candidates: 0, detections: 0, stages: Vec::new() },
    }
}

#[test]
fn findings_round_trip_per_version_and_a_rerun_replaces_its_series() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let study = uid("1.2.7");
    Inst::new("1.2.7", "1.2.7.1", "1.2.7.1.1", b"a", 0).put(&store);
    assert!(store.put_findings(&uid("1.2.8"), 1, &findings("1.2.8.1", "no such study"), t(500)).is_err());
    let first = findings("1.2.7.1", "first");
    store.put_findings(&study, 1, &first, t(1_000)).unwrap();
    assert_eq!(store.status(10).unwrap().recent_findings[0].nodules, 0);
    store.put_findings(&study, 2, &findings("1.2.7.1", "version 2"), t(2_000)).unwrap();
    store.put_findings(&study, 1, &findings("1.2.7.2", "other series"), t(3_000)).unwrap();
    let rerun = findings("1.2.7.1", "rerun");
    store.put_findings(&study, 1, &rerun, t(4_000)).unwrap();

    let stored = store.study_findings(&study).unwrap();
    let seen: Vec<(i64, &str)> = stored.iter().map(|s| (s.study_version, s.findings.notes[0].as_str())).collect();
    assert_eq!(seen, [(1, "rerun"), (1, "other series"), (2, "version 2")]);
    assert_eq!(stored[0].findings, rerun, "stored exactly as written");
    assert_eq!(stored[0].created_at, t(4_000));
    assert!(store.study_findings(&uid("1.2.8")).unwrap().is_empty());
    drop(store);

    // A row written by something else (or a future schema) names the study, not a panic.
    let db = rusqlite::Connection::open(dir.path().join("db").join("pulmo.sqlite")).unwrap();
    db.execute("UPDATE findings SET json = '{\"schema_version\": 99}' WHERE study_version = 2", []).unwrap();
    drop(db);
    let store = open(dir.path());
    let err = store.study_findings(&study).unwrap_err();
    assert!(matches!(err, StoreError::Findings { .. }), "{err:?}");
    assert!(err.to_string().contains("1.2.7"), "{err}");
}
