//! The whole analysis of one CT series on one device, stage by stage: lungs, candidates,
//! false-positive reduction, segmentation and measurement, clinical assessment.

use std::path::Path;
use std::time::Instant;

use pulmo_clinical::lung_rads::MAX_SLICE_THICKNESS_MM;
use pulmo_dicom::CtSeries;
use pulmo_findings::{
    Algorithm, PatientFacts, PriorComparison, PriorFindings, PriorNodule, Processing, SourceSeries, StageTime, StudyFindings,
    SCHEMA_VERSION,
};
use pulmo_torch::model::ModelError;
use pulmo_torch::{Device, TchError};
use pulmo_volume::mesh::Mesh;
use pulmo_volume::{Geometry, Volume};

use crate::detect::{DetectError, Detection, Detector, WindowedCt};
use crate::findings::{self, Measured};
use crate::follow_up::{self, Followed, PriorMapping};
use crate::registration::{refine_near, register_to_prior, RegistrationError};
use crate::lung::{LungError, LungMask};
use crate::margin::MarginModel;
use crate::nodule::{NoduleSeed, Pleura, VESSEL_CUTS};
use crate::{find_candidates, measure, segment_lungs, Candidate, Measurements, NoduleMask};

/// The false-positive reduction model's manifest, in the models folder.
pub const DETECTOR_MANIFEST: &str = "fp-reduction.toml";
/// The margin model's manifest (spiculated or not), in the models folder.
pub const MARGIN_MANIFEST: &str = "margin-spiculated.toml";
/// Nodules with a shorter long axis are not reported (Lung-RADS starts counting at a few mm,
/// and below this a blob is as likely a vessel seen end-on).
pub const MIN_LONG_AXIS_MM: f64 = 3.0;
/// A nodule is a compact blob: below this sphericity a segmented region is a vessel tree or
/// a wall. Measured after the vessel cut, which also trims spicules, so spiculated phantom
/// nodules measure 0.85-0.99 and vessel-tree false positives 0.35-0.7; the compact false
/// positives left on the tuning phantoms (vessel junctions, pleural bulges) measured 0.75-0.87.
pub const MIN_SPHERICITY: f64 = 0.85;
/// Below this long axis a blob must be rounder ([`MIN_SPHERICITY_SMALL`]) to be reported:
/// vessels seen end-on and their branch points make most remaining false positives, and
/// a small nodule's segmentation is round (phantom nodules under 10 mm: 0.90-0.99; a
/// juxtapleural or spiculated one is at the low end).
pub const SMALL_NODULE_MM: f64 = 10.0;
pub const MIN_SPHERICITY_SMALL: f64 = 0.90;
/// A mass (30 mm or more) may be irregular: the adenocarcinoma of the real a0002 series
/// segments at sphericity 0.50. Vessel trees that large reach their box and are dropped first.
pub const MASS_MM: f64 = 30.0;
pub const MIN_SPHERICITY_MASS: f64 = 0.45;
/// A detection whose nodule comes this close (mm, between voxel centres) to a mass, or a mass
/// this close to a nodule already measured, is part of that lesion: both are measured as one.
/// A mass is seeded at several candidates, and the vessel cut (a ball of half the seed's
/// radius) parts it where it narrows; on 8 mm slices the real a0002 adenocarcinoma's parts lie
/// one slice apart (8.1 mm) and were reported as two findings, a solid 4B and a part-solid 3.
pub const MASS_PART_GAP_MM: f64 = 10.0;
/// Detections at least this probable are segmented with the wider vessel cuts too (see
/// [`VESSEL_CUTS`]) when the first leaves no reportable blob.
pub const WIDE_CUT_PROBABILITY: f64 = 0.7;
/// Detections at least this probable need [`CONFIDENT_SPHERICITY_RELIEF`] less sphericity.
/// The sphericity floors were set when the model passed vessel junctions; model 0.3.0 seldom
/// scores one this high, and what the floors still dropped there were nodules: lobulated ones
/// and nodules left with a stub of the vessel they sit on (0.79-0.88). On the tuning phantoms
/// (1100-1109, 6100-6109, offline from the candidate table) solid and part-solid nodules of
/// 5 mm or more found 80 -> 83 of 84, false positives 6 -> 7.
pub const CONFIDENT_PROBABILITY: f64 = 0.95;
pub const CONFIDENT_SPHERICITY_RELIEF: f64 = 0.1;
/// Detections are reported at or above this probability. Chosen with the shape rules above and
/// [`WIDE_CUT_PROBABILITY`] on tuning phantoms (seeds 1100-1109 and 6100-6108, used neither for
/// training nor for the evaluation in docs/accuracy.md) from the table
/// `examples/candidate_table.rs` writes. The model's own threshold (its manifest's point of 95%
/// sensitivity on validation candidates, 0.91 for model 0.3.0) is not the reporting one: below
/// it the shape rules drop nearly all that is left (0.3 false positives per scan on the
/// evaluation phantoms), and the real a0002 tumour's findings score 0.51-0.81.
pub const REPORT_PROBABILITY: f64 = 0.5;

