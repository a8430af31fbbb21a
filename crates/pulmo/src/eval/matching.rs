//! Which finding is which truth nodule: a finding whose centre lies within a truth nodule's
//! radius (at least 3 mm) names it; most probable findings claim first, so one nodule is found
//! once and a second finding on it is a duplicate, neither hit nor false positive.

use pulmo_findings::{NoduleFinding, StudyFindings};
use pulmo_phantom::{NoduleKind, NoduleTruth, Truth};
use pulmo_volume::vec3;
use serde::{Deserialize, Serialize};

/// A finding this close to a truth centre names it even when the nodule is smaller, mm.
const MIN_GATE_MM: f64 = 3.0;

/// One truth nodule of the set and what pulmo reported about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TruthRow {
    pub study: u64,
    pub id: u32,
    pub kind: NoduleKind,
    pub shape: String,
    pub attachment: String,
    pub mean_diameter_mm: f64,
    pub volume_mm3: f64,
    /// Truth Lung-RADS under the baseline rules: 4X for a spiculated nodule of category 3 or 4.
    pub lung_rads: String,
    /// Truth Lung-RADS from type and size alone, before the 4X upgrade.
    pub lung_rads_size: String,
    pub found: Option<Found>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Found {
    /// The finding's id in its study's findings.
    pub finding_id: u32,
    pub probability: f64,
    pub shape: Shape,
    pub distance_mm: f64,
    pub mean_diameter_mm: f64,
    pub volume_mm3: f64,
    pub density: pulmo_clinical::Density,
    pub lung_rads: String,
    /// The spicules pulmo counted (`None` for ground glass).
    pub spicules: Option<u32>,
    /// Whether pulmo called the margin spiculated (`None`: not assessed).
    #[serde(default)]
    pub spiculated: Option<bool>,
    /// The margin model's probability of a spiculated margin (`None`: not assessed).
    #[serde(default)]
    pub spiculation_probability: Option<f64>,
    /// How far the margin departs from a smooth outline (`None`: not assessed).
    #[serde(default)]
    pub margin_irregularity: Option<f64>,
}

/// A finding that names no truth nodule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FalsePositive {
    pub study: u64,
    pub probability: f64,
    pub mean_diameter_mm: f64,
    pub shape: Shape,
}

/// What a finding looked like, to study what tells nodules from false positives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shape {
    pub long_axis_mm: f64,
    pub longest_3d_mm: f64,
    pub volume_mm3: f64,
    pub sphericity: f64,
    pub hu_mean: f64,
    pub hu_sd: f64,
    pub juxtapleural: bool,
    pub density: pulmo_clinical::Density,
    /// The solid component's mean diameter (part-solid nodules), mm.
    #[serde(default)]
    pub solid_component_mm: Option<f64>,
}

impl Shape {
    fn of(f: &NoduleFinding) -> Shape {
        let m = &f.measurements;
        Shape {
            long_axis_mm: m.long_axis_mm,
            longest_3d_mm: m.longest_diameter_3d_mm,
            volume_mm3: m.volume_mm3,
            sphericity: m.sphericity,
            hu_mean: m.hu.mean,
            hu_sd: m.hu.sd,
            juxtapleural: m.juxtapleural,
            density: m.density,
            solid_component_mm: m.solid_core.map(|c| c.mean_diameter_mm),
        }
    }
}

/// A study's findings against its truth.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StudyMatch {
    pub truth: Vec<TruthRow>,
    pub false_positives: Vec<FalsePositive>,
}

/// Truth nodules pulmo should report: in the scan and in a lung.
pub fn reportable(n: &NoduleTruth) -> bool {
    n.in_field_of_view && n.lung.is_some()
}

pub fn match_study(truth: &Truth, findings: &StudyFindings) -> StudyMatch {
    let mut rows: Vec<TruthRow> = truth.nodules.iter().filter(|n| reportable(n)).map(|n| truth_row(truth.seed, n)).collect();
    let targets: Vec<&NoduleTruth> = truth.nodules.iter().filter(|n| reportable(n)).collect();
    let mut ordered: Vec<&NoduleFinding> = findings.nodules.iter().collect();
    ordered.sort_by(|a, b| b.detection_probability.total_cmp(&a.detection_probability));
    let mut false_positives = Vec::new();
    for f in ordered {
        // Any truth nodule counts for the gate (one outside the lungs must not make a false positive).
        let named = truth
            .nodules
            .iter()
            .map(|n| (n, vec3::dist(n.centre_lps_mm, f.measurements.centre_lps_mm)))
            .filter(|(n, d)| *d <= gate(n))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match named {
            Some((n, distance)) => {
                let Some(i) = targets.iter().position(|t| t.id == n.id) else { continue };
                if rows[i].found.is_none() {
                    rows[i].found = Some(found(f, distance));
                }
            }
            None => false_positives.push(FalsePositive {
                study: truth.seed,
                probability: f.detection_probability,
                mean_diameter_mm: f.measurements.mean_diameter_mm,
                shape: Shape::of(f),
            }),
        }
    }
    StudyMatch { truth: rows, false_positives }
}

fn gate(n: &NoduleTruth) -> f64 {
    (n.long_axis_mm / 2.0).max(MIN_GATE_MM)
}

fn truth_row(study: u64, n: &NoduleTruth) -> TruthRow {
    TruthRow {
        study,
        id: n.id,
        kind: n.kind,
        shape: format!("{:?}", n.shape).to_lowercase(),
        attachment: format!("{:?}", n.attachment).to_lowercase(),
        mean_diameter_mm: n.mean_diameter_mm,
        volume_mm3: n.volume_mm3,
        lung_rads: code(&n.lung_rads),
        lung_rads_size: code(&n.lung_rads_size_category),
        found: None,
    }
}

fn found(f: &NoduleFinding, distance_mm: f64) -> Found {
    Found {
        finding_id: f.id,
        probability: f.detection_probability,
        shape: Shape::of(f),
        distance_mm,
        mean_diameter_mm: f.measurements.mean_diameter_mm,
        volume_mm3: f.measurements.volume_mm3,
        density: f.measurements.density,
        lung_rads: f.lung_rads.category.code().to_string(),
        spicules: f.measurements.spicules,
        spiculated: f.measurements.spiculated,
        spiculation_probability: f.measurements.spiculation_probability,
        margin_irregularity: f.measurements.margin_irregularity,
    }
}

/// The serde name of a category ("4A"), which phantom truth and pulmo-clinical share.
fn code<T: Serialize>(category: &T) -> String {
    serde_json::to_value(category).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}
