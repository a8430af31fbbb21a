//! The seam between the SCP and whatever keeps received instances (pulmo-store): a blocking
//! `StoreHandler` called off the async threads, its input and its DICOM status answer.

use std::net::SocketAddr;

/// One C-STORE request that passed the network checks (SOP class negotiated, UIDs valid and
/// matching the data set).
#[derive(Debug, Clone)]
pub struct ReceivedInstance {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub transfer_syntax_uid: String,
    /// The data set bytes exactly as received (no file meta group), in `transfer_syntax_uid`.
    pub dataset: Vec<u8>,
    pub calling_ae: String,
    pub called_ae: String,
    pub peer: SocketAddr,
}

/// C-STORE status codes (PS3.4 B.2.3 and the general statuses of PS3.7 C).
pub mod status {
    pub const SUCCESS: u16 = 0x0000;
    /// Warning: coercion of data elements.
    pub const WARNING_COERCION: u16 = 0xB000;
    /// Warning: data set does not match SOP class (stored anyway).
    pub const WARNING_DATA_SET_MISMATCH: u16 = 0xB007;
    /// Warning: elements discarded.
    pub const WARNING_ELEMENTS_DISCARDED: u16 = 0xB006;
    /// Refused: out of resources (disk below its floor, object too large, internal failure).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: data set does not match SOP class (also used, like DCMTK's storescp, when the
    /// data set's SOP Instance UID differs from the command's).
    pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
    /// Error: cannot understand (unparseable data set, missing or invalid UIDs).
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Refused: SOP class not supported (Affected SOP Class UID is not the abstract syntax of
    /// the presentation context the request came on).
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// Failure: unrecognized operation (any DIMSE request other than C-ECHO and C-STORE).
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
}

/// The handler's answer, sent back as the C-STORE-RSP status (and Error Comment if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreResponse {
    pub status: u16,
    pub comment: Option<String>,
}

impl StoreResponse {
    pub const SUCCESS: u16 = status::SUCCESS;
    pub const OUT_OF_RESOURCES: u16 = status::OUT_OF_RESOURCES;
    pub const SOP_CLASS_MISMATCH: u16 = status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS;
    pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS: u16 = status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS;
    pub const CANNOT_UNDERSTAND: u16 = status::CANNOT_UNDERSTAND;
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = status::SOP_CLASS_NOT_SUPPORTED;
    pub const WARNING_COERCION: u16 = status::WARNING_COERCION;

    pub fn success() -> Self {
        StoreResponse {
            status: status::SUCCESS,
            comment: None,
        }
    }

    pub fn failure(status: u16, comment: impl Into<String>) -> Self {
        StoreResponse {
            status,
            comment: Some(comment.into()),
        }
    }

    pub fn is_success(&self) -> bool {
        self.status == status::SUCCESS
    }

    /// Warnings (0xB000-0xBFFF) mean the instance was stored.
    pub fn is_warning(&self) -> bool {
        (0xB000..=0xBFFF).contains(&self.status)
    }

    /// Success or warning: the instance is stored.
    pub fn is_stored(&self) -> bool {
        self.is_success() || self.is_warning()
    }
}

/// Who is on the other end of an association.
#[derive(Debug, Clone)]
pub struct AssociationInfo {
    /// Process-unique association number, for correlating logs.
    pub id: u64,
    pub calling_ae: String,
    pub called_ae: String,
    pub peer: SocketAddr,
}

/// How an association ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssociationEnd {
    /// A-RELEASE completed.
    Released,
    /// The peer sent A-ABORT.
    AbortedByPeer,
    /// We aborted: protocol violation, malformed PDU, timeout, shutdown grace expired.
    Aborted(String),
    /// The connection dropped without release or abort.
    ConnectionLost(String),
}

/// Counters of one association, reported when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationSummary {
    /// C-STORE requests answered with success or warning.
    pub stored: u64,
    /// C-STORE requests answered with a failure status.
    pub failed: u64,
    pub echoes: u64,
    /// Data set bytes received in completed C-STORE requests.
    pub bytes: u64,
    pub end: AssociationEnd,
}

/// Receives instances. `store` is blocking (it fsyncs and writes SQLite): the SCP calls it on
/// tokio's blocking pool and sends the C-STORE-RSP only after it returns. The request is
/// borrowed so that the SCP can reuse its data set buffer for the association's next instance.
pub trait StoreHandler: Send + Sync {
    fn store(&self, req: &ReceivedInstance) -> StoreResponse;
    fn association_started(&self, _info: &AssociationInfo) {}
    fn association_ended(&self, _info: &AssociationInfo, _summary: &AssociationSummary) {}
}