/// The follow-up stage's parts in `processing.stages`: the prior's lung mask, the registration
/// (global fit; the local refinements run during matching), and matching with refinement.
pub const FOLLOW_UP_LUNGS: &str = "follow-up: prior lungs";
pub const FOLLOW_UP_REGISTRATION: &str = "follow-up: registration";
pub const FOLLOW_UP_MATCHING: &str = "follow-up: refinement and matching";

/// What a reader should know about every run, whatever the CT.
fn method_notes() -> [String; 2] {
    [
        format!("Lung-RADS: a solid nodule on the pleura below 10 mm whose margin is neither called spiculated nor lobulated (margin irregularity {} or more: the surface's RMS distance from the smooth oval outline fitted to it, the side on the chest wall left out, as a share of its radius) takes the juxtapleural benign-shape rule (category 2); 4X is applied where the margin is called spiculated", findings::LOBULATED_MIN_IRREGULARITY),
        "Spiculation is called by a 3D CNN (the margin model, trained on phantom nodules and nodules inserted into real CT) on solid and part-solid nodules, the spicules counted on the margin reported beside the call; it is not assessed on ground glass, where the Brock score is its model without spiculation and the Mayo score counts it as absent".to_string(),
    ]
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("lung segmentation: {0}")]
    Lungs(#[from] LungError),
    #[error("nodule detection: {0}")]
    Detect(#[from] DetectError),
    #[error("margin model: {0}")]
    Margin(DetectError),
    #[error("tensor operation failed: {0}")]
    Torch(#[from] TchError),
    #[error("registration with the prior: {0}")]
    Registration(#[from] RegistrationError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Lungs,
    Candidates,
    Detection,
    Measurement,
    FollowUp,
    Assessment,
}

impl Stage {
    pub const ALL: [Stage; 6] =
        [Stage::Lungs, Stage::Candidates, Stage::Detection, Stage::Measurement, Stage::FollowUp, Stage::Assessment];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Lungs => "lungs",
            Stage::Candidates => "candidates",
            Stage::Detection => "detection",
            Stage::Measurement => "measurement",
            Stage::FollowUp => "follow-up",
            Stage::Assessment => "assessment",
        }
    }
}

/// Where an analysis is: `done` of `total` steps of `stage` (one step for most stages, one per
/// detection while measuring).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub stage: Stage,
    pub done: usize,
    pub total: usize,
}

/// The findings, and each nodule's surface mesh (same order as `findings.nodules`).
#[derive(Debug, Clone)]
pub struct Analysis {
    pub findings: StudyFindings,
    pub surfaces: Vec<Mesh>,
}

/// The models loaded on one device, ready to analyse one study at a time.
#[derive(Debug)]
pub struct Pipeline {
    detector: Detector,
    margin: MarginModel,
    device: Device,
    /// Detections at or above this probability are measured and reported.
    threshold: f64,
}

