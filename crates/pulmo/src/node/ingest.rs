//! What happens to a received instance: checked, parsed for its study and series, written
//! durably (spool file + SQLite) and only then acknowledged. Also the association log.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pulmo_dicom::wire::read_filing_attributes;
use pulmo_dicom::{part10_header, DicomFile};
use pulmo_net::{
    AssociationEnd as NetEnd, AssociationInfo, AssociationSummary, ReceivedInstance, StoreHandler, StoreResponse,
};
use pulmo_store::{AssociationEnd, AssociationId, AssociationOutcome, AssociationStart, NewInstance, Store, Timestamp, Uid};
use tracing::{debug, error, warn};

use super::metrics::Metrics;

pub struct Ingest {
    store: Store,
    metrics: Arc<Metrics>,
    min_free_bytes: u64,
    /// Network association number -> its row in the association log.
    associations: Mutex<HashMap<u64, AssociationId>>,
}

impl Ingest {
    pub fn new(store: Store, min_free_bytes: u64, metrics: Arc<Metrics>) -> Self {
        Ingest { store, metrics, min_free_bytes, associations: Mutex::new(HashMap::new()) }
    }

    /// Files the instance from its top-level attributes alone: the data set is walked (every
    /// element's length checked) but not decoded, and goes to disk as received.
    fn try_store(&self, req: &ReceivedInstance) -> Result<pulmo_store::Outcome, StoreResponse> {
        self.check_free_space()?;
        let cannot_understand = |reason: String| StoreResponse::failure(StoreResponse::CANNOT_UNDERSTAND, reason);
        let filing = read_filing_attributes(&req.dataset, &req.transfer_syntax_uid)
            .map_err(|e| cannot_understand(format!("unreadable data set: {e}")))?;
        // Errors name the attribute, never the patient.
        let uid = |value: Option<&str>, what: &str| match value {
            None => Err(cannot_understand(format!("missing {what}"))),
            Some(v) => Uid::from_dicom(v).map_err(|e| cannot_understand(format!("{what}: {e}"))),
        };
        let sop_instance = uid(Some(&req.sop_instance_uid), "SOP Instance UID")?;
        let sop_class = uid(Some(&req.sop_class_uid), "SOP Class UID")?;
        let study = uid(filing.study_uid.as_deref(), "Study Instance UID (0020,000D)")?;
        let series = uid(filing.series_uid.as_deref(), "Series Instance UID (0020,000E)")?;
        let syntax = uid(Some(&req.transfer_syntax_uid), "Transfer Syntax UID")?;
        let meta = part10_header(&req.sop_class_uid, &req.sop_instance_uid, &req.transfer_syntax_uid);
        let same_content = |stored: &[u8]| same_data_set(stored, req);
        let instance = NewInstance {
            sop_instance_uid: &sop_instance,
            sop_class_uid: &sop_class,
            study_uid: &study,
            series_uid: &series,
            patient_id: filing.patient_id.as_deref().unwrap_or(""),
            transfer_syntax: &syntax,
            calling_ae: &req.calling_ae,
            called_ae: &req.called_ae,
            received_at: Timestamp::now(),
            file: [&meta, &req.dataset],
            same_content: Some(&same_content),
        };
        self.store.put_instance(&instance).map_err(|e| {
            error!(error = %e, sop_instance = %req.sop_instance_uid, "storing an instance failed");
            StoreResponse::failure(StoreResponse::OUT_OF_RESOURCES, format!("storage failure: {e}"))
        })
    }

    fn check_free_space(&self) -> Result<(), StoreResponse> {
        match self.store.spool().free_bytes() {
            Ok(free) if free < self.min_free_bytes => {
                warn!(free_mb = free / (1024 * 1024), floor_mb = self.min_free_bytes / (1024 * 1024), "disk below the free-space floor; refusing instances");
                Err(StoreResponse::failure(StoreResponse::OUT_OF_RESOURCES, "disk below the configured free-space floor"))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(StoreResponse::failure(StoreResponse::OUT_OF_RESOURCES, format!("cannot check free space: {e}"))),
        }
    }
}

impl StoreHandler for Ingest {
    fn store(&self, req: &ReceivedInstance) -> StoreResponse {
        let start = Instant::now();
        match self.try_store(req) {
            Ok(outcome) => {
                debug!(sop_instance = %req.sop_instance_uid, ?outcome, "instance stored");
                self.metrics.observe_store(start.elapsed());
                self.metrics.instances_stored.fetch_add(1, Relaxed);
                self.metrics.bytes_received.fetch_add(req.dataset.len() as u64, Relaxed);
                StoreResponse::success()
            }
            Err(response) => {
                self.metrics.instances_refused.fetch_add(1, Relaxed);
                warn!(status = format!("{:#06X}", response.status), reason = response.comment.as_deref().unwrap_or(""), "instance refused");
                response
            }
        }
    }

    fn association_started(&self, info: &AssociationInfo) {
        self.metrics.associations.fetch_add(1, Relaxed);
        let start = AssociationStart {
            calling_ae: &info.calling_ae,
            called_ae: &info.called_ae,
            peer_addr: &info.peer.to_string(),
            started_at: Timestamp::now(),
        };
        match self.store.log_association_start(&start) {
            Ok(id) => {
                self.associations.lock().unwrap_or_else(|p| p.into_inner()).insert(info.id, id);
            }
            Err(e) => warn!(error = %e, "association log write failed"),
        }
    }

    fn association_ended(&self, info: &AssociationInfo, summary: &AssociationSummary) {
        let Some(id) = self.associations.lock().unwrap_or_else(|p| p.into_inner()).remove(&info.id) else { return };
        let (outcome, reason) = match &summary.end {
            NetEnd::Released => (AssociationOutcome::Released, None),
            NetEnd::AbortedByPeer => (AssociationOutcome::Aborted, Some("aborted by peer".to_string())),
            NetEnd::Aborted(why) => (AssociationOutcome::Aborted, Some(why.clone())),
            NetEnd::ConnectionLost(why) => (AssociationOutcome::Error, Some(why.clone())),
        };
        let end = AssociationEnd {
            ended_at: Timestamp::now(),
            instances: summary.stored,
            bytes: summary.bytes,
            outcome,
            reason: reason.as_deref(),
        };
        if let Err(e) = self.store.log_association_end(id, &end) {
            warn!(error = %e, "association log write failed");
        }
    }
}

/// Whether a stored Part 10 file holds the same data set as a received one that differs from
/// it byte for byte (another transfer syntax, or sequences re-encoded by the sender). Only
/// asked for resends of a known SOP Instance UID, so a full parse of both is affordable here.
fn same_data_set(stored: &[u8], req: &ReceivedInstance) -> bool {
    let label = PathBuf::from(format!("instance {}", req.sop_instance_uid));
    let old = DicomFile::from_bytes(&label, stored);
    let new = DicomFile::from_dataset_bytes(&label, &req.transfer_syntax_uid, &req.dataset);
    match (old, new) {
        (Ok(old), Ok(new)) => old.canonical_content() == new.canonical_content(),
        _ => false,
    }
}
