//! Tapered tube segments (vessels, airways, great vessels) and the trees built from them.
//! Trees grow by recursively splitting a cloud of lung "territory" points, so they fill each lung.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::anatomy::{Anatomy, Side};
use crate::math::{add, dist, dot, lerp, norm, scale, sub, Vec3};
use crate::seeds;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Material {
    /// Unenhanced blood in a vessel.
    Blood,
    /// An airway: soft-tissue wall around an air lumen.
    Airway,
}

pub const BLOOD_HU: f64 = 40.0;
pub const AIRWAY_WALL_HU: f64 = 10.0;

/// A round cone from `a` (radius `ra`) to `b` (radius `rb`), in body mm.
#[derive(Debug, Clone, Copy)]
pub struct Tube {
    pub a: Vec3,
    pub b: Vec3,
    pub ra: f64,
    pub rb: f64,
    pub material: Material,
    /// The tube this one branches from (index into the same list), for pruning subtrees.
    pub parent: Option<u32>,
}

/// Vessels thinner than this (mm) may be pruned, with their subtrees, where an isolated
/// nodule sits: a nodule occupies lung that small vessels would otherwise supply.
pub const PRUNABLE_RADIUS_MM: f64 = 1.2;

impl Tube {
    /// Signed distance estimate to the tube's outer surface, and the radius there.
    pub fn sd(&self, p: Vec3) -> (f64, f64) {
        let ab = sub(self.b, self.a);
        let t = (dot(sub(p, self.a), ab) / dot(ab, ab).max(1e-12)).clamp(0.0, 1.0);
        let r = self.ra + (self.rb - self.ra) * t;
        (dist(p, lerp(self.a, self.b, t)) - r, r)
    }

    pub fn is_prunable(&self) -> bool {
        self.material == Material::Blood && self.max_radius() < PRUNABLE_RADIUS_MM
    }

    pub fn max_radius(&self) -> f64 {
        self.ra.max(self.rb)
    }

    /// Airway wall thickness for an outer radius r: thicker relatively in small airways.
    pub fn wall(r: f64) -> f64 {
        0.18 * r + 0.3
    }
}

/// All tubes of one patient: great vessels, trachea and bronchi, and two vessel trees and an
/// airway tree per lung.
pub fn build_tubes(anatomy: &Anatomy, seed: u64) -> Vec<Tube> {
    let mut tubes = great_vessels(anatomy);
    for side in Side::BOTH {
        let label = |what: &str| format!("tubes/{side:?}/{what}");
        let hilum = anatomy.hilum(side);
        let trunk = |from, to, r, material| Tube { a: from, b: to, ra: r, rb: r * 0.95, material, parent: None };
        tubes.push(trunk(hilum.artery_start, hilum.artery, 9.0, Material::Blood));
        tubes.push(trunk(hilum.vein_start, hilum.vein, 7.0, Material::Blood));
        let trees = [
            (hilum.artery, 7.0, 2000, Material::Blood, "artery"),
            (hilum.vein, 6.5, 2000, Material::Blood, "vein"),
            (hilum.bronchus, 5.5, 48, Material::Airway, "airway"),
        ];
        for (root, radius, points, material, name) in trees {
            let mut rng = seeds::rng(seed, &label(name));
            let mut cloud = territory(anatomy, side, points, &mut rng);
            let territory = cloud.len().max(1);
            let mut grower =
                TreeGrower { anatomy, root_radius: radius, territory, side, rng, material, out: &mut tubes };
            grower.grow(root, &mut cloud, None);
        }
    }
    tubes
}

fn great_vessels(anatomy: &Anatomy) -> Vec<Tube> {
    let s = anatomy.size();
    let m = |v: Vec3| scale(v, s);
    let seg = |a: Vec3, b: Vec3, ra: f64, rb: f64, material| Tube {
        a: m(a),
        b: m(b),
        ra: ra * s,
        rb: rb * s,
        material,
        parent: None,
    };
    let right = anatomy.hilum(Side::Right).bronchus;
    let left = anatomy.hilum(Side::Left).bronchus;
    let carina = m([0.0, 10.0, 12.0]);
    vec![
        seg([-8.0, -35.0, -20.0], [-8.0, -30.0, 42.0], 14.0, 14.0, Material::Blood),
        seg([-8.0, -30.0, 42.0], [5.0, 0.0, 58.0], 14.0, 13.0, Material::Blood),
        seg([5.0, 0.0, 58.0], [18.0, 28.0, 44.0], 13.0, 12.5, Material::Blood),
        seg([18.0, 28.0, 44.0], [18.0, 30.0, -240.0], 12.0, 11.0, Material::Blood),
        seg([10.0, -45.0, -15.0], [8.0, -18.0, 8.0], 13.0, 12.0, Material::Blood),
        seg([0.0, 6.0, 260.0], [0.0, 10.0, 12.0], 9.5, 9.5, Material::Airway),
        Tube { a: carina, b: right, ra: 7.5 * s, rb: 7.0 * s, material: Material::Airway, parent: None },
        Tube { a: carina, b: left, ra: 7.0 * s, rb: 6.5 * s, material: Material::Airway, parent: None },
    ]
}

