//! What a caller asks for: PhantomSpec (baseline study), FollowUpSpec (a later study of the
//! same patient), PatientInfo; with defaults and validation that turns bad options into errors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use pulmo_clinical::dates;
use crate::nodule::NoduleRequest;
use crate::PhantomError;

/// Patient identification written into every study of the phantom patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PatientInfo {
    pub id: String,
    /// DICOM person name, "Family^Given".
    pub name: String,
    /// "YYYYMMDD"; PatientAge of each study is derived from it and the study date.
    pub birth_date: String,
    /// "M", "F" or "O".
    pub sex: String,
}

impl Default for PatientInfo {
    fn default() -> Self {
        PatientInfo {
            id: "PULMO-PHANTOM-0001".into(),
            name: "Phantom^Pulmo".into(),
            birth_date: "19610314".into(),
            sex: "F".into(),
        }
    }
}

/// A baseline chest CT study to synthesise. Typical clinical values: pixel spacing 0.6..1.0 mm,
/// slice spacing 0.625..5 mm; coarser values are accepted for fast tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhantomSpec {
    /// Everything random (anatomy, nodules, noise, UIDs) derives from this seed.
    pub seed: u64,
    /// Rows = columns of each slice.
    pub rows: usize,
    pub slices: usize,
    pub pixel_spacing_mm: f64,
    /// Distance between slice centres.
    pub slice_spacing_mm: f64,
    /// Width of the (box) slice sensitivity profile: the z blur of every structure.
    pub slice_thickness_mm: f64,
    /// Standard deviation of the image noise, HU.
    pub noise_hu: f64,
    pub nodule_count: usize,
    /// Constraints for the first `nodules.len()` nodules (must not exceed `nodule_count`).
    pub nodules: Vec<NoduleRequest>,
    pub patient: PatientInfo,
    /// "YYYYMMDD".
    pub study_date: String,
    /// "HHMMSS".
    pub study_time: String,
    pub kvp: f64,
}

/// Slices needed to cover `coverage_mm` at `slice_spacing_mm` (centre of first to last slice).
pub fn slices_for_coverage(coverage_mm: f64, slice_spacing_mm: f64) -> usize {
    (coverage_mm / slice_spacing_mm).ceil().max(1.0) as usize + 1
}

impl PhantomSpec {
    /// The evaluation's acquisitions (`pulmo eval` and its tuning): 350 mm field of view and
    /// 280 mm of coverage, pixel spacing 0.7-0.9 mm and slices 1-2.5 mm apart, chosen by the
    /// seed so that consecutive seeds vary both.
    pub fn evaluation(seed: u64, nodule_count: usize) -> PhantomSpec {
        let pixel = [0.7, 0.8, 0.9][(seed % 3) as usize];
        let slice = [1.0, 1.25, 2.0, 2.5][((seed / 3) % 4) as usize];
        PhantomSpec {
            seed,
            rows: (350.0 / pixel) as usize,
            pixel_spacing_mm: pixel,
            slice_spacing_mm: slice,
            slice_thickness_mm: slice,
            slices: slices_for_coverage(280.0, slice),
            nodule_count,
            ..Default::default()
        }
    }
}

impl Default for PhantomSpec {
    fn default() -> Self {
        PhantomSpec {
            seed: 1,
            rows: 512,
            slices: slices_for_coverage(300.0, 1.25),
            pixel_spacing_mm: 0.7,
            slice_spacing_mm: 1.25,
            slice_thickness_mm: 1.25,
            noise_hu: 20.0,
            nodule_count: 6,
            nodules: Vec::new(),
            patient: PatientInfo::default(),
            study_date: "20240115".into(),
            study_time: "093000".into(),
            kvp: 120.0,
        }
    }
}

fn bad(field: &'static str, reason: impl Into<String>) -> PhantomError {
    PhantomError::InvalidOption { field, reason: reason.into() }
}

fn check_range(field: &'static str, v: f64, lo: f64, hi: f64) -> Result<(), PhantomError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(bad(field, format!("{v} is outside {lo}..={hi}")))
    }
}

/// The largest volume generated in memory (about 1.2 GB of i16).
const MAX_VOXELS: usize = 600_000_000;
/// A chest needs at least this field of view; the body is scaled down to fit smaller ones.
pub const MIN_FOV_MM: f64 = 240.0;

impl PhantomSpec {
    pub fn validate(&self) -> Result<(), PhantomError> {
        self.validate_acquisition()?;
        self.validate_nodules()?;
        self.patient.validate()?;
        validate_study_date_time(&self.study_date, &self.study_time)
    }

