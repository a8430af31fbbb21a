//! The C-ECHO/C-STORE SCP: accept loop with a bounded number of associations (transient
//! reject beyond it), per-connection AE/IP policy check during negotiation, graceful shutdown.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dicom_ul::association::server::{AcceptAny, AccessControl, DefaultNegotiation};
use dicom_ul::association::{Association, Error as UlError};
use dicom_ul::pdu::{AssociationRJServiceUserReason, UserIdentity};
use dicom_ul::ServerAssociationOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::error::error_chain;
use crate::handler::{AssociationInfo, StoreHandler};
use crate::policy::{NodePolicy, RejectReason};
use crate::session::Session;
use crate::NetError;

/// Connections being turned away as busy at once; beyond this they are simply closed.
const BUSY_REJECT_SLOTS: usize = 8;
/// Extra time after the grace period for aborts and running stores to finish.
const DRAIN_MARGIN: Duration = Duration::from_secs(10);

/// Serves associations on `listener` until `shutdown` becomes true; then stops accepting,
/// lets in-flight associations continue for `policy.shutdown_grace` (aborting those still open
/// after it) and returns. If the shutdown sender is dropped without sending true, the SCP
/// keeps serving.
pub async fn serve(
    listener: TcpListener,
    policy: Arc<NodePolicy>,
    handler: Arc<dyn StoreHandler>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), NetError> {
    policy.validate()?;
    let node = Arc::new(Node::new(policy, handler));
    info!(
        addr = ?listener.local_addr().ok(),
        ae_titles = ?node.policy.ae_titles,
        transfer_syntaxes = ?node.policy.decodable_transfer_syntaxes(),
        "DICOM SCP listening"
    );
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown_requested(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => node.admit(socket, peer, &mut tasks, shutdown.clone()),
                // Per-connection failures (EMFILE, aborted handshakes) must not stop the node.
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(done) = tasks.join_next(), if !tasks.is_empty() => log_task_end(done),
        }
    }
    drop(listener);
    info!(
        in_flight = tasks.len(),
        "DICOM SCP stopped accepting; draining associations"
    );
    drain(tasks, node.policy.shutdown_grace + DRAIN_MARGIN).await;
    Ok(())
}

async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Resolves `grace` after shutdown is requested (never, if it is not).
async fn grace_deadline(mut shutdown: watch::Receiver<bool>, grace: Duration) {
    shutdown_requested(&mut shutdown).await;
    tokio::time::sleep(grace).await;
}

async fn drain(mut tasks: JoinSet<()>, limit: Duration) {
    let all = async {
        while let Some(done) = tasks.join_next().await {
            log_task_end(done);
        }
    };
    if tokio::time::timeout(limit, all).await.is_err() {
        warn!(
            remaining = tasks.len(),
            "associations still running after the grace period; cancelling"
        );
        tasks.shutdown().await;
    }
}

fn log_task_end(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            warn!(error = %e, "association task panicked");
        }
    }
}

/// State shared by all connections of one SCP.
struct Node {
    policy: Arc<NodePolicy>,
    handler: Arc<dyn StoreHandler>,
    options: ServerAssociationOptions<'static, AcceptAny, DefaultNegotiation>,
    slots: Arc<Semaphore>,
    busy_slots: Arc<Semaphore>,
    next_id: AtomicU64,
}

impl Node {
    fn new(policy: Arc<NodePolicy>, handler: Arc<dyn StoreHandler>) -> Self {
        let mut options = ServerAssociationOptions::new()
            .ae_title(policy.ae_titles[0].clone())
            .max_pdu_length(policy.max_pdu)
            .strict(true)
            .promiscuous(false)
            .read_timeout(policy.read_timeout)
            .write_timeout(policy.write_timeout);
        for uid in policy.abstract_syntaxes() {
            options = options.with_abstract_syntax(uid);
        }
        for uid in policy.decodable_transfer_syntaxes() {
            options = options.with_transfer_syntax(uid);
        }
        Node {
            slots: Arc::new(Semaphore::new(policy.max_associations)),
            busy_slots: Arc::new(Semaphore::new(BUSY_REJECT_SLOTS)),
            policy,
            handler,
            options,
            next_id: AtomicU64::new(1),
        }
    }

