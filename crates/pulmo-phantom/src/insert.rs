//! Insertion of synthetic nodules into a real CT series: a threshold lung mask, centres deep
//! inside it, and partial-volume blending that keeps the real image's noise texture.

use pulmo_volume::{mask, Volume};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use pulmo_clinical::dates;

use crate::anatomy::Side;
use crate::follow_up::{grow, matching, motion_and_breathing, renumber, resolved_ids};
use crate::generate::{nodule_truth, study_lung_rads};
use crate::identity::StudyIdentity;
use crate::math::{add, dist, rotation_deg, sub, Mat3, Vec3};
use crate::nodule::{self, Attachment, NoduleModel};
use crate::render::NoduleRaster;
use crate::resample::resample;
use crate::scene::{Acquisition, PlacedNodule};
use crate::seeds;
use crate::nodule::NoduleRequest;
use crate::spec::{validate_study_date_time, FollowUpSpec, PatientInfo, PhantomSpec, RigidMotion};
use crate::truth::{BackgroundInfo, FollowUpTruth, Generator, Pose, StudyKind, Truth};
use crate::{Phantom, PhantomError};

/// What the DICOM writer needs from the original series besides the voxels and geometry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackgroundHeader {
    pub patient: PatientInfo,
    /// "YYYYMMDD" / "HHMMSS" of the original study.
    pub study_date: String,
    pub study_time: String,
    pub source_study_instance_uid: Option<String>,
    pub source_series_instance_uid: Option<String>,
    /// None: the slice spacing.
    pub slice_thickness_mm: Option<f64>,
    pub kvp: Option<f64>,
}

impl Default for BackgroundHeader {
    fn default() -> Self {
        BackgroundHeader {
            patient: PatientInfo::default(),
            study_date: "20240115".into(),
            study_time: "093000".into(),
            source_study_instance_uid: None,
            source_series_instance_uid: None,
            slice_thickness_mm: None,
            kvp: None,
        }
    }
}

/// Lung: below this HU, inside the body.
const LUNG_THRESHOLD_HU: i16 = -500;
/// Inserted nodules keep this far (mm) inside lung tissue, away from vessels and pleura.
const LUNG_MARGIN_MM: f64 = 2.0;

/// Inserts `spec.nodule_count` nodules (constrained by `spec.nodules`) into `background`.
///
/// Only the seed and nodule fields of `spec` apply: the geometry is the volume's and the
/// noise is the real image's. Nodules are isolated (the mask excludes vessels and pleura);
/// a request for another attachment is an error. Each voxel gets
/// `v + (target - mu)`, where target is the nodule/background partial-volume mix and mu the
/// local mean lung attenuation, so the original noise survives inside the nodule.
pub fn insert_into(
    background: Volume<i16>,
    header: &BackgroundHeader,
    spec: &PhantomSpec,
) -> Result<Phantom, PhantomError> {
    spec.validate_nodules()?;
    isolated_only(&spec.nodules)?;
    let site = Site::new(&background, header)?;
    let source = header.source_series_instance_uid.clone().unwrap_or_default();
    let mut rng = seeds::rng(spec.seed, &format!("insertion/nodules/{source}"));
    let nodules = place_in_mask(&background, &site.mask, spec.nodule_count, &spec.nodules, &site.acq, &[], &mut rng)?;
    tracing::debug!(lung_voxels = site.lung_voxels, nodules = nodules.len(), "inserting nodules into background series");
    let study = Study {
        kind: StudyKind::Insertion,
        label: "insertion",
        seed: spec.seed,
        date: header.study_date.clone(),
        pose: Pose::identity(),
    };
    Ok(site.render(background, header, &nodules, &study, PhantomSpec { kvp: header.kvp.unwrap_or(spec.kvp), ..spec.clone() }, None))
}

