//! The patient's static anatomy as implicit surfaces in the body frame: torso layers, ribs,
//! spine, sternum, mediastinum and heart, abdomen under the diaphragm, and the two lungs.
//!
//! Body frame: x to the patient's left, y posterior, z superior (LPS axes), origin on the
//! midline at the centre of the chest. Shapes are laid out for a standard adult and scaled
//! by `size`; every boundary is blended over a ramp of width `h` (the pixel size), which is
//! the in-plane partial-volume effect. Distances are first-order estimates, not exact.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::math::Vec3;
use crate::seeds;

pub const AIR: f64 = -1000.0;
const SKIN: f64 = 30.0;
const FAT: f64 = -100.0;
const MUSCLE: f64 = 45.0;
const MEDIASTINAL_FAT: f64 = -90.0;
const HEART: f64 = 40.0;
const LIVER: f64 = 60.0;
const SPLEEN_STOMACH: f64 = 42.0;
const CORTICAL: f64 = 700.0;
const MARROW: f64 = 250.0;
const RIB_CORTEX: f64 = 750.0;
const CARTILAGE: f64 = 130.0;
const DISC: f64 = 80.0;
const CANAL: f64 = 25.0;
const LUNG: f64 = -860.0;
/// Semi-axes of the heart ellipsoid, standard mm.
const HEART_AXES: Vec3 = [58.0, 47.0, 55.0];
/// How far (standard mm) a rib descends from its spinal end to its anterior end.
const RIB_DROP: f64 = 80.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The patient's right lung, at negative x (LPS).
    Right,
    Left,
}

impl Side {
    pub fn sign(self) -> f64 {
        match self {
            Side::Right => -1.0,
            Side::Left => 1.0,
        }
    }

    pub const BOTH: [Side; 2] = [Side::Right, Side::Left];
}

fn ramp(sd: f64, h: f64) -> f64 {
    (0.5 - sd / h).clamp(0.0, 1.0)
}

fn mix(v: f64, target: f64, c: f64) -> f64 {
    v + (target - v) * c
}

fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// First-order signed distance to the ellipse (x/a)² + (y/b)² = 1: exact on the boundary
/// normal, good to a few percent near it, which is where the ramps need it.
fn ellipse_sd(x: f64, y: f64, a: f64, b: f64) -> f64 {
    let (u, v) = (x / a, y / b);
    let rho = (u * u + v * v).sqrt();
    if rho < 1e-9 {
        return -a.min(b);
    }
    let g = ((x / (a * a)).powi(2) + (y / (b * b)).powi(2)).sqrt() / rho;
    (rho - 1.0) / g
}

fn ellipsoid_sd(p: Vec3, c: Vec3, r: Vec3) -> f64 {
    let d = [p[0] - c[0], p[1] - c[1], p[2] - c[2]];
    let u = [d[0] / r[0], d[1] / r[1], d[2] / r[2]];
    let rho = (u[0] * u[0] + u[1] * u[1] + u[2] * u[2]).sqrt();
    if rho < 1e-9 {
        return -r[0].min(r[1]).min(r[2]);
    }
    let g = (0..3).map(|i| (d[i] / (r[i] * r[i])).powi(2)).sum::<f64>().sqrt() / rho;
    (rho - 1.0) / g
}

fn box_sd(p: Vec3, lo: Vec3, hi: Vec3) -> f64 {
    let q = [0, 1, 2].map(|i| (lo[i] - p[i]).max(p[i] - hi[i]));
    let outside = q.iter().map(|v| v.max(0.0).powi(2)).sum::<f64>().sqrt();
    outside + q[0].max(q[1]).max(q[2]).min(0.0)
}

/// Smooth low-frequency attenuation variation (value noise on two lattices), so parenchyma
/// is not a flat plateau a threshold could exploit.
struct Texture {
    octaves: Vec<Lattice>,
}

struct Lattice {
    origin: Vec3,
    step: f64,
    dims: [usize; 3],
    amplitude: f64,
    values: Vec<f32>,
}

