//! Studies, jobs and exports over time and across restarts: quiet time, versions, requeueing,
//! backoff, parking, association log and status.

mod common;

use std::time::Duration;

use common::*;
use pulmo_store::{
    AssociationEnd, AssociationOutcome, AssociationStart, Backoff, ExportObject, ExportRetry,
    ExportState, JobState, StoreError, StudyState,
};

const QUIET: Duration = Duration::from_secs(10);

fn object(sop: &str) -> ExportObject {
    ExportObject {
        sop_instance_uid: uid(sop),
        sop_class_uid: uid("1.2.840.10008.5.1.4.1.1.66.4"),
        path: format!("/results/{sop}.dcm").into(),
    }
}

#[test]
fn study_is_due_only_after_quiet_time_since_its_last_instance() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    Inst::new("1.2.1", "1.2.1.1", "1.2.1.1.1", b"a", 0).put(&store);
    Inst::new("1.2.1", "1.2.1.1", "1.2.1.1.2", b"b", 5_000).put(&store);

    assert!(
        store.due_studies(t(10_000), QUIET).unwrap().is_empty(),
        "quiet counts from the last instance"
    );
    assert!(store.due_studies(t(14_999), QUIET).unwrap().is_empty());
    let due = store.due_studies(t(15_000), QUIET).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].version, due[0].last_received_at), (1, t(5_000)));

    let done = store.complete_due_studies(t(15_000), QUIET).unwrap();
    assert_eq!(done.len(), 1);
    assert!(store.due_studies(t(99_000), QUIET).unwrap().is_empty());

    // A late instance: version 2, receiving, due quiet time after it, and a second job.
    Inst::new("1.2.1", "1.2.1.1", "1.2.1.1.3", b"c", 20_000).put(&store);
    let study = store.study(&uid("1.2.1")).unwrap().unwrap();
    assert_eq!(
        (study.state, study.version, study.instance_count),
        (StudyState::Receiving, 2, 3)
    );
    assert_eq!(study.completed_at, None);
    assert!(store.due_studies(t(29_999), QUIET).unwrap().is_empty());
    let done2 = store.complete_due_studies(t(30_000), QUIET).unwrap();
    assert_eq!((done2.len(), done2[0].version), (1, 2));
    let jobs = store.study_jobs(&uid("1.2.1")).unwrap();
    assert_eq!(
        jobs.iter().map(|j| j.study_version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        store
            .instance(&uid("1.2.1.1.3"))
            .unwrap()
            .unwrap()
            .study_version,
        2
    );
}

#[test]
fn complete_study_queues_one_job_per_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    Inst::new("1.2.1", "1.2.1.1", "1.2.1.1.1", b"a", 0).put(&store);
    let study = uid("1.2.1");
    assert!(
        store
            .complete_study(&study, 2, t(20_000))
            .unwrap()
            .is_none(),
        "wrong version"
    );
    let job = store.complete_study(&study, 1, t(20_000)).unwrap();
    assert!(job.is_some());
    assert!(
        store
            .complete_study(&study, 1, t(21_000))
            .unwrap()
            .is_none(),
        "second call"
    );
    assert_eq!(store.study_jobs(&study).unwrap().len(), 1);
    assert_eq!(
        store.study(&study).unwrap().unwrap().completed_at,
        Some(t(20_000))
    );
}

