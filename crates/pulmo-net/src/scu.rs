//! SCU associations, one per call: C-ECHO, C-STORE (objects sent in the transfer syntax their
//! bytes are in, per-object statuses) and the one under each query/retrieve operation.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use dicom_dictionary_std::uids;
use dicom_ul::association::Error as UlError;
use dicom_ul::pdu::{PDataValue, PresentationContextNegotiated, PresentationContextResultReason};
use dicom_ul::{ClientAssociationOptions, Pdu};
use tokio::net::TcpStream;
use tracing::{debug, warn};

use crate::assembler::{Assembler, Message};
use pulmo_dicom::valid_uid;
use crate::dimse::{self, field, tag, Command};
use crate::error::error_chain;
use crate::identifier;
use crate::policy::valid_ae_title;
use crate::session::Context;
use crate::NetError;

type ClientAssociation = dicom_ul::association::AsyncClientAssociation<TcpStream>;

/// Presentation context ids are odd bytes 1..=255: at most 128 per association.
const MAX_CONTEXTS: usize = 128;

/// A remote application entity, written `AE@host:port` (IPv6 hosts in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub ae_title: String,
    pub host: String,
    pub port: u16,
}

impl FromStr for Peer {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| NetError::InvalidInput(format!("peer {s:?}: {why} (expected AE@host:port)"));
        let (ae, address) = s.split_once('@').ok_or_else(|| bad("missing '@'"))?;
        let (host, port) = address.rsplit_once(':').ok_or_else(|| bad("missing ':port'"))?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let port: u16 = port.parse().map_err(|_| bad("invalid port"))?;
        if !valid_ae_title(ae) {
            return Err(bad("invalid AE title"));
        }
        if host.is_empty() || port == 0 {
            return Err(bad("empty host or port 0"));
        }
        Ok(Peer {
            ae_title: ae.to_string(),
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.ae_title, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.ae_title, self.host, self.port)
        }
    }
}

/// One instance to send: its data set bytes (no file meta) in `transfer_syntax_uid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingObject {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub transfer_syntax_uid: String,
    pub dataset: Vec<u8>,
}

/// The peer's answer to one C-STORE-RQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStatus {
    pub sop_instance_uid: String,
    pub status: u16,
    pub comment: Option<String>,
}

impl ObjectStatus {
    /// Success or warning (0xB000-0xBFFF): the peer kept the instance.
    pub fn is_stored(&self) -> bool {
        self.status == 0 || (0xB000..=0xBFFF).contains(&self.status)
    }
}

/// Per-object outcome of a `send`, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReport {
    pub peer: String,
    pub results: Vec<ObjectStatus>,
}

impl SendReport {
    pub fn all_stored(&self) -> bool {
        self.results.iter().all(ObjectStatus::is_stored)
    }

    pub fn failures(&self) -> impl Iterator<Item = &ObjectStatus> {
        self.results.iter().filter(|r| !r.is_stored())
    }
}

/// Timeouts and PDU size of SCU associations.
#[derive(Debug, Clone)]
pub struct ScuOptions {
    pub connect_timeout: Duration,
    /// Per read and per write of a PDU (a slow peer answering a C-STORE counts here).
    pub timeout: Duration,
    /// Largest PDU we accept from the peer.
    pub max_pdu: u32,
}

impl Default for ScuOptions {
    fn default() -> Self {
        ScuOptions {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_pdu: 262_138,
        }
    }
}

impl ScuOptions {
    /// One `timeout` for connecting and for each wait on the peer; default PDU size.
    pub fn with_timeout(timeout: Duration) -> Self {
        ScuOptions {
            connect_timeout: timeout,
            timeout,
            ..ScuOptions::default()
        }
    }
}