impl Lattice {
    fn new(seed: u64, label: &str, step: f64, amplitude: f64) -> Lattice {
        let origin = [-210.0, -150.0, -250.0];
        let dims = [(420.0 / step) as usize + 2, (300.0 / step) as usize + 2, (500.0 / step) as usize + 2];
        let mut rng = seeds::rng(seed, label);
        // Sum of three uniforms: bell-shaped, unit variance after scaling by 2.
        let values = (0..dims[0] * dims[1] * dims[2])
            .map(|_| (rng.random::<f32>() + rng.random::<f32>() + rng.random::<f32>() - 1.5) * 2.0)
            .collect();
        Lattice { origin, step, dims, amplitude, values }
    }

    fn at(&self, q: Vec3) -> f64 {
        let mut idx = [0usize; 3];
        let mut w = [0.0f64; 3];
        for a in 0..3 {
            let f = ((q[a] - self.origin[a]) / self.step).clamp(0.0, (self.dims[a] - 2) as f64);
            idx[a] = (f as usize).min(self.dims[a] - 2);
            let t = f - idx[a] as f64;
            w[a] = t * t * (3.0 - 2.0 * t);
        }
        let [nx, ny, _] = self.dims;
        let get = |i: usize, j: usize, k: usize| self.values[(k * ny + j) * nx + i] as f64;
        let mut acc = 0.0;
        for (dk, wk) in [(0, 1.0 - w[2]), (1, w[2])] {
            for (dj, wj) in [(0, 1.0 - w[1]), (1, w[1])] {
                let row = get(idx[0], idx[1] + dj, idx[2] + dk) * (1.0 - w[0])
                    + get(idx[0] + 1, idx[1] + dj, idx[2] + dk) * w[0];
                acc += row * wj * wk;
            }
        }
        acc * self.amplitude
    }
}

impl Texture {
    fn new(seed: u64) -> Texture {
        Texture {
            octaves: vec![
                Lattice::new(seed, "texture/fine", 7.0, 12.0),
                Lattice::new(seed, "texture/coarse", 18.0, 14.0),
            ],
        }
    }

    fn at(&self, q: Vec3) -> f64 {
        self.octaves.iter().map(|o| o.at(q)).sum()
    }
}

/// Per-patient variation of the standard layout, drawn from the anatomy seed.
#[derive(Debug, Clone, Copy)]
struct Variation {
    body_a: f64,
    body_b: f64,
    heart_dx: f64,
    dome_right: f64,
    dome_left: f64,
    vertebra_phase: f64,
}

pub struct Anatomy {
    size: f64,
    var: Variation,
    texture: Texture,
}

/// Half-width of the mediastinum (the lung's medial boundary) on one side, standard mm.
struct Mediastinum;

impl Anatomy {
    pub fn new(seed: u64, size: f64) -> Anatomy {
        let mut rng = seeds::rng(seed, "anatomy/variation");
        let var = Variation {
            body_a: rng.random_range(0.96..1.04),
            body_b: rng.random_range(0.95..1.05),
            heart_dx: rng.random_range(-6.0..6.0),
            dome_right: rng.random_range(-72.0..-62.0),
            dome_left: rng.random_range(-86.0..-76.0),
            vertebra_phase: rng.random_range(0.0..25.0),
        };
        Anatomy { size, var, texture: Texture::new(seed) }
    }

    pub fn size(&self) -> f64 {
        self.size
    }

    /// Attenuation (HU) at body point `p` (mm) with boundaries blended over `h` mm.
    pub fn sample(&self, p: Vec3, h: f64) -> f64 {
        let q = [p[0] / self.size, p[1] / self.size, p[2] / self.size];
        self.sample_std(q, h / self.size)
    }

    /// Signed distance estimate (mm) to the surface of one lung, negative inside.
    pub fn lung_sd(&self, p: Vec3, side: Side) -> f64 {
        let q = [p[0] / self.size, p[1] / self.size, p[2] / self.size];
        self.lung_sd_std(q, side, self.cavity_sd(q)) * self.size
    }

    /// Signed distance estimate (mm) to the inner surface of the chest wall (the costal
    /// pleura where it borders a lung), negative inside the thoracic cavity.
    pub fn chest_wall_sd(&self, p: Vec3) -> f64 {
        let q = [p[0] / self.size, p[1] / self.size, p[2] / self.size];
        self.cavity_sd(q) * self.size
    }

    pub fn lung_at(&self, p: Vec3) -> Option<Side> {
        let side = if p[0] >= 0.0 { Side::Left } else { Side::Right };
        (self.lung_sd(p, side) < 0.0).then_some(side)
    }

