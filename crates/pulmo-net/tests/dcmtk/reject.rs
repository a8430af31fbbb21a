//! Rejections: unknown called AE, unknown calling AE, known AE from the wrong address, a SOP
//! class not accepted, SOP class/context mismatch, and a transient reject over the limit.

use std::time::Duration;

use dicom_dictionary_std::uids;
use dicom_ul::association::AsyncAssociation;
use dicom_ul::ClientAssociationOptions;
use pulmo_net::dimse::{self, tag, Command};
use pulmo_net::{status, AllowedPeer, NetError, NodePolicy};

use crate::common::*;

fn peers(list: &[(&str, Option<&str>)]) -> Vec<AllowedPeer> {
    list.iter()
        .map(|(ae, ip)| AllowedPeer {
            ae_title: ae.to_string(),
            ip: ip.map(|i| i.parse().unwrap()),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ae_titles_and_addresses_are_enforced() {
    init_tracing();
    if !have_dcmtk() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let handler = DirHandler::new(dir.path());
    // CT1 may only call from 127.0.0.2; we connect from 127.0.0.1.
    let policy = NodePolicy {
        peers: peers(&[("CT1", Some("127.0.0.2")), ("ECHOSCU", Some("127.0.0.1"))]),
        ..test_policy()
    };
    let scp = Scp::start(policy, handler.clone()).await;
    let port = scp.port.to_string();

    let wrong_called = dcmtk("echoscu", args(&["-aec", "NOT_PULMO", "127.0.0.1", &port])).await;
    assert!(!wrong_called.ok);
    assert!(
        wrong_called.log.contains("Called AE Title Not Recognized"),
        "{}",
        wrong_called.log
    );

    let unknown_calling = dcmtk(
        "echoscu",
        args(&["-aet", "STRANGER", "-aec", "PULMO", "127.0.0.1", &port]),
    )
    .await;
    assert!(!unknown_calling.ok);
    assert!(
        unknown_calling.log.contains("Calling AE Title Not Recognized"),
        "{}",
        unknown_calling.log
    );

    let wrong_address = dcmtk("echoscu", args(&["-aet", "CT1", "-aec", "PULMO", "127.0.0.1", &port])).await;
    assert!(!wrong_address.ok);
    assert!(
        wrong_address.log.contains("Rejected Permanent"),
        "{}",
        wrong_address.log
    );
    assert!(
        wrong_address.log.contains("Calling AE Title Not Recognized"),
        "{}",
        wrong_address.log
    );

    // Our SCU sees the same reject as a typed, permanent error.
    let target: pulmo_net::Peer = format!("NOT_PULMO@127.0.0.1:{port}").parse().unwrap();
    let err = pulmo_net::echo(&target, "ECHOSCU", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Rejected { transient: false, .. }), "{err}");
    assert!(!err.is_transient());

    // The allowed AE from its address still gets through.
    let allowed = dcmtk(
        "echoscu",
        args(&["-aet", "ECHOSCU", "-aec", "PULMO", "127.0.0.1", &port]),
    )
    .await;
    assert!(allowed.ok, "{}", allowed.log);
    assert!(handler
        .started
        .lock()
        .unwrap()
        .iter()
        .all(|i| i.calling_ae == "ECHOSCU"));
    scp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sop_class_not_accepted_gets_no_presentation_context() {
    init_tracing();
    let (true, Some(dx)) = (have_dcmtk(), shared_data("cxr/nih-chestxray14-no-finding.dcm")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let handler = DirHandler::new(dir.path());
    let policy = NodePolicy {
        sop_classes: vec![uids::CT_IMAGE_STORAGE.into()],
        ..test_policy()
    };
    let scp = Scp::start(policy, handler.clone()).await;
    let run = storescu(scp.port, &["-R"], &[dx]).await;
    assert!(!run.ok, "{}", run.log);
    assert!(
        run.log.contains("No presentation context") || run.log.contains("No Acceptable Presentation Contexts"),
        "{}",
        run.log
    );
    assert_eq!(handler.stored_count(), 0);
    assert!(echo_eventually(scp.port).await.ok);
    scp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn affected_sop_class_must_match_the_presentation_context() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let handler = DirHandler::new(dir.path());
    let scp = Scp::start(test_policy(), handler.clone()).await;
    let mut assoc = ClientAssociationOptions::new()
        .calling_ae_title("RAWSCU")
        .called_ae_title("PULMO")
        .with_presentation_context(uids::CT_IMAGE_STORAGE, vec![uids::EXPLICIT_VR_LITTLE_ENDIAN])
        .read_timeout(Duration::from_secs(5))
        .establish_async(("127.0.0.1", scp.port))
        .await
        .unwrap();
    // An Enhanced CT request on the CT Image Storage context.
    let command = dimse::store_rq(5, uids::ENHANCED_CT_IMAGE_STORAGE, "1.2.3.4");
    pulmo_net_send(&mut assoc, &command, Some(&[0u8; 16])).await;
    let rsp = match AsyncAssociation::receive(&mut assoc).await.unwrap() {
        dicom_ul::Pdu::PData { data } => Command::parse(&data[0].data).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(rsp.u16(tag::STATUS), Some(status::SOP_CLASS_NOT_SUPPORTED));
    assert_eq!(rsp.u16(tag::MESSAGE_ID_BEING_RESPONDED_TO), Some(5));
    assert_eq!(rsp.text(tag::AFFECTED_SOP_INSTANCE_UID).as_deref(), Some("1.2.3.4"));
    assoc.release().await.unwrap();
    assert_eq!(handler.stored_count(), 0);
    scp.stop().await;
}

/// Sends a command (and data) on context 1 as single PDVs.
pub async fn pulmo_net_send(
    assoc: &mut dicom_ul::association::AsyncClientAssociation<tokio::net::TcpStream>,
    command: &[u8],
    data: Option<&[u8]>,
) {
    use dicom_ul::pdu::{PDataValue, PDataValueType};
    let mut pdvs = vec![PDataValue {
        presentation_context_id: 1,
        value_type: PDataValueType::Command,
        is_last: true,
        data: command.to_vec(),
    }];
    if let Some(d) = data {
        pdvs.push(PDataValue {
            presentation_context_id: 1,
            value_type: PDataValueType::Data,
            is_last: true,
            data: d.to_vec(),
        });
    }
    AsyncAssociation::send(assoc, &dicom_ul::Pdu::PData { data: pdvs })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_gets_a_transient_reject_and_service_continues() {
    init_tracing();
    if !have_dcmtk() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = NodePolicy {
        max_associations: 1,
        ..test_policy()
    };
    let scp = Scp::start(policy, DirHandler::new(dir.path())).await;
    let held = ClientAssociationOptions::new()
        .calling_ae_title("HOLDER")
        .called_ae_title("PULMO")
        .with_presentation_context(uids::VERIFICATION, vec![uids::IMPLICIT_VR_LITTLE_ENDIAN])
        .establish_async(("127.0.0.1", scp.port))
        .await
        .unwrap();

    let busy = echoscu(scp.port, &[]).await;
    assert!(!busy.ok, "{}", busy.log);
    assert!(busy.log.contains("Rejected Transient"), "{}", busy.log);
    assert!(busy.log.contains("Local Limit Exceeded"), "{}", busy.log);

    let target: pulmo_net::Peer = format!("PULMO@127.0.0.1:{}", scp.port).parse().unwrap();
    let err = pulmo_net::echo(&target, "TESTSCU", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Rejected { transient: true, .. }), "{err}");
    assert!(err.is_transient());

    held.release().await.unwrap();
    let after = echo_eventually(scp.port).await;
    assert!(after.ok, "{}", after.log);
    scp.stop().await;
}