#[test]
fn everything_survives_reopen_and_interrupted_work_is_requeued() {
    let dir = tempfile::tempdir().unwrap();
    let (job_id, study) = {
        let store = open(dir.path());
        Inst::new("1.2.1", "1.2.1.1", "1.2.1.1.1", b"a", 1_000).put(&store);
        Inst::new("1.2.2", "1.2.2.1", "1.2.2.1.1", b"b", 2_000).put(&store);
        let job_id = store
            .complete_study(&uid("1.2.1"), 1, t(20_000))
            .unwrap()
            .unwrap();
        let claimed = store.claim_next_job(t(21_000)).unwrap().unwrap();
        assert_eq!(
            (claimed.id, claimed.state, claimed.attempts),
            (job_id, JobState::Running, 1)
        );
        store
            .queue_exports(
                &uid("1.2.1"),
                "PACS",
                &[object("1.9.1"), object("1.9.2")],
                t(22_000),
            )
            .unwrap();
        store
            .queue_exports(&uid("1.2.1"), "ARCHIVE", &[object("1.9.1")], t(22_000))
            .unwrap();
        assert_eq!(
            store.claim_due_exports("PACS", t(22_000), 10).unwrap()[0]
                .exports
                .len(),
            2
        );
        (job_id, uid("1.2.1"))
        // dropped here without any shutdown: as close to kill -9 as a test gets in-process
    };

    let store = open(dir.path());
    assert_eq!(store.study_instances(&study).unwrap().len(), 1);
    let s1 = store.study(&study).unwrap().unwrap();
    assert_eq!((s1.state, s1.version), (StudyState::Complete, 1));
    let s2 = store.study(&uid("1.2.2")).unwrap().unwrap();
    assert_eq!(
        (s2.state, s2.last_received_at),
        (StudyState::Receiving, t(2_000))
    );
    assert_eq!(
        store.due_studies(t(12_000), QUIET).unwrap().len(),
        1,
        "pending timer persisted"
    );

    assert_eq!(store.requeue_running_jobs().unwrap(), 1);
    assert_eq!(store.job(job_id).unwrap().unwrap().state, JobState::Queued);
    assert!(store
        .complete_study(&study, 1, t(30_000))
        .unwrap()
        .is_none());
    let again = store.claim_next_job(t(31_000)).unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (job_id, 2));
    assert!(
        store.claim_next_job(t(31_000)).unwrap().is_none(),
        "one job per study version"
    );
    store.finish_job(job_id, Ok(()), t(32_000)).unwrap();
    assert!(matches!(
        store.finish_job(job_id, Ok(()), t(33_000)),
        Err(StoreError::NotFound { .. })
    ));

    assert_eq!(store.requeue_sending_exports().unwrap(), 2);
    let exports = store.study_exports(&study).unwrap();
    assert_eq!(exports.len(), 3);
    assert!(exports.iter().all(|e| e.state == ExportState::Queued));
    assert_eq!(
        store.claim_due_exports("PACS", t(23_000), 10).unwrap()[0]
            .exports
            .len(),
        2
    );
}

#[test]
fn failed_job_keeps_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    Inst::new("1.2.1", "1.2.1.1", "1.2.1.1.1", b"a", 0).put(&store);
    store.complete_study(&uid("1.2.1"), 1, t(20_000)).unwrap();
    let job = store.claim_next_job(t(21_000)).unwrap().unwrap();
    store
        .finish_job(job.id, Err("no CT series"), t(22_000))
        .unwrap();
    let job = store.job(job.id).unwrap().unwrap();
    assert_eq!(
        (job.state, job.error.as_deref(), job.finished_at),
        (JobState::Failed, Some("no CT series"), Some(t(22_000)))
    );
}

