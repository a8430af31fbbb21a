//! The whole result for one CT series: what was analysed (UIDs, grid, slices), by what
//! (versions, models, device), the lungs, the nodules and the exam-level assessment.

use pulmo_clinical::fleischner::SizeBand;
use pulmo_clinical::lung_rads::Category;
use pulmo_volume::Geometry;
use serde::{Deserialize, Serialize};

use crate::follow_up::PriorComparison;
use crate::nodule::NoduleFinding;
use crate::patient::PatientFacts;

/// Bumped whenever a field changes meaning or disappears; readers check it.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyFindings {
    pub schema_version: u32,
    pub source: SourceSeries,
    pub algorithm: Algorithm,
    pub patient: PatientFacts,
    pub lungs: LungSummary,
    pub nodules: Vec<NoduleFinding>,
    pub exam: ExamAssessment,
    /// The prior exam the nodules were compared with; `None` for a baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<PriorComparison>,
    /// What a reader should know about how these findings were made (approximations,
    /// assumptions, anything unusual about the input).
    pub notes: Vec<String>,
    pub processing: Processing,
}

/// The CT series the findings are about, as the writers need to reference it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSeries {
    pub study_uid: String,
    pub series_uid: String,
    pub frame_of_reference_uid: Option<String>,
    pub study_date: Option<String>,
    /// The analysed grid: dims (z, y, x) and geometry in patient LPS mm.
    pub dims: [usize; 3],
    pub geometry: Geometry,
    /// Per slice of the grid (z index): the instance and frame it came from. Empty when the
    /// grid was resampled (irregular slice spacing), since no slice is then a source image.
    pub slices: Vec<SourceSlice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSlice {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    /// 1-based frame number for multi-frame images, 1 for single-frame ones.
    pub frame: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Algorithm {
    pub name: String,
    pub version: String,
    pub models: Vec<ModelRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LungExtent {
    pub volume_ml: f64,
    /// LPS z (mm) of the most superior and most inferior slices that hold this lung.
    pub top_z_mm: f64,
    pub bottom_z_mm: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LungSummary {
    pub right: Option<LungExtent>,
    pub left: Option<LungExtent>,
    /// LPS z (mm) of the carina; `None` when the trachea is not in view.
    pub carina_z_mm: Option<f64>,
    /// Fraction of lung voxels at or below -950 HU (LAA-950).
    pub laa950_fraction: f64,
    /// LAA-950 at or above pulmo-clinical's emphysema threshold (the Brock model's input).
    pub emphysema: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExamAssessment {
    /// Lung-RADS v2022 for the exam: the most suspicious nodule's category (1 without nodules).
    pub lung_rads: Category,
    pub management: String,
    /// Fleischner 2017 for the most suspicious nodule; `None` without nodules.
    pub fleischner: Option<FleischnerAdvice>,
}

/// pulmo does not know the patient's clinical risk, so it states both recommendations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleischnerAdvice {
    pub nodule_id: u32,
    pub size_band: SizeBand,
    pub low_risk: String,
    pub high_risk: String,
    pub applies_to: String,
}

/// How the analysis ran: not part of the findings' meaning, kept for operators and benchmarks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Processing {
    pub device: String,
    pub candidates: usize,
    pub detections: usize,
    pub stages: Vec<StageTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTime {
    pub stage: String,
    pub seconds: f64,
}
