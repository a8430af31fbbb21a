//! DICOM networking for pulmo: the C-ECHO/C-STORE SCP, the C-STORE and query/retrieve SCUs and
//! association policy, on dicom-ul's async upper layer with our own DIMSE reassembly and statuses.

mod assembler;
pub mod dimse;
mod error;
pub mod handler;
mod identifier;
mod part10;
mod pdata;
pub mod policy;
pub mod query;
mod reject;
pub mod retrieve;
mod scp;
pub mod scu;
mod session;

pub use pulmo_dicom::valid_uid;
pub use error::NetError;
pub use handler::{
    status, AssociationEnd, AssociationInfo, AssociationSummary, ReceivedInstance, StoreHandler, StoreResponse,
};
pub use policy::{AllowedPeer, NodePolicy, RejectReason};
pub use query::{find_series, find_studies, SeriesMatch, StudyMatch, StudyQuery};
pub use reject::busy_reject;
pub use retrieve::{get, move_to, RetrieveLevel, RetrieveReport};
pub use scp::serve;
pub use scu::{echo, send, send_with, ObjectStatus, OutgoingObject, Peer, ScuOptions, SendReport};
