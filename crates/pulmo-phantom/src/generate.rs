//! Baseline studies: build the patient from the seed, place nodules, render, and assemble the
//! truth; plus the nodule-truth and nodule-placement steps that follow-ups share.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::anatomy::{Anatomy, Side};
use crate::identity::StudyIdentity;
use crate::lungrads_truth::{self, NoduleFacts};
use crate::math::{rotation_deg, Vec3};
use crate::measure;
use crate::nodule::{self, Attachment, NoduleModel, NoduleRequest};
use crate::placement::{Placer, VESSEL_CLEARANCE_MM};
use crate::render::render;
use crate::scene::{Acquisition, PlacedNodule, Scene};
use crate::seeds;
use crate::spec::PhantomSpec;
use crate::truth::{CoreTruth, Generator, NoduleTruth, PatientModel, Pose, StudyKind, Truth};
use crate::tubes::{build_tubes, prune, Tube};
use crate::{Phantom, PhantomError};

/// Width of the standard adult torso (mm) that `body_size` scales.
const STANDARD_BODY_WIDTH_MM: f64 = 330.0;

pub fn generate(spec: &PhantomSpec) -> Result<Phantom, PhantomError> {
    spec.validate()?;
    let model = patient_model(spec);
    let anatomy = Anatomy::new(model.anatomy_seed, model.body_size);
    let tubes = build_tubes(&anatomy, model.anatomy_seed);
    let pose = baseline_pose(spec.seed);
    let acq = Acquisition::planned(spec, &anatomy, &pose, seeds::sub_seed(spec.seed, "noise"))?;
    let mut rng = seeds::rng(spec.seed, "nodules");
    let mut placer = Placer::new(&anatomy, &tubes, &pose, &acq);
    let mut nodules = place_new(&mut placer, &spec.nodules, spec.nodule_count, &mut rng)?;
    for (i, n) in nodules.iter_mut().enumerate() {
        n.id = i as u32 + 1;
    }
    let tubes = carve(&tubes, &nodules);
    tracing::debug!(
        seed = spec.seed,
        dims = ?acq.dims,
        body_size = model.body_size,
        tubes = tubes.len(),
        nodules = nodules.len(),
        "rendering baseline phantom"
    );
    let scene = Scene { anatomy, tubes, nodules };
    let volume = render(&scene, &pose, &acq)?;
    let identity = StudyIdentity::new(
        spec.seed,
        "baseline",
        &spec.patient,
        &spec.study_date,
        &spec.study_time,
        "CT CHEST LOW DOSE (pulmo phantom)",
        spec.slices,
    );
    let nodules = nodule_truths(&scene, &pose, &acq);
    let truth = Truth {
        generator: Generator::current(),
        kind: StudyKind::Baseline,
        seed: spec.seed,
        spec: spec.clone(),
        dims_zyx: acq.dims,
        geometry: acq.geometry,
        slice_thickness_mm: acq.thickness,
        identity: identity.clone(),
        patient_model: Some(model),
        pose,
        lung_rads: study_lung_rads(&nodules),
        nodules,
        follow_up: None,
        background: None,
    };
    Ok(Phantom { volume, truth, dicom: identity })
}

/// The body is scaled to leave a margin in the field of view, as a technologist picks the
/// reconstruction diameter for the patient.
fn patient_model(spec: &PhantomSpec) -> PatientModel {
    let fov = spec.rows as f64 * spec.pixel_spacing_mm;
    let drawn = seeds::rng(spec.seed, "body-size").random_range(0.92..1.04);
    PatientModel {
        // 53 bits, so the seed survives JSON readers that parse numbers as doubles.
        anatomy_seed: seeds::sub_seed(spec.seed, "anatomy") >> 11,
        body_size: f64::min(drawn, 0.86 * fov / STANDARD_BODY_WIDTH_MM),
    }
}

/// Nobody lies perfectly straight: a small tilt and an off-centre table position.
fn baseline_pose(seed: u64) -> Pose {
    let mut rng = seeds::rng(seed, "pose");
    let rotation =
        rotation_deg([rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0), rng.random_range(-2.0..2.0)]);
    let translation = [rng.random_range(-8.0..8.0), rng.random_range(-10.0..10.0), rng.random_range(-260.0..-120.0)];
    Pose::new(rotation, translation, 1.0)
}