    /// Axis-aligned box (mm) that contains one lung.
    pub fn lung_bounds(&self, side: Side) -> (Vec3, Vec3) {
        let s = self.size;
        let x = match side {
            Side::Right => [-140.0 * s, 0.0],
            Side::Left => [0.0, 140.0 * s],
        };
        ([x[0], -100.0 * s, -175.0 * s], [x[1], 95.0 * s, 112.0 * s])
    }

    /// Where the main pulmonary artery, vein and bronchus reach a lung (mm).
    pub fn hilum(&self, side: Side) -> Hilum {
        let s = side.sign();
        let sz = self.size;
        let m = |v: Vec3| [v[0] * sz, v[1] * sz, v[2] * sz];
        Hilum {
            artery_start: m([s * 8.0, -18.0, 8.0]),
            artery: m([s * 28.0, 6.0, -2.0]),
            vein_start: m([s * 10.0, 12.0, -42.0]),
            vein: m([s * 28.0, 14.0, -28.0]),
            bronchus: m([s * 30.0, 16.0, -8.0]),
        }
    }

    /// z (mm, body frame) of the middle of the lungs, where a chest scan range is centred.
    pub fn scan_centre_z(&self) -> f64 {
        -28.0 * self.size
    }

    fn torso_axes(&self, z: f64) -> (f64, f64) {
        let t = smoothstep(118.0, 170.0, z);
        let a = 165.0 * self.var.body_a;
        let b = 115.0 * self.var.body_b;
        (a + (70.0 - a) * t, b + (62.0 - b) * t)
    }

    /// The inner surface of the chest wall (rib cage), and of the abdominal wall below it.
    fn cavity_sd(&self, q: Vec3) -> f64 {
        let (a, b) = self.torso_axes(q[2]);
        // The rib cage narrows towards the thoracic inlet.
        let inlet = 1.0 - 0.22 * smoothstep(10.0, 118.0, q[2]);
        ellipse_sd(q[0], q[1] + 5.0, (a - 35.0) * inlet, b - 27.0)
    }

    fn sample_std(&self, q: Vec3, h: f64) -> f64 {
        let [x, y, z] = q;
        let (a, b) = self.torso_axes(z);
        let sd_body = ellipse_sd(x, y, a, b);
        if sd_body > h {
            return AIR;
        }
        let r2 = x * x + y * y + 1.0;
        let fat = 12.0 + 5.0 * (x * x - y * y) / r2;
        let mut v = mix(AIR, SKIN, ramp(sd_body, h));
        v = mix(v, FAT, ramp(sd_body + 2.0, h));
        v = mix(v, MUSCLE, ramp(sd_body + 2.0 + fat, h));
        let sd_cav = self.cavity_sd(q);
        if sd_cav < h {
            v = self.cavity_contents(q, v, sd_cav, h);
        }
        v = self.ribs(q, v, sd_cav, h);
        v = self.sternum(q, v, h);
        self.spine(q, v, h)
    }

    fn cavity_contents(&self, q: Vec3, v: f64, sd_cav: f64, h: f64) -> f64 {
        let [x, y, z] = q;
        let c_cav = ramp(sd_cav, h);
        let paraspinal = smoothstep(52.0, 62.0, y).max(smoothstep(105.0, 122.0, z));
        let mut v = mix(v, mix(MEDIASTINAL_FAT, MUSCLE, paraspinal), c_cav);
        let zd = self.abdomen_top(x, y);
        let abdomen = LIVER + (SPLEEN_STOMACH - LIVER) * smoothstep(-15.0, 15.0, x);
        v = mix(v, abdomen, ramp((z - zd).max(sd_cav), h));
        if (-70.0..110.0).contains(&x) && (-100.0..30.0).contains(&y) && (-125.0..20.0).contains(&z) {
            let c = [20.0 + self.var.heart_dx, -35.0, -52.0];
            v = mix(v, HEART, ramp(ellipsoid_sd(q, c, HEART_AXES), h));
        }
        if x > 10.0 && z < -90.0 {
            let gas = ellipsoid_sd(q, [58.0, -28.0, -128.0], [38.0, 28.0, 16.0]).max(sd_cav);
            v = mix(v, AIR, ramp(gas, h));
        }
        let side = if x >= 0.0 { Side::Left } else { Side::Right };
        let sd_lung = self.lung_sd_std(q, side, sd_cav);
        if sd_lung < h {
            let hu = LUNG + 35.0 * smoothstep(-90.0, 80.0, y) + self.texture.at(q);
            v = mix(v, hu, ramp(sd_lung, h));
        }
        v
    }

