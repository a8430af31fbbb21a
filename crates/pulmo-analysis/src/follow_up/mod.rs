//! Follow-up: which of this study's nodules is which of the prior's, once the registration
//! has mapped the prior into this study, and what changed (size, volume, doubling time, status).
//!
//! Matching is a minimum-cost assignment ([`assignment`]), so one nodule never matches two:
//! a pair is allowed when the current centre lies within a size-scaled distance gate of the
//! mapped prior centre and their diameters differ by less than [`MAX_DIAMETER_RATIO`]; its cost
//! adds the distance (relative to the gate), the size change and a solid/ground-glass flip.

mod assignment;

use pulmo_clinical::dates::days_between;
use pulmo_clinical::density::Density;
use pulmo_clinical::growth::{doubling_class, volume_change, VolumeChange};
use pulmo_clinical::lung_rads::{self, Status};
use pulmo_findings::{
    Disappearance, Measurements, NoduleChange, PriorComparison, PriorFindings, PriorNodule, PriorTrack, RegistrationQuality,
    SourceSeries, TrackPoint, UnmatchedPrior,
};
use pulmo_volume::{vec3, Affine, Vec3};

pub use assignment::assign;

/// The distance gate: this much (mm) plus half the larger mean diameter of the pair. Published
/// pipelines gate at about 10 mm scaled by size; growth moves a large nodule's centre further.
pub const GATE_MM: f64 = 10.0;
/// Mean diameters of a matched pair differ by less than this factor either way: growth from
/// 5 to 15 mm in one interval is a doubling time of under 100 days over a year.
pub const MAX_DIAMETER_RATIO: f64 = 3.0;
/// Cost of a solid nodule matched to a ground-glass one (part-solid sits between both).
const DENSITY_FLIP_COST: f64 = 0.5;
/// Cost of leaving a nodule unmatched; any allowed pair costs less than twice this.
const UNMATCHED_COST: f64 = 1.5;

/// How the prior maps into this study: the global registration and, per prior nodule, where
/// the local refinement puts it.
pub struct PriorMapping<'a> {
    pub prior_to_current: Affine,
    pub quality: RegistrationQuality,
    /// The position in this study (LPS mm) of a prior nodule.
    pub locate: &'a mut dyn FnMut(&PriorNodule) -> Vec3,
}

/// What follow-up says about one current nodule.
#[derive(Debug, Clone, PartialEq)]
pub struct Followed {
    pub status: Status,
    pub change: Option<NoduleChange>,
}

/// Matches `current` (this study's nodules, measured on `source`) against `prior`'s nodules;
/// returns one [`Followed`] per current nodule, in order, and the study-level comparison.
pub fn compare(
    current: &[&Measurements],
    source: &SourceSeries,
    prior: &PriorFindings,
    mapping: PriorMapping<'_>,
) -> (Vec<Followed>, PriorComparison) {
    let mapped: Vec<Vec3> = prior.nodules.iter().map(|t| (mapping.locate)(&t.nodule)).collect();
    let cost: Vec<Vec<Option<f64>>> =
        prior.nodules.iter().zip(&mapped).map(|(t, at)| current.iter().map(|c| pair_cost(&t.nodule, *at, c)).collect()).collect();
    let pairs = assign(&cost, current.len(), UNMATCHED_COST);
    let interval_days = interval(prior.study_date.as_deref(), source.study_date.as_deref());

    let mut followed: Vec<Followed> = current.iter().map(|_| Followed { status: Status::New, change: None }).collect();
    for &(p, c) in &pairs {
        let change = change(&prior.nodules[p], prior, mapped[p], current[c], interval_days);
        let status = status(&change, current[c], source.study_date.as_deref());
        followed[c] = Followed { status, change: Some(change) };
    }
    let unmatched_prior = (0..prior.nodules.len())
        .filter(|p| !pairs.iter().any(|pair| pair.0 == *p))
        .map(|p| UnmatchedPrior {
            nodule: prior.nodules[p].nodule.clone(),
            expected_lps_mm: mapped[p],
            disappearance: if in_scan(source, mapped[p]) { Disappearance::Resolved } else { Disappearance::OutsideScan },
        })
        .collect();
    let comparison = PriorComparison {
        study_uid: prior.study_uid.clone(),
        series_uid: prior.series_uid.clone(),
        study_date: prior.study_date.clone(),
        interval_days,
        prior_to_current: mapping.prior_to_current,
        registration: mapping.quality,
        unmatched_prior,
        prior_objects: Vec::new(),
    };
    (followed, comparison)
}

