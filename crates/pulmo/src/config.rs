//! The one configuration file hospital IT edits (`config/pulmo.toml`): where pulmo listens,
//! who may send to it, where it keeps data, when a study is complete, and where results go. Relative paths in it are
//! resolved against the file's own folder, so the shipped file works from any directory.

use std::collections::BTreeMap;
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
    #[serde(default)]
    pub export: Export,
    #[serde(default)]
    pub destinations: Vec<Destination>,
    /// Pipeline profile per called AE title; titles not listed use `receipt`.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// The analysis workers: models, device, how many studies at once.
    #[serde(default)]
    pub analysis: Analysis,
    /// Comparing each analysed study with the patient's prior: where priors come from.
    #[serde(default)]
    pub priors: Priors,
}

/// How a study's prior (the patient's most recent earlier CT study) is found.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Priors {
    /// Compare with a prior at all; off: every study is analysed as a baseline.
    pub enabled: bool,
    pub match_on: PatientMatch,
    /// The destination (by name) to query with C-FIND when no prior is held here; none: local
    /// priors only.
    pub query: Option<String>,
    /// "c-move" (the PACS sends to `retrieve_ae` at our address) or "c-get" (on the query
    /// association itself, for PACS that cannot reach us).
    pub retrieve: Retrieve,
    /// Our AE title for retrieved priors: the C-MOVE destination, and the called AE a C-GET's
    /// instances are stored under. Must be one of node.ae_titles with the store-only profile,
    /// so a retrieved prior is kept, not analysed or answered.
    pub retrieve_ae: String,
    /// How long a study waits for its prior's retrieval before it is analysed as a baseline
    /// (its findings then say why).
    pub timeout_seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PatientMatch {
    /// Same Patient ID (0010,0020).
    PatientId,
    /// Same Patient ID and Issuer of Patient ID (0010,0021): for PACS that hold several sites.
    PatientIdAndIssuer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Retrieve {
    CMove,
    CGet,
}

impl Default for Priors {
    fn default() -> Self {
        Priors {
            enabled: true,
            match_on: PatientMatch::PatientId,
            query: None,
            retrieve: Retrieve::CMove,
            retrieve_ae: "PULMO_PRIORS".into(),
            timeout_seconds: 300.0,
        }
    }
}

/// What pulmo does with a complete study, chosen by the AE title it was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Acknowledge the study with a receipt (Key Object Selection) sent to the destinations.
    Receipt,
    /// Keep the study (e.g. priors for comparison) and produce nothing.
    StoreOnly,
    /// Analyse the study's CT series for lung nodules, keep the findings, and send the receipt.
    Analyze,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// DICOM port, e.g. "0.0.0.0:11112".
    pub dicom: SocketAddr,
    /// `/healthz` and `/metrics`, e.g. "127.0.0.1:8042"; absent = no HTTP.
    #[serde(default)]
    pub http: Option<SocketAddr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    pub spool: PathBuf,
    pub database: PathBuf,
    /// Below this much free disk space, C-STORE is refused with "out of resources" (0xA700).
    #[serde(default = "default_min_free_mb")]
    pub min_free_mb: u64,
    /// Received images of a complete study are removed this many days after its last instance
    /// (its findings stay); 0 keeps them.
    #[serde(default)]
    pub retention_days: f64,
    /// Received images beyond this many GB are removed, oldest studies first; 0: no budget.
    #[serde(default)]
    pub retention_gb: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Studies {
    /// A study is complete after this many seconds without a new instance.
    pub quiet_seconds: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// Our calling AE title when sending results.
    pub calling_ae: String,
    pub backoff_base_seconds: f64,
    pub backoff_cap_seconds: f64,
    /// After this many failed attempts an export is parked as failed (see `pulmo status`).
    pub max_attempts: u32,
}

/// A place results are sent to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub name: String,
    pub ae_title: String,
    pub host: String,
    pub port: u16,
}

