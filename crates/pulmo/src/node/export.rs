//! Delivering results: one loop per destination claims the due exports of one study, sends
//! them in one association, and records per object done or failed (backoff, then parked).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use pulmo_net::{OutgoingObject, Peer, SendReport};
use pulmo_store::{Export, ExportBatch, ExportRetry, Store, Timestamp};
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::blocking;
use super::metrics::Metrics;
use crate::config::Destination;

/// How often an idle destination loop looks for new work.
const IDLE_POLL: Duration = Duration::from_millis(500);

pub async fn run(store: Store, destination: Destination, calling_ae: String, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    let peer = destination.peer();
    loop {
        let batch = blocking(&store, {
            let name = destination.name.clone();
            move |s| s.claim_due_exports(&name, Timestamp::now(), 1)
        })
        .await;
        let delay = match batch.and_then(|mut b| b.pop()) {
            Some(batch) => {
                deliver(&store, &peer, &calling_ae, batch, &metrics).await;
                Duration::ZERO
            }
            None => IDLE_POLL,
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
        }
    }
}

async fn deliver(store: &Store, peer: &Peer, calling_ae: &str, batch: ExportBatch, metrics: &Metrics) {
    let mut sendable = Vec::new();
    for export in &batch.exports {
        match read_object(export) {
            Ok(object) => sendable.push((export, object)),
            Err(reason) => record(store, export, Err(format!("cannot read the object to send: {reason}"))).await,
        }
    }
    if sendable.is_empty() {
        return;
    }
    let (exports, objects): (Vec<&Export>, Vec<OutgoingObject>) = sendable.into_iter().unzip();
    match pulmo_net::send(peer, calling_ae, objects).await {
        Ok(report) => {
            let failed = report.failures().count() as u64;
            metrics.export_failures.fetch_add(failed, Relaxed);
            record_report(store, &exports, &report).await
        }
        Err(e) => {
            metrics.export_failures.fetch_add(exports.len() as u64, Relaxed);
            warn!(destination = %batch.destination, study = %batch.study_uid, error = %e, "export failed; will retry");
            for export in exports {
                record(store, export, Err(e.to_string())).await;
            }
        }
    }
}

async fn record_report(store: &Store, exports: &[&Export], report: &SendReport) {
    for (export, status) in exports.iter().zip(&report.results) {
        let outcome = if status.is_stored() {
            Ok(())
        } else {
            Err(format!("status {:#06X}{}", status.status, status.comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default()))
        };
        record(store, export, outcome).await;
    }
    let stored = report.results.iter().filter(|r| r.is_stored()).count();
    info!(destination = %report.peer, stored, failed = report.results.len() - stored, "export sent");
}

async fn record(store: &Store, export: &Export, outcome: Result<(), String>) {
    let id = export.id;
    let result = blocking(store, move |s| match outcome {
        Ok(()) => s.export_done(id, Timestamp::now()).map(|_| None),
        Err(reason) => s.export_failed(id, &reason, Timestamp::now()).map(Some),
    })
    .await;
    if let Some(Some(ExportRetry::Parked)) = result {
        error!(export = %id, destination = %export.destination, "export out of attempts; parked as failed (see pulmo status)");
    }
}

fn read_object(export: &Export) -> Result<OutgoingObject, String> {
    let bytes = std::fs::read(&export.object.path).map_err(|e| format!("{}: {e}", export.object.path.display()))?;
    OutgoingObject::from_part10_bytes(&bytes)
}