/// A nodule pulmo measured on the prior's CT (`measure_on_prior` looks where the registration
/// puts a current nodule, in the prior's coordinates).
pub struct PriorMeasurement {
    pub measurements: Measurements,
    /// Its Lung-RADS category had it been reported then.
    pub lung_rads: lung_rads::Category,
}

/// Looks again at the prior's CT for each nodule `compare` called new: one the prior's
/// findings missed but that is there (a compact nodule near the mapped position, comparable in
/// size, as the matching gate and size rule allow) is not new, and is followed from what was
/// measured there now. `prior_to_current` maps the found centre back into this study.
pub fn look_back(
    followed: &mut [Followed],
    current: &[&Measurements],
    source: &SourceSeries,
    prior: &PriorFindings,
    prior_to_current: &Affine,
    measure_on_prior: &mut dyn FnMut(&Measurements) -> Option<PriorMeasurement>,
) -> usize {
    let interval_days = interval(prior.study_date.as_deref(), source.study_date.as_deref());
    let mut found = 0;
    for (f, c) in followed.iter_mut().zip(current).filter(|(f, _)| f.status == Status::New) {
        let Some(seen) = measure_on_prior(c) else { continue };
        let m = &seen.measurements;
        let nodule = PriorNodule::measured(0, String::new(), m, seen.lung_rads);
        let at = prior_to_current.apply(m.centre_lps_mm);
        if pair_cost(&nodule, at, c).is_none() {
            continue;
        }
        let mut change = change(&PriorTrack { nodule, history: Vec::new() }, prior, at, c, interval_days);
        change.found_on_prior_ct = true;
        *f = Followed { status: status(&change, c, source.study_date.as_deref()), change: Some(change) };
        found += 1;
    }
    found
}

/// The cost of matching prior nodule `prior` (mapped to `at`) with `current`, `None` when the
/// pair is not allowed.
fn pair_cost(p: &PriorNodule, at: Vec3, current: &Measurements) -> Option<f64> {
    let gate = GATE_MM + 0.5 * p.mean_diameter_mm.max(current.mean_diameter_mm);
    let distance = vec3::dist(at, current.centre_lps_mm);
    let ratio = current.mean_diameter_mm / p.mean_diameter_mm;
    let comparable = ratio.is_finite() && (1.0 / MAX_DIAMETER_RATIO..MAX_DIAMETER_RATIO).contains(&ratio);
    if distance > gate || !comparable {
        return None;
    }
    let size = ratio.ln().abs() / MAX_DIAMETER_RATIO.ln();
    let flip = matches!(
        (p.density, current.density),
        (Density::Solid, Density::GroundGlass) | (Density::GroundGlass, Density::Solid)
    );
    Some(distance / gate + 0.5 * size + if flip { DENSITY_FLIP_COST } else { 0.0 })
}

