//! The node's small HTTP side on localhost: `/healthz` (is it serving, is the database
//! readable) and `/metrics` (Prometheus text: traffic counters plus queue states).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use pulmo_store::Store;
use tokio::sync::watch;

use super::metrics::Metrics;

#[derive(Clone)]
struct Shared {
    store: Store,
    metrics: Arc<Metrics>,
}

pub async fn serve(listener: tokio::net::TcpListener, store: Store, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .with_state(Shared { store, metrics });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}

async fn healthz(State(s): State<Shared>) -> (StatusCode, String) {
    match super::blocking(&s.store, |st| st.status(0)).await {
        Some(_) => (StatusCode::OK, "ok\n".into()),
        None => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n".into()),
    }
}

async fn metrics_text(State(s): State<Shared>) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let mut out = String::new();
    s.metrics.render(&mut out);
    if let Some(status) = super::blocking(&s.store, |st| st.status(0)).await {
        use std::fmt::Write;
        let _ = writeln!(out, "# HELP pulmo_jobs Jobs by state.\n# TYPE pulmo_jobs gauge");
        for (state, n) in &status.jobs {
            let _ = writeln!(out, "pulmo_jobs{{state=\"{state}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP pulmo_studies Studies by state.\n# TYPE pulmo_studies gauge");
        for (state, n) in &status.studies {
            let _ = writeln!(out, "pulmo_studies{{state=\"{state}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP pulmo_exports Exports by destination and state (failed = parked).\n# TYPE pulmo_exports gauge");
        for d in &status.exports {
            for (state, n) in &d.counts {
                let _ = writeln!(out, "pulmo_exports{{destination=\"{}\",state=\"{state}\"}} {n}", d.destination);
            }
        }
    }
    (StatusCode::OK, [("content-type", "text/plain; version=0.0.4")], out)
}
