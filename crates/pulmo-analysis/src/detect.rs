//! False-positive reduction: a 3D CNN under pulmo-torch's model contract scores a patch around
//! each candidate; those at or above the model's operating threshold are nodules.

use std::cell::RefCell;
use std::path::Path;

use pulmo_torch::model::{InputSpec, Model, ModelError};
use pulmo_torch::{image, Device, TchError, Tensor};
use pulmo_volume::{Vec3, Volume};
use serde::{Deserialize, Serialize};

use crate::candidates::Candidate;

/// Patches per forward pass: bounds memory (64 x 32^3 floats is 8 MB, x 40^3 16 MB).
const BATCH: usize = 64;
/// Candidates of this radius or more (the candidate finder's largest scale) may be masses,
/// larger than the training nodules (up to 30 mm) and than a patch at the model's spacing:
/// that patch sees only their inside. At [`MASS_ZOOM`] times the spacing the patch holds a
/// 50 mm mass as a 25 mm nodule.
const MASS_RADIUS_MM: f64 = 12.0;
const MASS_ZOOM: f64 = 2.0;

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("tensor operation failed: {0}")]
    Torch(#[from] TchError),
}

/// A candidate the model kept, with its probability of being a nodule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub candidate: Candidate,
    pub probability: f64,
}

/// The false-positive reduction model, loaded and checked.
#[derive(Debug)]
pub struct Detector {
    model: Model,
}

impl Detector {
    /// Loads the model whose manifest is at `manifest` (fails if it is missing or wrong: there
    /// is no fallback).
    pub fn load(manifest: &Path, device: Device) -> Result<Detector, ModelError> {
        Ok(Detector { model: Model::load(manifest, device)? })
    }

    /// Which model this is, for the findings.
    pub fn model_ref(&self) -> pulmo_findings::ModelRef {
        model_ref(&self.model)
    }

    pub fn threshold(&self) -> f64 {
        self.model.threshold()
    }

    /// Every candidate with its probability, in the candidates' order. A candidate of
    /// [`MASS_RADIUS_MM`] or more is scored on a patch of [`MASS_ZOOM`] times the spacing.
    pub fn score(&self, ct: &WindowedCt, candidates: &[Candidate]) -> Result<Vec<Detection>, DetectError> {
        let centres: Vec<(Vec3, bool)> = candidates.iter().map(|c| (c.centre_lps_mm, c.radius_mm >= MASS_RADIUS_MM)).collect();
        let probability = patch_probabilities(&self.model, ct, &centres)?;
        Ok(candidates.iter().zip(probability).map(|(c, probability)| Detection { candidate: *c, probability }).collect())
    }

    /// The candidates the model calls nodules.
    pub fn detect(&self, ct: &WindowedCt, candidates: &[Candidate]) -> Result<Vec<Detection>, DetectError> {
        let threshold = self.threshold();
        Ok(self.score(ct, candidates)?.into_iter().filter(|d| d.probability >= threshold).collect())
    }
}

/// A CT as the patch models read it: windowed to [0, 1] on a device, once per window and kept,
/// so that the detector and the margin model (which share the window) read one copy per study.
pub struct WindowedCt<'a> {
    ct: &'a Volume<i16>,
    windowed: RefCell<Vec<([f64; 2], Device, Tensor)>>,
}

impl<'a> WindowedCt<'a> {
    pub fn new(ct: &'a Volume<i16>) -> WindowedCt<'a> {
        WindowedCt { ct, windowed: RefCell::new(Vec::new()) }
    }

    /// The CT clipped to `window_hu` and mapped to [0, 1] on `device` (outside the scan, read
    /// as 0, is then the window's low end: air).
    fn windowed(&self, window_hu: [f64; 2], device: Device) -> Result<Tensor, TchError> {
        let mut kept = self.windowed.borrow_mut();
        if let Some((_, _, t)) = kept.iter().find(|(w, d, _)| *w == window_hu && *d == device) {
            return Ok(t.shallow_clone());
        }
        let [low, high] = window_hu.map(|v| v as f32);
        let voxels: Vec<f32> = self.ct.data().iter().map(|&v| ((f32::from(v) - low) / (high - low)).clamp(0.0, 1.0)).collect();
        let t = image::to_tensor(&voxels, self.ct.dims(), device)?;
        kept.push((window_hu, device, t.shallow_clone()));
        Ok(t)
    }

    /// Patches of `spec`'s size and spacing around `centres` (LPS mm): a model's input, and
    /// the training data's.
    pub fn patches(&self, centres: &[Vec3], spec: &InputSpec, device: Device) -> Result<Tensor, TchError> {
        let g = self.ct.geometry();
        let indices: Vec<[f64; 3]> = centres.iter().map(|c| g.lps_to_index(*c)).collect();
        let step = [0, 1, 2].map(|a| spec.spacing_mm[a] / g.spacing[a]);
        image::sample_patches(&self.windowed(spec.window_hu, device)?, &indices, spec.patch_size, step)
    }
}

/// Patches of `spec`'s size and spacing around `centres` (LPS mm) of `ct`, windowed to [0, 1]:
/// the training data's (see [`WindowedCt::patches`]).
pub fn patches(ct: &Volume<i16>, centres: &[Vec3], spec: &InputSpec, device: Device) -> Result<Tensor, TchError> {
    WindowedCt::new(ct).patches(centres, spec, device)
}

/// The probability `model` gives the patch around each centre, in order; a centre flagged
/// large (a mass) is scored on a patch of [`MASS_ZOOM`] times the model's spacing, which holds
/// it as the training patches held a large nodule.
pub(crate) fn patch_probabilities(model: &Model, ct: &WindowedCt, centres: &[(Vec3, bool)]) -> Result<Vec<f64>, DetectError> {
    let mut probability = vec![0.0; centres.len()];
    if centres.is_empty() {
        return Ok(probability);
    }
    let input = &model.manifest.input;
    let (large, small): (Vec<usize>, Vec<usize>) = (0..centres.len()).partition(|&i| centres[i].1);
    for (indices, zoom) in [(small, 1.0), (large, MASS_ZOOM)] {
        let spec = InputSpec { spacing_mm: input.spacing_mm.map(|s| s * zoom), ..input.clone() };
        for chunk in indices.chunks(BATCH) {
            let batch = ct.patches(&chunk.iter().map(|&i| centres[i].0).collect::<Vec<_>>(), &spec, model.device())?;
            let p = image::to_vec(&model.forward(&batch)?.f_sigmoid()?)?;
            chunk.iter().zip(p).for_each(|(&i, p)| probability[i] = f64::from(p));
        }
    }
    Ok(probability)
}

/// A model's name, version and checksum, as the findings cite it.
pub(crate) fn model_ref(model: &Model) -> pulmo_findings::ModelRef {
    let m = &model.manifest;
    pulmo_findings::ModelRef { name: m.name.clone(), version: m.version.clone(), sha256: m.sha256.clone() }
}
