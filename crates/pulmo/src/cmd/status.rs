//! `pulmo status`: what the node holds and did: studies, jobs and exports by state, exports
//! waiting or parked (with attempts and last error), recent jobs, analyses and associations,
//! and with `--findings` each recent analysis's nodule table.

use std::path::PathBuf;

use pulmo_store::{Store, StoreStatus};

use crate::config::Config;

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file of the node (for the database location).
    #[arg(long, default_value = "config/pulmo.toml")]
    config: PathBuf,
    /// How many recent jobs and associations to list.
    #[arg(long, default_value_t = 10)]
    recent: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also print the nodule table of each recent analysis (text only).
    #[arg(long)]
    findings: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let store = Store::open(config.store_config())?;
    let status = store.status(args.recent)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_text(&status);
        if args.findings {
            print_findings(&store, &status)?;
        }
    }
    Ok(())
}

/// The full summary (lungs, nodule table, exam) of each recent analysis.
fn print_findings(store: &Store, status: &StoreStatus) -> anyhow::Result<()> {
    for recent in &status.recent_findings {
        let stored = store.study_findings(&recent.study_uid)?;
        let analysis = stored.iter().find(|s| s.study_version == recent.study_version && s.findings.source.series_uid == recent.series_uid);
        if let Some(s) = analysis {
            println!("
study {} v{}:
{}", recent.study_uid, recent.study_version, pulmo_findings::summary(&s.findings));
        }
    }
    Ok(())
}

fn print_text(s: &StoreStatus) {
    let counts = |m: &dyn Fn() -> Vec<String>| m().join(", ");
    println!("studies:  {}", counts(&|| s.studies.iter().map(|(k, v)| format!("{k} {v}")).collect()));
    println!("jobs:     {}", counts(&|| s.jobs.iter().map(|(k, v)| format!("{k} {v}")).collect()));
    for d in &s.exports {
        println!("exports to {}: {}", d.destination, counts(&|| d.counts.iter().map(|(k, v)| format!("{k} {v}")).collect()));
    }
    if !s.pending_exports.is_empty() {
        println!("\npending exports:");
        for g in &s.pending_exports {
            println!(
                "  {} study {} {}: {} object(s), {} attempt(s), next {}{}",
                g.destination,
                g.study_uid,
                g.state,
                g.objects,
                g.attempts,
                g.next_attempt_at,
                g.last_error.as_deref().map(|e| format!(", last error: {e}")).unwrap_or_default()
            );
        }
    }
    println!("\nrecent jobs:");
    for j in &s.recent_jobs {
        println!("  #{} study {} v{} {} (attempts {}){}", j.id, j.study_uid, j.study_version, j.state, j.attempts,
            j.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default());
    }
    println!("\nrecent analyses:");
    for f in &s.recent_findings {
        println!("  {} study {} v{} series {}: {} nodule(s), Lung-RADS {}", f.created_at, f.study_uid, f.study_version, f.series_uid, f.nodules, f.lung_rads);
    }
    println!("\nrecent associations:");
    for a in &s.recent_associations {
        println!(
            "  {} {} -> {} from {}: {} instance(s), {} bytes, {}{}",
            a.started_at,
            a.calling_ae,
            a.called_ae,
            a.peer_addr,
            a.instances,
            a.bytes,
            a.outcome.map_or("open".to_string(), |o| o.to_string()),
            a.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        );
    }
}