impl Pipeline {
    /// Loads and checks the models under `models_dir`; a missing or wrong model is an error
    /// naming it, never a silent fallback.
    pub fn load(models_dir: &Path, device: Device) -> Result<Pipeline, ModelError> {
        let detector = Detector::load(&models_dir.join(DETECTOR_MANIFEST), device)?;
        let margin = MarginModel::load(&models_dir.join(MARGIN_MANIFEST), device)?;
        Ok(Pipeline { threshold: REPORT_PROBABILITY, detector, margin, device })
    }

    /// Reports detections down to `threshold` instead of the model's operating point (the
    /// evaluation sweeps it for FROC curves).
    pub fn with_threshold(self, threshold: f64) -> Pipeline {
        Pipeline { threshold, ..self }
    }

    /// The probability at or above which detections are reported (see [`REPORT_PROBABILITY`]).
    pub fn operating_threshold(&self) -> f64 {
        REPORT_PROBABILITY
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// A baseline analysis: no prior to compare with.
    pub fn analyze(&self, ct: &CtSeries, progress: &mut dyn FnMut(Progress)) -> Result<Analysis, AnalysisError> {
        self.analyze_with_prior(ct, None, progress)
    }

    /// The analysis of `ct`, its nodules compared with `prior`'s when there is one.
    pub fn analyze_with_prior(
        &self,
        ct: &CtSeries,
        prior: Option<PriorExam<'_>>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Analysis, AnalysisError> {
        let volume = &ct.volume;
        let mut clock = Clock::default();
        progress(Progress { stage: Stage::Lungs, done: 0, total: 1 });
        let lungs = segment_lungs(volume, self.device)?;
        clock.lap(Stage::Lungs);
        progress(Progress { stage: Stage::Candidates, done: 0, total: 1 });
        let candidates = find_candidates(volume, &lungs, self.device)?;
        clock.lap(Stage::Candidates);
        progress(Progress { stage: Stage::Detection, done: 0, total: 1 });
        let windowed = WindowedCt::new(volume);
        let (mut detections, mut less_likely): (Vec<Detection>, Vec<Detection>) =
            self.detector.score(&windowed, &candidates)?.into_iter().partition(|d| d.probability >= self.threshold);
        clock.lap(Stage::Detection);
        detections.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        less_likely.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        let mut measured = measure_detections(ct, &lungs, &detections, &less_likely, progress);
        self.margin.call(&windowed, measured.iter_mut().map(|m| &mut m.measurements)).map_err(AnalysisError::Margin)?;
        // A float copy of the whole CT: not held through the follow-up's registration.
        drop(windowed);
        clock.lap(Stage::Measurement);
        let source = ct.source_series();
        let mut follow_up_note = prior.is_none().then(|| "Lung-RADS: baseline rules (no prior exam compared)".to_string());
        let (followed, comparison) = match prior {
            Some(prior) => {
                progress(Progress { stage: Stage::FollowUp, done: 0, total: 1 });
                // A prior that cannot be compared (no lungs found in it, a registration that
                // fails) leaves a baseline that says so, rather than no findings at all.
                match self.follow_up(ct, &lungs, &source, &measured, prior, &mut clock) {
                    Ok((followed, comparison)) => (Some(followed), Some(comparison)),
                    Err(e) => {
                        tracing::warn!(error = %e, prior = %prior.findings.study_uid, "comparison with the prior failed");
                        follow_up_note = Some(format!("analysed as a baseline: the comparison with prior study {} failed ({e})", prior.findings.study_uid));
                        (None, None)
                    }
                }
            }
            None => (None, None),
        };
        progress(Progress { stage: Stage::Assessment, done: 0, total: 1 });
        let patient = PatientFacts::from_dicom(ct.patient_study.age.as_deref(), ct.patient_study.sex.as_deref());
        let (nodules, surfaces): (Vec<_>, Vec<_>) =
            findings::assess(measured, followed, &lungs, &patient, &ct.series_uid).into_iter().unzip();
        clock.lap(Stage::Assessment);
        let findings = StudyFindings {
            schema_version: SCHEMA_VERSION,
            source,
            algorithm: Algorithm {
                name: "pulmo".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                models: vec![self.detector.model_ref(), self.margin.model_ref()],
            },
            patient,
            lungs: lungs.summary(),
            exam: findings::exam(&nodules),
            prior: comparison,
            nodules,
            notes: notes(ct, &lungs).into_iter().chain(follow_up_note).collect(),
            processing: Processing {
                device: format!("{:?}", self.device),
                candidates: candidates.len(),
                detections: detections.len(),
                stages: clock.stages,
            },
        };
        Ok(Analysis { findings, surfaces })
    }

    /// Registers the prior to this CT, then matches the nodules (see [`follow_up`]).
    fn follow_up(
        &self,
        ct: &CtSeries,
        lungs: &LungMask,
        source: &SourceSeries,
        measured: &[Measured],
        prior: PriorExam<'_>,
        clock: &mut Clock,
    ) -> Result<(Vec<Followed>, PriorComparison), AnalysisError> {
        let prior_lungs = segment_lungs(&prior.ct.volume, self.device)?;
        clock.lap_named(FOLLOW_UP_LUNGS);
        let registration = register_to_prior(&ct.volume, lungs, &prior.ct.volume, &prior_lungs, self.device)?;
        clock.lap_named(FOLLOW_UP_REGISTRATION);
        let mut locate = |n: &PriorNodule| {
            refine_near(&ct.volume, &prior.ct.volume, &registration, n.centre_lps_mm, n.long_axis_mm / 2.0, self.device)
                .map(|fit| fit.current_point_lps)
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, nodule = n.id, "local refinement failed; the global registration places the prior nodule");
                    registration.prior_to_current.apply(n.centre_lps_mm)
                })
        };
        let mapping = PriorMapping {
            prior_to_current: registration.prior_to_current,
            quality: registration.quality,
            locate: &mut locate,
        };
        let current: Vec<&Measurements> = measured.iter().map(|m| &m.measurements).collect();
        let (mut followed, comparison) = follow_up::compare(&current, source, prior.findings, mapping);
        let to_prior = registration.prior_to_current.inverse();
        let prior_windowed = WindowedCt::new(&prior.ct.volume);
        let mut measure_on_prior = |c: &Measurements| {
            let candidate = Candidate { centre_lps_mm: to_prior?.apply(c.centre_lps_mm), radius_mm: c.mean_diameter_mm / 2.0, response: 0.0 };
            // The nodule is on this CT, so every vessel cut may free it there; but the blob must
            // be as round as for any detection below CONFIDENT_PROBABILITY: a vessel junction
            // let through at the prior's place would make a new nodule an old one.
            let (_, mut measurements, _) = compact_nodule(&prior.ct.volume, &prior_lungs, &candidate, WIDE_CUT_PROBABILITY)?;
            if let Err(e) = self.margin.call(&prior_windowed, [&mut measurements]) {
                tracing::warn!(error = %e, "the margin model failed on the prior's CT; its nodule is left unmeasured");
                return None;
            }
            let lung_rads = findings::baseline_category(&measurements);
            Some(follow_up::PriorMeasurement { measurements, lung_rads })
        };
        let found = follow_up::look_back(&mut followed, &current, source, prior.findings, &registration.prior_to_current, &mut measure_on_prior);
        if found > 0 {
            tracing::info!(found, "nodules not in the prior's findings were found on its CT");
        }
        clock.lap_named(FOLLOW_UP_MATCHING);
        Ok((followed, comparison))
    }
}

