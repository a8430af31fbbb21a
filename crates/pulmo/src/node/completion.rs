//! The quiet timer: a study with no new instance for the configured quiet time is complete and
//! becomes one queued job. The state lives in SQLite, so the timer survives a restart. The
//! same loop applies the spool's retention, at start and hourly.

use std::time::Duration;

use pulmo_store::{Retention, Store, Timestamp};
use tokio::sync::watch;
use tracing::info;

use super::blocking;

const RETENTION_PERIOD: Duration = Duration::from_secs(3600);

pub async fn run(store: Store, quiet: Duration, retention: Retention, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    // Check a few times per quiet period so completion lands close to the configured time.
    let period = (quiet / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    let mut retention_tick = tokio::time::interval(RETENTION_PERIOD);
    let limited = retention != Retention::default();
    loop {
        tokio::select! {
            _ = tick.tick() => complete_due(&store, quiet).await,
            _ = retention_tick.tick(), if limited => expire(&store, retention).await,
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return Ok(()) },
        }
    }
}

async fn expire(store: &Store, retention: Retention) {
    let expired = blocking(store, move |s| s.expire_studies(retention, Timestamp::now())).await;
    for e in expired.unwrap_or_default() {
        info!(study = %e.study_uid, instances = e.instances, bytes = e.bytes, "retention: study images removed (findings kept)");
    }
}

async fn complete_due(store: &Store, quiet: Duration) {
    let completed = blocking(store, move |s| s.complete_due_studies(Timestamp::now(), quiet)).await;
    for c in completed.unwrap_or_default() {
        info!(study = %c.study_uid, version = c.version, job = %c.job_id, "study complete; job queued");
    }
}
