//! Follow-up studies: the prior's patient rebuilt exactly, moved by a known rigid motion and
//! breathing scale, nodules grown by their volume doubling times, some resolved, some new.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::anatomy::Anatomy;
use pulmo_clinical::dates;
use crate::generate::{carve, nodule_truths, place_new, study_lung_rads};
use crate::identity::StudyIdentity;
use crate::math::{add, mat_mul, rotation_deg};
use crate::nodule::{NoduleDesign, NoduleKind};
use crate::placement::Placer;
use crate::render::render;
use crate::scene::{Acquisition, PlacedNodule, Scene};
use crate::seeds;
use crate::spec::{FollowUpSpec, PhantomSpec, RigidMotion};
use crate::truth::{
    FollowUpTruth, Generator, GrowthTruth, NoduleMatch, PatientModel, Pose, StudyKind, Truth, SCENE_VERSION,
};
use crate::tubes::build_tubes;
use crate::{Phantom, PhantomError};

/// A grown nodule larger than this (nominal diameter, mm) means the VDT was implausible.
const MAX_GROWN_DIAMETER_MM: f64 = 60.0;

pub fn generate_follow_up(prior: &Truth, spec: &FollowUpSpec) -> Result<Phantom, PhantomError> {
    spec.validate()?;
    let model = usable_prior(prior)?;
    let study = study_spec(prior, spec)?;
    let anatomy = Anatomy::new(model.anatomy_seed, model.body_size);
    let tubes = build_tubes(&anatomy, model.anatomy_seed);
    let (motion, breathing) = motion_and_breathing(spec);
    let pose = moved(&prior.pose, &motion, breathing);
    let noise_seed = seeds::sub_seed(spec.seed, &format!("follow-up/noise/{}", prior.identity.study_instance_uid));
    let acq = Acquisition::planned(&study, &anatomy, &pose, noise_seed)?;

    let resolved = resolved_ids(prior, spec, &mut seeds::rng(spec.seed, "follow-up/resolved"))?;
    let survivors = grow(prior, spec, &resolved, &mut seeds::rng(spec.seed, "follow-up/growth"))?;
    let mut placer = Placer::new(&anatomy, &tubes, &pose, &acq);
    for n in &survivors {
        placer.reserve(n.centre_body, n.design.model.bounding_radius());
    }
    let mut rng = seeds::rng(spec.seed, "follow-up/new-nodules");
    let newcomers = place_new(&mut placer, &spec.new_nodule_requests, spec.new_nodules, &mut rng)?;
    let mut nodules: Vec<PlacedNodule> = survivors.into_iter().chain(newcomers).collect();
    renumber(&mut nodules, spec.seed);

    let tubes = carve(&tubes, &nodules);
    tracing::debug!(
        seed = spec.seed,
        dims = ?acq.dims,
        interval_days = spec.interval_days,
        nodules = nodules.len(),
        "rendering follow-up phantom"
    );
    let scene = Scene { anatomy, tubes, nodules };
    let volume = render(&scene, &pose, &acq)?;
    let uid_seed = seeds::sub_seed(spec.seed, &prior.identity.study_instance_uid);
    let identity = StudyIdentity::new(
        uid_seed,
        "follow-up",
        &study.patient,
        &study.study_date,
        &study.study_time,
        "CT CHEST LOW DOSE FOLLOW-UP (pulmo phantom)",
        study.slices,
    );
    let matching = matching(&scene.nodules);
    let prior_to_current = pose.body_to_lps.then_after(
        &prior.pose.body_to_lps.inverse().ok_or_else(|| PhantomError::Prior("prior pose is singular".into()))?,
    );
    let follow_up = FollowUpTruth {
        prior_study_instance_uid: prior.identity.study_instance_uid.clone(),
        prior_series_instance_uid: prior.identity.series_instance_uid.clone(),
        prior_frame_of_reference_uid: prior.identity.frame_of_reference_uid.clone(),
        interval_days: spec.interval_days,
        prior_to_current,
        motion,
        breathing_scale_si: breathing,
        matching,
        resolved_prior_ids: resolved,
        spec: spec.clone(),
    };
    let nodules = nodule_truths(&scene, &pose, &acq);
    let truth = Truth {
        generator: Generator::current(),
        kind: StudyKind::FollowUp,
        seed: spec.seed,
        spec: PhantomSpec { nodule_count: nodules.len(), nodules: Vec::new(), ..study },
        dims_zyx: acq.dims,
        geometry: acq.geometry,
        slice_thickness_mm: acq.thickness,
        identity: identity.clone(),
        patient_model: Some(model),
        pose,
        lung_rads: study_lung_rads(&nodules),
        nodules,
        follow_up: Some(follow_up),
        background: None,
    };
    Ok(Phantom { volume, truth, dicom: identity })
}

