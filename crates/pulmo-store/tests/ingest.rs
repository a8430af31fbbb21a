//! put_instance: file + row, duplicates, replacements, concurrency, bad input.

mod common;

use std::fs;
use std::sync::Arc;
use std::thread;

use common::*;
use pulmo_store::{Outcome, StoreError, StudyState};

const STUDY: &str = "1.3.6.1.4.1.14519.5.2.1.6655.2359.122259036515695905512549026864";
const SERIES: &str = "1.3.6.1.4.1.14519.5.2.1.6655.2359.1";

#[test]
fn put_instance_writes_exact_bytes_and_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let inst = Inst::new(STUDY, SERIES, "1.2.3.1", b"DICM first content", 1_000);
    assert_eq!(inst.put(&store), Outcome::Stored);

    let rel = format!("{STUDY}/{SERIES}/1.2.3.1.dcm");
    assert_eq!(
        fs::read(spool_file(dir.path(), &rel)).unwrap(),
        b"DICM first content"
    );

    let row = store.instance(&inst.sop).unwrap().unwrap();
    assert_eq!(row.path.to_string(), rel);
    assert_eq!(
        store.spool().read(&row.path).unwrap(),
        b"DICM first content"
    );
    assert_eq!(row.size_bytes, 18);
    assert_eq!(row.study_version, 1);
    assert_eq!(row.received_at, t(1_000));
    assert_eq!(
        (row.calling_ae.as_str(), row.called_ae.as_str()),
        ("SCANNER", "PULMO")
    );
    assert_eq!(row.patient_id.as_str(), "PAT-0001");
    assert!(
        !format!("{row:?}").contains("PAT-0001"),
        "Debug must redact the patient id"
    );

    let study = store.study(&inst.study).unwrap().unwrap();
    assert_eq!(study.state, StudyState::Receiving);
    assert_eq!((study.version, study.instance_count), (1, 1));
    assert_eq!(
        (study.first_received_at, study.last_received_at),
        (t(1_000), t(1_000))
    );
}

#[test]
fn identical_resend_is_a_duplicate_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = Inst::new(STUDY, SERIES, "1.2.3.1", b"same", 1_000);
    first.put(&store);
    let resend = Inst::new(STUDY, SERIES, "1.2.3.1", b"same", 5_000);
    assert_eq!(resend.put(&store), Outcome::Duplicate);
    let study = store.study(&first.study).unwrap().unwrap();
    assert_eq!(
        (study.version, study.instance_count, study.last_received_at),
        (1, 1, t(1_000))
    );

    // Even after completion, a resend does not reopen the study.
    store
        .complete_study(&first.study, 1, t(20_000))
        .unwrap()
        .unwrap();
    assert_eq!(resend.put(&store), Outcome::Duplicate);
    let study = store.study(&first.study).unwrap().unwrap();
    assert_eq!((study.state, study.version), (StudyState::Complete, 1));
    assert_eq!(store.study_jobs(&first.study).unwrap().len(), 1);
}

#[test]
fn resend_after_the_spool_file_was_deleted_writes_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let inst = Inst::new(STUDY, SERIES, "1.2.3.1", b"content", 1_000);
    inst.put(&store);
    let file = spool_file(dir.path(), &format!("{STUDY}/{SERIES}/1.2.3.1.dcm"));
    fs::remove_file(&file).unwrap();
    // Nothing on disk vouches for the old content, so the resend counts as new content.
    assert_eq!(inst.put(&store), Outcome::Replaced);
    assert_eq!(fs::read(&file).unwrap(), b"content");
    assert_eq!(store.study(&inst.study).unwrap().unwrap().instance_count, 1);
}

#[test]
fn same_content_in_other_bytes_is_a_duplicate_when_the_caller_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    Inst::new(STUDY, SERIES, "1.2.3.1", b"encoding A", 1_000).put(&store);
    let other = Inst::new(STUDY, SERIES, "1.2.3.1", b"encoding B", 2_000);
    let asked = std::cell::RefCell::new(Vec::new());
    let same = |stored: &[u8]| {
        asked.borrow_mut().push(stored.to_vec());
        true
    };
    let resend = pulmo_store::NewInstance { same_content: Some(&same), ..other.as_new() };
    assert_eq!(store.put_instance(&resend).unwrap(), Outcome::Duplicate);
    assert_eq!(*asked.borrow(), [b"encoding A".to_vec()], "asked with the stored file's bytes");
    let row = store.instance(&other.sop).unwrap().unwrap();
    assert_eq!(store.spool().read(&row.path).unwrap(), b"encoding A");
    assert_eq!(store.study(&other.study).unwrap().unwrap().last_received_at, t(1_000));

    let differs = |_: &[u8]| false;
    let resend = pulmo_store::NewInstance { same_content: Some(&differs), ..other.as_new() };
    assert_eq!(store.put_instance(&resend).unwrap(), Outcome::Replaced);
    assert_eq!(store.spool().read(&row.path).unwrap(), b"encoding B");

    // Byte-identical resends never ask.
    let never = |_: &[u8]| panic!("identical bytes need no content test");
    let resend = pulmo_store::NewInstance { same_content: Some(&never), ..other.as_new() };
    assert_eq!(store.put_instance(&resend).unwrap(), Outcome::Duplicate);
}