/// Removes prunable vessels that reach into any of the balls (centre, radius), with
/// everything that branches off them.
pub fn prune(tubes: &[Tube], balls: &[(Vec3, f64)]) -> Vec<Tube> {
    let mut removed = vec![false; tubes.len()];
    for (i, t) in tubes.iter().enumerate() {
        let inherited = t.parent.is_some_and(|p| removed[p as usize]);
        let hit = t.is_prunable() && balls.iter().any(|(c, r)| t.sd(*c).0 < *r);
        removed[i] = inherited || hit;
    }
    tubes.iter().zip(&removed).filter(|(_, gone)| !**gone).map(|(t, _)| Tube { parent: None, ..*t }).collect()
}

/// Random points well inside one lung: the territory a tree has to supply.
fn territory(anatomy: &Anatomy, side: Side, count: usize, rng: &mut ChaCha8Rng) -> Vec<Vec3> {
    let (lo, hi) = anatomy.lung_bounds(side);
    let mut points = Vec::with_capacity(count);
    let mut tries = 0;
    while points.len() < count && tries < count * 200 {
        tries += 1;
        let p = [0, 1, 2].map(|a| rng.random_range(lo[a]..hi[a]));
        if anatomy.lung_sd(p, side) < -4.0 {
            points.push(p);
        }
    }
    points
}

struct TreeGrower<'a> {
    anatomy: &'a Anatomy,
    root_radius: f64,
    territory: usize,
    side: Side,
    rng: ChaCha8Rng,
    material: Material,
    out: &'a mut Vec<Tube>,
}

impl TreeGrower<'_> {
    /// Splits the territory in two along its longest spread and sends a branch part of the
    /// way to each half's centroid, recursing until a branch supplies one point or becomes
    /// too thin to see. A branch's radius follows Murray's law from the size of the territory
    /// it supplies (r³ ∝ territory), so radii never compound tapering errors.
    fn grow(&mut self, from: Vec3, cloud: &mut [Vec3], parent: Option<u32>) {
        let radius = self.radius_for(cloud.len());
        if cloud.len() <= 2 || radius < self.min_radius() {
            self.terminals(from, cloud, parent);
            return;
        }
        let split = self.split(cloud);
        let (first, second) = cloud.split_at_mut(split);
        for half in [first, second] {
            let r = self.radius_for(half.len());
            let to = self.branch_end(from, half);
            let mut branch = parent;
            if dist(from, to) >= 0.5 {
                branch = Some(self.out.len() as u32);
                self.out.push(Tube { a: from, b: to, ra: r, rb: r * 0.94, material: self.material, parent });
            }
            self.grow(to, half, branch);
        }
    }

    fn radius_for(&self, territory: usize) -> f64 {
        self.root_radius * (territory as f64 / self.territory as f64).cbrt()
    }

    fn min_radius(&self) -> f64 {
        if self.material == Material::Airway {
            1.2
        } else {
            0.45
        }
    }

    fn terminals(&mut self, from: Vec3, cloud: &[Vec3], parent: Option<u32>) {
        if self.material == Material::Airway {
            return;
        }
        let r = self.radius_for(1).max(0.35);
        for &p in cloud {
            self.out.push(Tube { a: from, b: p, ra: r, rb: (0.7 * r).max(0.3), material: self.material, parent });
        }
    }

    /// Partitions `cloud` in place at a random quantile along its principal axis.
    fn split(&mut self, cloud: &mut [Vec3]) -> usize {
        let axis = principal_axis(cloud);
        let quantile = self.rng.random_range(0.35..0.65);
        let k = ((cloud.len() as f64 * quantile) as usize).clamp(1, cloud.len() - 1);
        cloud.select_nth_unstable_by(k, |p, q| dot(*p, axis).total_cmp(&dot(*q, axis)));
        k
    }

    fn branch_end(&mut self, from: Vec3, half: &[Vec3]) -> Vec3 {
        let c = scale(half.iter().fold([0.0; 3], |acc, p| add(acc, *p)), 1.0 / half.len() as f64);
        let to = lerp(from, c, self.rng.random_range(0.35..0.55));
        if self.anatomy.lung_sd(to, self.side) < -1.0 {
            return to;
        }
        // The centroid of a curved territory can fall outside the lung: aim at a real point.
        *half.iter().min_by(|p, q| dist(**p, c).total_cmp(&dist(**q, c))).unwrap_or(&c)
    }
}

/// Direction of largest spread (power iteration on the covariance).
fn principal_axis(cloud: &[Vec3]) -> Vec3 {
    let (_, cov) = crate::math::scatter(cloud);
    let mut v = [0.577, 0.577, 0.577];
    for _ in 0..12 {
        let w = crate::math::mat_vec(&cov, v);
        let l = norm(w);
        if l < 1e-12 {
            break;
        }
        v = scale(w, 1.0 / l);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_fill_the_lungs_and_taper_to_sub_millimetre() {
        let anatomy = Anatomy::new(3, 1.0);
        let tubes = build_tubes(&anatomy, 3);
        let vessels: Vec<_> = tubes.iter().filter(|t| t.material == Material::Blood).collect();
        assert!(vessels.len() > 4000, "{}", vessels.len());
        assert!(vessels.iter().any(|t| t.rb < 0.5));
        assert!(vessels.iter().any(|t| t.ra > 5.0));
        let inside = vessels.iter().filter(|t| anatomy.lung_at(t.b).is_some()).count();
        assert!(inside as f64 > 0.9 * vessels.len() as f64);
    }
}
