//! The margin model: whether a solid or part-solid nodule's margin is spiculated, by a 3D CNN
//! under pulmo-torch's model contract scoring a patch around the nodule.
//!
//! Spicules counted on the CT ([`crate::spiculation`]) could not tell spiculated margins from
//! vessel ends that stop near a nodule: a count rule that called more of one called more of the
//! other. The model reads the whole margin at once; it was trained on nodules of known margin,
//! in phantoms and inserted into real CT series (scripts/train/margin).

use std::path::Path;

use pulmo_findings::ModelRef;
use pulmo_torch::model::{Model, ModelError};
use pulmo_torch::Device;
use pulmo_volume::Vec3;

use crate::detect::{model_ref, patch_probabilities, DetectError, WindowedCt};
use crate::measure::Measurements;
use crate::pipeline::MASS_MM;

/// The margin model, loaded and checked.
#[derive(Debug)]
pub struct MarginModel {
    model: Model,
}

impl MarginModel {
    /// Loads the model whose manifest is at `manifest` (fails, naming it, if it is missing or
    /// wrong: there is no fallback to the spicule count).
    pub fn load(manifest: &Path, device: Device) -> Result<MarginModel, ModelError> {
        Ok(MarginModel { model: Model::load(manifest, device)? })
    }

    /// Which model this is, for the findings.
    pub fn model_ref(&self) -> ModelRef {
        model_ref(&self.model)
    }

    /// Calls the margin of every nodule whose margin is assessed (`spiculated` is `Some`: solid
    /// and part-solid ones with contrast to read) on the patch around its centre on `ct` (a
    /// mass's at twice the spacing, as the detector scores it: the model was trained on nodules
    /// up to 28 mm): sets `spiculation_probability`, and `spiculated` from it at the model's
    /// operating point.
    pub fn call<'a>(&self, ct: &WindowedCt, nodules: impl IntoIterator<Item = &'a mut Measurements>) -> Result<(), DetectError> {
        let mut assessed: Vec<&mut Measurements> = nodules.into_iter().filter(|m| m.spiculated.is_some()).collect();
        let centres: Vec<(Vec3, bool)> = assessed.iter().map(|m| (m.centre_lps_mm, m.long_axis_mm >= MASS_MM)).collect();
        let threshold = self.model.threshold();
        for (m, p) in assessed.iter_mut().zip(patch_probabilities(&self.model, ct, &centres)?) {
            m.spiculated = Some(p >= threshold);
            m.spiculation_probability = Some(p);
        }
        Ok(())
    }
}