/// A follow-up of the insertion `prior` into the same real series `background` (with the same
/// `header`): the prior's nodules come back grown by their volume doubling times, some
/// resolved, and `spec.new_nodules` new ones are inserted.
///
/// The anatomy moves as between two exams: the background is resampled (trilinear, air from
/// outside the scan) under the prior -> current transform
/// `A(p) = c + t + R S (p - c)`, with R the motion's rotation (as in phantom follow-ups), S the
/// S-I breathing scale, t the motion's shift, and c the centroid of the prior's lung mask
/// (LPS): rotating and breathing about the lungs' own centre keeps them in the field of view,
/// where a rotation about the volume's corner would swing them out. The motion and scale are
/// `spec`'s or drawn as for phantom follow-ups; with no motion and a scale of 1 the real voxels
/// are used as they are. The study's pose is A (its body frame is the prior's LPS), so each
/// nodule is drawn at A(its prior centre) and turned by R. A motion that carries a prior
/// nodule out of the lungs or the field of view is an error. The truth's follow-up part is as
/// for phantom follow-ups, with A as prior -> current transform.
pub fn insert_follow_up(
    prior: &Truth,
    background: Volume<i16>,
    header: &BackgroundHeader,
    spec: &FollowUpSpec,
) -> Result<Phantom, PhantomError> {
    spec.validate()?;
    isolated_only(&spec.new_nodule_requests)?;
    if prior.kind != StudyKind::Insertion || prior.geometry != *background.geometry() {
        return Err(PhantomError::Prior("an insertion follow-up needs an insertion into this same series as its prior".into()));
    }
    let (motion, breathing) = motion_and_breathing(spec);
    let (background, site, pose) = moved_background(background, header, &motion, breathing)?;
    let resolved = resolved_ids(prior, spec, &mut seeds::rng(spec.seed, "follow-up/resolved"))?;
    let mut nodules = grow(prior, spec, &resolved, &mut seeds::rng(spec.seed, "follow-up/growth"))?;
    check_still_in_lung(prior, &nodules, &pose, &background, &site, &motion)?;
    let mut rng = seeds::rng(spec.seed, "insertion-follow-up/new-nodules");
    let taken: Vec<_> = nodules.iter().map(|n| (pose.body_to_lps.apply(n.centre_body), n.design.model.bounding_radius())).collect();
    let mut newcomers = place_in_mask(&background, &site.mask, spec.new_nodules, &spec.new_nodule_requests, &site.acq, &taken, &mut rng)?;
    let to_body = pose.body_to_lps.inverse().ok_or(PhantomError::Internal("follow-up pose is singular"))?;
    for n in &mut newcomers {
        n.centre_body = to_body.apply(n.centre_body);
    }
    nodules.extend(newcomers);
    renumber(&mut nodules, spec.seed);
    let date = dates::add_days(&prior.identity.study_date, spec.interval_days as i64)
        .ok_or_else(|| PhantomError::Prior(format!("study date {:?} is not a date", prior.identity.study_date)))?;
    let follow_up = FollowUpTruth {
        prior_study_instance_uid: prior.identity.study_instance_uid.clone(),
        prior_series_instance_uid: prior.identity.series_instance_uid.clone(),
        prior_frame_of_reference_uid: prior.identity.frame_of_reference_uid.clone(),
        interval_days: spec.interval_days,
        prior_to_current: pose.body_to_lps,
        motion,
        breathing_scale_si: breathing,
        matching: matching(&nodules),
        resolved_prior_ids: resolved,
        spec: spec.clone(),
    };
    let study = Study { kind: StudyKind::FollowUp, label: "insertion-follow-up", seed: spec.seed, date, pose };
    let spec_out = PhantomSpec { seed: spec.seed, nodule_count: nodules.len(), nodules: Vec::new(), ..prior.spec.clone() };
    Ok(site.render(background, header, &nodules, &study, spec_out, Some(follow_up)))
}