fn usable_prior(prior: &Truth) -> Result<PatientModel, PhantomError> {
    if prior.generator.scene_version != SCENE_VERSION {
        return Err(PhantomError::Prior(format!(
            "made with scene version {}, this generator builds version {SCENE_VERSION}",
            prior.generator.scene_version
        )));
    }
    match (prior.kind, prior.patient_model) {
        (StudyKind::Insertion, _) | (_, None) => {
            Err(PhantomError::Prior("an insertion into real CT has no phantom patient to follow up".into()))
        }
        (_, Some(model)) => Ok(model),
    }
}

/// The prior's acquisition with this study's overrides, and the date moved on.
fn study_spec(prior: &Truth, spec: &FollowUpSpec) -> Result<PhantomSpec, PhantomError> {
    let p = &prior.spec;
    let date = dates::add_days(&prior.identity.study_date, spec.interval_days as i64)
        .ok_or_else(|| PhantomError::Prior(format!("study date {:?} is not a date", prior.identity.study_date)))?;
    let study = PhantomSpec {
        slices: spec.slices.unwrap_or(p.slices),
        slice_spacing_mm: spec.slice_spacing_mm.unwrap_or(p.slice_spacing_mm),
        slice_thickness_mm: spec.slice_thickness_mm.unwrap_or(p.slice_thickness_mm),
        noise_hu: spec.noise_hu.unwrap_or(p.noise_hu),
        study_date: date,
        ..p.clone()
    };
    study.validate_acquisition()?;
    Ok(study)
}

/// The follow-up's rigid motion and S-I breathing scale: the spec's, or drawn from its seed.
pub(crate) fn motion_and_breathing(spec: &FollowUpSpec) -> (RigidMotion, f64) {
    let motion = spec.motion.unwrap_or_else(|| draw_motion(&mut seeds::rng(spec.seed, "follow-up/motion")));
    let breathing = spec
        .breathing_scale_si
        .unwrap_or_else(|| seeds::rng(spec.seed, "follow-up/breathing").random_range(0.97..1.03));
    (motion, breathing)
}

/// Uniform rotation axis and translation direction, magnitudes up to 10 degrees and 30 mm.
fn draw_motion(rng: &mut ChaCha8Rng) -> RigidMotion {
    let axis = crate::nodule::random_unit(rng);
    let angle = rng.random_range(0.0..10.0);
    let shift = crate::nodule::random_unit(rng);
    let length = rng.random_range(0.0..30.0);
    // Small-angle split of an axis-angle rotation into the three Euler angles.
    RigidMotion { rotation_deg: axis.map(|a| a * angle), translation_mm: shift.map(|s| s * length) }
}

/// Rotation about the body centre (the body frame origin), then the shift.
fn moved(prior: &Pose, motion: &RigidMotion, breathing: f64) -> Pose {
    let rotation = mat_mul(&rotation_deg(motion.rotation_deg), &prior.rotation);
    Pose::new(rotation, add(prior.translation_mm, motion.translation_mm), breathing)
}

