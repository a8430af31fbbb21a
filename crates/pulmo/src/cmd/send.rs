//! `pulmo send AE@host:port FILES...`: C-STORE DICOM files (folders recursively) to a peer in
//! one association, as they are (no re-encoding).

use std::path::{Path, PathBuf};

use anyhow::Context;
use pulmo_net::{OutgoingObject, Peer};

#[derive(clap::Args)]
pub struct Args {
    /// The peer, as AE_TITLE@host:port.
    peer: Peer,
    /// DICOM files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Our calling AE title.
    #[arg(long, default_value = "PULMO")]
    calling_ae: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for p in &args.paths {
        collect(p, &mut files)?;
    }
    let objects = files
        .iter()
        .map(|f| OutgoingObject::from_part10_file(f).with_context(|| format!("reading {}", f.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let count = objects.len();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(pulmo_net::send(&args.peer, &args.calling_ae, objects))?;
    let failed: Vec<_> = report.failures().collect();
    for f in &failed {
        eprintln!("{}: status {:#06X}", f.sop_instance_uid, f.status);
    }
    println!("sent {count} object(s) to {}: {} stored, {} failed", args.peer.ae_title, count - failed.len(), failed.len());
    anyhow::ensure!(failed.is_empty(), "{} object(s) were not stored", failed.len());
    Ok(())
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut children: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        children.sort();
        for c in children {
            collect(&c, out)?;
        }
    } else {
        out.push(path.to_owned());
    }
    Ok(())
}
