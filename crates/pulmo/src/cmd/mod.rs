//! One module per subcommand: its clap arguments and its `run`; and what the commands that
//! analyse CT share: their model and device options, and loading the pipeline.

use std::path::{Path, PathBuf};

use anyhow::Context;
use pulmo_analysis::Pipeline;

pub mod analyze;
pub mod devices;
pub mod echo;
pub mod eval;
pub mod inspect;
pub mod models;
pub mod phantom;
pub mod send;
pub mod serve;
pub mod status;

/// The models and device of a command that analyses CT.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// Folder of the model manifests and TorchScript files.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// `auto` (CUDA when present, else CPU), `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    device: String,
    /// CPU threads for libtorch; 0 = one per core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

impl ModelArgs {
    pub fn load(&self) -> anyhow::Result<Pipeline> {
        load_pipeline(&self.models, &self.device, self.threads)
    }
}

/// Selects the device, sets libtorch's CPU threads and loads the models under `models`
/// (checked: a missing or wrong model is an error naming it).
pub fn load_pipeline(models: &Path, device: &str, cpu_threads: usize) -> anyhow::Result<Pipeline> {
    let device = pulmo_torch::select_device(device).with_context(|| format!("device {device:?}"))?;
    pulmo_torch::set_cpu_threads(cpu_threads);
    Pipeline::load(models, device).with_context(|| format!("loading the models in {}", models.display()))
}
