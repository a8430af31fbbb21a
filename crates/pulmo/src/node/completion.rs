//! The quiet timer: a study with no new instance for the configured quiet time is complete and
//! becomes one queued job. The state lives in SQLite, so the timer survives a restart.

use std::time::Duration;

use pulmo_store::{Store, Timestamp};
use tokio::sync::watch;
use tracing::info;

use super::blocking;

pub async fn run(store: Store, quiet: Duration, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    // Check a few times per quiet period so completion lands close to the configured time.
    let period = (quiet / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = tick.tick() => complete_due(&store, quiet).await,
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return Ok(()) },
        }
    }
}

async fn complete_due(store: &Store, quiet: Duration) {
    let completed = blocking(store, move |s| s.complete_due_studies(Timestamp::now(), quiet)).await;
    for c in completed.unwrap_or_default() {
        info!(study = %c.study_uid, version = c.version, job = %c.job_id, "study complete; job queued");
    }
}
