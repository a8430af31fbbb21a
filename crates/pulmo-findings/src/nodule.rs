//! One nodule as the report states it: measurements from its segmentation, where it lies, and
//! what the clinical rules make of it (Lung-RADS, Brock, Mayo) with their inputs.

use pulmo_clinical::density::Density;
use pulmo_clinical::lung_rads::{Assessment, Status};
use pulmo_clinical::risk::{BrockInputs, MayoInputs, RiskEstimate};
use pulmo_volume::{BoxRegion, Geometry, Vec3};
use serde::{Deserialize, Serialize};

use crate::follow_up::{ChangeSincePrior, NoduleChange};
use crate::zone::Zone;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoduleFinding {
    /// 1-based, in report order: most suspicious Lung-RADS category first, then largest.
    pub id: u32,
    /// One UID for the nodule's whole life across the patient's studies (SEG segment and SR
    /// measurement group carry it).
    pub tracking_uid: String,
    /// The false-positive reduction model's probability that this is a nodule.
    pub detection_probability: f64,
    /// `None` when the centre lies outside both lung masks (e.g. a hilar mass).
    pub zone: Option<Zone>,
    pub measurements: Measurements,
    pub lung_rads: Assessment,
    /// Baseline without a prior; against a prior new, growing, slowly growing or stable.
    #[serde(default)]
    pub status: Status,
    /// The same nodule on the prior exam and what changed; `None` for baseline and new nodules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<NoduleChange>,
    /// `None` when the patient's age or sex is unknown (the models need both).
    pub brock: Option<Risk<BrockInputs>>,
    pub mayo: Option<Risk<MayoInputs>>,
    /// The surface mesh's file, relative to findings.json, when one was written.
    pub mesh_file: Option<String>,
    /// The voxels of the analysed grid (`SourceSeries::dims`) the segmentation holds: what
    /// the DICOM SEG shows. Partial volume makes `measurements.volume_mm3` differ from its
    /// voxel count times the voxel volume.
    pub region: BoxRegion,
}

impl NoduleFinding {
    /// The slice of the analysed grid the Lung-RADS axes were measured on (the long axis's
    /// mid-point), kept inside a grid of `slices` slices: the image a reader is sent to.
    /// How it changed since the prior exam; `None` for a baseline.
    pub fn change_since_prior(&self) -> Option<ChangeSincePrior> {
        ChangeSincePrior::of(self.status, self.change.as_ref())
    }

    pub fn key_slice(&self, geometry: &Geometry, slices: usize) -> usize {
        let [a, b] = self.measurements.long_axis_lps_mm.map(|p| geometry.lps_to_index(p)[0]);
        (((a + b) / 2.0).round().max(0.0) as usize).min(slices.saturating_sub(1))
    }
}

/// The colour every picture of nodule `id` draws it in (its SEG segment's display colour, its
/// outline on the summary page), sRGB: eight colours that stand out on grey CT, repeating.
pub fn nodule_colour(id: u32) -> [u8; 3] {
    const PALETTE: [[u8; 3]; 8] =
        [[255, 128, 0], [0, 200, 255], [255, 0, 200], [120, 230, 0], [255, 230, 0], [160, 100, 255], [255, 60, 60], [0, 220, 170]];
    PALETTE[id.saturating_sub(1) as usize % PALETTE.len()]
}

/// A malignancy estimate with the inputs it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Risk<I> {
    pub inputs: I,
    pub estimate: RiskEstimate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurements {
    pub centre_lps_mm: Vec3,
    /// Lung-RADS axes: longest diameter on the axial slice where the nodule is largest, and
    /// the longest extent perpendicular to it on that slice; mm, unrounded.
    pub long_axis_mm: f64,
    pub short_axis_mm: f64,
    /// The axes as lines on that slice (LPS mm), for drawing and for SR polylines.
    pub long_axis_lps_mm: [Vec3; 2],
    pub short_axis_lps_mm: [Vec3; 2],
    /// (long + short) / 2 from values rounded to 0.1 mm, as Lung-RADS measures.
    pub mean_diameter_mm: f64,
    /// LPS z of the slice the axes were measured on.
    pub axial_plane_z_mm: f64,
    pub longest_diameter_3d_mm: f64,
    /// Partial-volume corrected, mm3.
    pub volume_mm3: f64,
    pub hu: HuStats,
    /// Volume x density, with density (g/cm3) taken as (HU + 1000) / 1000.
    pub mass_mg: f64,
    pub solid_core: Option<SolidCore>,
    /// Solid core volume / nodule volume.
    pub solid_fraction: f64,
    pub density: Density,
    /// 1 for a sphere, lower for lobulated or spiculated shapes.
    pub sphericity: f64,
    /// Spiculated margin (the Brock and Mayo input, and Lung-RADS 4X): in pulmo's findings the
    /// margin model's `spiculation_probability` at or above its operating point; `None` where
    /// the margin is not assessed (ground glass), so the risk models run without it and say so.
    pub spiculated: Option<bool>,
    /// Spicules counted on the margin: thin strands that leave it and end in the lung;
    /// `None` for ground glass, whose margin is too faint to tell strands from noise.
    #[serde(default)]
    pub spicules: Option<u32>,
    /// The margin model's probability that the margin is spiculated (a 3D CNN on a patch
    /// around the nodule); `None` where not assessed.
    #[serde(default)]
    pub spiculation_probability: Option<f64>,
    /// How far the margin departs from the smooth (round, oval or lentiform) outline fitted to
    /// it, leaving out the side on the chest wall: RMS distance as a share of the mean radius.
    /// Smooth nodules measure 0.01-0.035, lobulated ones more; `None` where too little of the
    /// margin is free of the wall to fit.
    #[serde(default)]
    pub margin_irregularity: Option<f64>,
    pub calcified: bool,
    /// Touching the pleura: chest wall, mediastinum or diaphragm.
    pub juxtapleural: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HuStats {
    pub mean: f64,
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SolidCore {
    pub long_axis_mm: f64,
    pub short_axis_mm: f64,
    pub mean_diameter_mm: f64,
    pub volume_mm3: f64,
}
