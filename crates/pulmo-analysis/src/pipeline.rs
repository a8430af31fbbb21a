//! The whole analysis of one CT series on one device, stage by stage: lungs, candidates,
//! false-positive reduction, segmentation and measurement, clinical assessment.

use std::path::Path;
use std::time::Instant;

use pulmo_dicom::CtSeries;
use pulmo_findings::{Algorithm, PatientFacts, Processing, StageTime, StudyFindings, SCHEMA_VERSION};
use pulmo_torch::model::ModelError;
use pulmo_torch::{Device, TchError};
use pulmo_volume::mesh::Mesh;
use pulmo_volume::Volume;

use crate::detect::{DetectError, Detection, Detector};
use crate::findings::{self, Measured};
use crate::lung::{LungError, LungMask};
use crate::{find_candidates, measure, segment_lungs, segment_nodule, Candidate, Measurements, NoduleMask};

/// The false-positive reduction model's manifest, in the models folder.
pub const DETECTOR_MANIFEST: &str = "fp-reduction.toml";
/// Nodules with a shorter long axis are not reported (Lung-RADS starts counting at a few mm,
/// and below this a blob is as likely a vessel seen end-on).
pub const MIN_LONG_AXIS_MM: f64 = 3.0;
/// A nodule is a compact blob: below this sphericity a segmented region is a vessel tree or
/// a wall. Measured after the vessel cut, which also trims spicules, so spiculated phantom
/// nodules measure 0.85-0.99 and vessel-tree false positives 0.35-0.7.
pub const MIN_SPHERICITY: f64 = 0.75;
/// Below this long axis a blob must be rounder ([`MIN_SPHERICITY_SMALL`]) to be reported:
/// vessels seen end-on and their branch points make most remaining false positives, and
/// a small nodule's segmentation is round (phantom nodules under 10 mm: 0.92-0.99).
pub const SMALL_NODULE_MM: f64 = 10.0;
pub const MIN_SPHERICITY_SMALL: f64 = 0.92;
/// A mass (30 mm or more) may be irregular: the adenocarcinoma of the real a0002 series
/// segments at sphericity 0.50. Vessel trees that large reach their box and are dropped first.
pub const MASS_MM: f64 = 30.0;
pub const MIN_SPHERICITY_MASS: f64 = 0.45;
/// Detections are reported at or above this probability (or the model's own threshold, if
/// higher). Chosen with the shape rules above on tuning phantoms (seeds 1100-1109, used
/// neither for training nor for the evaluation in docs/accuracy.md).
pub const REPORT_PROBABILITY: f64 = 0.5;

