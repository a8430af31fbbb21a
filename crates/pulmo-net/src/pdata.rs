//! Sending DIMSE messages as P-DATA-TF PDUs, fragmented to the peer's maximum PDU length.
//! We build the PDUs ourselves: dicom-ul's AsyncPDataWriter blocks in Drop (block_in_place).

use dicom_ul::association::{AsyncAssociation, Error as UlError};
use dicom_ul::pdu::{PDataValue, PDataValueType, PDV_HEADER_SIZE};
use dicom_ul::Pdu;
use tokio::net::TcpStream;

/// Upper bound on the PDUs we send even when the peer allows more: keeps buffers modest.
const MAX_SEND_PDU: u32 = 1 << 20;

/// Sends one message: the command set, then the data set if any, on `context_id`.
pub async fn send_message<A>(assoc: &mut A, context_id: u8, command: &[u8], data: Option<&[u8]>) -> Result<(), UlError>
where
    A: AsyncAssociation<TcpStream> + Send,
{
    let chunk = fragment_len(assoc.peer_max_pdu_length());
    send_value(assoc, context_id, PDataValueType::Command, command, chunk).await?;
    if let Some(data) = data {
        send_value(assoc, context_id, PDataValueType::Data, data, chunk).await?;
    }
    Ok(())
}

/// Payload bytes per PDV so that a PDU with one PDV fits the peer's maximum PDU length
/// (which counts the PDV's 4-byte length and 2-byte header, not the 6-byte PDU header).
fn fragment_len(peer_max_pdu: u32) -> usize {
    let max = if peer_max_pdu == 0 {
        MAX_SEND_PDU
    } else {
        peer_max_pdu.min(MAX_SEND_PDU)
    };
    max.saturating_sub(PDV_HEADER_SIZE).max(1) as usize
}

async fn send_value<A>(
    assoc: &mut A,
    context_id: u8,
    kind: PDataValueType,
    bytes: &[u8],
    chunk: usize,
) -> Result<(), UlError>
where
    A: AsyncAssociation<TcpStream> + Send,
{
    let count = bytes.len().div_ceil(chunk).max(1);
    for i in 0..count {
        let part = bytes
            .get(i * chunk..((i + 1) * chunk).min(bytes.len()))
            .unwrap_or_default();
        let pdu = Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context_id,
                value_type: kind.clone(),
                is_last: i + 1 == count,
                data: part.to_vec(),
            }],
        };
        AsyncAssociation::send(assoc, &pdu).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_fit_the_peer_limit() {
        assert_eq!(fragment_len(16384), 16378);
        assert_eq!(fragment_len(0), (MAX_SEND_PDU - 6) as usize);
        assert_eq!(fragment_len(u32::MAX - 7), (MAX_SEND_PDU - 6) as usize);
        assert_eq!(fragment_len(3), 1);
    }
}
