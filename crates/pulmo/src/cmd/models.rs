//! `pulmo models`: the installed models and their manifests (model cards), and with `--check`
//! whether each one loads: file checksum, TorchScript, and one batch of the declared shape.

use std::path::PathBuf;

use anyhow::{bail, Context};
use pulmo_torch::model::{list_manifests, Manifest, Model};

#[derive(clap::Args)]
pub struct Args {
    /// Folder of `*.toml` manifests and their TorchScript files.
    #[arg(long, default_value = "models")]
    dir: PathBuf,
    /// Also load every model on the CPU (checksum, TorchScript, a test batch).
    #[arg(long)]
    check: bool,
    /// Print the manifests as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let manifests = list_manifests(&args.dir).with_context(|| format!("listing models in {}", args.dir.display()))?;
    if manifests.is_empty() {
        println!("no model manifests (*.toml) in {}", args.dir.display());
        return Ok(());
    }
    let mut failed = 0;
    let mut cards = Vec::new();
    for (path, manifest) in manifests {
        let checked = manifest.and_then(|m| if args.check { Model::load(&path, pulmo_torch::Device::Cpu).map(|model| model.manifest) } else { Ok(m) });
        match checked {
            Ok(m) if args.json => cards.push(m),
            Ok(m) => println!("{}{}", line(&m), if args.check { "  [ok]" } else { "" }),
            Err(e) => {
                failed += 1;
                eprintln!("{}: {e}", path.display());
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&cards)?);
    }
    if failed > 0 {
        bail!("{failed} model(s) in {} cannot be used", args.dir.display());
    }
    Ok(())
}

fn line(m: &Manifest) -> String {
    let metrics: Vec<String> = m.metrics.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
    format!(
        "{} {} ({}): {} | patch {:?} at {:?} mm, window {:?} HU | {}",
        m.name, m.version, m.task, m.file, m.input.patch_size, m.input.spacing_mm, m.input.window_hu, metrics.join(", ")
    )
}
