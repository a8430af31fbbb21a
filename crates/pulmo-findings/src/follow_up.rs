//! What comparing a study with the patient's prior found: which prior, how well the two
//! registered, and per nodule its state on earlier exams and what changed since.

use pulmo_clinical::dates;
use pulmo_clinical::density::Density;
use pulmo_clinical::growth::{DoublingClass, VolumeChange};
use pulmo_clinical::lung_rads::{Category, Status};
use pulmo_volume::{Affine, Vec3};
use serde::{Deserialize, Serialize};

use crate::{Measurements, NoduleFinding, StudyFindings};

/// How a nodule changed since the prior exam, as a reader is told: the Lung-RADS status, except
/// that a stable nodule whose volume shrank is "shrinking" (Lung-RADS counts it as stable; its
/// category says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeSincePrior {
    New,
    Growing,
    SlowlyGrowing,
    Stable,
    Shrinking,
}

impl ChangeSincePrior {
    /// `None` for a baseline nodule, which has nothing to change from.
    pub fn of(status: Status, change: Option<&NoduleChange>) -> Option<ChangeSincePrior> {
        let shrinking = change.and_then(|c| c.volume_change) == Some(VolumeChange::Shrinking);
        match status {
            Status::Baseline => None,
            Status::New => Some(ChangeSincePrior::New),
            Status::Growing => Some(ChangeSincePrior::Growing),
            Status::SlowlyGrowing => Some(ChangeSincePrior::SlowlyGrowing),
            Status::Stable if shrinking => Some(ChangeSincePrior::Shrinking),
            Status::Stable => Some(ChangeSincePrior::Stable),
        }
    }
}

/// The prior exam a study was compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorComparison {
    pub study_uid: String,
    pub series_uid: String,
    pub study_date: Option<String>,
    /// Days from the prior's study date to this study's; `None` when either date is unknown,
    /// and then no growth rate is computed.
    pub interval_days: Option<f64>,
    /// Maps the prior's patient coordinates (LPS mm) to this study's.
    pub prior_to_current: Affine,
    pub registration: RegistrationQuality,
    /// Prior nodules that no nodule of this study matches.
    pub unmatched_prior: Vec<UnmatchedPrior>,
    /// pulmo's DICOM results for the prior (its SR and SEG) where the caller knows them: the
    /// SR cites them as pertinent other evidence.
    #[serde(default)]
    pub prior_objects: Vec<PriorObject>,
}

/// One DICOM object of the prior exam, as a reference needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorObject {
    pub study_uid: String,
    pub series_uid: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
}

impl PriorComparison {
    /// The prior's study date for reading ("2024-01-31"), or "unknown date".
    pub fn date_text(&self) -> String {
        self.study_date.as_deref().map(str::trim).filter(|d| !d.is_empty()).map_or("unknown date".to_string(), dates::display)
    }

