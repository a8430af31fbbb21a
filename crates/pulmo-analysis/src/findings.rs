//! From measured nodules to what a report says about each and about the exam: zone, Lung-RADS
//! v2022, Brock and Mayo estimates with their inputs, report order, Fleischner 2017.

use pulmo_clinical::density::emphysema_present;
use pulmo_clinical::fleischner::{self, Multiplicity, PatientRisk};
use pulmo_clinical::lung_rads::{self, Features, Previous, Status};
use pulmo_clinical::risk::{self, BrockInputs, MayoInputs};
pub use pulmo_findings::{NoduleFinding, PatientFacts};
use pulmo_findings::{ExamAssessment, FleischnerAdvice, Level, Measurements, Risk};
use pulmo_volume::mesh::Mesh;
use pulmo_volume::BoxRegion;

use crate::follow_up::Followed;
use crate::lung::LungMask;

/// A nodule the pipeline kept, before the clinical rules see it.
#[derive(Debug, Clone)]
pub struct Measured {
    pub measurements: Measurements,
    pub surface: Mesh,
    /// The segmentation's voxels on the CT grid.
    pub region: BoxRegion,
    pub detection_probability: f64,
}

/// The findings for the measured nodules of one exam of series `series_uid`, in report order
/// (most suspicious category first, then largest), numbered from 1, each with its surface.
/// `followed` holds what comparing with a prior said of each nodule; `None` for a baseline.
pub fn assess(
    nodules: Vec<Measured>,
    followed: Option<Vec<Followed>>,
    lungs: &LungMask,
    patient: &PatientFacts,
    series_uid: &str,
) -> Vec<(NoduleFinding, Mesh)> {
    let count = nodules.len() as u32;
    let followed = followed.unwrap_or_else(|| nodules.iter().map(|_| Followed { status: Status::Baseline, change: None }).collect());
    let mut findings: Vec<(NoduleFinding, Mesh)> = nodules
        .into_iter()
        .zip(followed)
        .map(|(n, f)| {
            let m = n.measurements;
            let zone = lungs.zone_of(&n.region, m.centre_lps_mm);
            let upper = zone.is_some_and(|z| z.level == Level::Upper);
            // A nodule found on the prior's CT only now had no tracking UID there.
            let prior_uid = f.change.as_ref().filter(|c| !c.found_on_prior_ct).map(|c| c.prior.tracking_uid.clone());
            let tracking_uid = prior_uid.unwrap_or_else(|| tracking_uid(series_uid, &m));
            let finding = NoduleFinding {
                id: 0,
                tracking_uid,
                detection_probability: n.detection_probability,
                lung_rads: lung_rads::assess(&lung_rads_nodule(&m, &f)),
                status: f.status,
                change: f.change,
                brock: brock(&m, lungs, patient, upper, count),
                mayo: mayo(&m, patient, upper),
                zone,
                mesh_file: None,
                region: n.region,
                measurements: m,
            };
            (finding, n.surface)
        })
        .collect();
    findings.sort_by(|(a, _), (b, _)| {
        b.lung_rads.category.cmp(&a.lung_rads.category).then(b.measurements.mean_diameter_mm.total_cmp(&a.measurements.mean_diameter_mm))
    });
    for (i, (f, _)) in findings.iter_mut().enumerate() {
        f.id = i as u32 + 1;
    }
    findings
}

/// The exam's Lung-RADS category and management, and Fleischner for its first nodule.
pub fn exam(nodules: &[NoduleFinding]) -> ExamAssessment {
    let assessments: Vec<_> = nodules.iter().map(|n| n.lung_rads.clone()).collect();
    let category = lung_rads::exam_category(&assessments);
    let count = if nodules.len() > 1 { Multiplicity::Multiple } else { Multiplicity::Single };
    let fleischner = nodules.first().map(|n| {
        let m = &n.measurements;
        let advice = |risk| fleischner::recommend(m.density, m.mean_diameter_mm, count, risk);
        FleischnerAdvice {
            nodule_id: n.id,
            size_band: advice(PatientRisk::Low).size_band,
            low_risk: advice(PatientRisk::Low).text.to_string(),
            high_risk: advice(PatientRisk::High).text.to_string(),
            applies_to: fleischner::APPLIES_TO.to_string(),
        }
    });
    ExamAssessment { lung_rads: category, management: category.management().to_string(), fleischner }
}

/// Deterministic per series and position, so a re-run of the same series names its nodules
/// alike (and replaces rather than duplicates what it sent).
fn tracking_uid(series_uid: &str, m: &Measurements) -> String {
    let [x, y, z] = m.centre_lps_mm.map(|c| c.round() as i64);
    pulmo_dicom::derived_uid(&format!("{series_uid}/nodule/{x},{y},{z}"))
}

/// The category a nodule measured `m` gets on a baseline exam.
pub fn baseline_category(m: &Measurements) -> lung_rads::Category {
    lung_rads::assess(&lung_rads_nodule(m, &Followed { status: Status::Baseline, change: None })).category
}