/// Numbers a follow-up's nodules from 1 in a shuffled order, so ids say nothing about the
/// prior: only [`matching`] does.
pub(crate) fn renumber(nodules: &mut [PlacedNodule], seed: u64) {
    nodules.shuffle(&mut seeds::rng(seed, "follow-up/ids"));
    for (i, n) in nodules.iter_mut().enumerate() {
        n.id = i as u32 + 1;
    }
}

/// Which prior nodule each of a follow-up's nodules is (none for a new one).
pub(crate) fn matching(nodules: &[PlacedNodule]) -> Vec<NoduleMatch> {
    nodules.iter().map(|n| NoduleMatch { current: n.id, prior: n.growth.as_ref().map(|g| g.prior_id) }).collect()
}

pub(crate) fn resolved_ids(prior: &Truth, spec: &FollowUpSpec, rng: &mut ChaCha8Rng) -> Result<Vec<u32>, PhantomError> {
    if let Some(ids) = &spec.resolved {
        if let Some(id) = ids.iter().find(|id| prior.nodule(**id).is_none()) {
            return Err(PhantomError::InvalidOption { field: "resolved", reason: format!("prior has no nodule {id}") });
        }
        return Ok(ids.clone());
    }
    // Inflammatory nodules resolve; calcified granulomas do not.
    let candidates: Vec<u32> = prior.nodules.iter().filter(|n| n.kind != NoduleKind::Calcified).map(|n| n.id).collect();
    if candidates.len() >= 2 && rng.random_bool(0.5) {
        Ok(vec![candidates[rng.random_range(0..candidates.len())]])
    } else {
        Ok(Vec::new())
    }
}

pub(crate) fn grow(
    prior: &Truth,
    spec: &FollowUpSpec,
    resolved: &[u32],
    rng: &mut ChaCha8Rng,
) -> Result<Vec<PlacedNodule>, PhantomError> {
    if let Some(id) = spec.vdt_days.keys().find(|id| prior.nodule(**id).is_none()) {
        return Err(PhantomError::InvalidOption { field: "vdt_days", reason: format!("prior has no nodule {id}") });
    }
    let days = spec.interval_days as f64;
    let mut out = Vec::new();
    for n in prior.nodules.iter().filter(|n| !resolved.contains(&n.id)) {
        let drawn = draw_vdt(n.kind, days, rng);
        let vdt = spec.vdt_days.get(&n.id).copied().unwrap_or(drawn);
        let ratio = vdt.map_or(1.0, |v| 2f64.powf(days / v));
        let model = n.model.scaled(ratio.cbrt());
        let diameter = model.body_radius() * 2.0;
        if diameter.is_nan() || diameter > MAX_GROWN_DIAMETER_MM {
            return Err(PhantomError::InvalidOption {
                field: "vdt_days",
                reason: format!(
                    "nodule {} with VDT {vdt:?} d over {days} d grows beyond {MAX_GROWN_DIAMETER_MM} mm",
                    n.id
                ),
            });
        }
        let design = NoduleDesign {
            kind: n.kind,
            shape: n.shape,
            attachment: n.attachment,
            diameter_mm: 2.0 * model.body_radius(),
            model,
        };
        let growth = GrowthTruth {
            prior_id: n.id,
            interval_days: spec.interval_days,
            vdt_days: vdt,
            volume_ratio: ratio,
            prior_volume_mm3: n.volume_mm3,
        };
        out.push(PlacedNodule { id: 0, design, centre_body: n.centre_body_mm, growth: Some(growth) });
    }
    Ok(out)
}

/// Stable, malignant-fast or indolent, never more than doubling the diameter in the interval.
fn draw_vdt(kind: NoduleKind, days: f64, rng: &mut ChaCha8Rng) -> Option<f64> {
    let fastest = (days / 3.0).max(80.0);
    let roll = rng.random_range(0..100);
    match kind {
        NoduleKind::Calcified => None,
        _ if roll < 30 => None,
        _ if roll < 75 => Some(rng.random_range(fastest..fastest.max(400.0) + 1.0)),
        _ => Some(rng.random_range(fastest.max(400.0)..fastest.max(1500.0) + 1.0)),
    }
}