    /// Spawns the association, or a transient reject when all slots are taken: the number of
    /// tasks is bounded by max_associations + BUSY_REJECT_SLOTS.
    fn admit(
        self: &Arc<Self>,
        socket: TcpStream,
        peer: SocketAddr,
        tasks: &mut JoinSet<()>,
        shutdown: watch::Receiver<bool>,
    ) {
        if let Err(e) = socket.set_nodelay(true) {
            warn!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            tasks.spawn(self.clone().associate(socket, peer, shutdown, permit));
            return;
        }
        match self.busy_slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let (max_pdu, timeout) = (self.policy.max_pdu, self.policy.read_timeout);
                tasks.spawn(crate::reject::reject_busy(socket, peer, max_pdu, timeout, permit));
            }
            Err(_) => warn!(%peer, "too many connections being rejected; closing without an answer"),
        }
    }

    async fn associate(
        self: Arc<Self>,
        socket: TcpStream,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
        _permit: OwnedSemaphorePermit,
    ) {
        let verdict = Arc::new(Mutex::new(None));
        let gate = Gate {
            policy: self.policy.clone(),
            peer_ip: peer.ip(),
            verdict: verdict.clone(),
        };
        let options = self.options.clone().ae_access_control(gate);
        let assoc = match options.establish_async(socket).await {
            Ok(assoc) => assoc,
            Err(e) => return log_refusal(peer, &verdict, e),
        };
        let info = AssociationInfo {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            calling_ae: assoc.peer_ae_title().to_string(),
            called_ae: assoc.called_ae_title().to_string(),
            peer,
        };
        info!(association = info.id, calling_ae = %info.calling_ae, called_ae = %info.called_ae, %peer, "association accepted");
        let handler = self.handler.clone();
        let started = info.clone();
        let _ = tokio::task::spawn_blocking(move || handler.association_started(&started)).await;

        let deadline = grace_deadline(shutdown, self.policy.shutdown_grace);
        let session = Session::new(assoc, info.clone(), self.handler.clone(), self.policy.max_object_bytes);
        let summary = session.run(deadline).await;
        info!(association = info.id, calling_ae = %info.calling_ae, stored = summary.stored, failed = summary.failed, bytes = summary.bytes, end = ?summary.end, "association ended");
        let handler = self.handler.clone();
        let _ = tokio::task::spawn_blocking(move || handler.association_ended(&info, &summary)).await;
    }
}

/// Logs a failed establishment: a policy reject (with the AE titles and reason), or an
/// aborted/garbled/timed-out request.
fn log_refusal(peer: SocketAddr, verdict: &Mutex<Option<Verdict>>, e: UlError) {
    let verdict = verdict.lock().ok().and_then(|mut v| v.take());
    match (verdict, e) {
        (Some(v), UlError::Rejected { .. }) => {
            warn!(calling_ae = %v.calling_ae, called_ae = %v.called_ae, %peer, reason = %v.reason, "association rejected");
        }
        (_, UlError::Rejected { association_rj, .. }) => {
            warn!(%peer, reason = %association_rj.source, "association rejected");
        }
        (_, other) => warn!(%peer, error = %error_chain(&other), "association request failed"),
    }
}

/// What the gate decided, kept for the log line.
struct Verdict {
    calling_ae: String,
    called_ae: String,
    reason: RejectReason,
}

/// dicom-ul's access control sees AE titles only; this one also knows the peer's address.
struct Gate {
    policy: Arc<NodePolicy>,
    peer_ip: IpAddr,
    verdict: Arc<Mutex<Option<Verdict>>>,
}

impl AccessControl for Gate {
    fn check_access(
        &self,
        _this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        let reason = match self
            .policy
            .check_association(called_ae_title, calling_ae_title, self.peer_ip)
        {
            Ok(()) => return Ok(()),
            Err(reason) => reason,
        };
        if let Ok(mut v) = self.verdict.lock() {
            *v = Some(Verdict {
                calling_ae: calling_ae_title.into(),
                called_ae: called_ae_title.into(),
                reason,
            });
        }
        Err(match reason {
            RejectReason::CalledAeNotRecognized => AssociationRJServiceUserReason::CalledAETitleNotRecognized,
            RejectReason::CallingAeUnknown | RejectReason::CallingAeWrongAddress => {
                AssociationRJServiceUserReason::CallingAETitleNotRecognized
            }
        })
    }
}