fn change(track: &PriorTrack, prior: &PriorFindings, at: Vec3, current: &Measurements, interval_days: Option<f64>) -> NoduleChange {
    let p = &track.nodule;
    let volume_change = interval_days.and_then(|days| volume_change(p.volume_mm3, current.volume_mm3, days));
    let doubling = match volume_change {
        Some(VolumeChange::Growing { doubling_time_days }) => Some(doubling_class(doubling_time_days, current.density)),
        _ => None,
    };
    let mut history = track.history.clone();
    history.push(TrackPoint {
        study_uid: prior.study_uid.clone(),
        study_date: prior.study_date.clone(),
        mean_diameter_mm: p.mean_diameter_mm,
        volume_mm3: p.volume_mm3,
    });
    NoduleChange {
        prior: p.clone(),
        prior_mapped_lps_mm: at,
        match_distance_mm: vec3::dist(at, current.centre_lps_mm),
        interval_days,
        mean_diameter_change_mm: pulmo_clinical::round_mm(current.mean_diameter_mm - p.mean_diameter_mm),
        solid_core_change_mm: match (current.solid_core, p.solid_core_mean_diameter_mm) {
            (Some(now), Some(then)) => Some(pulmo_clinical::round_mm(now.mean_diameter_mm - then)),
            _ => None,
        },
        volume_change_percent: (current.volume_mm3 / p.volume_mm3 - 1.0) * 100.0,
        volume_change,
        doubling_class: doubling,
        history,
        found_on_prior_ct: false,
    }
}

/// Lung-RADS status from the whole track; exams without a date sit at an unknown day, so only
/// growth since the previous exam can count for them.
fn status(change: &NoduleChange, current: &Measurements, current_date: Option<&str>) -> Status {
    let day = |date: Option<&str>| match (date, current_date) {
        (Some(then), Some(now)) => days_between(now, then).map_or(f64::NAN, |d| d as f64),
        _ => f64::NAN,
    };
    let mut history: Vec<lung_rads::Measured> = change
        .history
        .iter()
        .map(|t| lung_rads::Measured { day: day(t.study_date.as_deref()), mean_diameter_mm: t.mean_diameter_mm })
        .collect();
    history.push(lung_rads::Measured { day: 0.0, mean_diameter_mm: current.mean_diameter_mm });
    lung_rads::follow_up_status(&history).unwrap_or(Status::Stable)
}

fn interval(prior_date: Option<&str>, current_date: Option<&str>) -> Option<f64> {
    let days = days_between(prior_date?, current_date?)? as f64;
    (days > 0.0).then_some(days)
}

/// Whether a point lies inside the study's scanned grid.
fn in_scan(source: &SourceSeries, lps: Vec3) -> bool {
    let index = source.geometry.lps_to_index(lps);
    index.iter().zip(source.dims).all(|(i, n)| *i >= -0.5 && *i <= n as f64 - 0.5)
}

#[cfg(test)]
mod tests {
    use pulmo_clinical::lung_rads::{Assessment, Category};
    use pulmo_findings::{Algorithm, ExamAssessment, LungSummary, NoduleFinding, PatientFacts, Processing, StudyFindings};
    use pulmo_volume::Geometry;

    use super::*;
    use crate::test_support::measurements;

    fn source(date: &str) -> SourceSeries {
        SourceSeries {
            study_uid: format!("1.2.{date}"),
            series_uid: format!("1.2.{date}.1"),
            frame_of_reference_uid: None,
            study_date: Some(date.into()),
            dims: [100, 200, 200],
            geometry: Geometry::axial([-100.0, -100.0, -100.0], [2.0, 1.0, 1.0]).unwrap(),
            slices: Vec::new(),
        }
    }

    /// A prior exam on 2024-01-01 with nodules (centre, mean diameter, density).
    fn prior(nodules: &[(Vec3, f64, Density)]) -> StudyFindings {
        let nodules = nodules
            .iter()
            .enumerate()
            .map(|(i, &(centre, diameter, density))| NoduleFinding {
                id: i as u32 + 1,
                tracking_uid: format!("2.25.{}", i + 1),
                detection_probability: 0.9,
                zone: None,
                measurements: measurements(centre, diameter, density),
                lung_rads: Assessment { category: Category::FourA, reason: String::new() },
                status: Status::Baseline,
                change: None,
                brock: None,
                mayo: None,
                mesh_file: None,
                region: Default::default(),
            })
            .collect();
        StudyFindings {
            schema_version: pulmo_findings::SCHEMA_VERSION,
            source: source("20240101"),
            algorithm: Algorithm { name: "pulmo".into(), version: "test".into(), models: Vec::new() },
            patient: PatientFacts::default(),
            lungs: LungSummary { right: None, left: None, carina_z_mm: None, laa950_fraction: 0.0, emphysema: false },
            nodules,
            exam: ExamAssessment { lung_rads: Category::FourA, management: String::new(), fleischner: None },
            prior: None,
            notes: Vec::new(),
            processing: Processing { device: "cpu".into(), candidates: 0, detections: 0, stages: Vec::new() },
        }
    }

