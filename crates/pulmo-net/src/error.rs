//! Typed errors of pulmo-net, naming the peer and what failed, with a retry hint
//! (`is_transient`) so that the export queue can decide between backoff and dead-letter.

use std::io;

/// Errors of the SCP start-up and of SCU operations (store, echo, query/retrieve).
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The node policy is unusable (reported before anything listens).
    #[error("invalid network configuration: {0}")]
    Config(String),

    /// The caller's input cannot be sent (bad peer string, too many presentation contexts, ...).
    #[error("invalid request: {0}")]
    InvalidInput(String),

    /// Reading a Part-10 file to send.
    #[error("cannot read DICOM file {path}: {reason}")]
    File { path: String, reason: String },

    /// TCP connection to the peer failed (refused, unreachable, DNS).
    #[error("cannot connect to {peer}: {source}")]
    Connect { peer: String, source: io::Error },

    /// The peer answered A-ASSOCIATE-RJ.
    #[error("association with {peer} rejected ({}): {reason}", if *.transient { "transient" } else { "permanent" })]
    Rejected {
        peer: String,
        transient: bool,
        reason: String,
    },

    /// The peer accepted the association but none of the presentation contexts needed.
    #[error("{peer} accepted no presentation context for SOP class {sop_class_uid} in transfer syntax {transfer_syntax_uid}")]
    ContextRefused {
        peer: String,
        sop_class_uid: String,
        transfer_syntax_uid: String,
    },

    /// The peer sent A-ABORT (or closed the connection) during the association.
    #[error("association with {peer} aborted {during}")]
    Aborted { peer: String, during: String },

    /// No answer within the configured time.
    #[error("timed out {during} with {peer}")]
    Timeout { peer: String, during: String },

    /// The peer broke the protocol (unexpected PDU, malformed or mismatched response).
    #[error("protocol error with {peer}: {reason}")]
    Protocol { peer: String, reason: String },

    /// A C-ECHO answered with a non-success status.
    #[error("{peer} answered C-ECHO with status 0x{status:04X}")]
    EchoStatus { peer: String, status: u16 },

    /// A C-FIND, C-MOVE or C-GET ended with a failure or cancel status. For a retrieve,
    /// `report` holds the sub-operation counts the peer gave (what arrived before it failed).
    #[error(
        "{peer} answered {operation} with status 0x{status:04X} ({}){}",
        crate::dimse::status_meaning(*.status),
        .comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default()
    )]
    OperationFailed {
        peer: String,
        operation: &'static str,
        status: u16,
        comment: Option<String>,
        report: Option<crate::retrieve::RetrieveReport>,
    },
}

impl NetError {
    /// Whether retrying the same operation later may succeed: connection problems, timeouts,
    /// aborts, protocol hiccups and transient rejects. Permanent rejects, refused presentation
    /// contexts, bad input and bad configuration need a human (or a different request).
    pub fn is_transient(&self) -> bool {
        match self {
            NetError::Connect { .. }
            | NetError::Aborted { .. }
            | NetError::Timeout { .. }
            | NetError::Protocol { .. }
            | NetError::EchoStatus { .. } => true,
            NetError::Rejected { transient, .. } => *transient,
            // Out of resources (0xA7xx) may pass; a wrong request or an unknown destination not.
            NetError::OperationFailed { status, .. } => (0xA700..=0xA7FF).contains(status),
            NetError::Config(_)
            | NetError::InvalidInput(_)
            | NetError::File { .. }
            | NetError::ContextRefused { .. } => false,
        }
    }

    /// Maps a dicom-ul error of an association with `peer` to ours; `during` says what we did.
    pub(crate) fn from_ul(peer: &str, during: &str, e: dicom_ul::association::Error) -> NetError {
        use dicom_ul::association::Error as E;
        let peer = peer.to_string();
        let during = during.to_string();
        match e {
            E::Connect { source, .. } | E::ToAddress { source, .. } => NetError::Connect { peer, source },
            E::Rejected { association_rj, .. } => NetError::Rejected {
                peer,
                transient: association_rj.result == dicom_ul::pdu::AssociationRJResult::Transient,
                reason: association_rj.source.to_string(),
            },
            E::Aborted { .. } | E::ConnectionClosed { .. } => NetError::Aborted { peer, during },
            E::UnexpectedPdu { pdu, .. } if matches!(*pdu, dicom_ul::Pdu::AbortRQ { .. }) => {
                NetError::Aborted { peer, during }
            }
            E::Timeout { .. } => NetError::Timeout { peer, during },
            E::WireSend { source, .. } | E::WireRead { source, .. } if source.kind() == io::ErrorKind::TimedOut => {
                NetError::Timeout { peer, during }
            }
            E::WireSend { .. } | E::WireRead { .. } => NetError::Aborted {
                peer,
                during: format!("{during} (connection lost)"),
            },
            E::ReceivePdu { source, .. } if is_io_read(&source) => NetError::Aborted {
                peer,
                during: format!("{during} (connection lost)"),
            },
            other => NetError::Protocol {
                peer,
                reason: format!("{during}: {}", error_chain(&other)),
            },
        }
    }
}

fn is_io_read(e: &dicom_ul::pdu::ReadError) -> bool {
    matches!(e, dicom_ul::pdu::ReadError::ReadPdu { .. })
}

/// `e` and its sources on one line: dicom-ul's top-level messages alone are too terse.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