#[test]
fn different_content_replaces_newest_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    Inst::new(STUDY, SERIES, "1.2.3.1", b"old", 1_000).put(&store);
    let newer = Inst::new(STUDY, SERIES, "1.2.3.1", b"newer", 2_000);
    assert_eq!(newer.put(&store), Outcome::Replaced);

    let row = store.instance(&newer.sop).unwrap().unwrap();
    assert_eq!(store.spool().read(&row.path).unwrap(), b"newer");
    assert_eq!(row.size_bytes, 5);
    // Still receiving: the replacement belongs to the pending version 1.
    let study = store.study(&newer.study).unwrap().unwrap();
    assert_eq!(
        (study.version, study.instance_count, study.last_received_at),
        (1, 1, t(2_000))
    );

    // After completion, a replacement is new content: version 2, receiving again.
    store
        .complete_study(&newer.study, 1, t(20_000))
        .unwrap()
        .unwrap();
    let newest = Inst::new(STUDY, SERIES, "1.2.3.1", b"newest", 30_000);
    assert_eq!(newest.put(&store), Outcome::Replaced);
    let study = store.study(&newer.study).unwrap().unwrap();
    assert_eq!(
        (study.state, study.version, study.instance_count),
        (StudyState::Receiving, 2, 1)
    );
    assert_eq!(
        store.instance(&newer.sop).unwrap().unwrap().study_version,
        2
    );
}

#[test]
fn replacement_into_another_study_moves_the_instance() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let old = Inst::new("1.2.1", "1.2.1.1", "1.2.3.1", b"old", 1_000);
    old.put(&store);
    let moved = Inst::new("1.2.2", "1.2.2.1", "1.2.3.1", b"moved", 2_000);
    assert_eq!(moved.put(&store), Outcome::Replaced);

    assert!(!spool_file(dir.path(), "1.2.1/1.2.1.1/1.2.3.1.dcm").exists());
    assert_eq!(
        fs::read(spool_file(dir.path(), "1.2.2/1.2.2.1/1.2.3.1.dcm")).unwrap(),
        b"moved"
    );
    assert_eq!(store.study(&old.study).unwrap().unwrap().instance_count, 0);
    assert_eq!(
        store.study(&moved.study).unwrap().unwrap().instance_count,
        1
    );
    assert!(store.study_instances(&old.study).unwrap().is_empty());
    assert_eq!(store.study_instances(&moved.study).unwrap().len(), 1);
}

#[test]
fn concurrent_puts_into_distinct_studies_are_all_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let threads: Vec<_> = (1..=4)
        .map(|thread_no| {
            let store = store.clone();
            thread::spawn(move || {
                for i in 1..=200 {
                    let study = format!("1.2.{thread_no}");
                    let sop = format!("1.2.{thread_no}.1.{i}");
                    let bytes = format!("instance {thread_no}/{i}").into_bytes();
                    let inst = Inst::new(&study, &format!("{study}.1"), &sop, &bytes, i);
                    assert_eq!(inst.put(&store), Outcome::Stored);
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    for thread_no in 1..=4 {
        let study = uid(&format!("1.2.{thread_no}"));
        assert_eq!(store.study(&study).unwrap().unwrap().instance_count, 200);
        let instances = store.study_instances(&study).unwrap();
        assert_eq!(instances.len(), 200);
        for i in 1..=200 {
            let row = store.instance(&uid(&format!("1.2.{thread_no}.1.{i}"))).unwrap().unwrap();
            let expected = format!("instance {thread_no}/{i}").into_bytes();
            assert_eq!(store.spool().read(&row.path).unwrap(), expected);
            assert_eq!(row.size_bytes, expected.len() as u64);
        }
    }
}

#[test]
fn concurrent_puts_of_one_uid_leave_file_and_row_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                for round in 0..10 {
                    let bytes = format!("version {n}.{round}").into_bytes();
                    Inst::new(STUDY, SERIES, "1.2.3.1", &bytes, round).put(&store);
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    // File and row come from the same put: the file names the round the row was received in.
    let row = store.instance(&uid("1.2.3.1")).unwrap().unwrap();
    let file = String::from_utf8(store.spool().read(&row.path).unwrap()).unwrap();
    let round: i64 = file.rsplit('.').next().unwrap().parse().unwrap();
    assert_eq!(t(round), row.received_at);
    assert_eq!(row.size_bytes, file.len() as u64);
    assert_eq!(store.study(&uid(STUDY)).unwrap().unwrap().instance_count, 1);
}

#[test]
fn tampered_path_in_database_is_an_error_not_a_traversal() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let inst = Inst::new(STUDY, SERIES, "1.2.3.1", b"x", 1);
    inst.put(&store);
    drop(store);
    let conn = rusqlite_conn(dir.path());
    conn.execute("UPDATE instances SET path = '../../etc/passwd'", [])
        .unwrap();
    drop(conn);
    let store = open(dir.path());
    assert!(matches!(
        store.instance(&inst.sop),
        Err(StoreError::Sqlite { .. })
    ));
}

#[test]
fn corrupted_or_foreign_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    fs::create_dir_all(cfg.db_path.parent().unwrap()).unwrap();
    fs::write(&cfg.db_path, vec![0xA5u8; 8192]).unwrap();
    let err = pulmo_store::Store::open(cfg).unwrap_err();
    assert!(matches!(err, StoreError::Sqlite { .. }), "{err}");

    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    rusqlite_conn(dir.path())
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let err = pulmo_store::Store::open(config(dir.path())).unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownSchemaVersion { found: 999, .. }),
        "{err}"
    );
}

/// A raw connection, to play the operator who edits the database by hand.
fn rusqlite_conn(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(config(dir).db_path).unwrap()
}
