//! The one configuration file hospital IT edits (`config/pulmo.toml`): where pulmo listens,
//! who may send to it, where it keeps data and when a study is complete. Relative paths in it are
//! resolved against the file's own folder, so the shipped file works from any directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use pulmo_net::NodePolicy;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: Listen,
    /// Association policy: our AE titles, allowed callers, limits, accepted syntaxes.
    #[serde(default)]
    pub node: NodePolicy,
    pub storage: Storage,
    #[serde(default)]
    pub studies: Studies,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// DICOM port, e.g. "0.0.0.0:11112".
    pub dicom: SocketAddr,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    pub spool: PathBuf,
    pub database: PathBuf,
    /// Below this much free disk space, C-STORE is refused with "out of resources" (0xA700).
    #[serde(default = "default_min_free_mb")]
    pub min_free_mb: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Studies {
    /// A study is complete after this many seconds without a new instance.
    pub quiet_seconds: f64,
}

fn default_min_free_mb() -> u64 {
    1024
}

impl Default for Studies {
    fn default() -> Self {
        Studies { quiet_seconds: 30.0 }
    }
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: Config = toml::from_str(&text).with_context(|| format!("{}: invalid configuration", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.storage.spool = base.join(&config.storage.spool);
        config.storage.database = base.join(&config.storage.database);
        config.validate().with_context(|| format!("{}: invalid configuration", path.display()))?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.node.validate()?;
        anyhow::ensure!(self.studies.quiet_seconds > 0.0, "studies.quiet_seconds must be positive");
        Ok(())
    }

    pub fn quiet_time(&self) -> Duration {
        Duration::from_secs_f64(self.studies.quiet_seconds)
    }

    pub fn store_config(&self) -> pulmo_store::StoreConfig {
        pulmo_store::StoreConfig::new(&self.storage.database, &self.storage.spool)
    }
}
