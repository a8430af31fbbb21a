//! StudyFindings for writer tests: ball-shaped nodules placed on a real CT series' grid, with
//! measurements that follow from the ball (no analysis run), so a test knows every value; and
//! the same findings as a follow-up of a made-up prior exam.

use pulmo_clinical::density::Density;
use pulmo_clinical::growth::{self, VolumeChange};
use pulmo_clinical::lung_rads::{self, Category, Features, Previous, Status};
use pulmo_dicom::CtSeries;
use pulmo_findings::{
    Algorithm, Disappearance, ExamAssessment, HuStats, LungSummary, Measurements, ModelRef, NoduleChange, NoduleFinding, PatientFacts,
    PriorComparison, PriorNodule, PriorObject, Processing, RegistrationQuality, Side, StudyFindings, TrackPoint, UnmatchedPrior, Zone,
    Level, SCHEMA_VERSION,
};
use pulmo_volume::{Affine, BoxRegion};

/// Days between the made-up prior exam and the CT's study.
pub const FOLLOW_UP_DAYS: i64 = 365;
/// How much smaller (mean diameter, mm) the growing nodule was on the prior.
pub const GROWTH_MM: f64 = 4.0;

/// A ball of `radius_mm` around grid index `centre` (z, y, x).
pub struct Ball {
    pub centre: [usize; 3],
    pub radius_mm: f64,
    pub side: Side,
}

pub fn findings_with_balls(ct: &CtSeries, balls: &[Ball]) -> StudyFindings {
    let source = ct.source_series();
    let nodules: Vec<NoduleFinding> = balls.iter().enumerate().map(|(i, b)| nodule(ct, i as u32 + 1, b)).collect();
    StudyFindings {
        schema_version: SCHEMA_VERSION,
        source,
        algorithm: Algorithm {
            name: "pulmo".into(),
            version: "0.0.0-test".into(),
            models: vec![ModelRef { name: "fp-reduction".into(), version: "0.2.0".into(), sha256: "ab".repeat(32) }],
        },
        patient: PatientFacts { age_years: Some(64.0), female: Some(true) },
        lungs: LungSummary { right: None, left: None, carina_z_mm: None, laa950_fraction: 0.02, emphysema: false },
        prior: None,
        exam: ExamAssessment { lung_rads: Category::FourA, management: "3-month LDCT".into(), fleischner: None },
        nodules,
        notes: vec!["test findings: balls, not an analysis".into()],
        processing: Processing { device: "cpu".into(), candidates: 0, detections: 0, stages: Vec::new() },
    }
}

