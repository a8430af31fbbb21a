//! Our SCU against DCMTK storescp: three objects in one association, C-ECHO, and the typed
//! errors (and their retry hint) for refuse, reject, aborts, timeouts and refused contexts.

use std::time::Duration;

use pulmo_net::{NetError, OutgoingObject, ScuOptions};

use crate::common::*;

fn three_objects() -> Option<Vec<OutgoingObject>> {
    let files = b40f_files()?;
    Some(
        files[..3]
            .iter()
            .map(|f| OutgoingObject::from_part10_file(f).unwrap())
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_objects_in_one_association_and_echo() {
    init_tracing();
    let (true, Some(objects)) = (have_dcmtk(), three_objects()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("in");
    std::fs::create_dir(&out).unwrap();
    let peer = Peer::storescp(&out, &[]).await;

    pulmo_net::echo(&peer.target(), "PULMO", Duration::from_secs(5))
        .await
        .unwrap();
    let uids: Vec<String> = objects.iter().map(|o| o.sop_instance_uid.clone()).collect();
    let report = pulmo_net::send(&peer.target(), "PULMO", objects).await.unwrap();
    assert!(report.all_stored(), "{report:?}");
    assert_eq!(
        report
            .results
            .iter()
            .map(|r| r.sop_instance_uid.clone())
            .collect::<Vec<_>>(),
        uids
    );

    let stored: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("CT."))
        .collect();
    assert_eq!(stored.len(), 3, "{stored:?}");
    for uid in &uids {
        assert!(stored.iter().any(|n| n.ends_with(uid.as_str())), "{uid} in {stored:?}");
    }
    let log = peer.log();
    // One association for the echo, one for all three stores (the readiness probe is
    // received but never acknowledged).
    assert_eq!(log.matches("Association Acknowledged").count(), 2, "{log}");
    assert_eq!(log.matches("Received Store Request").count(), 3, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescp_fault_flags_give_typed_errors() {
    init_tracing();
    let (true, Some(objects)) = (have_dcmtk(), three_objects()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    // --refuse: permanent A-ASSOCIATE-RJ.
    let peer = Peer::storescp(dir.path(), &["--refuse"]).await;
    let err = pulmo_net::send(&peer.target(), "PULMO", objects.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Rejected { transient: false, .. }), "{err}");
    assert!(!err.is_transient(), "a permanent reject is not retried blindly");
    drop(peer);

    // --reject only rejects requests without an Implementation Class UID; dicom-ul sends one.
    let peer = Peer::storescp(dir.path(), &["--reject"]).await;
    let report = pulmo_net::send(&peer.target(), "PULMO", objects[..1].to_vec())
        .await
        .unwrap();
    assert!(report.all_stored());
    drop(peer);

    // --abort-during / --abort-after: A-ABORT while storing, transient.
    for flag in ["--abort-during", "--abort-after"] {
        let peer = Peer::storescp(dir.path(), &[flag]).await;
        let err = pulmo_net::send(&peer.target(), "PULMO", objects.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, NetError::Aborted { .. }), "{flag}: {err}");
        assert!(err.is_transient());
    }

    // --sleep-during longer than our timeout: a transient timeout.
    let peer = Peer::storescp(dir.path(), &["--sleep-during", "3"]).await;
    let options = ScuOptions {
        timeout: Duration::from_millis(800),
        ..ScuOptions::default()
    };
    let err = pulmo_net::send_with(&peer.target(), "PULMO", objects[..1].to_vec(), &options)
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Timeout { .. }), "{err}");
    assert!(err.is_transient());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_and_refused_context() {
    init_tracing();
    // Nobody listening: a transient connection error.
    let nobody: pulmo_net::Peer = format!("NOBODY@127.0.0.1:{}", free_port()).parse().unwrap();
    let err = pulmo_net::echo(&nobody, "PULMO", Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Connect { .. }), "{err}");
    assert!(err.is_transient());

    // storescp accepts only uncompressed syntaxes by default: a JPEG-LS object is refused in
    // negotiation, reported before anything is sent, and not transient.
    let (true, Some(jls)) = (
        have_dcmtk(),
        shared_data("transfer-syntaxes/CTImage.dcm_JPEGLSLosslessTransferSyntax_1.2.840.10008.1.2.4.80.dcm"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::storescp(dir.path(), &[]).await;
    let object = OutgoingObject::from_part10_file(&jls).unwrap();
    assert_eq!(object.transfer_syntax_uid, "1.2.840.10008.1.2.4.80");
    let err = pulmo_net::send(&peer.target(), "PULMO", vec![object])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NetError::ContextRefused { transfer_syntax_uid, .. } if transfer_syntax_uid == "1.2.840.10008.1.2.4.80"),
        "{err}"
    );
    assert!(!err.is_transient());
    // The 18-byte Source AE Title in this file's meta does not trouble the reader.
    let mut mixed = three_objects().unwrap_or_default();
    mixed.truncate(1);
    let report = pulmo_net::send(&peer.target(), "PULMO", mixed).await.unwrap();
    assert!(report.all_stored());
}

/// `pulmo send` and `pulmo echo` run the SCU on a current-thread runtime, where anything
/// using block_in_place (dicom-ul's AsyncPDataWriter drop) would panic.
#[tokio::test(flavor = "current_thread")]
async fn scu_works_on_a_current_thread_runtime() {
    let (true, Some(objects)) = (have_dcmtk(), three_objects()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::storescp(dir.path(), &[]).await;
    pulmo_net::echo(&peer.target(), "PULMO", Duration::from_secs(5))
        .await
        .unwrap();
    let report = pulmo_net::send(&peer.target(), "PULMO", objects[..1].to_vec())
        .await
        .unwrap();
    assert!(report.all_stored());
}