/// What a reader should know about every run, whatever the CT.
const METHOD_NOTES: [&str; 2] = [
    "Lung-RADS: baseline rules; margins are not judged, so neither the juxtapleural benign-shape rule nor 4X is applied",
    "Spiculation is not assessed: the Brock score is its model without spiculation, the Mayo score counts it as absent",
];

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("lung segmentation: {0}")]
    Lungs(#[from] LungError),
    #[error("nodule detection: {0}")]
    Detect(#[from] DetectError),
    #[error("tensor operation failed: {0}")]
    Torch(#[from] TchError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Lungs,
    Candidates,
    Detection,
    Measurement,
    Assessment,
}

impl Stage {
    pub const ALL: [Stage; 5] = [Stage::Lungs, Stage::Candidates, Stage::Detection, Stage::Measurement, Stage::Assessment];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Lungs => "lungs",
            Stage::Candidates => "candidates",
            Stage::Detection => "detection",
            Stage::Measurement => "measurement",
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
    device: Device,
    /// Detections at or above this probability are measured and reported.
    threshold: f64,
}

impl Pipeline {
    /// Loads and checks the models under `models_dir`; a missing or wrong model is an error
    /// naming it, never a silent fallback.
    pub fn load(models_dir: &Path, device: Device) -> Result<Pipeline, ModelError> {
        let detector = Detector::load(&models_dir.join(DETECTOR_MANIFEST), device)?;
        let threshold = reporting_threshold(&detector);
        Ok(Pipeline { threshold, detector, device })
    }

    /// Reports detections down to `threshold` instead of the model's operating point (the
    /// evaluation sweeps it for FROC curves).
    pub fn with_threshold(self, threshold: f64) -> Pipeline {
        Pipeline { threshold, ..self }
    }

    /// The probability at or above which detections are reported (see [`REPORT_PROBABILITY`]).
    pub fn operating_threshold(&self) -> f64 {
        reporting_threshold(&self.detector)
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn analyze(&self, ct: &CtSeries, progress: &mut dyn FnMut(Progress)) -> Result<Analysis, AnalysisError> {
        let volume = &ct.volume;
        let mut clock = Clock::default();
        progress(Progress { stage: Stage::Lungs, done: 0, total: 1 });
        let lungs = segment_lungs(volume, self.device)?;
        clock.lap(Stage::Lungs);
        progress(Progress { stage: Stage::Candidates, done: 0, total: 1 });
        let candidates = find_candidates(volume, &lungs, self.device)?;
        clock.lap(Stage::Candidates);
        progress(Progress { stage: Stage::Detection, done: 0, total: 1 });
        let mut detections: Vec<Detection> =
            self.detector.score(volume, &candidates)?.into_iter().filter(|d| d.probability >= self.threshold).collect();
        clock.lap(Stage::Detection);
        detections.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        let measured = measure_detections(ct, &lungs, &detections, progress)?;
        clock.lap(Stage::Measurement);
        progress(Progress { stage: Stage::Assessment, done: 0, total: 1 });
        let patient = PatientFacts::from_dicom(ct.patient_study.age.as_deref(), ct.patient_study.sex.as_deref());
        let (nodules, surfaces): (Vec<_>, Vec<_>) = findings::assess(measured, &lungs, &patient, &ct.series_uid).into_iter().unzip();
        clock.lap(Stage::Assessment);
        let findings = StudyFindings {
            schema_version: SCHEMA_VERSION,
            source: ct.source_series(),
            algorithm: Algorithm {
                name: "pulmo".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                models: vec![self.detector.model_ref()],
            },
            patient,
            lungs: lungs.summary(),
            exam: findings::exam(&nodules),
            nodules,
            notes: notes(ct, &lungs),
            processing: Processing {
                device: format!("{:?}", self.device),
                candidates: candidates.len(),
                detections: detections.len(),
                stages: clock.stages,
            },
        };
        Ok(Analysis { findings, surfaces })
    }
}

/// Segments and measures each detection, most probable first; drops a detection inside a
/// nodule already measured (two candidates on one nodule) and one that is no [`compact_nodule`].
fn measure_detections(
    ct: &CtSeries,
    lungs: &LungMask,
    detections: &[Detection],
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<Measured>, TchError> {
    let geometry = ct.volume.geometry();
    let mut kept: Vec<(NoduleMask, Measured)> = Vec::new();
    for (done, d) in detections.iter().enumerate() {
        progress(Progress { stage: Stage::Measurement, done, total: detections.len() });
        if kept.iter().any(|(mask, _)| mask.contains(d.candidate.centre_lps_mm, geometry)) {
            continue;
        }
        let Some((mask, measurements, surface)) = compact_nodule(&ct.volume, lungs, &d.candidate)? else { continue };
        let overlaps = kept.iter().any(|(other, m)| {
            other.contains(measurements.centre_lps_mm, geometry) || mask.contains(m.measurements.centre_lps_mm, geometry)
        });
        if !overlaps {
            let region = mask.region();
            kept.push((mask, Measured { measurements, surface, region, detection_probability: d.probability }));
        }
    }
    Ok(kept.into_iter().map(|(_, m)| m).collect())
}

/// The nodule segmented at a candidate, measured, if it is one pulmo reports: a compact blob
/// (not reaching its box, sphericity at least [`min_sphericity`]: vessel trees and walls are
/// neither) at least [`MIN_LONG_AXIS_MM`] long.
pub fn compact_nodule(ct: &Volume<i16>, lungs: &LungMask, candidate: &Candidate) -> Result<Option<(NoduleMask, Measurements, Mesh)>, TchError> {
    let Some(mask) = segment_nodule(ct, lungs, candidate.centre_lps_mm, candidate.radius_mm)? else { return Ok(None) };
    if mask.reaches_box_border() {
        return Ok(None);
    }
    let (measurements, surface) = measure(&mask, ct.geometry());
    let long = measurements.long_axis_mm;
    let reported = long >= MIN_LONG_AXIS_MM && measurements.sphericity >= min_sphericity(long);
    Ok(reported.then_some((mask, measurements, surface)))
}

fn reporting_threshold(detector: &Detector) -> f64 {
    detector.threshold().max(REPORT_PROBABILITY)
}

/// How round a segmented blob of this long axis (mm) must be to be reported.
pub fn min_sphericity(long_axis_mm: f64) -> f64 {
    match long_axis_mm {
        l if l < SMALL_NODULE_MM => MIN_SPHERICITY_SMALL,
        l if l < MASS_MM => MIN_SPHERICITY,
        _ => MIN_SPHERICITY_MASS,
    }
}

fn notes(ct: &CtSeries, lungs: &LungMask) -> Vec<String> {
    let method = METHOD_NOTES.iter().map(|n| n.to_string());
    ct.notes.iter().chain(&lungs.notes).cloned().chain(method).collect()
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
        let now = Instant::now();
        self.stages.push(StageTime { stage: stage.name().into(), seconds: (now - self.last).as_secs_f64() });
        self.last = now;
    }
}