#[test]
fn backoff_doubles_from_base_up_to_cap() {
    let b = Backoff {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(300),
        max_attempts: 20,
    };
    let secs: Vec<u64> = (1..=10).map(|n| b.delay(n).as_secs()).collect();
    assert_eq!(secs, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    assert_eq!(b.delay(u32::MAX), Duration::from_secs(300));
    assert_eq!(Backoff::default(), b);
}

#[test]
fn export_retries_with_backoff_then_parks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()); // backoff 2 s doubling, cap 10 s, 5 attempts
    store
        .queue_exports(&uid("1.2.1"), "PACS", &[object("1.9.1")], t(0))
        .unwrap();
    let mut now = 0;
    let mut schedule = Vec::new();
    loop {
        let batches = store.claim_due_exports("PACS", t(now), 10).unwrap();
        let id = batches[0].exports[0].id;
        match store
            .export_failed(id, "association rejected", t(now))
            .unwrap()
        {
            ExportRetry::RetryAt(at) => {
                schedule.push(at.millis() - now);
                assert!(store
                    .claim_due_exports("PACS", t(at.millis() - 1), 10)
                    .unwrap()
                    .is_empty());
                assert_eq!(store.next_export_due("PACS").unwrap(), Some(at));
                now = at.millis();
            }
            ExportRetry::Parked => break,
        }
    }
    assert_eq!(schedule, [2_000, 4_000, 8_000, 10_000], "attempt 5 parks");
    assert!(store
        .claim_due_exports("PACS", t(i64::MAX), 10)
        .unwrap()
        .is_empty());
    let e = &store.study_exports(&uid("1.2.1")).unwrap()[0];
    assert_eq!(
        (e.state, e.attempts, e.last_error.as_deref()),
        (ExportState::Failed, 5, Some("association rejected"))
    );

    assert_eq!(store.retry_parked_exports(Some("PACS"), t(now)).unwrap(), 1);
    let batch = &store.claim_due_exports("PACS", t(now), 10).unwrap()[0];
    assert_eq!(batch.exports[0].attempts, 1);
    store.export_done(batch.exports[0].id, t(now)).unwrap();
    assert!(matches!(
        store.export_done(batch.exports[0].id, t(now)),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn claim_groups_by_study_and_destination() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (a, b, c) = (uid("1.2.1"), uid("1.2.2"), uid("1.2.3"));
    store
        .queue_exports(&a, "PACS", &[object("1.9.1"), object("1.9.2")], t(0))
        .unwrap();
    store
        .queue_exports(&b, "PACS", &[object("1.9.3")], t(1))
        .unwrap();
    store
        .queue_exports(&a, "PACS", &[object("1.9.4")], t(2))
        .unwrap();
    store
        .queue_exports(&c, "PACS", &[object("1.9.5")], t(3))
        .unwrap();
    store
        .queue_exports(&a, "OTHER", &[object("1.9.1")], t(0))
        .unwrap();
    assert_eq!(
        store
            .queue_exports(&a, "PACS", &[object("1.9.1")], t(5))
            .unwrap(),
        0,
        "already queued"
    );

    let batches = store.claim_due_exports("PACS", t(10), 2).unwrap();
    let shape: Vec<(String, usize)> = batches
        .iter()
        .map(|b| (b.study_uid.to_string(), b.exports.len()))
        .collect();
    assert_eq!(shape, [("1.2.1".to_string(), 3), ("1.2.2".to_string(), 1)]);
    assert!(batches.iter().all(|b| b.destination == "PACS"));
    let ids: Vec<_> = batches[0].exports.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let rest = store.claim_due_exports("PACS", t(10), 10).unwrap();
    assert_eq!((rest.len(), rest[0].study_uid.as_str()), (1, "1.2.3"));
    assert_eq!(
        store.claim_due_exports("OTHER", t(10), 10).unwrap()[0]
            .exports
            .len(),
        1
    );
}

#[test]
fn association_log_keeps_the_last_n() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()); // limit 3
    for n in 0..5u64 {
        let start = AssociationStart {
            calling_ae: "SCANNER",
            called_ae: "PULMO",
            peer_addr: "127.0.0.1:4000",
            started_at: t(n as i64),
        };
        let id = store.log_association_start(&start).unwrap();
        let end = AssociationEnd {
            ended_at: t(n as i64 + 1),
            instances: n,
            bytes: n * 100,
            outcome: AssociationOutcome::Released,
            reason: None,
        };
        store.log_association_end(id, &end).unwrap();
    }
    let recent = store.recent_associations(10).unwrap();
    assert_eq!(
        recent.iter().map(|a| a.instances).collect::<Vec<_>>(),
        [4, 3, 2]
    );
    assert_eq!(recent[0].outcome, Some(AssociationOutcome::Released));
    assert_eq!((recent[0].bytes, recent[0].ended_at), (400, Some(t(5))));
}

