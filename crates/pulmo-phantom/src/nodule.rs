//! Nodule models: kind, shape and attachment vocabulary, and the exact implicit geometry
//! (union of balls, optional spikes, optional solid core) that rendering and truth both use.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::math::{dot, normalize, scale, Vec3};

/// Attenuation class, as Lung-RADS distinguishes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoduleKind {
    /// Soft-tissue attenuation throughout (20..60 HU).
    Solid,
    /// Ground-glass halo (-650..-500 HU) around a solid core (0..50 HU).
    PartSolid,
    /// Pure ground glass (-650..-500 HU).
    GroundGlass,
    /// Dense diffuse calcification (250..900 HU); benign by Lung-RADS.
    Calcified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoduleShape {
    Spherical,
    /// A main ball with 3..5 overlapping smaller balls bulging out of it.
    Lobulated,
    /// A spherical body with 6..14 thin tapering spikes (spicules).
    Spiculated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attachment {
    Isolated,
    /// Touching the costal pleura (chest wall).
    Juxtapleural,
    /// Touching a pulmonary vessel.
    Juxtavascular,
}

/// Optional constraints for one nodule of a study; what is left `None` is drawn from the seed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NoduleRequest {
    pub kind: Option<NoduleKind>,
    pub shape: Option<NoduleShape>,
    pub attachment: Option<Attachment>,
    /// Nominal diameter of the nodule body (spikes excluded), 3..=30 mm.
    pub diameter_mm: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ball {
    /// Centre relative to the nodule centre, mm, in the nodule's (body-aligned) frame.
    pub centre: Vec3,
    pub radius: f64,
}

/// A spicule: a cone along `direction` from `start_mm` to `start_mm + length_mm` from the
/// nodule centre, `base_radius_mm` thick at its start and pointed at its tip.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spike {
    pub direction: Vec3,
    pub start_mm: f64,
    pub length_mm: f64,
    pub base_radius_mm: f64,
}

/// The exact geometry and attenuation of one nodule, in mm around its centre. Axes are the
/// patient-body axes, so a study rotates a nodule together with the patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoduleModel {
    /// The nodule body: union of balls (one ball for a spherical nodule).
    pub lobes: Vec<Ball>,
    pub spikes: Vec<Spike>,
    /// Solid component of a part-solid nodule (union of balls, inside the lobes); else empty.
    pub core: Vec<Ball>,
    /// Attenuation of the body (the ground-glass halo of a part-solid nodule), HU.
    pub hu: f64,
    /// Attenuation of the solid core, HU.
    pub core_hu: Option<f64>,
}

fn balls_sd(balls: &[Ball], p: Vec3) -> f64 {
    balls.iter().map(|b| crate::math::dist(p, b.centre) - b.radius).fold(f64::INFINITY, f64::min)
}

/// Distance bound to a cone tapering linearly to a point; min() of such bounds stays a
/// bound of the union, which is all the renderer's in/out culling needs.
fn spike_sd(s: &Spike, p: Vec3) -> f64 {
    let t = (dot(p, s.direction) - s.start_mm).clamp(0.0, s.length_mm);
    let axis = scale(s.direction, s.start_mm + t);
    let r = s.base_radius_mm * (1.0 - t / s.length_mm);
    crate::math::dist(p, axis) - r
}

impl NoduleModel {
    /// Signed distance (bound) to the whole nodule, spikes included: what is rendered.
    pub fn sd(&self, p: Vec3) -> f64 {
        let body = balls_sd(&self.lobes, p);
        self.spikes.iter().map(|s| spike_sd(s, p)).fold(body, f64::min)
    }

    /// The nodule body without spikes: what diameters are measured on, as Fleischner
    /// measurement guidance leaves spicules out of the calliper.
    pub fn sd_body(&self, p: Vec3) -> f64 {
        balls_sd(&self.lobes, p)
    }

    pub fn sd_core(&self, p: Vec3) -> f64 {
        balls_sd(&self.core, p)
    }

    pub fn has_core(&self) -> bool {
        !self.core.is_empty()
    }

    /// Radius of a ball around the centre that contains everything rendered.
    pub fn bounding_radius(&self) -> f64 {
        let lobes = self.lobes.iter().map(|b| crate::math::norm(b.centre) + b.radius);
        let spikes = self.spikes.iter().map(|s| s.start_mm + s.length_mm + s.base_radius_mm);
        lobes.chain(spikes).fold(0.0, f64::max)
    }