fn nodule(ct: &CtSeries, id: u32, ball: &Ball) -> NoduleFinding {
    let g = ct.volume.geometry();
    let dims = ct.volume.dims();
    let reach = [0, 1, 2].map(|a| (ball.radius_mm / g.spacing[a]).ceil() as usize + 1);
    let start = [0, 1, 2].map(|a| ball.centre[a].saturating_sub(reach[a]));
    let size = [0, 1, 2].map(|a| (ball.centre[a] + reach[a] + 1).min(dims[a]) - start[a]);
    let centre_lps = g.index_to_lps(ball.centre.map(|c| c as f64));
    let mut inside = Vec::with_capacity(size.iter().product());
    for z in 0..size[0] {
        for y in 0..size[1] {
            for x in 0..size[2] {
                let p = g.index_to_lps([(start[0] + z) as f64, (start[1] + y) as f64, (start[2] + x) as f64]);
                inside.push(pulmo_volume::vec3::dist(p, centre_lps) <= ball.radius_mm);
            }
        }
    }
    let region = BoxRegion::from_mask(start, size, &inside);
    let d = 2.0 * ball.radius_mm;
    let along_x = g.direction[2];
    let axis = |r: f64| [0, 1, 2].map(|a| centre_lps[a] + along_x[a] * r);
    let measurements = Measurements {
        centre_lps_mm: centre_lps,
        long_axis_mm: d,
        short_axis_mm: d,
        long_axis_lps_mm: [axis(-ball.radius_mm), axis(ball.radius_mm)],
        short_axis_lps_mm: [centre_lps, centre_lps],
        mean_diameter_mm: d,
        axial_plane_z_mm: centre_lps[2],
        longest_diameter_3d_mm: d,
        volume_mm3: std::f64::consts::PI / 6.0 * d.powi(3),
        hu: HuStats { mean: 20.0, sd: 15.0, min: -100.0, max: 80.0 },
        mass_mg: std::f64::consts::PI / 6.0 * d.powi(3) * 1.02,
        solid_core: None,
        solid_fraction: 1.0,
        density: Density::Solid,
        sphericity: 1.0,
        spiculated: None,
        spicules: None,
        spiculation_probability: None,
        margin_irregularity: None,
        calcified: false,
        juxtapleural: false,
    };
    let assessment = assess(d, Status::Baseline, None);
    NoduleFinding {
        id,
        tracking_uid: pulmo_dicom::derived_uid(&format!("test nodule {id}")),
        detection_probability: 0.9,
        zone: Some(Zone { side: ball.side, level: Level::Upper }),
        measurements,
        lung_rads: assessment,
        status: Status::Baseline,
        change: None,
        brock: None,
        mayo: None,
        mesh_file: None,
        region,
    }
}

fn assess(mean_diameter_mm: f64, status: Status, previous: Option<Previous>) -> lung_rads::Assessment {
    lung_rads::assess(&lung_rads::Nodule {
        density: Density::Solid,
        mean_diameter_mm,
        solid_component_mm: 0.0,
        status,
        features: Features { benign: false, juxtapleural_benign_shape: false, suspicious: false },
        previous,
    })
}

/// `f` (at least two nodules) as the follow-up of a prior exam [`FOLLOW_UP_DAYS`] earlier whose
/// nodule 1 was nodule 1 here, [`GROWTH_MM`] smaller (so now growing, with a doubling time, and
/// keeping the prior's tracking UID), whose nodule 2 resolved, and which had no nodule 2 of
/// this study (new). pulmo's SR and SEG of the prior are known.
pub fn follow_up(mut f: StudyFindings) -> StudyFindings {
    let uid = |what: &str| pulmo_dicom::derived_uid(&format!("test prior {what}"));
    let date = f.source.study_date.as_deref().and_then(|d| pulmo_clinical::dates::add_days(d, -FOLLOW_UP_DAYS));
    let interval_days = date.as_ref().map(|_| FOLLOW_UP_DAYS as f64);
    let grown = &mut f.nodules[0];
    let prior = prior_nodule(1, uid("nodule 1"), grown, GROWTH_MM);
    grown.tracking_uid = prior.tracking_uid.clone();
    grown.change = Some(change(grown, prior, date.clone(), interval_days));
    grown.status = Status::Growing;
    grown.lung_rads = assess(grown.measurements.mean_diameter_mm, Status::Growing, grown.change.as_ref().map(previous));
    let new = &mut f.nodules[1];
    new.status = Status::New;
    new.lung_rads = assess(new.measurements.mean_diameter_mm, Status::New, None);
    let mut resolved = prior_nodule(2, uid("nodule 2"), new, -1.0);
    resolved.centre_lps_mm[2] += 40.0;
    let (study_uid, series_uid) = (uid("study"), uid("series"));
    let object = |kind: &str, class: &str| PriorObject {
        study_uid: study_uid.clone(),
        series_uid: uid(&format!("{kind} series")),
        sop_class_uid: class.into(),
        sop_instance_uid: uid(kind),
    };
    f.prior = Some(PriorComparison {
        study_uid: study_uid.clone(),
        series_uid,
        study_date: date,
        interval_days,
        prior_to_current: Affine::IDENTITY,
        registration: RegistrationQuality { lung_dice: 0.95, similarity: 0.93 },
        unmatched_prior: vec![UnmatchedPrior {
            expected_lps_mm: resolved.centre_lps_mm,
            nodule: resolved,
            disappearance: Disappearance::Resolved,
        }],
        prior_objects: vec![object("sr", "1.2.840.10008.5.1.4.1.1.88.34"), object("seg", "1.2.840.10008.5.1.4.1.1.66.4")],
    });
    f.exam.lung_rads = f.nodules.iter().map(|n| n.lung_rads.category).max().unwrap_or(Category::One);
    f.exam.management = f.exam.lung_rads.management().into();
    f
}

