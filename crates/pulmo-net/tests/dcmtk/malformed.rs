//! Hostile input from a raw TCP client: truncated and oversized PDUs, garbage after a valid
//! association, half a C-STORE. Each connection ends cleanly, nothing is stored, service goes on.

use std::time::Duration;

use dicom_dictionary_std::uids;
use dicom_ul::pdu::{AssociationRQ, PresentationContextProposed, UserVariableItem};
use dicom_ul::Pdu;
use pulmo_net::NodePolicy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

fn associate_rq(abstract_syntax: &str) -> Vec<u8> {
    let rq = Pdu::AssociationRQ(AssociationRQ {
        protocol_version: 1,
        calling_ae_title: "RAW".into(),
        called_ae_title: "PULMO".into(),
        application_context_name: "1.2.840.10008.3.1.1.1".into(),
        presentation_contexts: vec![PresentationContextProposed {
            id: 1,
            abstract_syntax: abstract_syntax.into(),
            transfer_syntaxes: vec![uids::EXPLICIT_VR_LITTLE_ENDIAN.into()],
        }],
        user_variables: vec![UserVariableItem::MaxLength(16384)],
    });
    let mut bytes = Vec::new();
    dicom_ul::write_pdu(&mut bytes, &rq).unwrap();
    bytes
}

/// Reads until the server closes (or `limit` passes); returns the bytes and whether it closed.
async fn read_to_close(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (all, closed)
}

/// Connects, sends a valid A-ASSOCIATE-RQ and checks the A-ASSOCIATE-AC.
async fn associated(port: u16, abstract_syntax: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(&associate_rq(abstract_syntax)).await.unwrap();
    let mut head = [0u8; 6];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(head[0], 0x02, "A-ASSOCIATE-AC");
    let len = u32::from_be_bytes([head[2], head[3], head[4], head[5]]) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    s
}

fn pdata(pc: u8, control: u8, data: &[u8]) -> Vec<u8> {
    let item_len = (data.len() + 2) as u32;
    let mut out = vec![0x04, 0];
    out.extend_from_slice(&(item_len + 4).to_be_bytes());
    out.extend_from_slice(&item_len.to_be_bytes());
    out.push(pc);
    out.push(control);
    out.extend_from_slice(data);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connections_end_cleanly_and_the_service_stays_up() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let handler = DirHandler::new(dir.path());
    let policy = NodePolicy {
        read_timeout: Duration::from_secs(1),
        ..test_policy()
    };
    let scp = Scp::start(policy, handler.clone()).await;
    let port = scp.port;
    let rq = associate_rq(uids::CT_IMAGE_STORAGE);

    // 1. Truncated A-ASSOCIATE-RQ, then close.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(&rq[..rq.len() / 2]).await.unwrap();
    drop(s);

    // 2. Truncated A-ASSOCIATE-RQ, connection held open: dropped at the read timeout.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(&rq[..10]).await.unwrap();
    let (_, closed) = read_to_close(&mut s, Duration::from_secs(10)).await;
    assert!(closed, "a stalled request must time out");

    // 3. Absurd PDU length: refused at once, nothing allocated or awaited.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(&[0x01, 0, 0xFF, 0xFF, 0xFF, 0xF0, 0, 1]).await.unwrap();
    let (_, closed) = read_to_close(&mut s, Duration::from_millis(900)).await;
    assert!(
        closed,
        "an absurd PDU length must end the connection before the read timeout"
    );

    // 4. Plain garbage instead of a PDU (an HTTP request).
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (_, closed) = read_to_close(&mut s, Duration::from_secs(3)).await;
    assert!(closed);

    // 5. Garbage after a valid association: A-ABORT, then close.
    let mut s = associated(port, uids::CT_IMAGE_STORAGE).await;
    s.write_all(&[0x55, 0x00, 0, 0, 0, 4, 1, 2, 3, 4]).await.unwrap();
    let (reply, closed) = read_to_close(&mut s, Duration::from_secs(3)).await;
    assert!(closed);
    assert_eq!(reply.first(), Some(&0x07), "A-ABORT expected, got {reply:?}");

    // 6. P-DATA whose PDV item length overruns the PDU.
    let mut s = associated(port, uids::CT_IMAGE_STORAGE).await;
    s.write_all(&[0x04, 0, 0, 0, 0, 8, 0, 0, 0x10, 0x00, 1, 0x03, 0, 0])
        .await
        .unwrap();
    let (reply, closed) = read_to_close(&mut s, Duration::from_secs(3)).await;
    assert!(closed);
    assert_eq!(reply.first(), Some(&0x07), "A-ABORT expected, got {reply:?}");

    // 7. A data fragment before any command.
    let mut s = associated(port, uids::CT_IMAGE_STORAGE).await;
    s.write_all(&pdata(1, 0x02, b"data!!")).await.unwrap();
    let (reply, closed) = read_to_close(&mut s, Duration::from_secs(3)).await;
    assert!(closed);
    assert_eq!(reply.first(), Some(&0x07));

    // 8. Half a C-STORE (command + part of the data set), then the client vanishes.
    let mut s = associated(port, uids::CT_IMAGE_STORAGE).await;
    let command = pulmo_net::dimse::store_rq(1, uids::CT_IMAGE_STORAGE, "1.2.3.4");
    s.write_all(&pdata(1, 0x03, &command)).await.unwrap();
    s.write_all(&pdata(1, 0x00, &[0u8; 1000])).await.unwrap();
    drop(s);

    // 9. An unparseable command set.
    let mut s = associated(port, uids::CT_IMAGE_STORAGE).await;
    s.write_all(&pdata(1, 0x03, &[0xFF; 20])).await.unwrap();
    let (reply, closed) = read_to_close(&mut s, Duration::from_secs(3)).await;
    assert!(closed);
    assert_eq!(reply.first(), Some(&0x07));

    // The node still answers, and nothing was stored.
    let target: pulmo_net::Peer = format!("PULMO@127.0.0.1:{port}").parse().unwrap();
    pulmo_net::echo(&target, "TESTSCU", Duration::from_secs(5))
        .await
        .unwrap();
    if have_dcmtk() {
        let run = echoscu(port, &[]).await;
        assert!(run.ok, "{}", run.log);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(handler.stored_count(), 0);
    scp.stop().await;
    let ended = handler.ended.lock().unwrap();
    let aborted = ended
        .iter()
        .filter(|(_, s)| matches!(s.end, pulmo_net::AssociationEnd::Aborted(_)))
        .count();
    assert_eq!(aborted, 4, "{ended:?}");
}