/// C-ECHO: succeeds when the peer accepts a Verification association and answers 0x0000.
pub async fn echo(target: &Peer, calling_ae: &str, timeout: Duration) -> Result<(), NetError> {
    let options = ScuOptions::with_timeout(timeout);
    let contexts = vec![(
        uids::VERIFICATION.to_string(),
        vec![
            uids::IMPLICIT_VR_LITTLE_ENDIAN.to_string(),
            uids::EXPLICIT_VR_LITTLE_ENDIAN.to_string(),
        ],
    )];
    let peer = target.to_string();
    let mut assoc = connect(target, calling_ae, contexts, &[], &options).await?;
    let context_id = assoc.presentation_contexts().first().map(|pc| pc.id).unwrap_or(1);
    let rsp = match exchange(
        &mut assoc,
        &peer,
        context_id,
        1,
        &dimse::echo_rq(1),
        None,
        field::C_ECHO_RSP,
    )
    .await
    {
        Ok(rsp) => rsp,
        Err(e) => return Err(close_after_error(assoc, e).await),
    };
    release(assoc, &peer).await;
    match rsp.u16(tag::STATUS) {
        Some(0) => Ok(()),
        other => Err(NetError::EchoStatus {
            peer,
            status: other.unwrap_or(0xFFFF),
        }),
    }
}

/// C-STORE of all `objects` in one association, with default timeouts.
pub async fn send(target: &Peer, calling_ae: &str, objects: Vec<OutgoingObject>) -> Result<SendReport, NetError> {
    send_with(target, calling_ae, objects, &ScuOptions::default()).await
}

/// C-STORE of all `objects` in one association. A refused presentation context fails the
/// whole call before anything is sent (`NetError::ContextRefused`, not transient); failure
/// statuses of individual objects are reported in the `SendReport`, not as errors.
pub async fn send_with(
    target: &Peer,
    calling_ae: &str,
    objects: Vec<OutgoingObject>,
    options: &ScuOptions,
) -> Result<SendReport, NetError> {
    let peer = target.to_string();
    if objects.is_empty() {
        return Ok(SendReport {
            peer,
            results: Vec::new(),
        });
    }
    let contexts = needed_contexts(&objects)?;
    let mut assoc = connect(target, calling_ae, contexts, &[], options).await?;
    let plan = match plan_contexts(&objects, assoc.presentation_contexts(), &peer) {
        Ok(plan) => plan,
        Err(e) => {
            let _ = assoc.release().await;
            return Err(e);
        }
    };
    let mut results = Vec::with_capacity(objects.len());
    for (i, (object, context_id)) in objects.iter().zip(plan).enumerate() {
        let message_id = (i % usize::from(u16::MAX)) as u16 + 1;
        let command = dimse::store_rq(message_id, &object.sop_class_uid, &object.sop_instance_uid);
        let result = exchange(
            &mut assoc,
            &peer,
            context_id,
            message_id,
            &command,
            Some(&object.dataset),
            field::C_STORE_RSP,
        )
        .await;
        let rsp = match result {
            Ok(rsp) => rsp,
            Err(e) => return Err(close_after_error(assoc, e).await),
        };
        let status = ObjectStatus {
            sop_instance_uid: object.sop_instance_uid.clone(),
            status: rsp.u16(tag::STATUS).unwrap_or(0xFFFF),
            comment: rsp.text(tag::ERROR_COMMENT),
        };
        debug!(%peer, sop_instance = %status.sop_instance_uid, status = status.status, "C-STORE answered");
        results.push(status);
    }
    release(assoc, &peer).await;
    Ok(SendReport { peer, results })
}

/// One presentation context per distinct (SOP class, transfer syntax), in order of appearance.
fn needed_contexts(objects: &[OutgoingObject]) -> Result<Vec<(String, Vec<String>)>, NetError> {
    let mut contexts: Vec<(String, Vec<String>)> = Vec::new();
    for o in objects {
        if ![&o.sop_class_uid, &o.sop_instance_uid, &o.transfer_syntax_uid]
            .iter()
            .all(|u| valid_uid(u))
        {
            return Err(NetError::InvalidInput(format!(
                "object {:?} has an invalid UID",
                o.sop_instance_uid
            )));
        }
        let pair = (o.sop_class_uid.clone(), vec![o.transfer_syntax_uid.clone()]);
        if !contexts.contains(&pair) {
            contexts.push(pair);
        }
    }
    if contexts.len() > MAX_CONTEXTS {
        return Err(NetError::InvalidInput(format!(
            "{} distinct SOP class/transfer syntax pairs; one association carries at most {MAX_CONTEXTS}",
            contexts.len()
        )));
    }
    Ok(contexts)
}