/// Designs and places `count` nodules, the first ones constrained by `requests`. A design
/// that does not fit is redrawn a few times (only its unconstrained parts change).
pub(crate) fn place_new(
    placer: &mut Placer,
    requests: &[NoduleRequest],
    count: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<PlacedNodule>, PhantomError> {
    let mut placed = Vec::with_capacity(count);
    for index in 0..count {
        let request = requests.get(index).cloned().unwrap_or_default();
        let mut found = None;
        for _ in 0..6 {
            let design = nodule::design(&request, rng);
            if let Some(centre) = placer.place(&design, rng) {
                found = Some(PlacedNodule { id: 0, design, centre_body: centre, growth: None });
                break;
            }
        }
        let nodule = found.ok_or_else(|| PhantomError::Placement {
            index,
            reason: format!("no room in the lungs for {request:?}"),
        })?;
        placed.push(nodule);
    }
    Ok(placed)
}

/// The tubes to render: small vessels that would run through a nodule, or come closer to an
/// isolated one than its clearance, are pruned. A nodule occupies lung that small vessels
/// would otherwise supply; left in, their ends poke out of a juxtapleural or juxtavascular
/// nodule's far side like spicules. The vessel a juxtavascular nodule sits on is too thick
/// to prune, so it stays.
pub(crate) fn carve(tubes: &[Tube], nodules: &[PlacedNodule]) -> Vec<Tube> {
    let zones: Vec<_> = nodules.iter().map(|n| pruned_zone(n.centre_body, &n.design.model, n.design.attachment)).collect();
    prune(tubes, &zones)
}

/// The ball around a nodule that small vessels may not enter: its bounding sphere, plus the
/// clearance an isolated nodule keeps.
fn pruned_zone(centre: Vec3, model: &NoduleModel, attachment: Attachment) -> (Vec3, f64) {
    let clearance = if attachment == Attachment::Isolated { VESSEL_CLEARANCE_MM } else { 0.0 };
    (centre, model.bounding_radius() + clearance)
}

/// Truth of every nodule as this study sees it (pose and acquisition decide the LPS centre,
/// the axial plane and the field-of-view flag).
pub(crate) fn nodule_truths(scene: &Scene, pose: &Pose, acq: &Acquisition) -> Vec<NoduleTruth> {
    scene
        .nodules
        .par_iter()
        .map(|n| {
            let centre = pose.body_to_lps.apply(n.centre_body);
            let lung = scene.anatomy.lung_at(n.centre_body);
            nodule_truth(n, centre, &pose.rotation, acq, lung)
        })
        .collect()
}

pub(crate) fn nodule_truth(
    n: &PlacedNodule,
    centre_lps: crate::math::Vec3,
    rotation: &crate::math::Mat3,
    acq: &Acquisition,
    lung: Option<Side>,
) -> NoduleTruth {
    let m = &n.design.model;
    let volume = measure::volume_mm3(&|p| m.sd(p), m.bounding_radius() * 1.01 + 0.05);
    let axes = measure::axial_axes(&|p| m.sd_body(p), rotation, m.body_radius() * 1.02 + 0.05);
    let mean = measure::mean_diameter(axes.long_axis_mm, axes.short_axis_mm);
    let solid_core = m.core_hu.filter(|_| m.has_core()).map(|hu| {
        let r = m.core_radius() * 1.02 + 0.05;
        let core = measure::axial_axes(&|p| m.sd_core(p), rotation, r);
        CoreTruth {
            hu,
            volume_mm3: measure::volume_mm3(&|p| m.sd_core(p), r),
            long_axis_mm: core.long_axis_mm,
            short_axis_mm: core.short_axis_mm,
            mean_diameter_mm: measure::mean_diameter(core.long_axis_mm, core.short_axis_mm),
        }
    });
    let facts = NoduleFacts {
        kind: n.design.kind,
        shape: n.design.shape,
        attachment: n.design.attachment,
        mean_diameter_mm: mean,
        solid_mean_diameter_mm: solid_core.as_ref().map(|c| c.mean_diameter_mm),
    };
    NoduleTruth {
        id: n.id,
        centre_lps_mm: centre_lps,
        centre_voxel_zyx: acq.geometry.lps_to_index(centre_lps),
        in_field_of_view: acq.contains(centre_lps),
        lung,
        kind: n.design.kind,
        shape: n.design.shape,
        attachment: n.design.attachment,
        hu: m.hu,
        volume_mm3: volume,
        long_axis_mm: axes.long_axis_mm,
        short_axis_mm: axes.short_axis_mm,
        mean_diameter_mm: mean,
        axial_plane_z_mm: centre_lps[2] + axes.plane_offset_mm,
        solid_core,
        lung_rads: lungrads_truth::baseline_category(&facts),
        lung_rads_size_category: lungrads_truth::size_category(&facts),
        growth: n.growth.clone(),
        centre_body_mm: n.centre_body,
        model: m.clone(),
    }
}

pub(crate) fn study_lung_rads(nodules: &[NoduleTruth]) -> lungrads_truth::LungRads {
    lungrads_truth::study_category(nodules.iter().filter(|n| n.in_field_of_view).map(|n| n.lung_rads))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::{add, scale};
    use crate::placement::sphere_directions;

    #[test]
    fn nodules_lie_inside_the_lungs_with_their_attachment() {
        let spec = PhantomSpec {
            seed: 12,
            rows: 96,
            slices: 60,
            pixel_spacing_mm: 3.6,
            slice_spacing_mm: 5.0,
            slice_thickness_mm: 5.0,
            nodule_count: 12,
            ..Default::default()
        };
        let p = generate(&spec).unwrap();
        let model = p.truth.patient_model.unwrap();
        let anatomy = Anatomy::new(model.anatomy_seed, model.body_size);
        let all_tubes = build_tubes(&anatomy, model.anatomy_seed);
        let zones: Vec<_> = p.truth.nodules.iter().map(|n| pruned_zone(n.centre_body_mm, &n.model, n.attachment)).collect();
        let tubes = prune(&all_tubes, &zones);
        for n in &p.truth.nodules {
            let side =
                anatomy.lung_at(n.centre_body_mm).unwrap_or_else(|| panic!("nodule {} centre outside the lungs", n.id));
            assert_eq!(Some(side), n.lung);
            assert!(n.in_field_of_view);
            let surface = |u| add(n.centre_body_mm, scale(u, n.model.extent_along(u)));
            let outside =
                sphere_directions(200).into_iter().filter(|u| anatomy.lung_sd(surface(*u), side) > 0.0).count();
            let vessel_gap =
                tubes.iter().map(|t| t.sd(n.centre_body_mm).0).fold(f64::MAX, f64::min) - n.model.bounding_radius();
            let small_through = tubes.iter().filter(|t| t.is_prunable() && t.sd(n.centre_body_mm).0 < n.model.bounding_radius()).count();
            assert_eq!(small_through, 0, "{small_through} small vessels run through nodule {}", n.id);
            match n.attachment {
                Attachment::Isolated => {
                    assert_eq!(outside, 0, "isolated nodule {} crosses the pleura", n.id);
                    assert!(vessel_gap > 0.9, "isolated nodule {} touches a vessel ({vessel_gap:.2} mm)", n.id);
                }
                Attachment::Juxtapleural => {
                    assert!(
                        outside > 0 && outside < 60,
                        "juxtapleural nodule {}: {outside}/200 surface points outside",
                        n.id
                    );
                    let wall = anatomy.chest_wall_sd(n.centre_body_mm) + n.model.extent_along([1.0, 0.0, 0.0]).min(1e9);
                    assert!(wall > -60.0);
                }
                Attachment::Juxtavascular => {
                    assert_eq!(outside, 0, "juxtavascular nodule {} crosses the pleura", n.id);
                    let touching = tubes.iter().any(|t| {
                        t.material == crate::tubes::Material::Blood && {
                            let (sd, _) = t.sd(n.centre_body_mm);
                            sd < n.model.bounding_radius()
                        }
                    });
                    assert!(touching, "juxtavascular nodule {} touches no vessel", n.id);
                }
            }
        }
    }
}