/// Lung-RADS sees type, size, status, the previous exam and spiculation, the suspicious
/// feature that makes category 3 or 4 into 4X (as the margin model calls it). The juxtapleural
/// benign-shape rule (category 2 below 10 mm) asks for a smooth margin: see [`smooth_on_pleura`].
fn lung_rads_nodule(m: &Measurements, followed: &Followed) -> lung_rads::Nodule {
    let previous = followed.change.as_ref().map(|c| Previous {
        category: c.prior.lung_rads,
        density: c.prior.density,
        mean_diameter_mm: c.prior.mean_diameter_mm,
        solid_component_mm: c.prior.solid_core_mean_diameter_mm.unwrap_or(0.0),
    });
    lung_rads::Nodule {
        density: m.density,
        mean_diameter_mm: m.mean_diameter_mm,
        solid_component_mm: m.solid_core.map_or(0.0, |c| c.mean_diameter_mm),
        status: followed.status,
        features: Features { benign: m.calcified, juxtapleural_benign_shape: smooth_on_pleura(m), suspicious: m.spiculated == Some(true) },
        previous,
    }
}

/// A nodule on the pleura with a smooth margin: Lung-RADS' benign shape, as far as pulmo sees
/// it (the size, density and growth conditions are the rule's own, in pulmo-clinical). Smooth
/// is neither spiculated (the margin model) nor lobulated (its margin irregularity below
/// [`LOBULATED_MIN_IRREGULARITY`]); a margin not assessed is not smooth. Strands counted on
/// the margin do not make it irregular: the count takes vessel ends that stop at the nodule
/// for spicules (a smooth 6.0 mm tuning nodule with two counted was category 3).
fn smooth_on_pleura(m: &Measurements) -> bool {
    let round = m.margin_irregularity.is_some_and(|i| i < LOBULATED_MIN_IRREGULARITY);
    m.juxtapleural && m.spiculated == Some(false) && round
}

/// A margin this irregular or more is lobulated: the middle of the gap between smooth and
/// lobulated solid nodules of 5-13 mm on the tuning phantoms (isolated or on the pleura: smooth
/// 0.005-0.025 but for one of 11.8 mm on 2.5 mm slices at 0.043, lobulated 0.043-0.082).
pub const LOBULATED_MIN_IRREGULARITY: f64 = 0.035;

fn brock(m: &Measurements, lungs: &LungMask, patient: &PatientFacts, upper: bool, count: u32) -> Option<Risk<BrockInputs>> {
    let inputs = BrockInputs {
        age_years: patient.age_years?,
        female: patient.female?,
        family_history: None,
        emphysema: emphysema_present(lungs.laa950_fraction),
        size_mm: m.long_axis_mm,
        density: m.density,
        upper_lobe: upper,
        nodule_count: count,
        spiculation: m.spiculated,
    };
    Some(Risk { estimate: risk::brock(&inputs), inputs })
}

fn mayo(m: &Measurements, patient: &PatientFacts, upper: bool) -> Option<Risk<MayoInputs>> {
    let inputs = MayoInputs {
        age_years: patient.age_years?,
        smoker: None,
        prior_extrathoracic_cancer: None,
        diameter_mm: m.long_axis_mm,
        upper_lobe: upper,
        spiculation: m.spiculated,
    };
    Some(Risk { estimate: risk::mayo(&inputs), inputs })
}

#[cfg(test)]
mod tests {
    use pulmo_clinical::density::Density;
    use pulmo_clinical::lung_rads::Category;

    use super::{baseline_category, LOBULATED_MIN_IRREGULARITY};
    use crate::test_support::measurements;

    #[test]
    fn a_smooth_solid_nodule_on_the_pleura_below_10_mm_is_category_2() {
        // (spicules counted, called spiculated), or None: not assessed.
        let on_pleura = |diameter: f64, margin: Option<(u32, bool)>, density: Density| {
            let mut m = measurements([0.0; 3], diameter, density);
            m.juxtapleural = true;
            (m.spicules, m.spiculated) = (margin.map(|(n, _)| n), margin.map(|(_, called)| called));
            baseline_category(&m)
        };
        let smooth = Some((0, false));
        assert_eq!(on_pleura(7.0, smooth, Density::Solid), Category::Two);
        assert_eq!(on_pleura(7.0, Some((2, false)), Density::Solid), Category::Two, "the margin model, not the count, calls the margin");
        assert_eq!(on_pleura(7.0, Some((0, true)), Density::Solid), Category::FourX, "a margin called spiculated is suspicious");
        assert_eq!(on_pleura(7.0, None, Density::Solid), Category::Three, "a margin not assessed is not smooth");
        assert_eq!(on_pleura(10.0, smooth, Density::Solid), Category::FourA, "the rule ends at 10 mm");
        assert_eq!(on_pleura(7.0, smooth, Density::PartSolid), Category::Three, "the rule is for solid nodules");
        let lobulated = |irregularity: Option<f64>| {
            let mut m = measurements([0.0; 3], 7.0, Density::Solid);
            (m.juxtapleural, m.spicules, m.spiculated, m.margin_irregularity) = (true, Some(0), Some(false), irregularity);
            baseline_category(&m)
        };
        assert_eq!(lobulated(Some(LOBULATED_MIN_IRREGULARITY - 0.001)), Category::Two);
        assert_eq!(lobulated(Some(LOBULATED_MIN_IRREGULARITY)), Category::Three, "a lobulated margin is not smooth");
        assert_eq!(lobulated(None), Category::Three, "an outline not measured is not smooth");
        let mut away = measurements([0.0; 3], 7.0, Density::Solid);
        (away.spicules, away.spiculated) = (Some(0), Some(false));
        assert_eq!(baseline_category(&away), Category::Three, "off the pleura the size rules hold");
    }
}