/// The accepted context id for each object, or the first (class, syntax) the peer refused.
fn plan_contexts(
    objects: &[OutgoingObject],
    accepted: &[PresentationContextNegotiated],
    peer: &str,
) -> Result<Vec<u8>, NetError> {
    objects
        .iter()
        .map(|o| {
            accepted
                .iter()
                .find(|pc| pc.abstract_syntax == o.sop_class_uid && trim(&pc.transfer_syntax) == o.transfer_syntax_uid)
                .map(|pc| pc.id)
                .ok_or_else(|| NetError::ContextRefused {
                    peer: peer.to_string(),
                    sop_class_uid: o.sop_class_uid.clone(),
                    transfer_syntax_uid: o.transfer_syntax_uid.clone(),
                })
        })
        .collect()
}

fn trim(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' ']).trim()
}

/// Requests an association with `contexts` (abstract syntax, proposed transfer syntaxes) and,
/// for each SOP class in `scp_roles`, SCP/SCU role selection offering to act as its SCP too.
async fn connect(
    target: &Peer,
    calling_ae: &str,
    contexts: Vec<(String, Vec<String>)>,
    scp_roles: &[String],
    options: &ScuOptions,
) -> Result<ClientAssociation, NetError> {
    let peer = target.to_string();
    if !valid_ae_title(calling_ae) {
        return Err(NetError::InvalidInput(format!(
            "invalid calling AE title {calling_ae:?}"
        )));
    }
    let first = contexts.first().cloned();
    let mut builder = ClientAssociationOptions::new()
        .calling_ae_title(calling_ae.to_string())
        .called_ae_title(target.ae_title.clone())
        .max_pdu_length(options.max_pdu)
        .connection_timeout(options.connect_timeout)
        .read_timeout(options.timeout)
        .write_timeout(options.timeout);
    for (abstract_syntax, transfer_syntaxes) in contexts {
        builder = builder.with_presentation_context(abstract_syntax, transfer_syntaxes);
    }
    for class in scp_roles {
        builder = builder.with_role_selection(class.clone(), true, true);
    }
    let mut assoc = match builder.establish_async((target.host.as_str(), target.port)).await {
        Ok(assoc) => assoc,
        Err(UlError::NoAcceptedPresentationContexts { .. }) => {
            let (class, ts) = first.unwrap_or_default();
            let transfer_syntax_uid = ts.into_iter().next().unwrap_or_default();
            return Err(NetError::ContextRefused {
                peer,
                sop_class_uid: class,
                transfer_syntax_uid,
            });
        }
        Err(e) => return Err(NetError::from_ul(&peer, "establishing the association", e)),
    };
    if let Err(e) = assoc.inner_stream().set_nodelay(true) {
        warn!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    Ok(assoc)
}

/// Sends one request and waits for its response command, which must be `expected` and
/// answer `message_id`.
async fn exchange(
    assoc: &mut ClientAssociation,
    peer: &str,
    context_id: u8,
    message_id: u16,
    command: &[u8],
    data: Option<&[u8]>,
    expected: u16,
) -> Result<Command, NetError> {
    send_request(assoc, peer, context_id, command, data).await?;
    // Single-response operations: one message read, one small inbox.
    let rsp = Inbox::new(1 << 20).next(assoc, peer).await?.command;
    check_response(&rsp, peer, expected, message_id)?;
    Ok(rsp)
}

async fn send_request(
    assoc: &mut ClientAssociation,
    peer: &str,
    context_id: u8,
    command: &[u8],
    data: Option<&[u8]>,
) -> Result<(), NetError> {
    crate::pdata::send_message(assoc, context_id, command, data)
        .await
        .map_err(|e| NetError::from_ul(peer, "sending a request", e))
}

/// The response must be `expected` and answer `message_id`.
fn check_response(rsp: &Command, peer: &str, expected: u16, message_id: u16) -> Result<(), NetError> {
    if rsp.command_field() != Some(expected) || rsp.u16(tag::MESSAGE_ID_BEING_RESPONDED_TO) != Some(message_id) {
        return Err(NetError::Protocol {
            peer: peer.to_string(),
            reason: format!(
                "expected response 0x{expected:04X} to message {message_id}, got 0x{:04X} to {:?}",
                rsp.command_field().unwrap_or(0),
                rsp.u16(tag::MESSAGE_ID_BEING_RESPONDED_TO)
            ),
        });
    }
    Ok(())
}

/// Reassembles the messages the peer sends on an SCU association. PDVs after a completed
/// message in the same P-DATA-TF are kept for the next call: a peer may pack the end of one
/// response and the start of the next into one PDU.
struct Inbox {
    assembler: Assembler,
    queued: VecDeque<PDataValue>,
}

impl Inbox {
    /// Data sets above `max_data` bytes are drained and flagged `oversized`, not kept.
    fn new(max_data: u64) -> Self {
        Inbox {
            assembler: Assembler::new(max_data).lenient(),
            queued: VecDeque::new(),
        }
    }

    async fn next(&mut self, assoc: &mut ClientAssociation, peer: &str) -> Result<Message, NetError> {
        let protocol = |reason: String| NetError::Protocol {
            peer: peer.to_string(),
            reason,
        };
        loop {
            while let Some(pdv) = self.queued.pop_front() {
                if let Some(message) = self.assembler.push(pdv).map_err(protocol)? {
                    return Ok(message);
                }
            }
            let pdu = assoc
                .receive()
                .await
                .map_err(|e| NetError::from_ul(peer, "waiting for a response", e))?;
            match pdu {
                Pdu::PData { data } => self.queued.extend(data),
                Pdu::AbortRQ { .. } => {
                    return Err(NetError::Aborted {
                        peer: peer.to_string(),
                        during: "waiting for a response".into(),
                    });
                }
                other => return Err(protocol(format!("unexpected {} PDU", other.short_description()))),
            }
        }
    }
}

/// Uncompressed syntaxes proposed for query/retrieve identifiers: every Q/R SCP takes one.
const IDENTIFIER_SYNTAXES: [&str; 2] = [uids::EXPLICIT_VR_LITTLE_ENDIAN, uids::IMPLICIT_VR_LITTLE_ENDIAN];
/// Each query/retrieve operation has an association of its own, so one message ID suffices.
const QR_MESSAGE_ID: u16 = 1;

/// What a query/retrieve operation (C-FIND, C-MOVE, C-GET) asks for.
pub(crate) struct QrRequest<'a> {
    /// C-FIND-RQ, C-MOVE-RQ or C-GET-RQ.
    pub request_field: u16,
    /// The information model, e.g. Study Root FIND.
    pub sop_class_uid: &'a str,
    pub move_destination: Option<&'a str>,
    pub identifier: identifier::Request,
    /// C-GET only: (storage SOP class, transfer syntaxes) for the C-STOREs that come back on the
    /// same association; we propose the SCP role for each.
    pub storage: Vec<(String, Vec<String>)>,
    /// Largest data set kept from one incoming message (identifiers, or C-GET's instances).
    pub max_data: u64,
}