    /// The diaphragm as one smooth surface under both domes, for the abdominal contents.
    fn abdomen_top(&self, x: f64, y: f64) -> f64 {
        let r = self.dome_z(Side::Right, x, y).0;
        let l = self.dome_z(Side::Left, x, y).0;
        r + (l - r) * smoothstep(-20.0, 20.0, x)
    }

    /// Height of a diaphragm dome and its slope magnitude.
    fn dome_z(&self, side: Side, x: f64, y: f64) -> (f64, f64) {
        let top = match side {
            Side::Right => self.var.dome_right,
            Side::Left => self.var.dome_left,
        };
        let (dx, dy) = (x - side.sign() * 70.0, y + 5.0);
        let z = top - 0.008 * (dx * dx + dy * dy);
        if z < -165.0 {
            (-165.0, 0.0)
        } else {
            (z, 0.016 * (dx * dx + dy * dy).sqrt())
        }
    }

    fn lung_sd_std(&self, q: Vec3, side: Side, sd_cav: f64) -> f64 {
        let [x, y, z] = q;
        let s = side.sign();
        let sd_medial = Mediastinum::half_width(self, side, y, z) - s * x;
        let (zd, gd) = self.dome_z(side, x, y);
        let sd_dome = (zd - z) / (1.0 + gd * gd).sqrt();
        let (dx, dy) = (x - s * 62.0, y - 18.0);
        let zap = 108.0 - 0.012 * (dx * dx + dy * dy);
        let ga = 0.024 * (dx * dx + dy * dy).sqrt();
        let sd_apex = (z - zap) / (1.0 + ga * ga).sqrt();
        sd_cav.max(sd_medial).max(sd_dome).max(sd_apex)
    }

    fn ribs(&self, q: Vec3, mut v: f64, sd_cav: f64, h: f64) -> f64 {
        let [x, y, z] = q;
        if !(-2.0..14.0).contains(&sd_cav) || !(-220.0..125.0).contains(&z) {
            return v;
        }
        let phi = (x.abs()).atan2(y + 5.0);
        let radial = sd_cav - 5.5;
        let (phi0, phi1) = (0.42, 2.45);
        let u = ((phi - phi0) / (phi1 - phi0)).clamp(0.0, 1.0);
        let kf = (112.0 - RIB_DROP * u - z) / 23.0;
        for k in [kf.floor(), kf.floor() + 1.0] {
            if !(0.0..12.0).contains(&k) {
                continue;
            }
            let end = if k >= 10.0 { 1.55 + 0.1 * (11.0 - k) } else { phi1 };
            let u = ((phi - phi0) / (phi1 - phi0)).clamp(0.0, (end - phi0) / (phi1 - phi0));
            let dz = z - (112.0 - 23.0 * k - RIB_DROP * u);
            let section = ellipse_sd(radial, dz, 3.5, 5.5);
            let beyond = (phi0 - phi).max(phi - end) * 105.0;
            let sd = section.max(beyond);
            if sd < h {
                v = mix(v, RIB_CORTEX, ramp(sd, h));
                v = mix(v, MARROW, ramp(sd + 1.3, h));
            }
            if k <= 6.0 && phi > end - 0.05 {
                let cart = ellipse_sd(radial, dz, 3.0, 4.5).max((phi - (end + 0.38)) * 105.0).max((end - phi) * 105.0);
                v = mix(v, CARTILAGE, ramp(cart, h));
            }
        }
        v
    }

    fn sternum(&self, q: Vec3, v: f64, h: f64) -> f64 {
        if q[0].abs() > 20.0 || !(-112.0..-90.0).contains(&q[1]) || !(-66.0..106.0).contains(&q[2]) {
            return v;
        }
        let sd = box_sd(q, [-15.0, -107.0, -60.0], [15.0, -96.0, 100.0]);
        let v = mix(v, CORTICAL, ramp(sd, h));
        mix(v, MARROW - 50.0, ramp(sd + 1.5, h))
    }

