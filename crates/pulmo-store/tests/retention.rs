//! Retention: received images of complete, idle studies are removed by age and by byte
//! budget, oldest first; a study still receiving or with work pending is kept; findings stay.

mod common;

use std::time::Duration;

use common::*;
use pulmo_store::{ExportObject, Retention};

const DAY_MS: i64 = 86_400_000;

/// Study `n` (1.2.n) with `count` 100-byte instances received on day `day`, completed.
fn study(store: &pulmo_store::Store, n: u32, count: u32, day: i64) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::new();
    for i in 0..count {
        let inst = Inst::new(&format!("1.2.{n}"), &format!("1.2.{n}.1"), &format!("1.2.{n}.1.{i}"), &[n as u8; 100], day * DAY_MS);
        inst.put(store);
        paths.push(store.spool().absolute(&pulmo_store::SpoolPath::instance(&inst.study, &inst.series, &inst.sop)));
    }
    let job = store.complete_study(&uid(&format!("1.2.{n}")), 1, t(day * DAY_MS + 60_000)).unwrap().unwrap();
    store.claim_next_job(t(day * DAY_MS + 60_000)).unwrap();
    store.finish_job(job, Ok(()), t(day * DAY_MS + 61_000)).unwrap();
    paths
}

#[test]
fn old_studies_give_back_their_images_and_keep_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let old = study(&store, 1, 3, 0);
    let recent = study(&store, 2, 2, 50);
    // Study 3 is old but still receiving (never completed).
    Inst::new("1.2.3", "1.2.3.1", "1.2.3.1.0", b"x", 0).put(&store);
    let now = t(60 * DAY_MS);
    let retention = Retention { max_age: Some(Duration::from_secs(30 * 86_400)), max_bytes: None };

    let expired = store.expire_studies(retention, now).unwrap();
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!((expired[0].study_uid.as_str(), expired[0].instances, expired[0].bytes), ("1.2.1", 3, 300));
    assert!(old.iter().all(|p| !p.exists()), "the old study's files are gone");
    assert!(recent.iter().all(|p| p.exists()));
    assert!(store.study_instances(&uid("1.2.1")).unwrap().is_empty());
    let row = store.study(&uid("1.2.1")).unwrap().expect("the study row stays");
    assert_eq!(row.instance_count, 0);
    assert_eq!(store.study_instances(&uid("1.2.3")).unwrap().len(), 1, "a receiving study is never expired");
    assert!(store.expire_studies(retention, now).unwrap().is_empty(), "nothing left to expire");
}

#[test]
fn a_byte_budget_removes_the_oldest_first_and_pending_work_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    study(&store, 1, 2, 1);
    study(&store, 2, 2, 2);
    study(&store, 3, 2, 3);
    // Study 1 (the oldest) still has an export to send: it must stay.
    let object = ExportObject { sop_instance_uid: uid("1.2.1.9"), sop_class_uid: uid(CT), path: dir.path().join("x.dcm") };
    store.queue_exports(&uid("1.2.1"), "pacs", &[object], t(DAY_MS)).unwrap();
    // 600 bytes held; a 250-byte budget frees the oldest idle studies until at most 250 remain.
    let retention = Retention { max_age: None, max_bytes: Some(250) };
    let expired = store.expire_studies(retention, t(10 * DAY_MS)).unwrap();
    let names: Vec<&str> = expired.iter().map(|e| e.study_uid.as_str()).collect();
    assert_eq!(names, ["1.2.2", "1.2.3"]);
    assert_eq!(store.study_instances(&uid("1.2.1")).unwrap().len(), 2);
    assert!(store.expire_studies(Retention::default(), t(10 * DAY_MS)).unwrap().is_empty(), "no limits, nothing expires");
}