/// The follow-up's background, its site, and its pose (prior LPS -> current LPS, see
/// [`insert_follow_up`]). No motion keeps the real voxels untouched rather than interpolated.
fn moved_background(
    background: Volume<i16>,
    header: &BackgroundHeader,
    motion: &RigidMotion,
    breathing: f64,
) -> Result<(Volume<i16>, Site, Pose), PhantomError> {
    let prior_site = Site::new(&background, header)?;
    let pose = moved_about(mask_centroid(&background, &prior_site.mask), motion, breathing);
    if motion.rotation_deg == [0.0; 3] && motion.translation_mm == [0.0; 3] && breathing == 1.0 {
        return Ok((background, prior_site, pose));
    }
    let started = std::time::Instant::now();
    let moved = resample(&background, &pose.body_to_lps)?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), ?motion, breathing, "resampled the background under the follow-up motion");
    let site = Site::new(&moved, header)?;
    Ok((moved, site, pose))
}

/// The pose whose body -> LPS map is `p -> c + t + R S (p - c)`: rotation and S-I scale about
/// `centre` (c), then the motion's shift (t).
fn moved_about(centre: Vec3, motion: &RigidMotion, breathing: f64) -> Pose {
    let rotation = rotation_deg(motion.rotation_deg);
    let about_origin = Pose::new(rotation, [0.0; 3], breathing).body_to_lps;
    let translation = sub(add(centre, motion.translation_mm), about_origin.apply(centre));
    Pose::new(rotation, translation, breathing)
}

/// A grown prior nodule must still lie in the moved lungs and field of view (a ball of its
/// prior size, which was placed with a margin): blended over chest wall or outside the scan
/// it would make an image no scanner shows.
fn check_still_in_lung(
    prior: &Truth,
    nodules: &[PlacedNodule],
    pose: &Pose,
    volume: &Volume<i16>,
    site: &Site,
    motion: &RigidMotion,
) -> Result<(), PhantomError> {
    for n in nodules {
        let Some(prior_id) = n.growth.as_ref().map(|g| g.prior_id) else { continue };
        let radius = prior.nodule(prior_id).map_or(0.0, |p| p.model.bounding_radius());
        let centre = pose.body_to_lps.apply(n.centre_body);
        if !(site.acq.contains_ball(centre, radius) && ball_in_mask(volume, &site.mask, centre, radius)) {
            return Err(PhantomError::InvalidOption {
                field: "motion",
                reason: format!(
                    "{motion:?} (breathing {:.3}) carries prior nodule {prior_id} to LPS {centre:.1?} mm, out of the \
                     lung mask or the field of view; choose another motion or seed",
                    pose.breathing_scale_si
                ),
            });
        }
    }
    Ok(())
}

fn isolated_only(requests: &[NoduleRequest]) -> Result<(), PhantomError> {
    match requests.iter().find(|r| r.attachment.is_some_and(|a| a != Attachment::Isolated)) {
        Some(r) => Err(PhantomError::InvalidOption {
            field: "nodules[].attachment",
            reason: format!("insertion places isolated nodules only, not {:?}", r.attachment),
        }),
        None => Ok(()),
    }
}

/// Which study of the patient is being made.
struct Study {
    kind: StudyKind,
    label: &'static str,
    seed: u64,
    date: String,
    /// Nodule centres (in the prior's LPS, the insertion's body frame) -> this study's LPS.
    pose: Pose,
}

/// The real series as insertion sees it: its acquisition and threshold lung mask.
struct Site {
    acq: Acquisition,
    mask: Vec<bool>,
    lung_voxels: usize,
}

impl Site {
    fn new(background: &Volume<i16>, header: &BackgroundHeader) -> Result<Site, PhantomError> {
        header.patient.validate()?;
        validate_study_date_time(&header.study_date, &header.study_time)?;
        let geometry = *background.geometry();
        let thickness = header.slice_thickness_mm.unwrap_or(geometry.spacing[0]);
        if !(thickness.is_finite() && (0.1..=20.0).contains(&thickness)) {
            return Err(PhantomError::InvalidOption {
                field: "slice_thickness_mm",
                reason: format!("{thickness} is outside 0.1..=20"),
            });
        }
        let acq = Acquisition { dims: background.dims(), geometry, thickness, noise_hu: 0.0, noise_seed: 0 };
        let mask = lung_mask(background);
        let lung_voxels = mask.iter().filter(|m| **m).count();
        if lung_voxels < 1000 {
            return Err(PhantomError::Background(format!(
                "found only {lung_voxels} lung voxels below {LUNG_THRESHOLD_HU} HU"
            )));
        }
        Ok(Site { acq, mask, lung_voxels })
    }