/// A query/retrieve operation in progress on its own association: the request has been sent;
/// the caller reads responses until the final one, then `end`s it.
pub(crate) struct Operation {
    assoc: ClientAssociation,
    peer: String,
    inbox: Inbox,
    context_id: u8,
    transfer_syntax: String,
    response_field: u16,
}

impl Operation {
    /// Associates, encodes the identifier in the transfer syntax the peer accepted for the
    /// information model, and sends the request.
    pub async fn start(
        target: &Peer,
        calling_ae: &str,
        request: QrRequest<'_>,
        options: &ScuOptions,
    ) -> Result<Operation, NetError> {
        let peer = target.to_string();
        let syntaxes = IDENTIFIER_SYNTAXES.map(String::from).to_vec();
        let mut contexts = vec![(request.sop_class_uid.to_string(), syntaxes)];
        let scp_roles: Vec<String> = request.storage.iter().map(|(class, _)| class.clone()).collect();
        contexts.extend(request.storage);
        if contexts.len() > MAX_CONTEXTS {
            return Err(NetError::InvalidInput(format!(
                "{} presentation contexts; one association carries at most {MAX_CONTEXTS}",
                contexts.len()
            )));
        }
        let assoc = connect(target, calling_ae, contexts, &scp_roles, options).await?;
        let Some((context_id, transfer_syntax)) = accepted_context(&assoc, request.sop_class_uid) else {
            let _ = assoc.release().await;
            return Err(NetError::ContextRefused {
                peer,
                sop_class_uid: request.sop_class_uid.to_string(),
                transfer_syntax_uid: IDENTIFIER_SYNTAXES.join(" or "),
            });
        };
        let mut op = Operation {
            assoc,
            peer,
            inbox: Inbox::new(request.max_data),
            context_id,
            transfer_syntax,
            response_field: request.request_field | field::RESPONSE_BIT,
        };
        let command = dimse::query_rq(
            request.request_field,
            QR_MESSAGE_ID,
            request.sop_class_uid,
            request.move_destination,
        );
        let sent = match request.identifier.encode(&op.transfer_syntax) {
            Ok(identifier) => send_request(&mut op.assoc, &op.peer, context_id, &command, Some(&identifier)).await,
            Err(reason) => Err(NetError::InvalidInput(reason)),
        };
        match sent {
            Ok(()) => Ok(op),
            Err(e) => Err(close_after_error(op.assoc, e).await),
        }
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The transfer syntax of the identifiers, both ways.
    pub fn transfer_syntax(&self) -> &str {
        &self.transfer_syntax
    }

    /// A protocol error naming this peer.
    pub fn protocol(&self, reason: String) -> NetError {
        NetError::Protocol {
            peer: self.peer.clone(),
            reason,
        }
    }

    /// The next message from the peer, whatever it is (C-GET also receives C-STORE-RQs).
    pub async fn next_message(&mut self) -> Result<Message, NetError> {
        self.inbox.next(&mut self.assoc, &self.peer).await
    }

    /// The next message, which must be a response to our request: (status, message).
    pub async fn next_response(&mut self) -> Result<(u16, Message), NetError> {
        let message = self.next_message().await?;
        self.response(message)
    }

    /// Checks that `message` answers our request, on its context, and carries a status.
    pub fn response(&self, message: Message) -> Result<(u16, Message), NetError> {
        check_response(&message.command, &self.peer, self.response_field, QR_MESSAGE_ID)?;
        if message.presentation_context_id != self.context_id {
            return Err(self.protocol(format!(
                "response on presentation context {}, the request went on {}",
                message.presentation_context_id, self.context_id
            )));
        }
        match message.command.u16(tag::STATUS) {
            Some(status) => Ok((status, message)),
            None => Err(self.protocol("response without Status (0000,0900)".into())),
        }
    }

    /// Sends a message of our own on `context_id` (C-GET: a C-STORE-RSP).
    pub async fn send(&mut self, context_id: u8, command: &[u8]) -> Result<(), NetError> {
        send_request(&mut self.assoc, &self.peer, context_id, command, None).await
    }

    /// What the negotiation agreed for presentation context `id`, if it was accepted.
    pub fn context(&self, id: u8) -> Option<Context> {
        self.assoc
            .presentation_contexts()
            .iter()
            .find(|pc| pc.id == id && pc.reason == PresentationContextResultReason::Acceptance)
            .map(|pc| Context {
                abstract_syntax: trim(&pc.abstract_syntax).to_string(),
                transfer_syntax: trim(&pc.transfer_syntax).to_string(),
            })
    }

    /// The peer's socket address (C-GET: where the instances come from).
    pub fn peer_addr(&mut self) -> SocketAddr {
        self.assoc
            .inner_stream()
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Releases after a result, closes after an error (see `close_after_error`).
    pub async fn end<T>(self, result: Result<T, NetError>) -> Result<T, NetError> {
        match result {
            Ok(value) => {
                release(self.assoc, &self.peer).await;
                Ok(value)
            }
            Err(e) => Err(close_after_error(self.assoc, e).await),
        }
    }
}

/// The id and transfer syntax of the accepted context for `abstract_syntax`.
fn accepted_context(assoc: &ClientAssociation, abstract_syntax: &str) -> Option<(u8, String)> {
    assoc
        .presentation_contexts()
        .iter()
        .find(|pc| {
            pc.reason == PresentationContextResultReason::Acceptance && trim(&pc.abstract_syntax) == abstract_syntax
        })
        .map(|pc| (pc.id, trim(&pc.transfer_syntax).to_string()))
}

/// Releases after the work is acknowledged; a failing release only warrants a warning.
async fn release(assoc: ClientAssociation, peer: &str) {
    if let Err(e) = assoc.release().await {
        warn!(%peer, error = %error_chain(&e), "association release failed (work already acknowledged)");
    }
}

/// After a failure: release when the peer kept to the protocol (it answered a failure status,
/// or we could not encode our request), abort on a protocol error (the peer is still there),
/// otherwise just close (the peer aborted or the connection broke). Returns the error.
async fn close_after_error(assoc: ClientAssociation, e: NetError) -> NetError {
    match e {
        NetError::OperationFailed { .. } | NetError::InvalidInput(_) => {
            let _ = assoc.release().await;
        }
        NetError::Protocol { .. } => {
            let _ = assoc.abort().await;
        }
        _ => {}
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_parses_and_prints() {
        let p: Peer = "PACS@pacs.example.org:104".parse().unwrap();
        assert_eq!(
            p,
            Peer {
                ae_title: "PACS".into(),
                host: "pacs.example.org".into(),
                port: 104
            }
        );
        assert_eq!(p.to_string(), "PACS@pacs.example.org:104");
        let v6: Peer = "A@[::1]:11112".parse().unwrap();
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_string(), "A@[::1]:11112");
        for bad in [
            "PACS",
            "PACS@host",
            "@host:104",
            "PACS@:104",
            "PACS@host:0",
            "PACS@host:x",
            "WAY_TOO_LONG_AE_TITLE@h:1",
        ] {
            assert!(bad.parse::<Peer>().is_err(), "{bad}");
        }
    }

    fn object(class: &str, ts: &str) -> OutgoingObject {
        OutgoingObject {
            sop_class_uid: class.into(),
            sop_instance_uid: "1.2.3".into(),
            transfer_syntax_uid: ts.into(),
            dataset: vec![],
        }
    }

    #[test]
    fn contexts_are_one_per_class_and_syntax() {
        let objects = vec![
            object("1.2.1", "1.2.840.10008.1.2.1"),
            object("1.2.1", "1.2.840.10008.1.2.1"),
            object("1.2.1", "1.2.840.10008.1.2"),
        ];
        assert_eq!(needed_contexts(&objects).unwrap().len(), 2);
        let many: Vec<_> = (0..129)
            .map(|i| object(&format!("1.2.{i}"), "1.2.840.10008.1.2"))
            .collect();
        assert!(matches!(needed_contexts(&many), Err(NetError::InvalidInput(_))));
        assert!(matches!(
            needed_contexts(&[object("1.2.x", "1.2")]),
            Err(NetError::InvalidInput(_))
        ));
    }
}