    pub(crate) fn validate_acquisition(&self) -> Result<(), PhantomError> {
        if !(32..=1024).contains(&self.rows) {
            return Err(bad("rows", format!("{} is outside 32..=1024", self.rows)));
        }
        if !(8..=2000).contains(&self.slices) {
            return Err(bad("slices", format!("{} is outside 8..=2000", self.slices)));
        }
        if self.rows * self.rows * self.slices > MAX_VOXELS {
            return Err(bad(
                "slices",
                format!("{} voxels exceed the limit of {MAX_VOXELS}", self.rows * self.rows * self.slices),
            ));
        }
        check_range("pixel_spacing_mm", self.pixel_spacing_mm, 0.3, 4.0)?;
        check_range("slice_spacing_mm", self.slice_spacing_mm, 0.3, 10.0)?;
        check_range("slice_thickness_mm", self.slice_thickness_mm, 0.3, 10.0)?;
        check_range("noise_hu", self.noise_hu, 0.0, 200.0)?;
        check_range("kvp", self.kvp, 70.0, 150.0)?;
        let fov = self.rows as f64 * self.pixel_spacing_mm;
        if fov < MIN_FOV_MM {
            return Err(bad(
                "pixel_spacing_mm",
                format!("field of view rows x spacing = {fov:.0} mm; a chest needs >= {MIN_FOV_MM} mm"),
            ));
        }
        let coverage = (self.slices - 1) as f64 * self.slice_spacing_mm;
        if coverage < 100.0 {
            return Err(bad(
                "slices",
                format!("scan covers {coverage:.0} mm along z; at least 100 mm is needed for lungs"),
            ));
        }
        Ok(())
    }

    pub(crate) fn validate_nodules(&self) -> Result<(), PhantomError> {
        if self.nodule_count > 40 {
            return Err(bad("nodule_count", format!("{} exceeds 40", self.nodule_count)));
        }
        if self.nodules.len() > self.nodule_count {
            return Err(bad(
                "nodules",
                format!("{} requests for nodule_count {}", self.nodules.len(), self.nodule_count),
            ));
        }
        for r in &self.nodules {
            if let Some(d) = r.diameter_mm {
                check_range("nodules[].diameter_mm", d, 3.0, 30.0)?;
            }
        }
        Ok(())
    }
}

pub(crate) fn validate_study_date_time(date: &str, time: &str) -> Result<(), PhantomError> {
    if dates::parse_da(date).is_none() {
        return Err(bad("study_date", format!("{date:?} is not a YYYYMMDD date")));
    }
    if !dates::valid_tm(time) {
        return Err(bad("study_time", format!("{time:?} is not an HHMMSS time")));
    }
    Ok(())
}

fn check_text(field: &'static str, s: &str, max: usize) -> Result<(), PhantomError> {
    let ok = s.len() <= max && s.chars().all(|c| c.is_ascii() && !c.is_ascii_control() && c != '\\');
    if ok {
        Ok(())
    } else {
        Err(bad(field, format!("{s:?} must be printable ASCII without '\\', at most {max} characters")))
    }
}

impl PatientInfo {
    pub fn validate(&self) -> Result<(), PhantomError> {
        check_text("patient.id", &self.id, 64)?;
        if self.id.trim().is_empty() {
            return Err(bad("patient.id", "must not be empty"));
        }
        check_text("patient.name", &self.name, 64)?;
        if dates::parse_da(&self.birth_date).is_none() {
            return Err(bad("patient.birth_date", format!("{:?} is not a YYYYMMDD date", self.birth_date)));
        }
        if !matches!(self.sex.as_str(), "M" | "F" | "O") {
            return Err(bad("patient.sex", format!("{:?} must be M, F or O", self.sex)));
        }
        Ok(())
    }
}

/// How the patient lies differently in the later study: rotation about the centre of the
/// chest (degrees about L, then P, then S) followed by a translation (mm, LPS).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RigidMotion {
    pub rotation_deg: [f64; 3],
    pub translation_mm: [f64; 3],
}

/// A later study of the same patient (see [`crate::generate_follow_up`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FollowUpSpec {
    /// Seed for everything this study draws (motion, growth, new nodules, noise, UIDs).
    pub seed: u64,
    /// Days after the prior study, 1..=3650.
    pub interval_days: u32,
    /// None: drawn, |translation| <= 30 mm and rotation <= 10 degrees.
    pub motion: Option<RigidMotion>,
    /// Breathing-like scaling of the body along S-I relative to the body model; None: drawn
    /// from 0.97..1.03. Lungs and vessels scale; nodules keep their shape.
    pub breathing_scale_si: Option<f64>,
    /// Volume doubling time (days) per prior nodule id; `null` means stable, a negative value
    /// shrinkage. Prior nodules not listed get a drawn VDT.
    pub vdt_days: BTreeMap<u32, Option<f64>>,
    /// Prior nodule ids that have resolved; None: drawn (none or one).
    pub resolved: Option<Vec<u32>>,
    pub new_nodules: usize,
    /// Constraints for the new nodules, as in PhantomSpec::nodules.
    pub new_nodule_requests: Vec<NoduleRequest>,
    /// Acquisition overrides; None keeps the prior study's values.
    pub slices: Option<usize>,
    pub slice_spacing_mm: Option<f64>,
    pub slice_thickness_mm: Option<f64>,
    pub noise_hu: Option<f64>,
}

