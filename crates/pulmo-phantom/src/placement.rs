//! Putting nodules into the phantom's lungs with the attachment their design asks for:
//! isolated (clear of vessels and pleura), juxtapleural (touching the chest wall) or
//! juxtavascular (touching a vessel), inside the field of view and apart from each other.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::anatomy::{Anatomy, Side};
use crate::math::{add, cross, dist, dot, lerp, normalize, scale, sub, Vec3};
use crate::nodule::{random_unit, Attachment, NoduleDesign};
use crate::scene::Acquisition;
use crate::truth::Pose;
use crate::tubes::{Material, Tube, PRUNABLE_RADIUS_MM};

/// Gap (mm) kept between nodule bounding spheres, so growth in a follow-up rarely merges them.
const NODULE_GAP_MM: f64 = 6.0;
/// An isolated nodule keeps this far (mm) from every vessel and airway; small vessels
/// closer than that are pruned away (see `tubes::prune`).
pub(crate) const VESSEL_CLEARANCE_MM: f64 = 1.0;

pub(crate) struct Placer<'a> {
    anatomy: &'a Anatomy,
    tubes: &'a [Tube],
    boxes: Vec<(Vec3, Vec3)>,
    pose: &'a Pose,
    acq: &'a Acquisition,
    /// Centres (body mm) and bounding radii of nodules already placed.
    placed: Vec<(Vec3, f64)>,
}

impl<'a> Placer<'a> {
    pub fn new(anatomy: &'a Anatomy, tubes: &'a [Tube], pose: &'a Pose, acq: &'a Acquisition) -> Self {
        let boxes = tubes
            .iter()
            .map(|t| {
                let r = t.max_radius();
                let lo = [0, 1, 2].map(|a| t.a[a].min(t.b[a]) - r);
                let hi = [0, 1, 2].map(|a| t.a[a].max(t.b[a]) + r);
                (lo, hi)
            })
            .collect();
        Placer { anatomy, tubes, boxes, pose, acq, placed: Vec::new() }
    }

    pub fn reserve(&mut self, centre: Vec3, radius: f64) {
        self.placed.push((centre, radius));
    }

    /// A centre (body mm) for the design, or None when the lungs have no room for it.
    pub fn place(&mut self, design: &NoduleDesign, rng: &mut ChaCha8Rng) -> Option<Vec3> {
        let centre = match design.attachment {
            Attachment::Isolated => self.isolated(design, rng),
            Attachment::Juxtapleural => self.juxtapleural(design, rng),
            Attachment::Juxtavascular => self.juxtavascular(design, rng),
        }?;
        self.reserve(centre, design.model.bounding_radius());
        Some(centre)
    }

    fn fits(&self, c: Vec3, radius: f64) -> bool {
        let lps = self.pose.body_to_lps.apply(c);
        self.acq.contains_ball(lps, radius + 2.0)
            && self.placed.iter().all(|(o, r)| dist(c, *o) > radius + r + NODULE_GAP_MM)
    }

    fn random_side(rng: &mut ChaCha8Rng) -> Side {
        if rng.random_bool(0.5) {
            Side::Left
        } else {
            Side::Right
        }
    }

    fn lung_point(&self, side: Side, depth: f64, rng: &mut ChaCha8Rng) -> Option<Vec3> {
        let (lo, hi) = self.anatomy.lung_bounds(side);
        (0..400)
            .map(|_| [0, 1, 2].map(|a| rng.random_range(lo[a]..hi[a])))
            .find(|p| self.anatomy.lung_sd(*p, side) < -depth)
    }

    /// Distance from `p` to the nearest tube surface that cannot be pruned, looked at only
    /// within `within` mm.
    fn tube_clearance(&self, p: Vec3, within: f64) -> f64 {
        let mut best = within;
        for (t, (lo, hi)) in self.tubes.iter().zip(&self.boxes).filter(|(t, _)| !t.is_prunable()) {
            let outside = (0..3).map(|a| (lo[a] - p[a]).max(p[a] - hi[a]).max(0.0).powi(2)).sum::<f64>().sqrt();
            if outside < best {
                best = best.min(t.sd(p).0);
            }
        }
        best
    }

    fn isolated(&self, design: &NoduleDesign, rng: &mut ChaCha8Rng) -> Option<Vec3> {
        let r = design.model.bounding_radius();
        let needed = r + VESSEL_CLEARANCE_MM;
        for _ in 0..3000 {
            let side = Self::random_side(rng);
            let c = self.lung_point(side, r + 3.0, rng)?;
            if self.fits(c, r) && self.ball_in_lung(c, r + 3.0, side) && self.tube_clearance(c, needed + 0.1) > needed {
                return Some(c);
            }
        }
        None
    }

    fn juxtapleural(&self, design: &NoduleDesign, rng: &mut ChaCha8Rng) -> Option<Vec3> {
        for _ in 0..1500 {
            let side = Self::random_side(rng);
            let start = self.lung_point(side, 5.0, rng)?;
            let theta: f64 = rng.random_range(-1.4..1.4);
            let dir = [side.sign() * theta.cos(), theta.sin(), 0.0];
            let Some(wall) = self.exit_point(start, dir, side) else { continue };
            if self.anatomy.chest_wall_sd(wall).abs() > 1.0 {
                continue; // left the lung through the mediastinum or a dome, not the chest wall
            }
            let normal = self.lung_normal(wall, side);
            let c = sub(wall, scale(normal, design.model.extent_along(normal) - 0.5));
            if self.fits(c, design.model.bounding_radius()) && self.only_wall_side_outside(design, c, normal, side) {
                return Some(c);
            }
        }
        None
    }