    /// The prior moved by +10 mm along x.
    fn compare_shifted(current: &[Measurements], prior: &StudyFindings) -> (Vec<Followed>, PriorComparison) {
        let current: Vec<&Measurements> = current.iter().collect();
        let shift = Affine { translation: [10.0, 0.0, 0.0], ..Affine::IDENTITY };
        let mut locate = |n: &PriorNodule| shift.apply(n.centre_lps_mm);
        let quality = RegistrationQuality { lung_dice: 0.98, similarity: 0.9 };
        compare(&current, &source("20250101"), &PriorFindings::from(prior), PriorMapping { prior_to_current: shift, quality, locate: &mut locate })
    }

    #[test]
    fn matches_grows_and_tells_new_resolved_and_outside_apart() {
        let prior = prior(&[
            ([0.0, 0.0, 0.0], 8.0, Density::Solid),
            ([40.0, 0.0, 0.0], 6.0, Density::Solid),
            ([-30.0, 50.0, 0.0], 6.0, Density::Solid),
            // Mapped to x = 105 mm: beyond the current grid's last column (x = 99 mm).
            ([95.0, 0.0, 0.0], 6.0, Density::Solid),
        ]);
        let current = [
            measurements([51.0, 1.0, 0.0], 6.2, Density::Solid),
            measurements([10.5, 0.0, 0.0], 10.0, Density::Solid),
            measurements([-60.0, -60.0, 0.0], 5.0, Density::Solid),
        ];
        let (followed, comparison) = compare_shifted(&current, &prior);
        let linked: Vec<Option<u32>> = followed.iter().map(|f| f.change.as_ref().map(|c| c.prior.id)).collect();
        assert_eq!(linked, [Some(2), Some(1), None]);
        assert_eq!(followed.iter().map(|f| f.status).collect::<Vec<_>>(), [Status::Stable, Status::Growing, Status::New]);
        let grown = followed[1].change.as_ref().unwrap();
        assert_eq!(grown.interval_days, Some(366.0));
        assert_eq!(grown.mean_diameter_change_mm, 2.0);
        // (10/8)^3 = 1.95 times the volume in 366 days: VDT = 366 ln 2 / ln 1.953.
        let Some(VolumeChange::Growing { doubling_time_days }) = grown.volume_change else { panic!("{grown:?}") };
        assert!((doubling_time_days - 366.0 * std::f64::consts::LN_2 / 1.953125f64.ln()).abs() < 1e-6);
        assert_eq!(grown.history.len(), 1);
        assert_eq!(grown.prior.tracking_uid, "2.25.1");
        let fates: Vec<(u32, Disappearance)> = comparison.unmatched_prior.iter().map(|u| (u.nodule.id, u.disappearance)).collect();
        assert_eq!(fates, [(3, Disappearance::Resolved), (4, Disappearance::OutsideScan)]);
    }