    /// "366 days earlier", or "interval unknown".
    pub fn interval_text(&self) -> String {
        self.interval_days.map_or("interval unknown".to_string(), |d| format!("{d:.0} days earlier"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegistrationQuality {
    /// Dice overlap of the two lung masks after registration (1 = identical).
    pub lung_dice: f64,
    /// The optimiser's final similarity of the lung masks (1 = identical).
    pub similarity: f64,
}

/// A nodule of the prior exam as the comparison uses it, in the prior's coordinates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorNodule {
    /// Its number in the prior's findings.
    pub id: u32,
    pub tracking_uid: String,
    pub centre_lps_mm: Vec3,
    pub density: Density,
    pub long_axis_mm: f64,
    pub short_axis_mm: f64,
    pub mean_diameter_mm: f64,
    pub volume_mm3: f64,
    pub solid_core_mean_diameter_mm: Option<f64>,
    pub lung_rads: Category,
}

impl PriorNodule {
    /// A prior nodule from its measurements: numbered `id` in the prior's findings, with its
    /// tracking UID and category there (0, none and the category pulmo gives it for a nodule
    /// measured on the prior's CT that its findings did not list).
    pub fn measured(id: u32, tracking_uid: String, m: &Measurements, lung_rads: Category) -> PriorNodule {
        PriorNodule {
            id,
            tracking_uid,
            centre_lps_mm: m.centre_lps_mm,
            density: m.density,
            long_axis_mm: m.long_axis_mm,
            short_axis_mm: m.short_axis_mm,
            mean_diameter_mm: m.mean_diameter_mm,
            volume_mm3: m.volume_mm3,
            solid_core_mean_diameter_mm: m.solid_core.map(|c| c.mean_diameter_mm),
            lung_rads,
        }
    }
}

impl From<&NoduleFinding> for PriorNodule {
    fn from(n: &NoduleFinding) -> PriorNodule {
        PriorNodule::measured(n.id, n.tracking_uid.clone(), &n.measurements, n.lung_rads.category)
    }
}

/// The nodules the prior's findings missed but its CT shows, as "3 (solid 4.2 mm then)";
/// `None` when there are none.
pub fn found_on_prior_ct(nodules: &[NoduleFinding]) -> Option<String> {
    let items: Vec<String> = nodules
        .iter()
        .filter_map(|n| n.change.as_ref().filter(|c| c.found_on_prior_ct).map(|c| (n.id, &c.prior)))
        .map(|(id, p)| format!("{id} ({} {:.1} mm then)", p.density.label(), p.mean_diameter_mm))
        .collect();
    (!items.is_empty()).then(|| items.join(", "))
}

/// The prior exam as a follow-up needs it: which series was measured, and per nodule its values
/// and its track before the prior. Made from pulmo's findings on the prior, or read back from
/// the SR pulmo sent for it (`pulmo_dicom::report`), which carries less (see `PriorTrack`).
#[derive(Debug, Clone, PartialEq)]
pub struct PriorFindings {
    pub study_uid: String,
    pub series_uid: String,
    pub study_date: Option<String>,
    pub nodules: Vec<PriorTrack>,
}

/// One prior nodule and its measurements on the exams before the prior, oldest first. From an
/// SR only the exam before the prior is known (the SR carries the prior's prior values only).
#[derive(Debug, Clone, PartialEq)]
pub struct PriorTrack {
    pub nodule: PriorNodule,
    pub history: Vec<TrackPoint>,
}

impl From<&StudyFindings> for PriorFindings {
    fn from(f: &StudyFindings) -> PriorFindings {
        let nodules = f
            .nodules
            .iter()
            .map(|n| PriorTrack { nodule: n.into(), history: n.change.as_ref().map(|c| c.history.clone()).unwrap_or_default() })
            .collect();
        PriorFindings {
            study_uid: f.source.study_uid.clone(),
            series_uid: f.source.series_uid.clone(),
            study_date: f.source.study_date.clone(),
            nodules,
        }
    }
}

/// Why a prior nodule has no match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disappearance {
    /// Its place was scanned and nothing is reported there.
    Resolved,
    /// Its place (mapped into this study) lies outside this scan: not evaluated.
    OutsideScan,
}

impl Disappearance {
    pub fn label(self) -> &'static str {
        match self {
            Disappearance::Resolved => "resolved",
            Disappearance::OutsideScan => "outside this scan, not evaluated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnmatchedPrior {
    pub nodule: PriorNodule,
    /// Where the registration puts it in this study (LPS mm).
    pub expected_lps_mm: Vec3,
    pub disappearance: Disappearance,
}

impl UnmatchedPrior {
    /// "2 (solid 6.6 mm, resolved)": the prior's number for it, what it was, and why unmatched.
    pub fn describe(&self) -> String {
        let n = &self.nodule;
        format!("{} ({} {:.1} mm, {})", n.id, n.density.label(), n.mean_diameter_mm, self.disappearance.label())
    }
}

/// One earlier exam's measurement of a nodule track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackPoint {
    pub study_uid: String,
    pub study_date: Option<String>,
    pub mean_diameter_mm: f64,
    pub volume_mm3: f64,
}

/// A nodule matched to one of the prior exam's: the prior's values and the change since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoduleChange {
    pub prior: PriorNodule,
    /// Where the registration puts the prior's centre in this study (LPS mm).
    pub prior_mapped_lps_mm: Vec3,
    /// From this nodule's centre to `prior_mapped_lps_mm` (mm).
    pub match_distance_mm: f64,
    pub interval_days: Option<f64>,
    /// Current minus prior, mm (Lung-RADS growth is more than 1.5 mm).
    pub mean_diameter_change_mm: f64,
    pub solid_core_change_mm: Option<f64>,
    /// (current / prior - 1) x 100.
    pub volume_change_percent: f64,
    /// Growing (with its volume doubling time), stable or shrinking; `None` without an interval.
    pub volume_change: Option<VolumeChange>,
    pub doubling_class: Option<DoublingClass>,
    /// The track's measurements on earlier exams, oldest first; the prior is the last.
    pub history: Vec<TrackPoint>,
    /// The prior's findings did not list this nodule, but it is on the prior's CT where the
    /// registration puts it: `prior` was measured there now (its id is 0), so it is not new.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub found_on_prior_ct: bool,
}