impl Default for FollowUpSpec {
    fn default() -> Self {
        FollowUpSpec {
            seed: 2,
            interval_days: 365,
            motion: None,
            breathing_scale_si: None,
            vdt_days: BTreeMap::new(),
            resolved: None,
            new_nodules: 1,
            new_nodule_requests: Vec::new(),
            slices: None,
            slice_spacing_mm: None,
            slice_thickness_mm: None,
            noise_hu: None,
        }
    }
}

/// Limits on a given motion: beyond these the lungs may leave the field of view.
const MAX_SHIFT_MM: f64 = 60.0;
const MAX_ROTATION_DEG: f64 = 20.0;

impl FollowUpSpec {
    pub fn validate(&self) -> Result<(), PhantomError> {
        if !(1..=3650).contains(&self.interval_days) {
            return Err(bad("interval_days", format!("{} is outside 1..=3650", self.interval_days)));
        }
        if let Some(m) = &self.motion {
            let shift = crate::math::norm(m.translation_mm);
            if !shift.is_finite() || shift > MAX_SHIFT_MM {
                return Err(bad("motion.translation_mm", format!("|shift| {shift:.1} mm exceeds {MAX_SHIFT_MM} mm")));
            }
            for a in m.rotation_deg {
                check_range("motion.rotation_deg", a, -MAX_ROTATION_DEG, MAX_ROTATION_DEG)?;
            }
        }
        if let Some(s) = self.breathing_scale_si {
            check_range("breathing_scale_si", s, 0.9, 1.1)?;
        }
        for (id, vdt) in &self.vdt_days {
            if let Some(v) = vdt {
                if !v.is_finite() || v.abs() < 10.0 {
                    return Err(bad("vdt_days", format!("nodule {id}: VDT {v} days must be finite with |VDT| >= 10")));
                }
            }
        }
        if self.new_nodules > 20 || self.new_nodule_requests.len() > self.new_nodules {
            return Err(bad(
                "new_nodules",
                format!(
                    "{} new nodules ({} requests): at most 20, and no more requests than nodules",
                    self.new_nodules,
                    self.new_nodule_requests.len()
                ),
            ));
        }
        for r in &self.new_nodule_requests {
            if let Some(d) = r.diameter_mm {
                check_range("new_nodule_requests[].diameter_mm", d, 3.0, 30.0)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_cover_300_mm() {
        let s = PhantomSpec::default();
        s.validate().unwrap();
        assert!(((s.slices - 1) as f64 * s.slice_spacing_mm - 300.0).abs() < 1.25);
        FollowUpSpec::default().validate().unwrap();
    }

    #[test]
    fn bad_options_are_errors_not_panics() {
        type Breakage = Box<dyn Fn(&mut PhantomSpec)>;
        let cases: Vec<Breakage> = vec![
            Box::new(|s| s.rows = 0),
            Box::new(|s| s.pixel_spacing_mm = f64::NAN),
            Box::new(|s| s.pixel_spacing_mm = 0.3),
            Box::new(|s| s.slice_spacing_mm = -1.0),
            Box::new(|s| s.slices = 20),
            Box::new(|s| s.noise_hu = -3.0),
            Box::new(|s| s.nodule_count = 1000),
            Box::new(|s| s.patient.sex = "X".into()),
            Box::new(|s| s.patient.name = "a\\b".into()),
            Box::new(|s| s.study_date = "20241301".into()),
            Box::new(|s| {
                s.nodule_count = 1;
                s.nodules = vec![NoduleRequest { diameter_mm: Some(50.0), ..Default::default() }];
            }),
        ];
        for (i, f) in cases.iter().enumerate() {
            let mut s = PhantomSpec::default();
            f(&mut s);
            assert!(matches!(s.validate(), Err(PhantomError::InvalidOption { .. })), "case {i}");
        }
        let f = FollowUpSpec {
            motion: Some(RigidMotion { rotation_deg: [45.0, 0.0, 0.0], translation_mm: [0.0; 3] }),
            ..Default::default()
        };
        assert!(f.validate().is_err());
    }
}