/// The patient's earlier exam to compare with: its CT (registration needs the image) and the
/// findings pulmo made on it (from its findings, or read back from its SR).
#[derive(Debug, Clone, Copy)]
pub struct PriorExam<'a> {
    pub ct: &'a CtSeries,
    pub findings: &'a PriorFindings,
}

/// Segments and measures each detection, most probable first; drops a detection inside a
/// nodule already measured, one whose nodule touches one already measured (two candidates on
/// one lesion: a ground-glass nodule's lobes, a stub of it) and one that is no
/// [`compact_nodule`]. A mass seeded at two candidates is measured as one (see
/// [`MASS_PART_GAP_MM`]), and so are its parts seeded at `less_likely` detections (those below
/// the reporting threshold): they make no finding of their own, but a mass's extent is the
/// segmentation's to find once the mass is reported, and the evaluation, which measures every
/// detection, would otherwise measure a larger mass than pulmo reports.
fn measure_detections(
    ct: &CtSeries,
    lungs: &LungMask,
    detections: &[Detection],
    less_likely: &[Detection],
    progress: &mut dyn FnMut(Progress),
) -> Vec<Measured> {
    let mut kept: Vec<(NoduleMask, Measured)> = Vec::new();
    for (done, d) in detections.iter().enumerate() {
        progress(Progress { stage: Stage::Measurement, done, total: detections.len() });
        add_detection(&mut kept, d, ct, lungs, Joins::AsFinding);
    }
    if kept.iter().any(|(_, m)| is_mass(&m.measurements)) {
        for d in less_likely {
            add_detection(&mut kept, d, ct, lungs, Joins::MassOnly);
        }
    }
    kept.into_iter().map(|(_, m)| m).collect()
}