#[test]
fn status_reflects_states() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for (i, study) in ["1.2.1", "1.2.2", "1.2.3"].iter().enumerate() {
        Inst::new(
            study,
            &format!("{study}.1"),
            &format!("{study}.1.1"),
            b"x",
            i as i64,
        )
        .put(&store);
    }
    store.complete_study(&uid("1.2.1"), 1, t(20_000)).unwrap();
    store.complete_study(&uid("1.2.2"), 1, t(20_000)).unwrap();
    store.claim_next_job(t(21_000)).unwrap();
    store
        .queue_exports(
            &uid("1.2.1"),
            "PACS",
            &[object("1.9.1"), object("1.9.2")],
            t(0),
        )
        .unwrap();
    let batch = store.claim_due_exports("PACS", t(0), 1).unwrap().remove(0);
    store.export_done(batch.exports[0].id, t(1)).unwrap();
    store
        .export_failed(batch.exports[1].id, "refused", t(1))
        .unwrap();
    let start = AssociationStart {
        calling_ae: "SCANNER",
        called_ae: "PULMO",
        peer_addr: "10.0.0.5:1111",
        started_at: t(0),
    };
    store.log_association_start(&start).unwrap();

    let s = store.status(10).unwrap();
    assert_eq!(s.studies[&StudyState::Receiving], 1);
    assert_eq!(s.studies[&StudyState::Complete], 2);
    assert_eq!(
        (
            s.jobs[&JobState::Queued],
            s.jobs[&JobState::Running],
            s.jobs[&JobState::Done]
        ),
        (1, 1, 0)
    );
    assert_eq!(s.exports.len(), 1);
    assert_eq!(
        (
            s.exports[0].counts[&ExportState::Done],
            s.exports[0].counts[&ExportState::Queued]
        ),
        (1, 1)
    );
    assert_eq!(s.pending_exports.len(), 1);
    let p = &s.pending_exports[0];
    assert_eq!(
        (p.state, p.objects, p.attempts, p.last_error.as_deref()),
        (ExportState::Queued, 1, 1, Some("refused"))
    );
    assert_eq!(s.recent_jobs.len(), 2);
    assert_eq!(s.recent_associations.len(), 1);

    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains("\"receiving\":1"), "{json}");
    assert!(
        !json.contains("PAT-0001"),
        "status must not carry patient ids"
    );

    let report = store.study_report(&uid("1.2.1")).unwrap().unwrap();
    assert_eq!(
        (
            report.series.len(),
            report.series[0].instances,
            report.series[0].bytes
        ),
        (1, 1, 1)
    );
    assert_eq!((report.jobs.len(), report.exports.len()), (1, 2));
    assert!(!serde_json::to_string(&report).unwrap().contains("PAT-0001"));
    assert!(store.study_report(&uid("9.9")).unwrap().is_none());
}

#[test]
fn pending_export_group_shows_the_latest_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .queue_exports(
            &uid("1.2.1"),
            "PACS",
            &[object("1.9.1"), object("1.9.2")],
            t(0),
        )
        .unwrap();
    let batch = store.claim_due_exports("PACS", t(0), 1).unwrap().remove(0);
    store
        .export_failed(batch.exports[1].id, "older error", t(1))
        .unwrap();
    store
        .export_failed(batch.exports[0].id, "newer error", t(2))
        .unwrap();
    let groups = store.status(10).unwrap().pending_exports;
    assert_eq!(groups.len(), 1);
    assert_eq!(
        (groups[0].objects, groups[0].last_error.as_deref()),
        (2, Some("newer error"))
    );
    assert_eq!(
        groups[0].next_attempt_at,
        t(2_001),
        "earliest retry of the group"
    );
}
