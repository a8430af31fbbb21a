//! One established SCP association: reads PDUs, reassembles DIMSE messages, answers C-ECHO and
//! C-STORE (StoreHandler on the blocking pool; C-GET reuses this), releases or aborts, counts.

use std::future::Future;
use std::sync::Arc;

use dicom_ul::association::AsyncServerAssociation;
use dicom_ul::association::Error as UlError;
use dicom_ul::pdu::{
    AbortRQServiceProviderReason as AbortReason, AbortRQSource, PresentationContextResultReason, ReadError,
};
use dicom_ul::Pdu;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, warn};

use crate::assembler::{Assembler, Message};
use pulmo_dicom::valid_uid;
use pulmo_dicom::wire::read_sop_uids;
use crate::dimse::{self, field, tag, Response};
use crate::error::error_chain;
use crate::handler::{
    status, AssociationEnd, AssociationInfo, AssociationSummary, ReceivedInstance, StoreHandler, StoreResponse,
};

/// What the negotiation agreed for one accepted presentation context.
pub(crate) struct Context {
    pub abstract_syntax: String,
    pub transfer_syntax: String,
}

pub(crate) struct Session {
    assoc: AsyncServerAssociation<TcpStream>,
    info: AssociationInfo,
    handler: Arc<dyn StoreHandler>,
    assembler: Assembler,
    max_object_bytes: u64,
    summary: AssociationSummary,
}

impl Session {
    pub fn new(
        assoc: AsyncServerAssociation<TcpStream>,
        info: AssociationInfo,
        handler: Arc<dyn StoreHandler>,
        max_object_bytes: u64,
    ) -> Self {
        let summary = AssociationSummary {
            stored: 0,
            failed: 0,
            echoes: 0,
            bytes: 0,
            end: AssociationEnd::Released,
        };
        Session {
            assoc,
            info,
            handler,
            assembler: Assembler::new(max_object_bytes),
            max_object_bytes,
            summary,
        }
    }

    /// Serves until release, abort, error, or `deadline` (shutdown grace expired) fires while
    /// waiting for the next PDU; a store in progress is never cut off.
    pub async fn run(mut self, deadline: impl Future<Output = ()>) -> AssociationSummary {
        tokio::pin!(deadline);
        let end = loop {
            let pdu = tokio::select! {
                biased;
                _ = &mut deadline => break self.abort(AbortReason::ReasonNotSpecified, "shutdown grace period expired").await,
                pdu = self.assoc.receive() => pdu,
            };
            if let Some(end) = self.on_pdu(pdu).await {
                break end;
            }
        };
        self.summary.end = end;
        self.summary
    }

    /// Handles one PDU; `Some(end)` when the association is over.
    async fn on_pdu(&mut self, pdu: Result<Pdu, UlError>) -> Option<AssociationEnd> {
        match pdu {
            Ok(Pdu::PData { data }) => {
                for pdv in data {
                    let message = match self.assembler.push(pdv) {
                        Ok(Some(message)) => message,
                        Ok(None) => continue,
                        Err(reason) => return Some(self.abort(AbortReason::UnexpectedPduParameter, &reason).await),
                    };
                    if let Err(end) = self.dispatch(message).await {
                        return Some(end);
                    }
                }
                None
            }
            Ok(Pdu::ReleaseRQ) => Some(self.release().await),
            Ok(Pdu::AbortRQ { .. }) => Some(AssociationEnd::AbortedByPeer),
            Ok(other) => {
                let reason = format!("unexpected {} PDU", other.short_description());
                Some(self.abort(AbortReason::UnexpectedPdu, &reason).await)
            }
            Err(e) => Some(self.on_receive_error(e).await),
        }
    }

    async fn on_receive_error(&mut self, e: UlError) -> AssociationEnd {
        match e {
            UlError::Timeout { .. } => {
                self.abort(AbortReason::ReasonNotSpecified, "no PDU within the read timeout")
                    .await
            }
            UlError::ConnectionClosed { .. } | UlError::WireRead { .. } => {
                AssociationEnd::ConnectionLost("connection closed without release".into())
            }
            UlError::ReceivePdu {
                source: ReadError::ReadPdu { source, .. },
                ..
            } => AssociationEnd::ConnectionLost(format!("read failed: {source}")),
            other => {
                let reason = format!("malformed PDU: {}", error_chain(&other));
                self.abort(AbortReason::UnrecognizedPdu, &reason).await
            }
        }
    }

    async fn release(&mut self) -> AssociationEnd {
        if self.assembler.in_progress() {
            warn!(
                association = self.info.id,
                "release requested in the middle of a message; partial message dropped"
            );
        }
        if let Err(e) = self.assoc.send(&Pdu::ReleaseRP).await {
            return AssociationEnd::ConnectionLost(format!("sending A-RELEASE-RP: {}", error_chain(&e)));
        }
        let _ = self.assoc.inner_stream().shutdown().await;
        AssociationEnd::Released
    }