/// What a detection may become: a finding of its own, or only part of a mass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Joins {
    AsFinding,
    MassOnly,
}

/// Segments detection `d` and adds it to the `kept` nodules as [`measure_detections`] says.
fn add_detection(kept: &mut Vec<(NoduleMask, Measured)>, d: &Detection, ct: &CtSeries, lungs: &LungMask, joins: Joins) {
    let geometry = ct.volume.geometry();
    if kept.iter().any(|(mask, _)| mask.contains(d.candidate.centre_lps_mm, geometry)) {
        return;
    }
    let Some((mask, measurements, surface)) = compact_nodule(&ct.volume, lungs, &d.candidate, d.probability) else { return };
    let found = Measured { measurements, surface, region: mask.region(), detection_probability: d.probability };
    let same = kept.iter().position(|(other, m)| one_lesion((&mask, &found.measurements), (other, &m.measurements), geometry));
    match same {
        None if joins == Joins::AsFinding => kept.push((mask, found)),
        Some(k) if is_mass(&found.measurements) || is_mass(&kept[k].1.measurements) => {
            kept[k] = measured_as_one(&kept[k], (&mask, &found), ct, lungs);
        }
        _ => {}
    }
}

/// Two parts of one lesion, united and measured whole; as probable as the likelier part.
fn measured_as_one(a: &(NoduleMask, Measured), b: (&NoduleMask, &Measured), ct: &CtSeries, lungs: &LungMask) -> (NoduleMask, Measured) {
    let whole = a.0.union(b.0, &ct.volume, lungs);
    let (measurements, surface) = measure(&whole, ct.volume.geometry());
    tracing::debug!(long_axis_mm = measurements.long_axis_mm, "a mass seeded at two candidates measured as one");
    let detection_probability = a.1.detection_probability.max(b.1.detection_probability);
    let region = whole.region();
    (whole, Measured { measurements, surface, region, detection_probability })
}

/// Whether two segmentations are parts of one lesion: they touch, or one is a mass and they
/// come within [`MASS_PART_GAP_MM`] (the gap of touching ones is 0).
fn one_lesion(a: (&NoduleMask, &Measurements), b: (&NoduleMask, &Measurements), geometry: &Geometry) -> bool {
    match is_mass(a.1) || is_mass(b.1) {
        true => a.0.gap_mm(b.0, geometry) <= MASS_PART_GAP_MM,
        false => a.0.touches(b.0),
    }
}

fn is_mass(m: &Measurements) -> bool {
    m.long_axis_mm >= MASS_MM
}

