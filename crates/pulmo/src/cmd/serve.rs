//! `pulmo serve`: run the DICOM node described by the configuration file.

use std::path::PathBuf;

use crate::config::Config;

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (AE titles, allowed callers, storage, destinations).
    #[arg(long, default_value = "config/pulmo.toml")]
    config: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(crate::node::run(config))
}