    fn spine(&self, q: Vec3, mut v: f64, h: f64) -> f64 {
        let [x, y, z] = q;
        if x.abs() > 40.0 || !(22.0..106.0).contains(&y) {
            return v;
        }
        let pitch = 25.0;
        let dz = (z - self.var.vertebra_phase).rem_euclid(pitch) - pitch / 2.0;
        let sd_cyl = ellipse_sd(x, y - 45.0, 21.0, 17.0);
        v = mix(v, DISC, ramp(sd_cyl, h));
        let sd_body = sd_cyl.max(dz.abs() - 10.0);
        v = mix(v, CORTICAL, ramp(sd_body, h));
        v = mix(v, MARROW, ramp(sd_body + 1.5, h));
        let ring = ((x * x + (y - 72.0).powi(2)).sqrt() - 14.0).max(dz.abs() - 11.0);
        let spinous = box_sd(q, [-3.5, 78.0, -100.0], [3.5, 100.0, 100.0]).max(dz.abs() - 8.0);
        let transverse = box_sd(q, [-32.0, 64.0, -100.0], [32.0, 74.0, 100.0]).max(dz.abs() - 6.0);
        let arch = ring.min(spinous).min(transverse);
        v = mix(v, CORTICAL - 100.0, ramp(arch, h));
        let canal = (x * x + (y - 72.0).powi(2)).sqrt() - 8.0;
        mix(v, CANAL, ramp(canal, h))
    }
}

impl Mediastinum {
    /// Distance from the midline to the lung's medial surface at (y, z): the widest of the
    /// upper mediastinum, the heart (with pericardial fat), the spine and the aorta.
    fn half_width(a: &Anatomy, side: Side, y: f64, z: f64) -> f64 {
        let s = side.sign();
        let arch =
            if side == Side::Left { 12.0 * smoothstep(34.0, 44.0, z) * (1.0 - smoothstep(62.0, 72.0, z)) } else { 0.0 };
        let mut m: f64 = 20.0 + arch * (1.0 - smoothstep(30.0, 40.0, y));
        let hx = 20.0 + a.var.heart_dx;
        let u = 1.0 - ((y + 35.0) / HEART_AXES[1]).powi(2) - ((z + 52.0) / HEART_AXES[2]).powi(2);
        if u > 0.0 {
            let w = HEART_AXES[0] * u.sqrt();
            m = m.max(s * hx + w + 6.0);
        }
        let spine = if y > 45.0 {
            29.0
        } else {
            let t = (45.0 - y) / 21.0;
            if t < 1.0 {
                26.0 * (1.0 - t * t).sqrt() + 3.0
            } else {
                0.0
            }
        };
        m = m.max(spine);
        if side == Side::Left && (y - 28.0).abs() < 12.0 && z < 50.0 {
            m = m.max(18.0 + (144.0 - (y - 28.0).powi(2)).sqrt() + 3.0);
        }
        m
    }
}

/// Entry points of the vascular and airway trees into one lung.
#[derive(Debug, Clone, Copy)]
pub struct Hilum {
    pub artery_start: Vec3,
    pub artery: Vec3,
    pub vein_start: Vec3,
    pub vein: Vec3,
    pub bronchus: Vec3,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tissues_are_where_a_chest_has_them() {
        let a = Anatomy::new(7, 1.0);
        let hu = |p: Vec3| a.sample(p, 0.7);
        assert_eq!(hu([0.0, -200.0, 0.0]), AIR);
        assert!(hu([-80.0, 0.0, 20.0]) < -780.0, "right lung {}", hu([-80.0, 0.0, 20.0]));
        assert!(hu([80.0, 0.0, 20.0]) < -780.0, "left lung");
        assert!(hu([0.0, 45.0, a.var.vertebra_phase + 12.5]) > 200.0, "vertebral body");
        assert!((hu([25.0, -35.0, -50.0]) - HEART).abs() < 1.0, "heart");
        assert!(hu([-60.0, 0.0, -140.0]) > 30.0, "liver under the right dome");
        assert_eq!(a.lung_at([-80.0, 0.0, 20.0]), Some(Side::Right));
        assert_eq!(a.lung_at([0.0, 0.0, 20.0]), None);
    }
}