    /// Sends A-ABORT (service provider) and closes; nothing half-received is stored.
    async fn abort(&mut self, reason: AbortReason, why: &str) -> AssociationEnd {
        warn!(association = self.info.id, calling_ae = %self.info.calling_ae, peer = %self.info.peer, reason = why, "aborting association");
        let _ = self
            .assoc
            .send(&Pdu::AbortRQ {
                source: AbortRQSource::ServiceProvider(reason),
            })
            .await;
        let _ = self.assoc.inner_stream().shutdown().await;
        AssociationEnd::Aborted(why.to_string())
    }

    fn context(&self, id: u8) -> Option<Context> {
        self.assoc
            .presentation_contexts()
            .iter()
            .find(|pc| pc.id == id && pc.reason == PresentationContextResultReason::Acceptance)
            .map(|pc| Context {
                abstract_syntax: pc.abstract_syntax.clone(),
                transfer_syntax: pc.transfer_syntax.clone(),
            })
    }

    async fn dispatch(&mut self, message: Message) -> Result<(), AssociationEnd> {
        let id = message.presentation_context_id;
        let Some(context) = self.context(id) else {
            return Err(self
                .abort(
                    AbortReason::UnexpectedPduParameter,
                    &format!("message on presentation context {id}, which was not accepted"),
                )
                .await);
        };
        let (Some(command_field), Some(message_id)) = (message.command.command_field(), message.command.message_id())
        else {
            return Err(self
                .abort(
                    AbortReason::UnexpectedPduParameter,
                    "command set without Command Field or Message ID",
                )
                .await);
        };
        match command_field {
            field::C_ECHO_RQ => {
                self.summary.echoes += 1;
                self.reply(id, &dimse::echo_rsp(message_id)).await
            }
            field::C_STORE_RQ => self.store(message, context, message_id).await,
            // Operations are answered before the next message is read: nothing to cancel.
            field::C_CANCEL_RQ => Ok(()),
            f if f & field::RESPONSE_BIT != 0 => {
                warn!(
                    association = self.info.id,
                    command_field = f,
                    "ignoring a DIMSE response: this SCP sends no requests"
                );
                Ok(())
            }
            f => self.unrecognized(&message, f, message_id).await,
        }
    }

    async fn reply(&mut self, context_id: u8, command: &[u8]) -> Result<(), AssociationEnd> {
        match crate::pdata::send_message(&mut self.assoc, context_id, command, None).await {
            Ok(()) => Ok(()),
            Err(e) => Err(AssociationEnd::ConnectionLost(format!(
                "sending response: {}",
                error_chain(&e)
            ))),
        }
    }

    async fn unrecognized(
        &mut self,
        message: &Message,
        request_field: u16,
        message_id: u16,
    ) -> Result<(), AssociationEnd> {
        debug!(
            association = self.info.id,
            command_field = request_field,
            "unsupported DIMSE operation"
        );
        let cmd = &message.command;
        let class = cmd
            .text(tag::AFFECTED_SOP_CLASS_UID)
            .or_else(|| cmd.text(tag::REQUESTED_SOP_CLASS_UID));
        let rsp = Response {
            request_field,
            message_id,
            status: status::UNRECOGNIZED_OPERATION,
            sop_class_uid: class.as_deref().filter(|u| valid_uid(u)),
            sop_instance_uid: None,
            comment: Some("only C-ECHO and C-STORE are supported"),
        };
        self.reply(message.presentation_context_id, &rsp.encode()).await
    }

    async fn store(&mut self, message: Message, context: Context, message_id: u16) -> Result<(), AssociationEnd> {
        let context_id = message.presentation_context_id;
        let answer = answer_store(
            self.handler.clone(),
            message,
            message_id,
            &context,
            &self.info,
            self.max_object_bytes,
        )
        .await;
        if let Some(buffer) = answer.buffer {
            self.assembler.recycle(buffer);
        }
        if answer.outcome.is_stored() {
            self.summary.stored += 1;
            self.summary.bytes += answer.bytes;
        } else {
            self.summary.failed += 1;
        }
        self.reply(context_id, &answer.response).await
    }
}

/// A C-STORE-RQ answered: the C-STORE-RSP to send, and the data set buffer back for reuse.
pub(crate) struct StoreAnswer {
    pub response: Vec<u8>,
    pub outcome: StoreResponse,
    /// Data set bytes received.
    pub bytes: u64,
    pub buffer: Option<Vec<u8>>,
}

