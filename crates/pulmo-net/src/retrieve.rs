//! Study Root C-MOVE and C-GET SCU: a study, or one series of it, sent by the PACS to a
//! destination AE, or back on our association into a StoreHandler; counts and statuses reported.

use std::sync::Arc;
use std::time::Duration;

use dicom_dictionary_std::uids;
use tracing::{debug, warn};

use crate::assembler::Message;
use crate::dimse::{field, status_kind, tag, Command, StatusKind};
use crate::handler::{AssociationInfo, StoreHandler};
use crate::identifier::{self as id, Request};
use crate::policy::{valid_ae_title, NodePolicy};
use crate::scu::{Operation, Peer, QrRequest, ScuOptions};
use crate::session::answer_store;
use crate::NetError;
use pulmo_dicom::valid_uid;

/// Retrieve responses carry at most a Failed SOP Instance UID List: small.
const MAX_IDENTIFIER_BYTES: u64 = 4 << 20;

/// What to retrieve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetrieveLevel {
    Study { study_uid: String },
    Series { study_uid: String, series_uid: String },
}

/// The outcome of a retrieve: sub-operation counts of the final response (where the peer left
/// one out, the last pending response's) and the final status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetrieveReport {
    pub completed: u32,
    pub failed: u32,
    pub warning: u32,
    /// 0x0000, or a warning such as 0xB000 (one or more sub-operations failed).
    pub status: u16,
}

impl RetrieveReport {
    /// Success and no failed sub-operation: everything asked for arrived.
    pub fn is_complete(&self) -> bool {
        self.status == 0 && self.failed == 0
    }

    /// Takes the counts `response` carries (US values; absent ones keep their last value).
    fn update(&mut self, response: &Command, status: u16) {
        let count = |element, last: u32| response.u16(element).map_or(last, u32::from);
        self.completed = count(tag::NUMBER_OF_COMPLETED_SUBOPERATIONS, self.completed);
        self.failed = count(tag::NUMBER_OF_FAILED_SUBOPERATIONS, self.failed);
        self.warning = count(tag::NUMBER_OF_WARNING_SUBOPERATIONS, self.warning);
        self.status = status;
    }
}

/// C-MOVE: asks `peer` to send `what` to `destination_ae`, which the peer must know by that AE
/// title (its address comes from the peer's configuration, not from us). Returns when the peer
/// sends the final response: success, or a warning with failed sub-operations counted in the
/// report. A failure or cancel status is `NetError::OperationFailed` (0xA801: the peer does not
/// know the destination; Orthanc 1.10 says 0xC000 then, and also when a sub-operation fails).
/// `timeout` bounds the connection and each wait for a response, not the whole retrieve.
pub async fn move_to(
    peer: &Peer,
    calling_ae: &str,
    what: &RetrieveLevel,
    destination_ae: &str,
    timeout: Duration,
) -> Result<RetrieveReport, NetError> {
    if !valid_ae_title(destination_ae) {
        return Err(NetError::InvalidInput(format!(
            "invalid move destination AE title {destination_ae:?}"
        )));
    }
    let request = QrRequest {
        request_field: field::C_MOVE_RQ,
        sop_class_uid: uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_MOVE,
        move_destination: Some(destination_ae),
        identifier: what.identifier()?,
        storage: Vec::new(),
        max_data: MAX_IDENTIFIER_BYTES,
    };
    let mut op = Operation::start(peer, calling_ae, request, &ScuOptions::with_timeout(timeout)).await?;
    let result = follow(&mut op, "C-MOVE", None).await;
    op.end(result).await
}

/// C-GET: asks `peer` to send `what` back on the same association. Each instance is checked
/// and stored as the SCP would (`receiving`'s SOP classes, transfer syntaxes, PDU and size
/// limits; `store` on the blocking pool, seeing the peer's AE as calling and ours as called AE)
/// and its status answered; we propose the SCP role for each storage class. The outcome is
/// reported as for `move_to`: instances the handler refused count as failed sub-operations.
pub async fn get(
    peer: &Peer,
    calling_ae: &str,
    what: &RetrieveLevel,
    receiving: &NodePolicy,
    store: Arc<dyn StoreHandler>,
    timeout: Duration,
) -> Result<RetrieveReport, NetError> {
    receiving.validate()?;
    let syntaxes = receiving.decodable_transfer_syntaxes();
    let storage = receiving
        .abstract_syntaxes()
        .into_iter()
        .filter(|class| class != uids::VERIFICATION)
        .map(|class| (class, syntaxes.clone()))
        .collect();
    let request = QrRequest {
        request_field: field::C_GET_RQ,
        sop_class_uid: uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_GET,
        move_destination: None,
        identifier: what.identifier()?,
        storage,
        max_data: receiving.max_object_bytes,
    };
    let options = ScuOptions {
        max_pdu: receiving.max_pdu,
        ..ScuOptions::with_timeout(timeout)
    };
    let mut op = Operation::start(peer, calling_ae, request, &options).await?;
    let sink = Sink {
        handler: store,
        from: AssociationInfo {
            // Not one of the SCP's associations: no number of its sequence.
            id: 0,
            calling_ae: peer.ae_title.clone(),
            called_ae: calling_ae.to_string(),
            peer: op.peer_addr(),
        },
        max_object_bytes: receiving.max_object_bytes,
    };
    let result = follow(&mut op, "C-GET", Some(&sink)).await;
    op.end(result).await
}