/// How studies with the `analyze` profile are analysed.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Analysis {
    /// Folder of the model manifests and TorchScript files.
    pub models: PathBuf,
    /// "auto" (CUDA when present, else CPU), "cpu", "cuda" or "cuda:N".
    pub device: String,
    /// Studies analysed at the same time, each by a worker with its own copy of the models.
    pub workers: usize,
    /// libtorch CPU threads for the whole process; 0 = one per core.
    pub cpu_threads: usize,
}

impl Default for Analysis {
    fn default() -> Self {
        Analysis { models: "models".into(), device: "auto".into(), workers: 1, cpu_threads: 0 }
    }
}

/// More workers than this only queue for the same cores or GPU.
const MAX_WORKERS: usize = 16;

impl Default for Export {
    fn default() -> Self {
        Export { calling_ae: "PULMO".into(), backoff_base_seconds: 2.0, backoff_cap_seconds: 300.0, max_attempts: 20 }
    }
}

impl Destination {
    pub fn peer(&self) -> pulmo_net::Peer {
        pulmo_net::Peer { ae_title: self.ae_title.clone(), host: self.host.clone(), port: self.port }
    }
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
        config.analysis.models = base.join(&config.analysis.models);
        config.validate().with_context(|| format!("{}: invalid configuration", path.display()))?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.node.validate()?;
        anyhow::ensure!(self.studies.quiet_seconds > 0.0, "studies.quiet_seconds must be positive");
        anyhow::ensure!(
            self.storage.retention_days >= 0.0 && self.storage.retention_gb >= 0.0,
            "storage.retention_days and storage.retention_gb must be 0 (no limit) or positive"
        );
        anyhow::ensure!(self.export.max_attempts > 0, "export.max_attempts must be at least 1");
        anyhow::ensure!(pulmo_net::policy::valid_ae_title(&self.export.calling_ae), "export.calling_ae {:?} is not a valid AE title", self.export.calling_ae);
        for ae in self.profiles.keys() {
            anyhow::ensure!(self.node.ae_titles.contains(ae), "profiles: {ae:?} is not one of node.ae_titles");
        }
        anyhow::ensure!(
            (1..=MAX_WORKERS).contains(&self.analysis.workers),
            "analysis.workers must be 1 to {MAX_WORKERS}, not {}",
            self.analysis.workers
        );
        for d in &self.destinations {
            anyhow::ensure!(pulmo_net::policy::valid_ae_title(&d.ae_title), "destination {}: invalid AE title {:?}", d.name, d.ae_title);
        }
        self.validate_priors()
    }

    fn validate_priors(&self) -> anyhow::Result<()> {
        let p = &self.priors;
        anyhow::ensure!(p.timeout_seconds > 0.0, "priors.timeout_seconds must be positive");
        let Some(name) = &p.query else { return Ok(()) };
        anyhow::ensure!(self.destination(name).is_some(), "priors.query: no [[destinations]] named {name:?}");
        anyhow::ensure!(
            self.profiles.get(&p.retrieve_ae) == Some(&Profile::StoreOnly),
            "priors.retrieve_ae {:?} must be one of node.ae_titles with the store-only profile, so retrieved priors are kept, not analysed",
            p.retrieve_ae
        );
        Ok(())
    }

    pub fn destination(&self, name: &str) -> Option<&Destination> {
        self.destinations.iter().find(|d| d.name == name)
    }

    pub fn retention(&self) -> pulmo_store::Retention {
        let positive = |v: f64| (v > 0.0).then_some(v);
        pulmo_store::Retention {
            max_age: positive(self.storage.retention_days).map(|d| Duration::from_secs_f64(d * 86_400.0)),
            max_bytes: positive(self.storage.retention_gb).map(|gb| (gb * 1e9) as u64),
        }
    }

    pub fn prior_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.priors.timeout_seconds)
    }

    /// Whether any called AE title runs the analysis (so the models must load at start-up).
    pub fn analyzes(&self) -> bool {
        self.profiles.values().any(|p| *p == Profile::Analyze)
    }

    pub fn quiet_time(&self) -> Duration {
        Duration::from_secs_f64(self.studies.quiet_seconds)
    }

    pub fn store_config(&self) -> pulmo_store::StoreConfig {
        let mut c = pulmo_store::StoreConfig::new(&self.storage.database, &self.storage.spool);
        c.export_backoff = pulmo_store::Backoff {
            base: Duration::from_secs_f64(self.export.backoff_base_seconds),
            cap: Duration::from_secs_f64(self.export.backoff_cap_seconds),
            max_attempts: self.export.max_attempts,
        };
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configuration_is_valid() {
        let config: Config = toml::from_str(include_str!("../../../config/pulmo.toml")).unwrap();
        config.validate().unwrap();
        assert_eq!(config.node.ae_titles, ["PULMO"]);
        assert_eq!(config.profiles.get("PULMO"), Some(&Profile::Analyze));
        let loaded = Config::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/pulmo.toml"))).unwrap();
        let manifest = loaded.analysis.models.join(pulmo_analysis::pipeline::DETECTOR_MANIFEST);
        assert!(manifest.is_file(), "the shipped models folder resolves to {}", manifest.display());
    }

    #[test]
    fn unknown_keys_and_bad_profiles_are_refused() {
        let base = "[listen]\ndicom = \"127.0.0.1:11112\"\n[storage]\nspool = \"s\"\ndatabase = \"d\"\n";
        assert!(toml::from_str::<Config>(&format!("{base}[studies]\nquiet = 3\n")).is_err());
        let config: Config = toml::from_str(&format!("{base}[profiles]\nOTHER = \"receipt\"\n")).unwrap();
        assert!(config.validate().is_err(), "a profile for an AE title we do not answer to");
        assert!(toml::from_str::<Config>(&format!("{base}[profiles]\nPULMO = \"analyse\"\n")).is_err());
        let config: Config = toml::from_str(&format!("{base}[analysis]\nworkers = 0\n")).unwrap();
        assert!(config.validate().unwrap_err().to_string().contains("analysis.workers"));
        assert!(toml::from_str::<Config>(&format!("{base}[analysis]\nthreads = 2\n")).is_err());
    }

    #[test]
    fn a_prior_query_needs_a_known_destination_and_a_store_only_title() {
        let base = "[listen]\ndicom = \"127.0.0.1:11112\"\n[storage]\nspool = \"s\"\ndatabase = \"d\"\n\
                    [node]\nae_titles = [\"PULMO\", \"PULMO_PRIORS\"]\n\
                    [[destinations]]\nname = \"pacs\"\nae_title = \"PACS\"\nhost = \"10.0.0.1\"\nport = 104\n";
        let check = |extra: &str| toml::from_str::<Config>(&format!("{base}{extra}")).unwrap().validate().map_err(|e| e.to_string());
        let err = check("[priors]\nquery = \"archive\"\n").unwrap_err();
        assert!(err.contains("no [[destinations]] named \"archive\""), "{err}");
        let err = check("[priors]\nquery = \"pacs\"\n").unwrap_err();
        assert!(err.contains("store-only"), "{err}");
        check("[profiles]\nPULMO_PRIORS = \"store-only\"\n[priors]\nquery = \"pacs\"\nretrieve = \"c-get\"\n").unwrap();
        let config: Config = toml::from_str(&format!("{base}[priors]\nmatch_on = \"patient-id-and-issuer\"\n")).unwrap();
        assert_eq!(config.priors.match_on, PatientMatch::PatientIdAndIssuer);
        assert!(toml::from_str::<Config>(&format!("{base}[priors]\nretrieve = \"c-find\"\n")).is_err());
    }
}
