//! The running node (`pulmo serve`): the SCP storing into the spool and database, the quiet
//! timer that turns finished studies into queued jobs, and orderly shutdown on SIGTERM/SIGINT.

mod completion;
mod ingest;

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;
use tracing::info;

use crate::config::Config;

pub use ingest::Ingest;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen.dicom)
        .await
        .with_context(|| format!("binding the DICOM port {}", config.listen.dicom))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let ingest = Arc::new(Ingest::new(store.clone(), config.storage.min_free_mb * 1024 * 1024));
    let completion = tokio::spawn(completion::run(store.clone(), config.quiet_time(), stop_rx.clone()));
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutdown requested: no new associations; finishing the ones in flight");
        let _ = stop_tx.send(true);
    });
    pulmo_net::serve(listener, Arc::new(config.node.clone()), ingest, stop_rx).await?;
    completion.await.context("quiet timer task")??;
    info!("pulmo stopped");
    Ok(())
}

/// Opens the database and spool and repairs what a crash can leave behind: half-written temp
/// files, jobs and exports that were in progress.
async fn open_store(config: &Config) -> anyhow::Result<pulmo_store::Store> {
    let store_config = config.store_config();
    tokio::task::spawn_blocking(move || -> anyhow::Result<pulmo_store::Store> {
        let store = pulmo_store::Store::open(store_config)?;
        let swept = store.spool().sweep_temp_files()?;
        let jobs = store.requeue_running_jobs()?;
        let exports = store.requeue_sending_exports()?;
        info!(swept_temp_files = swept, requeued_jobs = jobs, requeued_exports = exports, "store opened");
        Ok(store)
    })
    .await?
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