/// Where a C-GET's instances go.
struct Sink {
    handler: Arc<dyn StoreHandler>,
    from: AssociationInfo,
    max_object_bytes: u64,
}

impl RetrieveLevel {
    /// The unique keys down to the level retrieved (Study Root needs the study's with a series').
    fn identifier(&self) -> Result<Request, NetError> {
        let (study_uid, series_uid) = match self {
            RetrieveLevel::Study { study_uid } => (study_uid, None),
            RetrieveLevel::Series { study_uid, series_uid } => (study_uid, Some(series_uid)),
        };
        for uid in std::iter::once(study_uid).chain(series_uid) {
            if !valid_uid(uid) {
                return Err(NetError::InvalidInput(format!("invalid UID {uid:?} to retrieve")));
            }
        }
        let level = if series_uid.is_some() { "SERIES" } else { "STUDY" };
        let mut request = Request::new(level).key(id::STUDY_INSTANCE_UID, Some(study_uid));
        if let Some(series_uid) = series_uid {
            request = request.key(id::SERIES_INSTANCE_UID, Some(series_uid));
        }
        Ok(request)
    }
}

/// Reads responses until the final one, keeping the sub-operation counts; a C-GET's C-STOREs,
/// which come between the responses, go to `sink`.
async fn follow(op: &mut Operation, operation: &'static str, sink: Option<&Sink>) -> Result<RetrieveReport, NetError> {
    let mut report = RetrieveReport::default();
    loop {
        let message = op.next_message().await?;
        if message.command.command_field() == Some(field::C_STORE_RQ) {
            match sink {
                Some(sink) => receive(op, message, sink).await?,
                None => return Err(op.protocol(format!("C-STORE-RQ on a {operation} association"))),
            }
            continue;
        }
        let (status, message) = op.response(message)?;
        report.update(&message.command, status);
        match status_kind(status) {
            StatusKind::Pending => {
                let remaining = message.command.u16(tag::NUMBER_OF_REMAINING_SUBOPERATIONS);
                debug!(
                    peer = op.peer(),
                    operation,
                    remaining,
                    completed = report.completed,
                    failed = report.failed,
                    "retrieve in progress"
                );
            }
            StatusKind::Success | StatusKind::Warning => {
                if report.failed > 0 || status != 0 {
                    warn!(
                        peer = op.peer(),
                        operation,
                        status = format_args!("0x{status:04X}"),
                        ?report,
                        "retrieve incomplete"
                    );
                }
                return Ok(report);
            }
            StatusKind::Cancel | StatusKind::Failure => {
                return Err(NetError::OperationFailed {
                    peer: op.peer().to_string(),
                    operation,
                    status,
                    comment: message.command.text(tag::ERROR_COMMENT),
                    report: Some(report),
                });
            }
        }
    }
}

/// Stores one instance of a C-GET and answers its C-STORE-RQ.
async fn receive(op: &mut Operation, message: Message, sink: &Sink) -> Result<(), NetError> {
    let context_id = message.presentation_context_id;
    let Some(context) = op.context(context_id) else {
        return Err(op.protocol(format!(
            "C-STORE-RQ on presentation context {context_id}, which was not accepted"
        )));
    };
    let Some(message_id) = message.command.message_id() else {
        return Err(op.protocol("C-STORE-RQ without Message ID (0000,0110)".into()));
    };
    let answer = answer_store(
        sink.handler.clone(),
        message,
        message_id,
        &context,
        &sink.from,
        sink.max_object_bytes,
    )
    .await;
    op.send(context_id, &answer.response).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dimse::CommandWriter;

    #[test]
    fn counts_come_from_the_latest_response_that_has_them() {
        let mut report = RetrieveReport::default();
        let pending = CommandWriter::new()
            .us(tag::NUMBER_OF_REMAINING_SUBOPERATIONS, 2)
            .us(tag::NUMBER_OF_COMPLETED_SUBOPERATIONS, 3)
            .us(tag::NUMBER_OF_FAILED_SUBOPERATIONS, 1)
            .build();
        report.update(&Command::parse(&pending).unwrap(), 0xFF00);
        let last = CommandWriter::new()
            .us(tag::NUMBER_OF_COMPLETED_SUBOPERATIONS, 4)
            .build();
        report.update(&Command::parse(&last).unwrap(), 0xB000);
        assert_eq!(
            report,
            RetrieveReport {
                completed: 4,
                failed: 1,
                warning: 0,
                status: 0xB000
            }
        );
        assert!(!report.is_complete());
    }

    #[test]
    fn levels_are_checked() {
        let study = RetrieveLevel::Study {
            study_uid: "1.2.3".into(),
        };
        assert!(study.identifier().is_ok());
        let series = RetrieveLevel::Series {
            study_uid: "1.2.3".into(),
            series_uid: "1.2.3.x".into(),
        };
        assert!(matches!(series.identifier(), Err(NetError::InvalidInput(_))));
    }
}
