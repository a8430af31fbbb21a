//! The running node (`pulmo serve`): the SCP storing into the spool and database, the quiet
//! timer that turns finished studies into queued jobs, the job workers (with their models),
//! one export loop per destination, and orderly shutdown on SIGTERM/SIGINT.

mod completion;
mod export;
mod http;
mod ingest;
mod jobs;
mod metrics;
mod priors;

use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::sync::watch;
use tracing::info;

use crate::config::Config;

pub use ingest::Ingest;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let workers_models = load_models(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen.dicom)
        .await
        .with_context(|| format!("binding the DICOM port {}", config.listen.dicom))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let metrics = Arc::new(metrics::Metrics::default());
    let ingest = Arc::new(Ingest::new(store.clone(), config.storage.min_free_mb * 1024 * 1024, metrics.clone()));
    let completion = tokio::spawn(completion::run(store.clone(), config.quiet_time(), config.retention(), stop_rx.clone()));
    let mut workers = tokio::task::JoinSet::new();
    let settings = jobs::JobSettings {
        destinations: config.destinations.iter().map(|d| d.name.clone()).collect(),
        profiles: config.profiles.clone(),
        priors: priors::PriorSource::from_config(&config, ingest.clone()),
    };
    for (id, pipeline) in workers_models.into_iter().enumerate() {
        let worker = jobs::Worker { id, pipeline: pipeline.map(|p| Arc::new(Mutex::new(p))) };
        workers.spawn(jobs::run(store.clone(), settings.clone(), worker, stop_rx.clone()));
    }
    for d in &config.destinations {
        workers.spawn(export::run(store.clone(), d.clone(), config.export.calling_ae.clone(), metrics.clone(), stop_rx.clone()));
    }
    if let Some(addr) = config.listen.http {
        let http = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding the HTTP port {addr}"))?;
        info!(%addr, "HTTP /healthz and /metrics listening");
        let (store, metrics, stop) = (store.clone(), metrics.clone(), stop_rx.clone());
        workers.spawn(async move {
            if let Err(e) = http::serve(http, store, metrics, stop).await {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        });
    }
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutdown requested: no new associations; finishing the ones in flight");
        let _ = stop_tx.send(true);
    });
    pulmo_net::serve(listener, Arc::new(config.node.clone()), ingest, stop_rx).await?;
    completion.await.context("quiet timer task")??;
    workers.join_all().await;
    info!("pulmo stopped");
    Ok(())
}

/// One entry per job worker: its own models when a profile analyses (loaded and checked now,
/// so a missing or wrong model stops start-up with its name), else none.
async fn load_models(config: &Config) -> anyhow::Result<Vec<Option<pulmo_analysis::Pipeline>>> {
    let settings = config.analysis.clone();
    if !config.analyzes() {
        return Ok((0..settings.workers).map(|_| None).collect());
    }
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Option<pulmo_analysis::Pipeline>>> {
        let models = &settings.models;
        let load = |_| crate::cmd::load_pipeline(models, &settings.device, settings.cpu_threads).map(Some).context("[analysis]");
        let pipelines = (0..settings.workers).map(load).collect::<anyhow::Result<Vec<_>>>()?;
        let device = pipelines.iter().flatten().next().map(|p| p.device());
        info!(workers = settings.workers, ?device, models = %models.display(), "analysis models loaded");
        Ok(pipelines)
    })
    .await?
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

/// Runs a store call on the blocking pool (the store fsyncs and locks); errors are logged and
/// give None, so a loop can carry on with its next round.
pub(crate) async fn blocking<T: Send + 'static>(
    store: &pulmo_store::Store,
    f: impl FnOnce(&pulmo_store::Store) -> pulmo_store::Result<T> + Send + 'static,
) -> Option<T> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "store access failed");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "store task failed");
            None
        }
    }
}