    /// Blends `nodules` into `background` and writes the truth of the study.
    fn render(
        &self,
        background: Volume<i16>,
        header: &BackgroundHeader,
        nodules: &[PlacedNodule],
        study: &Study,
        spec: PhantomSpec,
        follow_up: Option<FollowUpTruth>,
    ) -> Phantom {
        let mut volume = background;
        let pose = &study.pose;
        for n in nodules {
            blend(&mut volume, &self.mask, &n.design.model, pose.body_to_lps.apply(n.centre_body), &pose.rotation, &self.acq);
        }
        let centre_x = mask_centroid(&volume, &self.mask)[0];
        let truths: Vec<_> = nodules
            .iter()
            .map(|n| {
                let centre = pose.body_to_lps.apply(n.centre_body);
                let lung = if centre[0] < centre_x { Side::Right } else { Side::Left };
                nodule_truth(n, centre, &pose.rotation, &self.acq, Some(lung))
            })
            .collect();
        let source = header.source_series_instance_uid.clone().unwrap_or_default();
        let uid_seed = seeds::sub_seed(study.seed, &source);
        let identity = StudyIdentity::new(
            uid_seed,
            study.label,
            &header.patient,
            &study.date,
            &header.study_time,
            "CT CHEST with inserted nodules (pulmo phantom)",
            self.acq.dims[0],
        );
        let truth = Truth {
            generator: Generator::current(),
            kind: study.kind,
            seed: study.seed,
            spec,
            dims_zyx: self.acq.dims,
            geometry: self.acq.geometry,
            slice_thickness_mm: self.acq.thickness,
            identity: identity.clone(),
            patient_model: None,
            pose: study.pose,
            lung_rads: study_lung_rads(&truths),
            nodules: truths,
            follow_up,
            background: Some(BackgroundInfo {
                source_study_instance_uid: header.source_study_instance_uid.clone(),
                source_series_instance_uid: header.source_series_instance_uid.clone(),
                lung_voxels: self.lung_voxels,
            }),
        };
        Phantom { volume, truth, dicom: identity }
    }
}

/// Voxels below -500 HU that are not outside air. Outside air is found per slice as what
/// connects to the image border (the trachea does not, in an axial slice); then only 3D
/// components of at least a fifth of the largest are kept, which drops bowel gas.
pub fn lung_mask(volume: &Volume<i16>) -> Vec<bool> {
    let [nz, ny, nx] = volume.dims();
    let mut candidate: Vec<bool> = volume.data().iter().map(|v| *v < LUNG_THRESHOLD_HU).collect();
    for z in 0..nz {
        mask::clear_border_connected(&mut candidate[z * ny * nx..(z + 1) * ny * nx], ny, nx);
    }
    let components = mask::label_components(&candidate, [nz, ny, nx]);
    let largest = components.sizes.iter().copied().max().unwrap_or(0);
    components.select(|id| components.sizes[id as usize] * 5 >= largest)
}

/// Mean LPS position of the mask's voxels.
fn mask_centroid(volume: &Volume<i16>, mask: &[bool]) -> Vec3 {
    let [_, ny, nx] = volume.dims();
    let (mut sum, mut n) = ([0.0; 3], 0usize);
    for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
        let (z, y, x) = (i / (ny * nx), (i / nx) % ny, i % nx);
        sum = add(sum, volume.voxel_lps([z, y, x]));
        n += 1;
    }
    sum.map(|s| s / n.max(1) as f64)
}

