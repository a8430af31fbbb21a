//! Truth: the exact answer key of one synthetic study (truth.json): geometry, pose, every
//! nodule's model and measurements, Lung-RADS, and for follow-ups the transform and matching.

use std::path::Path;

use pulmo_volume::Geometry;
use serde::{Deserialize, Serialize};

use crate::anatomy::Side;
use crate::identity::StudyIdentity;
use crate::lungrads_truth::LungRads;
use crate::math::{mat_mul, Affine, Mat3, Vec3};
use crate::nodule::{Attachment, NoduleKind, NoduleModel, NoduleShape};
use crate::spec::{FollowUpSpec, PhantomSpec, RigidMotion};
use crate::PhantomError;

/// Bumped whenever the anatomy or tree generators change: a follow-up must rebuild exactly
/// the prior's patient, so it refuses a prior made by another scene version.
pub const SCENE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    pub name: String,
    pub version: String,
    pub scene_version: u32,
}

impl Generator {
    pub fn current() -> Generator {
        Generator {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            scene_version: SCENE_VERSION,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StudyKind {
    Baseline,
    FollowUp,
    /// Synthetic nodules inserted into a real CT series.
    Insertion,
}

/// What rebuilds the phantom patient's anatomy (lungs, bones, vessel trees) exactly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PatientModel {
    pub anatomy_seed: u64,
    /// Scale of the standard adult body (fitted to the field of view).
    pub body_size: f64,
}

/// Where the patient's body frame lies in this study's LPS space:
/// lps = rotation · diag(1, 1, breathing_scale_si) · body + translation_mm.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pose {
    pub rotation: Mat3,
    pub translation_mm: Vec3,
    pub breathing_scale_si: f64,
    /// The same map as one 4x4 matrix (body -> LPS), for convenience.
    pub body_to_lps: Affine,
}

impl Pose {
    pub fn new(rotation: Mat3, translation_mm: Vec3, breathing_scale_si: f64) -> Pose {
        let scale = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, breathing_scale_si]];
        let body_to_lps = Affine { linear: mat_mul(&rotation, &scale), translation: translation_mm };
        Pose { rotation, translation_mm, breathing_scale_si, body_to_lps }
    }

    pub fn identity() -> Pose {
        Pose::new(crate::math::IDENTITY, [0.0; 3], 1.0)
    }
}

/// Measurements of the solid component of a part-solid nodule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoreTruth {
    pub hu: f64,
    pub volume_mm3: f64,
    pub long_axis_mm: f64,
    pub short_axis_mm: f64,
    pub mean_diameter_mm: f64,
}

/// How a nodule changed since the prior study (follow-ups only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrowthTruth {
    pub prior_id: u32,
    pub interval_days: u32,
    /// Volume doubling time in days; None: stable.
    pub vdt_days: Option<f64>,
    /// V_current / V_prior = 2^(interval / VDT).
    pub volume_ratio: f64,
    pub prior_volume_mm3: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoduleTruth {
    /// Unique within the study; carries no information across studies (see matching).
    pub id: u32,
    pub centre_lps_mm: Vec3,
    /// Continuous voxel index (z, y, x) of the centre in this study's volume.
    pub centre_voxel_zyx: Vec3,
    pub in_field_of_view: bool,
    pub lung: Option<Side>,
    pub kind: NoduleKind,
    pub shape: NoduleShape,
    pub attachment: Attachment,
    /// Attenuation of the nodule body (the halo of a part-solid nodule), HU.
    pub hu: f64,
    /// Exact volume of everything rendered (spicules included), mm³.
    pub volume_mm3: f64,
    /// Axial long and short axes of the body (spicules excluded), unrounded, mm.
    pub long_axis_mm: f64,
    pub short_axis_mm: f64,
    /// Lung-RADS mean diameter: (long + short) / 2 from values rounded to 0.1 mm.
    pub mean_diameter_mm: f64,
    /// LPS z of the axial plane where the axes were measured.
    pub axial_plane_z_mm: f64,
    pub solid_core: Option<CoreTruth>,
    /// Lung-RADS v2022 category the truth implies under the baseline rules (4X for spiculated).
    pub lung_rads: LungRads,
    /// The category from type and size alone (no 4X upgrade).
    pub lung_rads_size_category: LungRads,
    pub growth: Option<GrowthTruth>,
    /// Centre in the patient body frame and the exact model, for re-rendering.
    pub centre_body_mm: Vec3,
    pub model: NoduleModel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoduleMatch {
    pub current: u32,
    /// The same nodule's id in the prior study; None for a new nodule.
    pub prior: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUpTruth {
    pub prior_study_instance_uid: String,
    pub prior_series_instance_uid: String,
    pub prior_frame_of_reference_uid: String,
    pub interval_days: u32,
    /// Maps prior LPS (mm) to current LPS (mm): the rigid motion and the S-I breathing scale.
    pub prior_to_current: Affine,
    pub motion: RigidMotion,
    pub breathing_scale_si: f64,
    pub matching: Vec<NoduleMatch>,
    pub resolved_prior_ids: Vec<u32>,
    pub spec: FollowUpSpec,
}

/// Where inserted nodules went (insertions only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackgroundInfo {
    pub source_study_instance_uid: Option<String>,
    pub source_series_instance_uid: Option<String>,
    /// Lung voxels found by the threshold mask.
    pub lung_voxels: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub generator: Generator,
    pub kind: StudyKind,
    /// The seed that drew this study (PhantomSpec::seed, or FollowUpSpec::seed).
    pub seed: u64,
    /// The acquisition and patient actually used (for follow-ups: the prior's, with overrides).
    pub spec: PhantomSpec,
    pub dims_zyx: [usize; 3],
    pub geometry: Geometry,
    pub slice_thickness_mm: f64,
    pub identity: StudyIdentity,
    /// None for insertions (the anatomy is real).
    pub patient_model: Option<PatientModel>,
    pub pose: Pose,
    pub nodules: Vec<NoduleTruth>,
    /// Study-level baseline-rules category (highest over nodules in the field of view).
    pub lung_rads: LungRads,
    pub follow_up: Option<FollowUpTruth>,
    pub background: Option<BackgroundInfo>,
}

impl Truth {
    pub fn read(path: &Path) -> Result<Truth, PhantomError> {
        let text = std::fs::read_to_string(path).map_err(|e| PhantomError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| PhantomError::Json { path: path.to_path_buf(), source: e })
    }

    pub fn write(&self, path: &Path) -> Result<(), PhantomError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| PhantomError::Json { path: path.to_path_buf(), source: e })?;
        std::fs::write(path, text).map_err(|e| PhantomError::io(path, e))
    }

    pub fn nodule(&self, id: u32) -> Option<&NoduleTruth> {
        self.nodules.iter().find(|n| n.id == id)
    }
}
