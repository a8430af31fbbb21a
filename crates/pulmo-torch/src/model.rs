//! The model contract: a TorchScript file plus a TOML manifest (its model card) saying what it
//! takes and returns. Loading checks the file's SHA-256 and runs one batch of the declared shape.
//!
//! Any network trained elsewhere (PyTorch, MONAI) that meets a manifest can be dropped into
//! `models/`; pulmo never guesses a model's preprocessing, it reads it here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{CModule, Device, Kind, Tensor};

/// A model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    /// What the model does, e.g. "nodule-false-positive-reduction".
    pub task: String,
    /// The TorchScript file, relative to the manifest.
    pub file: String,
    /// Lowercase hex SHA-256 of that file.
    pub sha256: String,
    pub input: InputSpec,
    pub output: OutputSpec,
    /// Where the training data came from and how training ran (free text per key).
    #[serde(default)]
    pub training: BTreeMap<String, String>,
    /// Measured on held-out data (e.g. "auc" = 0.97).
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Patch size in voxels, (z, y, x); the model takes [batch, 1, z, y, x] float32.
    pub patch_size: [i64; 3],
    /// Voxel spacing of a patch, mm, (z, y, x).
    pub spacing_mm: [f64; 3],
    /// HU clipped to [low, high], then mapped linearly to [0, 1].
    pub window_hu: [f64; 2],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// "logit": one value per patch, [batch] or [batch, 1]; sigmoid gives the probability.
    pub layout: String,
    /// Operating point: a patch is positive at or above this probability (default 0.5).
    #[serde(default)]
    pub threshold: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: cannot read the model manifest: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: invalid model manifest: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("model {name}: {path}: cannot read the TorchScript file: {source}")]
    File { name: String, path: PathBuf, source: std::io::Error },
    #[error("model {name}: {path} has SHA-256 {actual}, but its manifest says {expected}")]
    Checksum { name: String, path: PathBuf, expected: String, actual: String },
    #[error("model {name}: {path} is not a loadable TorchScript module: {reason}")]
    Load { name: String, path: PathBuf, reason: String },
    #[error("model {name}: a batch of shape {input:?} gave output {output}; the manifest's layout \"{layout}\" needs [{batch}] or [{batch}, 1]")]
    Shape { name: String, input: Vec<i64>, output: String, layout: String, batch: i64 },
}

/// A loaded, checked model on a device.
#[derive(Debug)]
pub struct Model {
    pub manifest: Manifest,
    module: CModule,
    device: Device,
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Manifest, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io { path: path.to_owned(), source })?;
        let manifest: Manifest =
            toml::from_str(&text).map_err(|e| ModelError::Manifest { path: path.to_owned(), reason: e.message().to_string() })?;
        manifest.check().map_err(|reason| ModelError::Manifest { path: path.to_owned(), reason })?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), String> {
        if self.output.layout != "logit" {
            return Err(format!("output layout \"{}\" is not supported (only \"logit\")", self.output.layout));
        }
        if self.input.patch_size.iter().any(|&n| !(1..=512).contains(&n)) {
            return Err(format!("patch size {:?} must be 1..=512 per axis", self.input.patch_size));
        }
        let [low, high] = self.input.window_hu;
        let ordered = low.is_finite() && high.is_finite() && low < high;
        if !ordered || self.input.spacing_mm.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err("window must be [low, high] with low < high, and spacings positive".into());
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("sha256 must be 64 hex digits".into());
        }
        Ok(())
    }
}

impl Model {
    /// Reads the manifest at `manifest_path`, checks the TorchScript file beside it against its
    /// SHA-256, loads it on `device`, and runs a batch of two zero patches through it.
    pub fn load(manifest_path: &Path, device: Device) -> Result<Model, ModelError> {
        let manifest = Manifest::read(manifest_path)?;
        let path = manifest_path.parent().unwrap_or(Path::new(".")).join(&manifest.file);
        let name = manifest.name.clone();
        let bytes = std::fs::read(&path).map_err(|source| ModelError::File { name: name.clone(), path: path.clone(), source })?;
        let actual = hex_sha256(&bytes);
        if !actual.eq_ignore_ascii_case(&manifest.sha256) {
            return Err(ModelError::Checksum { name, path, expected: manifest.sha256.clone(), actual });
        }
        let module = CModule::load_on_device(&path, device).map_err(|e| ModelError::Load { name, path, reason: e.to_string() })?;
        let model = Model { manifest, module, device };
        model.check_shape()?;
        Ok(model)
    }

    /// One logit per patch of `batch` ([n, 1, z, y, x], already windowed), as [n].
    pub fn forward(&self, batch: &Tensor) -> Result<Tensor, ModelError> {
        let n = batch.size().first().copied().unwrap_or(0);
        let shape_error = |output: String| ModelError::Shape {
            name: self.manifest.name.clone(),
            input: batch.size(),
            output,
            layout: self.manifest.output.layout.clone(),
            batch: n,
        };
        let input = batch.f_to(self.device).map_err(|e| shape_error(e.to_string()))?;
        let out = tch::no_grad(|| self.module.forward_ts(&[input])).map_err(|e| shape_error(e.to_string()))?;
        match out.size().as_slice() {
            [b] | [b, 1] if *b == n => out.f_reshape([n]).map_err(|e| shape_error(e.to_string())),
            other => Err(shape_error(format!("{other:?}"))),
        }
    }

    /// The operating point: a patch is positive at or above this probability.
    pub fn threshold(&self) -> f64 {
        self.manifest.output.threshold.unwrap_or(0.5)
    }

    pub fn device(&self) -> Device {
        self.device
    }

    fn check_shape(&self) -> Result<(), ModelError> {
        let [z, y, x] = self.manifest.input.patch_size;
        let zeros = Tensor::zeros([2, 1, z, y, x], (Kind::Float, self.device));
        self.forward(&zeros).map(|_| ())
    }
}

/// A manifest's path and what reading it gave.
pub type ListedManifest = (PathBuf, Result<Manifest, ModelError>);

/// Every `*.toml` manifest in `dir` with what reading it gave, sorted by file name.
pub fn list_manifests(dir: &Path) -> Result<Vec<ListedManifest>, ModelError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ModelError::Io { path: dir.to_owned(), source })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|p| {
            let m = Manifest::read(&p);
            (p, m)
        })
        .collect())
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