/// The nodule segmented at a candidate, measured, if it is one pulmo reports: a compact blob
/// (not reaching its box, sphericity at least [`min_sphericity`]: vessel trees and walls are
/// neither) at least [`MIN_LONG_AXIS_MM`] long. `probability` is the detection's: it chooses
/// the vessel cuts to try, in turn (see [`WIDE_CUT_PROBABILITY`] and [`VESSEL_CUTS`]; the first
/// that leaves such a blob wins), and how round the blob must be. The blob is judged with its
/// wall side cut ([`Pleura::Cut`]); a juxtapleural one is then measured with that side kept.
pub fn compact_nodule(
    ct: &Volume<i16>,
    lungs: &LungMask,
    candidate: &Candidate,
    probability: f64,
) -> Option<(NoduleMask, Measurements, Mesh)> {
    let seed = NoduleSeed::read(ct, lungs, candidate.centre_lps_mm, candidate.radius_mm)?;
    let cuts = if probability >= WIDE_CUT_PROBABILITY { &VESSEL_CUTS[..] } else { &VESSEL_CUTS[..1] };
    for &cut in cuts {
        let Some(mask) = seed.segment(cut, Pleura::Cut) else { continue };
        if mask.reaches_box_border() {
            continue;
        }
        let (measurements, surface) = measure(&mask, ct.geometry());
        let long = measurements.long_axis_mm;
        if long >= MIN_LONG_AXIS_MM && measurements.sphericity >= min_sphericity(long, probability) {
            if !measurements.juxtapleural {
                return Some((mask, measurements, surface));
            }
            // Measured whole: with its side against the wall, which the cut above took off.
            let whole = seed.segment(cut, Pleura::Kept).filter(|m| !m.reaches_box_border());
            return Some(whole.map_or((mask, measurements, surface), |whole| {
                let (measurements, surface) = measure(&whole, ct.geometry());
                (whole, measurements, surface)
            }));
        }
    }
    None
}

/// How round a segmented blob of this long axis (mm), detected with this probability, must be
/// to be reported.
pub fn min_sphericity(long_axis_mm: f64, probability: f64) -> f64 {
    let floor = match long_axis_mm {
        l if l < SMALL_NODULE_MM => MIN_SPHERICITY_SMALL,
        l if l < MASS_MM => MIN_SPHERICITY,
        _ => MIN_SPHERICITY_MASS,
    };
    if probability >= CONFIDENT_PROBABILITY {
        floor - CONFIDENT_SPHERICITY_RELIEF
    } else {
        floor
    }
}

fn notes(ct: &CtSeries, lungs: &LungMask) -> Vec<String> {
    ct.notes.iter().chain(&lungs.notes).cloned().chain(thick_slices(ct)).chain(method_notes()).collect()
}

/// A warning when the slices are thicker than screening CT's (the spacing stands in for a
/// missing SliceThickness).
fn thick_slices(ct: &CtSeries) -> Option<String> {
    let thickness = ct.slice_thickness.unwrap_or(ct.volume.geometry().spacing[0]);
    (thickness > MAX_SLICE_THICKNESS_MM + 1e-6).then(|| {
        format!(
            "slices are {thickness:.1} mm thick, over the {MAX_SLICE_THICKNESS_MM} mm of screening CT: partial volume lowers small nodules' density (a small solid nodule may read part-solid or ground glass) and blurs their margins"
        )
    })
}

/// Wall time per stage.
struct Clock {
    last: Instant,
    stages: Vec<StageTime>,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock { last: Instant::now(), stages: Vec::new() }
    }
}

impl Clock {
    fn lap(&mut self, stage: Stage) {
        self.lap_named(stage.name());
    }