    /// New nodules are looked for on the prior's CT: one found near its mapped place and of a
    /// comparable size is followed from there (not new, no prior tracking UID); one found too
    /// far away, or too small, or not found, stays new; matched nodules are not looked at.
    #[test]
    fn a_new_nodule_found_on_the_prior_ct_is_followed_from_there() {
        let prior = prior(&[([0.0, 0.0, 0.0], 8.0, Density::Solid)]);
        let current = [
            measurements([10.0, 0.0, 0.0], 8.0, Density::Solid),
            measurements([40.0, 0.0, 0.0], 9.0, Density::Solid),
            measurements([-40.0, 0.0, 0.0], 9.0, Density::Solid),
            measurements([0.0, 40.0, 0.0], 9.0, Density::Solid),
            measurements([0.0, -40.0, 0.0], 9.0, Density::Solid),
        ];
        let (mut followed, _) = compare_shifted(&current, &prior);
        assert_eq!(followed.iter().filter(|f| f.status == Status::New).count(), 4);
        let shift = Affine { translation: [10.0, 0.0, 0.0], ..Affine::IDENTITY };
        let mut asked = Vec::new();
        // What the prior's CT shows where each current nodule maps back to (x - 10 mm).
        let mut measure = |c: &Measurements| {
            asked.push(c.centre_lps_mm);
            let [x, y, z] = c.centre_lps_mm;
            let seen = |centre: Vec3, diameter| Some(PriorMeasurement { measurements: measurements(centre, diameter, Density::Solid), lung_rads: lung_rads::Category::Three });
            match (x, y) {
                (40.0, _) => seen([x - 10.0 + 1.0, y, z], 6.0),
                (-40.0, _) => seen([x - 10.0 + 30.0, y, z], 9.0),
                (_, 40.0) => seen([x - 10.0, y, z], 2.5),
                _ => None,
            }
        };
        let current_refs: Vec<&Measurements> = current.iter().collect();
        let found = look_back(&mut followed, &current_refs, &source("20250101"), &PriorFindings::from(&prior), &shift, &mut measure);
        assert_eq!(found, 1);
        assert_eq!(asked.len(), 4, "the matched nodule is not looked at again");
        let statuses: Vec<Status> = followed.iter().map(|f| f.status).collect();
        assert_eq!(statuses, [Status::Stable, Status::Growing, Status::New, Status::New, Status::New]);
        let c = followed[1].change.as_ref().unwrap();
        assert!(c.found_on_prior_ct && c.prior.id == 0 && c.prior.tracking_uid.is_empty(), "{c:?}");
        assert_eq!((c.mean_diameter_change_mm, c.match_distance_mm, c.interval_days), (3.0, 1.0, Some(366.0)));
        assert_eq!(c.prior.lung_rads, lung_rads::Category::Three);
        assert_eq!(c.history.len(), 1, "the prior's point");
    }

    #[test]
    fn one_prior_nodule_never_matches_two() {
        let prior = prior(&[([0.0, 0.0, 0.0], 6.0, Density::Solid)]);
        let current = [measurements([12.0, 0.0, 0.0], 6.0, Density::Solid), measurements([10.0, 1.0, 0.0], 6.0, Density::Solid)];
        let (followed, comparison) = compare_shifted(&current, &prior);
        let linked: Vec<bool> = followed.iter().map(|f| f.change.is_some()).collect();
        assert_eq!(linked, [false, true], "the closer one is the match");
        assert!(comparison.unmatched_prior.is_empty());
    }

    #[test]
    fn gate_size_and_density_keep_implausible_pairs_apart() {
        let prior = prior(&[([0.0, 0.0, 0.0], 6.0, Density::Solid), ([0.0, 40.0, 0.0], 4.0, Density::Solid)]);
        let current = [
            // 16 mm from the mapped prior nodule 1: beyond its 10 + 0.5 x 6 mm gate.
            measurements([26.0, 0.0, 0.0], 6.0, Density::Solid),
            // On prior nodule 2's place, but 3.5 times its diameter.
            measurements([10.0, 40.0, 0.0], 14.0, Density::Solid),
        ];
        let (followed, comparison) = compare_shifted(&current, &prior);
        assert!(followed.iter().all(|f| f.change.is_none() && f.status == Status::New), "{followed:?}");
        assert_eq!(comparison.unmatched_prior.len(), 2);
        // A solid nodule where a ground-glass one was costs more than a solid one slightly further.
        let prior = super::tests::prior(&[([0.0, 0.0, 0.0], 8.0, Density::GroundGlass), ([0.0, 9.0, 0.0], 8.0, Density::Solid)]);
        let current = [measurements([10.0, 4.0, 0.0], 8.0, Density::Solid)];
        let (followed, _) = compare_shifted(&current, &prior);
        assert_eq!(followed[0].change.as_ref().map(|c| c.prior.id), Some(2));
    }
}