    /// Where a ray from inside the lung first leaves it.
    fn exit_point(&self, start: Vec3, dir: Vec3, side: Side) -> Option<Vec3> {
        let inside = |t: f64| self.anatomy.lung_sd(add(start, scale(dir, t)), side) < 0.0;
        let mut t = 0.0;
        while inside(t + 1.0) {
            t += 1.0;
            if t > 300.0 {
                return None;
            }
        }
        let (mut lo, mut hi) = (t, t + 1.0);
        for _ in 0..30 {
            let mid = 0.5 * (lo + hi);
            if inside(mid) {
                lo = mid
            } else {
                hi = mid
            }
        }
        Some(add(start, scale(dir, lo)))
    }

    fn lung_normal(&self, p: Vec3, side: Side) -> Vec3 {
        let e = 0.5;
        let g = [0, 1, 2].map(|a| {
            let mut hi = p;
            let mut lo = p;
            hi[a] += e;
            lo[a] -= e;
            self.anatomy.lung_sd(hi, side) - self.anatomy.lung_sd(lo, side)
        });
        normalize(g)
    }

    /// Whether the ball of `radius` mm around `c` lies inside the lung. The lung's signed
    /// distance is exact in sign only (its medial part is measured along x, which overstates
    /// the depth where the heart's surface slopes: a nodule 11 mm "deep" there sat half in the
    /// heart), so points on the ball are tested, not the centre's depth.
    fn ball_in_lung(&self, c: Vec3, radius: f64, side: Side) -> bool {
        sphere_directions(128).iter().all(|u| self.anatomy.lung_sd(add(c, scale(*u, radius)), side) < 0.0)
    }

    /// The nodule may cross the pleura only where it touches the wall.
    fn only_wall_side_outside(&self, design: &NoduleDesign, c: Vec3, normal: Vec3, side: Side) -> bool {
        if self.anatomy.lung_sd(c, side) >= 0.0 {
            return false;
        }
        let dirs = sphere_directions(64);
        dirs.iter().filter(|u| dot(**u, normal) < 0.5).all(|u| {
            let q = add(c, scale(*u, design.model.extent_along(*u)));
            self.anatomy.lung_sd(q, side) < 0.0
        })
    }

    fn juxtavascular(&self, design: &NoduleDesign, rng: &mut ChaCha8Rng) -> Option<Vec3> {
        let r = design.model.bounding_radius();
        let vessels: Vec<&Tube> = self
            .tubes
            .iter()
            .filter(|t| {
                t.material == Material::Blood
                    && t.ra.min(t.rb) >= PRUNABLE_RADIUS_MM
                    && t.max_radius() <= 4.0
                    && dist(t.a, t.b) > 4.0
            })
            .filter(|t| self.anatomy.lung_at(t.a).is_some() && self.anatomy.lung_at(t.b).is_some())
            .collect();
        if vessels.is_empty() {
            return None;
        }
        for _ in 0..2000 {
            let t = vessels[rng.random_range(0..vessels.len())];
            let s: f64 = rng.random_range(0.2..0.8);
            let on_axis = lerp(t.a, t.b, s);
            let radius = t.ra + (t.rb - t.ra) * s;
            let axis = normalize(sub(t.b, t.a));
            let u = normalize(cross(axis, random_unit(rng)));
            let c = add(on_axis, scale(u, radius + design.model.extent_along(scale(u, -1.0)) - 0.4));
            let Some(side) = self.anatomy.lung_at(c) else { continue };
            if self.anatomy.lung_sd(c, side) < -(r + 1.5) && self.fits(c, r) && self.ball_in_lung(c, r + 1.5, side) {
                return Some(c);
            }
        }
        None
    }
}

/// Roughly uniform directions (Fibonacci sphere).
pub(crate) fn sphere_directions(n: usize) -> Vec<Vec3> {
    let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
    (0..n)
        .map(|i| {
            let z = 1.0 - 2.0 * (i as f64 + 0.5) / n as f64;
            let r = (1.0 - z * z).sqrt();
            let phi = golden * i as f64;
            [r * phi.cos(), r * phi.sin(), z]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodule::{design, NoduleRequest};
    use crate::scene::Acquisition;
    use crate::spec::PhantomSpec;
    use crate::tubes::build_tubes;

    #[test]
    fn isolated_and_juxtavascular_nodules_stay_inside_the_lung_all_round() {
        let (seed, spec) = (7, PhantomSpec { rows: 512, pixel_spacing_mm: 0.9, slices: 400, slice_spacing_mm: 1.0, ..Default::default() });
        let anatomy = Anatomy::new(seed, 1.0);
        let tubes = build_tubes(&anatomy, seed);
        let pose = Pose::identity();
        let acq = Acquisition::planned(&spec, &anatomy, &pose, 0).unwrap();
        let placer = Placer::new(&anatomy, &tubes, &pose, &acq);
        let mut rng = crate::seeds::rng(seed, "placement-test");
        for (attachment, margin) in [(Attachment::Isolated, 3.0), (Attachment::Juxtavascular, 1.5)] {
            let request = NoduleRequest { attachment: Some(attachment), diameter_mm: Some(14.0), ..Default::default() };
            for _ in 0..60 {
                let d = design(&request, &mut rng);
                let placed = match attachment {
                    Attachment::Isolated => placer.isolated(&d, &mut rng),
                    _ => placer.juxtavascular(&d, &mut rng),
                };
                let Some(c) = placed else { continue };
                let side = anatomy.lung_at(c).expect("centre in a lung");
                let r = d.model.bounding_radius() + margin;
                let out = sphere_directions(400).iter().filter(|u| anatomy.lung_sd(add(c, scale(**u, r)), side) >= 0.0).count();
                assert_eq!(out, 0, "{attachment:?} nodule at {c:?}: {out} of 400 points {r:.1} mm out leave the lung");
            }
        }
    }
}