    /// Radius of a ball around the centre that contains the body (spikes excluded).
    pub fn body_radius(&self) -> f64 {
        self.lobes.iter().map(|b| crate::math::norm(b.centre) + b.radius).fold(0.0, f64::max)
    }

    pub fn core_radius(&self) -> f64 {
        self.core.iter().map(|b| crate::math::norm(b.centre) + b.radius).fold(0.0, f64::max)
    }

    /// The same nodule scaled by `k` about its centre: volume times k³, the growth model.
    pub fn scaled(&self, k: f64) -> NoduleModel {
        let ball = |b: &Ball| Ball { centre: scale(b.centre, k), radius: b.radius * k };
        NoduleModel {
            lobes: self.lobes.iter().map(ball).collect(),
            spikes: self
                .spikes
                .iter()
                .map(|s| Spike {
                    direction: s.direction,
                    start_mm: s.start_mm * k,
                    length_mm: s.length_mm * k,
                    base_radius_mm: s.base_radius_mm * k,
                })
                .collect(),
            core: self.core.iter().map(ball).collect(),
            hu: self.hu,
            core_hu: self.core_hu,
        }
    }

    /// Distance from the centre to the body surface along `dir` (for placing a nodule so it
    /// just touches a wall or a vessel).
    pub fn extent_along(&self, dir: Vec3) -> f64 {
        let dir = normalize(dir);
        let (mut lo, mut hi) = (0.0, self.bounding_radius() + 1.0);
        for _ in 0..50 {
            let mid = 0.5 * (lo + hi);
            if self.sd_body(scale(dir, mid)) < 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

pub fn random_unit(rng: &mut ChaCha8Rng) -> Vec3 {
    loop {
        let v = [rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)];
        let n2 = dot(v, v);
        if n2 > 1e-4 && n2 <= 1.0 {
            return normalize(v);
        }
    }
}

/// A fully specified nodule before placement.
#[derive(Debug, Clone, PartialEq)]
pub struct NoduleDesign {
    pub kind: NoduleKind,
    pub shape: NoduleShape,
    pub attachment: Attachment,
    pub diameter_mm: f64,
    pub model: NoduleModel,
}

/// Draws what `req` leaves open, then builds the model. Calcified and ground-glass nodules
/// are never spiculated (that combination would contradict its own Lung-RADS truth).
pub fn design(req: &NoduleRequest, rng: &mut ChaCha8Rng) -> NoduleDesign {
    let kind = req.kind.unwrap_or_else(|| match rng.random_range(0..100) {
        0..50 => NoduleKind::Solid,
        50..65 => NoduleKind::PartSolid,
        65..85 => NoduleKind::GroundGlass,
        _ => NoduleKind::Calcified,
    });
    let shape = req.shape.unwrap_or_else(|| {
        let spiculable = matches!(kind, NoduleKind::Solid | NoduleKind::PartSolid);
        match rng.random_range(0..100) {
            0..45 => NoduleShape::Spherical,
            45..75 => NoduleShape::Lobulated,
            _ if spiculable => NoduleShape::Spiculated,
            _ => NoduleShape::Lobulated,
        }
    });
    let attachment = req.attachment.unwrap_or_else(|| match rng.random_range(0..100) {
        0..50 => Attachment::Isolated,
        50..75 => Attachment::Juxtapleural,
        _ => Attachment::Juxtavascular,
    });
    let diameter_mm = req.diameter_mm.unwrap_or_else(|| draw_diameter(kind, rng));
    let model = build_model(kind, shape, diameter_mm, rng);
    NoduleDesign { kind, shape, attachment, diameter_mm, model }
}

fn draw_diameter(kind: NoduleKind, rng: &mut ChaCha8Rng) -> f64 {
    // Log-uniform, so small nodules (the common case in screening) dominate.
    let (lo, hi): (f64, f64) = match kind {
        NoduleKind::Solid => (4.0, 24.0),
        NoduleKind::PartSolid => (7.0, 28.0),
        NoduleKind::GroundGlass => (5.0, 30.0),
        NoduleKind::Calcified => (3.0, 10.0),
    };
    (rng.random_range(lo.ln()..hi.ln())).exp()
}

fn build_model(kind: NoduleKind, shape: NoduleShape, diameter: f64, rng: &mut ChaCha8Rng) -> NoduleModel {
    let r = diameter / 2.0;
    let lobes = match shape {
        NoduleShape::Lobulated => lobulated_balls(r, rng),
        _ => vec![Ball { centre: [0.0; 3], radius: r }],
    };
    let spikes = if shape == NoduleShape::Spiculated { spikes(r, rng) } else { Vec::new() };
    let (hu, core, core_hu) = match kind {
        NoduleKind::Solid => (rng.random_range(20.0..60.0), Vec::new(), None),
        NoduleKind::GroundGlass => (rng.random_range(-650.0..-500.0), Vec::new(), None),
        NoduleKind::Calcified => (rng.random_range(250.0..900.0), Vec::new(), None),
        NoduleKind::PartSolid => {
            let core_r = r * rng.random_range(0.3..0.6);
            let offset = scale(random_unit(rng), 0.15 * (0.75 * r - core_r).max(0.0));
            let core = vec![Ball { centre: offset, radius: core_r }];
            (rng.random_range(-650.0..-500.0), core, Some(rng.random_range(0.0..50.0)))
        }
    };
    NoduleModel { lobes, spikes, core, hu, core_hu }
}

/// Main ball of 0.75 r plus lobes whose outer edges reach about r, so the nominal diameter
/// still describes the nodule's extent.
fn lobulated_balls(r: f64, rng: &mut ChaCha8Rng) -> Vec<Ball> {
    let mut balls = vec![Ball { centre: [0.0; 3], radius: 0.75 * r }];
    for _ in 0..rng.random_range(3..=5) {
        let lobe_r = r * rng.random_range(0.45..0.62);
        let reach = (r - lobe_r) * rng.random_range(0.85..1.0);
        balls.push(Ball { centre: scale(random_unit(rng), reach), radius: lobe_r });
    }
    balls
}

/// Spicules start inside the body and reach 2..7 mm (plus a share of the radius) beyond it,
/// about 1..2 mm thick where they leave the surface, tapering to a point.
fn spikes(r: f64, rng: &mut ChaCha8Rng) -> Vec<Spike> {
    (0..rng.random_range(6..=14))
        .map(|_| Spike {
            direction: random_unit(rng),
            start_mm: 0.7 * r,
            length_mm: r * rng.random_range(0.3..0.5) + rng.random_range(2.0..7.0),
            base_radius_mm: rng.random_range(0.6..1.3) * (r / 4.0).min(1.0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeds;

    #[test]
    fn sphere_distance_is_exact_and_scaling_scales_extent() {
        let mut rng = seeds::rng(1, "t");
        let d = design(
            &NoduleRequest {
                kind: Some(NoduleKind::Solid),
                shape: Some(NoduleShape::Spherical),
                attachment: None,
                diameter_mm: Some(8.0),
            },
            &mut rng,
        );
        assert!((d.model.sd([4.0, 0.0, 0.0])).abs() < 1e-12);
        assert!((d.model.extent_along([0.0, 1.0, 1.0]) - 4.0).abs() < 1e-9);
        assert!((d.model.scaled(2.0).extent_along([1.0, 0.0, 0.0]) - 8.0).abs() < 1e-9);
    }

    #[test]
    fn spiculated_models_have_spikes_outside_the_body_and_ggn_never_spiculated() {
        let mut rng = seeds::rng(2, "t");
        for _ in 0..50 {
            let d = design(&NoduleRequest { kind: Some(NoduleKind::GroundGlass), ..Default::default() }, &mut rng);
            assert_ne!(d.shape, NoduleShape::Spiculated);
        }
        let req = NoduleRequest { shape: Some(NoduleShape::Spiculated), diameter_mm: Some(12.0), ..Default::default() };
        let d = design(&req, &mut rng);
        assert!(d.model.bounding_radius() > 6.5);
        let tip = scale(d.model.spikes[0].direction, d.model.spikes[0].start_mm + 0.5 * d.model.spikes[0].length_mm);
        assert!(d.model.sd(tip) < 0.0 || d.model.sd_body(tip) > 0.0);
    }
}