/// `n` as the prior saw it: `smaller_mm` smaller in mean diameter, at the same place.
fn prior_nodule(id: u32, tracking_uid: String, n: &NoduleFinding, smaller_mm: f64) -> PriorNodule {
    let d = n.measurements.mean_diameter_mm - smaller_mm;
    PriorNodule {
        id,
        tracking_uid,
        centre_lps_mm: n.measurements.centre_lps_mm,
        density: n.measurements.density,
        long_axis_mm: d,
        short_axis_mm: d,
        mean_diameter_mm: d,
        volume_mm3: std::f64::consts::PI / 6.0 * d.powi(3),
        solid_core_mean_diameter_mm: None,
        lung_rads: assess(d, Status::Baseline, None).category,
    }
}

/// [`follow_up`] with nodule 2 not new after all: the prior's findings missed it, but its CT
/// shows it, as large as now (stable).
pub fn found_on_prior_ct(f: StudyFindings) -> StudyFindings {
    let mut f = follow_up(f);
    let prior_exam = f.prior.as_ref().unwrap();
    let (date, interval_days) = (prior_exam.study_date.clone(), prior_exam.interval_days);
    let n = &mut f.nodules[1];
    let mut seen = change(n, prior_nodule(0, String::new(), n, 0.0), date, interval_days);
    seen.found_on_prior_ct = true;
    n.status = Status::Stable;
    n.lung_rads = assess(n.measurements.mean_diameter_mm, Status::Stable, Some(previous(&seen)));
    n.change = Some(seen);
    f.exam.lung_rads = f.nodules.iter().map(|n| n.lung_rads.category).max().unwrap_or(Category::One);
    f.exam.management = f.exam.lung_rads.management().into();
    f
}

fn change(n: &NoduleFinding, prior: PriorNodule, date: Option<String>, interval_days: Option<f64>) -> NoduleChange {
    let volume = n.measurements.volume_mm3;
    let volume_change = interval_days.and_then(|days| growth::volume_change(prior.volume_mm3, volume, days));
    let doubling_time = match volume_change {
        Some(VolumeChange::Growing { doubling_time_days }) => Some(doubling_time_days),
        _ => None,
    };
    NoduleChange {
        prior_mapped_lps_mm: prior.centre_lps_mm,
        match_distance_mm: 0.0,
        interval_days,
        mean_diameter_change_mm: n.measurements.mean_diameter_mm - prior.mean_diameter_mm,
        solid_core_change_mm: None,
        volume_change_percent: (volume / prior.volume_mm3 - 1.0) * 100.0,
        volume_change,
        doubling_class: doubling_time.map(|days| growth::doubling_class(days, n.measurements.density)),
        history: vec![TrackPoint {
            study_uid: pulmo_dicom::derived_uid("test prior study"),
            study_date: date,
            mean_diameter_mm: prior.mean_diameter_mm,
            volume_mm3: prior.volume_mm3,
        }],
        prior,
        found_on_prior_ct: false,
    }
}

fn previous(c: &NoduleChange) -> Previous {
    Previous {
        category: c.prior.lung_rads,
        density: c.prior.density,
        mean_diameter_mm: c.prior.mean_diameter_mm,
        solid_component_mm: 0.0,
    }
}
