//! C-ECHO: echoscu (single and --repeat 3, which fails on wrong Message IDs), a raw dicom-ul
//! client checking MessageIDBeingRespondedTo and the 0x0211 answer to unsupported operations.

use std::time::Duration;

use dicom_dictionary_std::uids;
use dicom_ul::association::AsyncAssociation;
use dicom_ul::ClientAssociationOptions;
use pulmo_net::dimse::{self, field, tag, Command, CommandWriter};
use pulmo_net::AssociationEnd;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoscu_single_and_repeated() {
    init_tracing();
    if !have_dcmtk() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let handler = DirHandler::new(dir.path());
    let scp = Scp::start(test_policy(), handler.clone()).await;

    let once = echoscu(scp.port, &["-v"]).await;
    assert!(once.ok, "echoscu failed:\n{}", once.log);
    // DCMTK rejects a C-ECHO-RSP whose MessageIDBeingRespondedTo differs from its request.
    let repeated = echoscu(scp.port, &["-v", "--repeat", "3"]).await;
    assert!(repeated.ok, "echoscu --repeat 3 failed:\n{}", repeated.log);
    assert_eq!(
        repeated.log.matches("Received Echo Response (Success)").count(),
        3,
        "{}",
        repeated.log
    );

    scp.stop().await;
    let ended = handler.ended.lock().unwrap();
    let echoes: Vec<u64> = ended.iter().map(|(_, s)| s.echoes).collect();
    assert_eq!(echoes.iter().sum::<u64>(), 4);
    assert!(ended
        .iter()
        .all(|(i, s)| s.end == AssociationEnd::Released && i.called_ae == "PULMO"));
}

async fn raw_client(port: u16) -> dicom_ul::association::AsyncClientAssociation<tokio::net::TcpStream> {
    ClientAssociationOptions::new()
        .calling_ae_title("RAWSCU")
        .called_ae_title("PULMO")
        .with_presentation_context(uids::VERIFICATION, vec![uids::IMPLICIT_VR_LITTLE_ENDIAN])
        .read_timeout(Duration::from_secs(5))
        .establish_async(("127.0.0.1", port))
        .await
        .expect("association with our SCP")
}

async fn request(
    assoc: &mut dicom_ul::association::AsyncClientAssociation<tokio::net::TcpStream>,
    command: Vec<u8>,
) -> Command {
    let pdu = dicom_ul::Pdu::PData {
        data: vec![dicom_ul::pdu::PDataValue {
            presentation_context_id: 1,
            value_type: dicom_ul::pdu::PDataValueType::Command,
            is_last: true,
            data: command,
        }],
    };
    AsyncAssociation::send(assoc, &pdu).await.unwrap();
    match AsyncAssociation::receive(assoc).await.unwrap() {
        dicom_ul::Pdu::PData { data } => Command::parse(&data[0].data).unwrap(),
        other => panic!("expected P-DATA, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_answer_the_request_message_id_and_unknown_operations_get_0211() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let scp = Scp::start(test_policy(), DirHandler::new(dir.path())).await;
    let mut assoc = raw_client(scp.port).await;

    for id in [4242u16, 7, 65535] {
        let rsp = request(&mut assoc, dimse::echo_rq(id)).await;
        assert_eq!(rsp.command_field(), Some(field::C_ECHO_RSP));
        assert_eq!(rsp.u16(tag::MESSAGE_ID_BEING_RESPONDED_TO), Some(id));
        assert_eq!(rsp.u16(tag::STATUS), Some(0));
    }
    // A C-FIND-RQ (no data set announced, so the answer follows the command) is refused
    // with "unrecognized operation", and the association carries on.
    let find = CommandWriter::new()
        .uid(tag::AFFECTED_SOP_CLASS_UID, uids::VERIFICATION)
        .us(tag::COMMAND_FIELD, 0x0020)
        .us(tag::MESSAGE_ID, 11)
        .us(tag::COMMAND_DATA_SET_TYPE, dimse::NO_DATA_SET)
        .build();
    let rsp = request(&mut assoc, find).await;
    assert_eq!(rsp.command_field(), Some(0x8020));
    assert_eq!(rsp.u16(tag::MESSAGE_ID_BEING_RESPONDED_TO), Some(11));
    assert_eq!(rsp.u16(tag::STATUS), Some(pulmo_net::status::UNRECOGNIZED_OPERATION));
    let rsp = request(&mut assoc, dimse::echo_rq(12)).await;
    assert_eq!(rsp.u16(tag::MESSAGE_ID_BEING_RESPONDED_TO), Some(12));
    assoc.release().await.unwrap();
    scp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_stops_accepting_and_lets_associations_finish() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let scp = Scp::start(test_policy(), DirHandler::new(dir.path())).await;
    let port = scp.port;
    let mut assoc = raw_client(port).await;
    scp.request_stop();
    // New connections are refused once the listener is dropped.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "still accepting after shutdown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The in-flight association still works and releases normally; then serve returns.
    let rsp = request(&mut assoc, dimse::echo_rq(3)).await;
    assert_eq!(rsp.u16(tag::STATUS), Some(0));
    assoc.release().await.unwrap();
    scp.join().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_association_is_aborted_when_the_grace_period_expires() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let policy = pulmo_net::NodePolicy {
        shutdown_grace: Duration::from_millis(300),
        ..test_policy()
    };
    let handler = DirHandler::new(dir.path());
    let scp = Scp::start(policy, handler.clone()).await;
    let mut assoc = raw_client(scp.port).await;
    scp.request_stop();
    scp.join().await.unwrap();
    match AsyncAssociation::receive(&mut assoc).await {
        Ok(dicom_ul::Pdu::AbortRQ { .. }) | Err(_) => {}
        Ok(other) => panic!("expected A-ABORT, got {other:?}"),
    }
    let ended = handler.ended.lock().unwrap();
    assert!(
        matches!(&ended[0].1.end, AssociationEnd::Aborted(why) if why.contains("grace")),
        "{ended:?}"
    );
}