/// Designs and places `count` isolated nodules deep in the lung mask, apart from each other and
/// from the `taken` balls (LPS centre, radius mm). The nodules' centres are in `volume`'s LPS.
fn place_in_mask(
    volume: &Volume<i16>,
    mask: &[bool],
    count: usize,
    requests: &[NoduleRequest],
    acq: &Acquisition,
    taken: &[(Vec3, f64)],
    rng: &mut ChaCha8Rng,
) -> Result<Vec<PlacedNodule>, PhantomError> {
    let lung: Vec<usize> = mask.iter().enumerate().filter(|(_, m)| **m).map(|(i, _)| i).collect();
    let [_, ny, nx] = volume.dims();
    let mut placed: Vec<PlacedNodule> = Vec::new();
    for index in 0..count {
        let mut request = requests.get(index).cloned().unwrap_or_default();
        request.attachment = Some(Attachment::Isolated);
        let mut found = None;
        'designs: for _ in 0..6 {
            let design = nodule::design(&request, rng);
            let radius = design.model.bounding_radius();
            for _ in 0..3000 {
                let i = lung[rng.random_range(0..lung.len())];
                let (z, y, x) = (i / (ny * nx), (i / nx) % ny, i % nx);
                let jitter = [0, 1, 2].map(|_| rng.random_range(-0.5..0.5));
                let c =
                    volume.geometry().index_to_lps([z as f64 + jitter[0], y as f64 + jitter[1], x as f64 + jitter[2]]);
                let apart = placed
                    .iter()
                    .map(|p| (p.centre_body, p.design.model.bounding_radius()))
                    .chain(taken.iter().copied())
                    .all(|(centre, r)| dist(centre, c) > radius + r + 6.0);
                if apart && acq.contains_ball(c, radius + 2.0) && ball_in_mask(volume, mask, c, radius + LUNG_MARGIN_MM)
                {
                    found = Some(PlacedNodule { id: index as u32 + 1, design, centre_body: c, growth: None });
                    break 'designs;
                }
            }
        }
        let nodule = found.ok_or_else(|| PhantomError::Placement {
            index,
            reason: "no lung region deep enough in the background".into(),
        })?;
        placed.push(nodule);
    }
    Ok(placed)
}

/// Calls `f` with the flat offset of every voxel whose centre lies within `radius` mm of
/// the LPS point `c`, until `f` returns false; returns whether it ran to the end.
fn each_ball_voxel(volume: &Volume<i16>, c: [f64; 3], radius: f64, mut f: impl FnMut(usize) -> bool) -> bool {
    let g = volume.geometry();
    let idx = g.lps_to_index(c);
    let reach = [0, 1, 2].map(|a| (radius / g.spacing[a]).ceil() as i64 + 1);
    let range = |a: usize| (idx[a] as i64 - reach[a]).max(0)..=idx[a] as i64 + reach[a];
    for z in range(0) {
        for y in range(1) {
            for x in range(2) {
                let v = [z as usize, y as usize, x as usize];
                let Some(o) = volume.offset(v) else { continue };
                if dist(volume.voxel_lps(v), c) <= radius && !f(o) {
                    return false;
                }
            }
        }
    }
    true
}

fn ball_in_mask(volume: &Volume<i16>, mask: &[bool], c: [f64; 3], radius: f64) -> bool {
    each_ball_voxel(volume, c, radius, |o| mask[o])
}

/// Adds `model`'s contrast, centred at the LPS point `centre` and turned by `rotation`, to the
/// real voxels.
fn blend(volume: &mut Volume<i16>, mask: &[bool], model: &NoduleModel, centre: Vec3, rotation: &Mat3, acq: &Acquisition) {
    let (mut sum, mut count) = (0.0, 0usize);
    each_ball_voxel(volume, centre, model.bounding_radius() + LUNG_MARGIN_MM, |o| {
        if mask[o] {
            sum += volume.data()[o] as f64;
            count += 1;
        }
        true
    });
    let mu = sum / count.max(1) as f64;
    let raster = NoduleRaster::new(model, centre, rotation, &acq.geometry, acq.dims, acq.thickness);
    for k in raster.slices() {
        let slice = volume.slice_mut(k);
        raster.for_slice(k, |i, main, core| {
            let mut target = mu + (model.hu - mu) * main;
            if let Some(core_hu) = model.core_hu {
                target += (core_hu - target) * core;
            }
            let v = slice[i] as f64 + target - mu;
            slice[i] = v.round().clamp(-1024.0, 3071.0) as i16;
        });
    }
}
