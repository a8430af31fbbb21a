//! The "busy" answer written by hand: dicom-ul only emits permanent service-user rejects, so a
//! connection over the association limit gets A-ASSOCIATE-RJ transient / local-limit-exceeded.

use std::net::SocketAddr;
use std::time::Duration;

use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason, AssociationRJSource,
    PDU_HEADER_SIZE,
};
use dicom_ul::Pdu;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tracing::warn;

/// A busy peer must not hold a reject slot long.
const MAX_REJECT_WAIT: Duration = Duration::from_secs(10);
/// After our FIN, how long we wait for the peer to close, so the RJ is not lost to a reset.
const LINGER: Duration = Duration::from_secs(2);

/// The transient reject PDU (result 2, source 3 presentation, reason 2 local-limit-exceeded).
pub fn busy_reject() -> Pdu {
    Pdu::AssociationRJ(AssociationRJ {
        result: AssociationRJResult::Transient,
        source: AssociationRJSource::ServiceProviderPresentation(
            AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
        ),
    })
}

pub(crate) async fn reject_busy(
    mut socket: TcpStream,
    peer: SocketAddr,
    max_pdu: u32,
    read_timeout: Duration,
    _permit: OwnedSemaphorePermit,
) {
    let wait = read_timeout.min(MAX_REJECT_WAIT);
    let calling_ae = match tokio::time::timeout(wait, read_request(&mut socket, max_pdu)).await {
        Ok(Ok(calling_ae)) => calling_ae,
        Ok(Err(why)) => return warn!(%peer, reason = %why, "busy, and the association request was unreadable; closing"),
        Err(_) => return warn!(%peer, "busy, and no association request arrived; closing"),
    };
    warn!(%calling_ae, %peer, "association rejected (transient): local limit of concurrent associations reached");
    let mut bytes = Vec::new();
    if dicom_ul::write_pdu(&mut bytes, &busy_reject()).is_err() {
        return;
    }
    if tokio::time::timeout(wait, socket.write_all(&bytes)).await.is_err() {
        return;
    }
    let _ = socket.shutdown().await;
    // Read until the peer closes (it should, on receiving the RJ) so that unread bytes do not
    // turn our close into a reset that could destroy the RJ in flight.
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Reads one PDU, which must be an A-ASSOCIATE-RQ; returns its calling AE title.
async fn read_request(socket: &mut TcpStream, max_pdu: u32) -> Result<String, String> {
    let mut header = [0u8; PDU_HEADER_SIZE as usize];
    socket.read_exact(&mut header).await.map_err(|e| e.to_string())?;
    let len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
    if header[0] != 0x01 || len > max_pdu {
        return Err(format!("not an A-ASSOCIATE-RQ (type {:#04x}, length {len})", header[0]));
    }
    let mut pdu = header.to_vec();
    pdu.resize(header.len() + len as usize, 0);
    socket
        .read_exact(&mut pdu[header.len()..])
        .await
        .map_err(|e| e.to_string())?;
    match dicom_ul::read_pdu(&pdu[..], max_pdu, true) {
        Ok(Some(Pdu::AssociationRQ(rq))) => Ok(rq.calling_ae_title),
        Ok(_) => Err("incomplete A-ASSOCIATE-RQ".into()),
        Err(e) => Err(e.to_string()),
    }
}