    fn lap_named(&mut self, name: &str) {
        let now = Instant::now();
        self.stages.push(StageTime { stage: name.into(), seconds: (now - self.last).as_secs_f64() });
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use pulmo_volume::{vec3, Geometry, Volume};

    use super::*;
    use crate::nodule::segment_nodule_with_cut;

    const SPACING: [f64; 3] = [1.0, 0.7, 0.7];
    const DIMS: [usize; 3] = [41, 61, 61];
    const NODULE_CENTRE: [f64; 3] = [21.0, 21.0, 20.0];

    /// Lung with a 5.5 mm nodule on a vessel of 2 mm radius running along x the whole CT, each
    /// voxel's HU its share of tissue (27 subsamples); the lung mask is the whole CT.
    fn nodule_on_vessel() -> (Volume<i16>, LungMask) {
        let geometry = Geometry::axial([0.0; 3], SPACING).expect("geometry");
        let (nodule_r, vessel_r) = (2.75, 2.0);
        // Touching as the phantom's juxtavascular nodules do: 0.4 mm into the vessel.
        let [_, y, z] = NODULE_CENTRE;
        let axis = [y - (vessel_r + nodule_r - 0.4), z];
        let tissue = |p: [f64; 3]| {
            vec3::dist(p, NODULE_CENTRE) <= nodule_r || (p[1] - axis[0]).hypot(p[2] - axis[1]) <= vessel_r
        };
        let n = DIMS.iter().product();
        let hu = (0..n)
            .map(|i| {
                let index = [i / (DIMS[1] * DIMS[2]), (i / DIMS[2]) % DIMS[1], i % DIMS[2]].map(|v| v as f64);
                let sub = |k: usize| (k as f64 - 1.0) / 3.0;
                let share = (0..27)
                    .filter(|k| tissue(geometry.index_to_lps([index[0] + sub(k / 9), index[1] + sub(k / 3 % 3), index[2] + sub(k % 3)])))
                    .count() as f64
                    / 27.0;
                (-850.0 + 890.0 * share) as i16
            })
            .collect();
        let ct = Volume::new(DIMS, geometry, hu).expect("volume");
        (ct, crate::test_support::lung_everywhere(DIMS, geometry))
    }

    /// A 2x2x2 blob of 1 mm voxels at CT voxel `at`.
    fn cube(at: [usize; 3]) -> NoduleMask {
        NoduleMask { origin: at, dims: [2; 3], inside: vec![true; 8], fraction: vec![1.0; 8], hu: vec![0.0; 8], lung: vec![true; 8], tissue_hu: 0.0, lung_hu: -850.0 }
    }

    #[test]
    fn a_mass_and_a_part_near_it_are_one_lesion_two_nodules_are_not() {
        let geometry = Geometry::axial([0.0; 3], [1.0; 3]).expect("geometry");
        let (here, apart) = (cube([10, 10, 10]), cube([10, 10, 19])); // 8 mm between voxel centres
        let size = |d: f64| crate::test_support::measurements([0.0; 3], d, pulmo_clinical::density::Density::Solid);
        assert!(one_lesion((&here, &size(45.0)), (&apart, &size(20.0)), &geometry));
        assert!(one_lesion((&here, &size(20.0)), (&apart, &size(45.0)), &geometry));
        assert!(!one_lesion((&here, &size(20.0)), (&apart, &size(20.0)), &geometry));
        let far = cube([10, 10, 22]); // 11 mm
        assert!(!one_lesion((&here, &size(45.0)), (&far, &size(20.0)), &geometry));
        let touching = cube([10, 10, 12]);
        assert!(one_lesion((&here, &size(8.0)), (&touching, &size(6.0)), &geometry));
    }

    #[test]
    fn a_small_nodule_on_a_thicker_vessel_is_freed_by_the_widest_cut() {
        let (ct, lungs) = nodule_on_vessel();
        // Seeded as the candidate finder does a nodule this size: at its smallest scale.
        let candidate = Candidate { centre_lps_mm: NODULE_CENTRE, radius_mm: 1.7, response: 0.0 };
        let narrower = segment_nodule_with_cut(&ct, &lungs, NODULE_CENTRE, 1.7, 1.0, Pleura::Cut).expect("a blob");
        assert!(narrower.reaches_box_border(), "a ball of the seed's radius leaves the vessel on");
        let (_, m, _) = compact_nodule(&ct, &lungs, &candidate, 0.99).expect("the nodule, freed from its vessel");
        assert!(vec3::dist(m.centre_lps_mm, NODULE_CENTRE) < 0.5, "centre {:?}", m.centre_lps_mm);
        assert!((m.mean_diameter_mm - 5.5).abs() <= 0.5, "mean diameter {:.1} mm", m.mean_diameter_mm);
        assert!(compact_nodule(&ct, &lungs, &candidate, WIDE_CUT_PROBABILITY - 0.01).is_none(), "an unlikely detection gets the first cut only");
    }
}