/// Stores the instance of a C-STORE-RQ (`message`) through `handler` and builds the response;
/// logs the outcome. Used by the SCP and by C-GET, whose C-STOREs arrive on our own SCU
/// association (`from` names the sender either way).
pub(crate) async fn answer_store(
    handler: Arc<dyn StoreHandler>,
    message: Message,
    message_id: u16,
    context: &Context,
    from: &AssociationInfo,
    max_object_bytes: u64,
) -> StoreAnswer {
    let uid = |element| message.command.text(element).filter(|u| valid_uid(u));
    let (class, instance) = (uid(tag::AFFECTED_SOP_CLASS_UID), uid(tag::AFFECTED_SOP_INSTANCE_UID));
    let bytes = message.data.as_ref().map_or(0, |d| d.len() as u64);
    let (outcome, buffer) = store_outcome(
        handler,
        message,
        context,
        (class.clone(), instance.clone()),
        from,
        max_object_bytes,
    )
    .await;
    if outcome.is_stored() {
        debug!(
            association = from.id,
            sop_class = class.as_deref(),
            sop_instance = instance.as_deref(),
            status = outcome.status,
            "instance stored"
        );
    } else {
        warn!(association = from.id, calling_ae = %from.calling_ae, status = format_args!("0x{:04X}", outcome.status), comment = outcome.comment.as_deref(), "C-STORE failed");
    }
    let response = Response {
        request_field: field::C_STORE_RQ,
        message_id,
        status: outcome.status,
        sop_class_uid: class.as_deref(),
        sop_instance_uid: instance.as_deref(),
        comment: outcome.comment.as_deref(),
    }
    .encode();
    StoreAnswer {
        response,
        outcome,
        bytes,
        buffer,
    }
}

/// The network-level checks of a C-STORE-RQ (`uids`: its valid SOP class and instance UIDs, if
/// any), then the handler on the blocking pool. Also hands back the data set buffer when it came
/// back from the handler, for the next instance to reuse.
async fn store_outcome(
    handler: Arc<dyn StoreHandler>,
    message: Message,
    context: &Context,
    uids: (Option<String>, Option<String>),
    from: &AssociationInfo,
    max_object_bytes: u64,
) -> (StoreResponse, Option<Vec<u8>>) {
    let (Some(class), Some(instance)) = uids else {
        let rsp = StoreResponse::failure(
            status::CANNOT_UNDERSTAND,
            "missing or invalid Affected SOP Class/Instance UID",
        );
        return (rsp, message.data);
    };
    if class != context.abstract_syntax {
        let rsp = StoreResponse::failure(
            status::SOP_CLASS_NOT_SUPPORTED,
            "SOP class differs from the presentation context's",
        );
        return (rsp, message.data);
    }
    if message.oversized {
        let comment = format!("data set larger than {max_object_bytes} bytes");
        return (StoreResponse::failure(status::OUT_OF_RESOURCES, comment), None);
    }
    let Some(dataset) = message.data else {
        return (
            StoreResponse::failure(status::CANNOT_UNDERSTAND, "C-STORE-RQ without a data set"),
            None,
        );
    };
    let req = ReceivedInstance {
        sop_class_uid: class,
        sop_instance_uid: instance,
        transfer_syntax_uid: context.transfer_syntax.clone(),
        dataset,
        calling_ae: from.calling_ae.clone(),
        called_ae: from.called_ae.clone(),
        peer: from.peer,
    };
    let stored = tokio::task::spawn_blocking(move || (check_and_store(handler.as_ref(), &req), req.dataset));
    match stored.await {
        Ok((response, buffer)) => (response, Some(buffer)),
        Err(e) => {
            warn!(association = from.id, error = %e, "store handler panicked");
            (
                StoreResponse::failure(status::OUT_OF_RESOURCES, "internal error while storing"),
                None,
            )
        }
    }
}

/// The data set must name the SOP class and instance the command announced (as DCMTK's
/// storescp checks): a mismatch is 0xA900, an unreadable head 0xC000.
fn check_and_store(handler: &dyn StoreHandler, req: &ReceivedInstance) -> StoreResponse {
    let uids = match read_sop_uids(&req.dataset, &req.transfer_syntax_uid) {
        Ok(uids) => uids,
        Err(e) => return StoreResponse::failure(status::CANNOT_UNDERSTAND, format!("unreadable data set: {e}")),
    };
    let (Some(class), Some(instance)) = (uids.sop_class_uid, uids.sop_instance_uid) else {
        return StoreResponse::failure(status::CANNOT_UNDERSTAND, "data set lacks SOP Class or Instance UID");
    };
    if class != req.sop_class_uid {
        return StoreResponse::failure(
            status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            "data set SOP Class UID differs from the command's",
        );
    }
    if instance != req.sop_instance_uid {
        return StoreResponse::failure(
            status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            "data set SOP Instance UID differs from the command's",
        );
    }
    handler.store(req)
}
