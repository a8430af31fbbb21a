//! Margin irregularity: how far a nodule's surface departs from the smooth, ellipsoid-like
//! outline that fits it best; what tells a lobulated margin from a smooth one.
//!
//! Seen from an ellipsoid's centre, 1 / r^2 is a quadratic form in the direction, so a
//! polynomial of degree 2 in the direction fits a round, oval or lentiform nodule almost
//! exactly (a 3:1 ellipsoid cut by the pleura leaves 0.03 of its radius), while lobes and
//! the notches between them stay in the residual. The side on the chest wall is left out: it
//! is the pleura's outline, not the nodule's.

use pulmo_volume::mesh::Mesh;
use pulmo_volume::{vec3, Geometry, Vec3};

use crate::NoduleMask;

/// Fewer free surface points than this (a nodule mostly in the wall, or a few voxels) and the
/// margin is not assessed.
const MIN_FREE_POINTS: usize = 60;
/// Surface points whose normal is this close to the slice normal (cosine; 45 degrees) are left
/// out: between slices the outline is interpolated, and on 2.5 mm slices the caps of a smooth
/// 9 mm oval read 0.046 with them, 0.027 without.
const MAX_CAP_COSINE: f64 = 0.7;

/// RMS distance of the surface from the smooth outline fitted to it, as a share of the mean
/// radius; measured from `centre` (LPS mm) on `surface` (LPS mm, the nodule's 0.5 iso-surface).
/// `None` where too little of the margin is free of the chest wall to fit.
pub fn margin_irregularity(nodule: &NoduleMask, geometry: &Geometry, surface: &Mesh, centre: Vec3) -> Option<f64> {
    let points = free_margin(nodule, geometry, surface, centre);
    if points.len() < MIN_FREE_POINTS {
        return None;
    }
    let fit = fit_inverse_square(&points)?;
    let (mut squares, mut radii, mut weights) = (0.0, 0.0, 0.0);
    for p in &points {
        // The residual in 1 / r^2, taken back to a distance along the ray (linearised, so a
        // fit that misses badly somewhere stays finite).
        let off = 0.5 * p.radius.powi(3) * (evaluate(&fit, p.direction) - p.radius.powi(-2));
        squares += p.weight * off * off;
        radii += p.weight * p.radius;
        weights += p.weight;
    }
    (radii > 0.0).then(|| (squares / weights).sqrt() / (radii / weights))
}

/// A surface point seen from the centre: its direction (unit), distance (mm) and the share of
/// the surface's area it stands for (mm2).
struct MarginPoint {
    direction: Vec3,
    radius: f64,
    weight: f64,
}

/// The surface's vertices away from the chest wall (no wall voxel within one voxel) and off
/// the caps the slices cut (see [`MAX_CAP_COSINE`]), each weighted by a third of its
/// triangles' areas, so dense and sparse parts of the mesh count by area alike.
fn free_margin(nodule: &NoduleMask, geometry: &Geometry, surface: &Mesh, centre: Vec3) -> Vec<MarginPoint> {
    let Some(box_geometry) = nodule.box_geometry(geometry) else { return Vec::new() };
    let mut area = vec![0.0; surface.vertices.len()];
    let mut normal = vec![[0.0; 3]; surface.vertices.len()];
    for triangle in &surface.triangles {
        let [a, b, c] = triangle.map(|k| surface.vertices[k as usize]);
        let n = vec3::cross(vec3::sub(b, a), vec3::sub(c, a));
        for k in triangle {
            area[*k as usize] += vec3::norm(n) / 6.0;
            normal[*k as usize] = vec3::add(normal[*k as usize], n);
        }
    }
    let slice_normal = geometry.slice_normal();
    let cap = |n: Vec3| vec3::dot(vec3::normalize(n), slice_normal).abs() > MAX_CAP_COSINE;
    surface
        .vertices
        .iter()
        .zip(area)
        .zip(normal)
        .filter(|((v, _), n)| !cap(*n) && !near_wall(nodule, box_geometry.lps_to_index(**v)))
        .filter_map(|((v, weight), _)| {
            let ray = vec3::sub(*v, centre);
            let radius = vec3::norm(ray);
            (radius > 0.0).then(|| MarginPoint { direction: vec3::scale(ray, 1.0 / radius), radius, weight })
        })
        .collect()
}

/// Whether a wall voxel lies in the 3x3x3 neighbourhood of the box voxel nearest `index`.
fn near_wall(nodule: &NoduleMask, index: Vec3) -> bool {
    let [nz, ny, nx] = nodule.dims.map(|d| d as i64);
    let [z, y, x] = index.map(|c| c.round() as i64);
    let inside = |z: i64, y: i64, x: i64| (0..nz).contains(&z) && (0..ny).contains(&y) && (0..nx).contains(&x);
    (-1..=1).any(|dz| {
        (-1..=1).any(|dy| {
            (-1..=1).any(|dx| {
                let (z, y, x) = (z + dz, y + dy, x + dx);
                inside(z, y, x) && nodule.is_wall(((z * ny + y) * nx + x) as usize)
            })
        })
    })
}

/// The nine functions of the direction up to degree 2 (a constant, three linear, five
/// quadratic harmonics).
fn basis([x, y, z]: Vec3) -> [f64; 9] {
    [1.0, x, y, z, x * y, y * z, z * x, x * x - y * y, 2.0 * z * z - x * x - y * y]
}

fn evaluate(coefficients: &[f64; 9], direction: Vec3) -> f64 {
    basis(direction).iter().zip(coefficients).map(|(b, c)| b * c).sum()
}

/// Weighted least squares of 1 / r^2 on [`basis`]; `None` when the points leave it
/// undetermined (all on one side of a plane through the centre, say).
fn fit_inverse_square(points: &[MarginPoint]) -> Option<[f64; 9]> {
    let mut normal = [[0.0; 9]; 9];
    let mut rhs = [0.0; 9];
    for p in points {
        let b = basis(p.direction);
        let target = p.radius.powi(-2);
        for i in 0..9 {
            rhs[i] += p.weight * b[i] * target;
            for j in 0..9 {
                normal[i][j] += p.weight * b[i] * b[j];
            }
        }
    }
    solve(normal, rhs)
}

/// Gauss-Jordan elimination with partial pivoting; `None` for a (near) singular system.
fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> Option<[f64; N]> {
    let scale = a.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    for col in 0..N {
        let pivot = (col..N).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= 1e-12 * scale {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in (0..N).filter(|&r| r != col) {
            let f = a[row][col] / a[col][col];
            for k in col..N {
                a[row][k] -= f * a[col][k];
            }
            b[row] -= f * b[col];
        }
    }
    Some(std::array::from_fn(|i| b[i] / a[i][i]))
}

#[cfg(test)]
mod tests {
    use pulmo_volume::{vec3, Geometry, Vec3};

    use crate::findings::LOBULATED_MIN_IRREGULARITY;
    use crate::measure::measure;
    use crate::NoduleMask;

    /// The margin irregularity pulmo measures on a nodule whose `body` (a test on mm offsets
    /// from the box's centre) is tissue of 40 HU in lung, each voxel's HU and tissue fraction
    /// its share of the body (4^3 subsamples, the centre off the grid), with chest wall
    /// wherever `wall` holds; `extent` mm each way.
    fn irregularity_of(spacing: Vec3, extent: f64, body: impl Fn(Vec3) -> bool, wall: impl Fn(Vec3) -> bool) -> f64 {
        let dims = [0, 1, 2].map(|a| (2.0 * extent / spacing[a]).ceil() as usize + 1);
        let n = dims.iter().product();
        let offset = |i: usize, a: usize, sub: f64| {
            let index = [i / (dims[1] * dims[2]), (i / dims[2]) % dims[1], i % dims[2]][a] as f64;
            (index + sub - dims[a] as f64 / 2.0 - [0.1, 0.3, 0.45][a]) * spacing[a]
        };
        let at = |i: usize, k: usize| [0, 1, 2].map(|a| offset(i, a, -0.375 + 0.25 * ((k >> (2 * (2 - a))) & 3) as f64));
        let lung: Vec<bool> = (0..n).map(|i| !wall(at(i, 0b010101))).collect();
        let fraction: Vec<f32> =
            (0..n).map(|i| if lung[i] { (0..64).filter(|&k| body(at(i, k))).count() as f32 / 64.0 } else { 0.0 }).collect();
        let hu = (0..n).map(|i| if lung[i] { -850.0 + 890.0 * fraction[i] } else { 40.0 }).collect();
        let inside = fraction.iter().map(|f| *f >= 0.5).collect();
        let mask = NoduleMask { origin: [0; 3], dims, inside, fraction, hu, lung, tissue_hu: 40.0, lung_hu: -850.0 };
        let (m, _) = measure(&mask, &Geometry::axial([0.0; 3], spacing).expect("geometry"));
        m.margin_irregularity.expect("a margin to fit")
    }

    fn nowhere(_: Vec3) -> bool {
        false
    }

    /// Semi-axes `a` (z, y, x) mm.
    fn ellipsoid(a: Vec3) -> impl Fn(Vec3) -> bool {
        move |p: Vec3| (0..3).map(|k| (p[k] / a[k]).powi(2)).sum::<f64>() <= 1.0
    }

    /// The phantom's lobulated model with its lobes fixed: a main ball of 0.75 r and four lobes
    /// of `lobe` r whose outer edges reach r, towards the corners of a tetrahedron.
    fn lobulated(r: f64, lobe: f64) -> impl Fn(Vec3) -> bool {
        let corners = [[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]].map(vec3::normalize);
        move |p: Vec3| vec3::norm(p) <= 0.75 * r || corners.iter().any(|c| vec3::dist(p, vec3::scale(*c, (1.0 - lobe) * r)) <= lobe * r)
    }

    #[test]
    fn round_and_oval_nodules_are_smooth_on_thin_and_thick_slices() {
        for spacing in [[1.0, 0.7, 0.7], [2.5, 0.9, 0.9]] {
            for d in [6.0, 9.0] {
                let r = d / 2.0;
                let ball = irregularity_of(spacing, r + 3.0, ellipsoid([r; 3]), nowhere);
                let oval = irregularity_of(spacing, r + 3.0, ellipsoid([0.6 * r, r, 0.8 * r]), nowhere);
                for (shape, irregularity) in [("ball", ball), ("oval", oval)] {
                    assert!(irregularity < LOBULATED_MIN_IRREGULARITY, "{d} mm {shape} at {spacing:?}: {irregularity:.3}");
                }
            }
        }
    }

    #[test]
    fn the_pleura_is_not_taken_for_the_margin() {
        // A lentiform nodule of 8 x 8 x 5 mm against the chest wall (x < -1 mm), which takes
        // a fifth of its width and leaves it a flat side.
        let spacing = [1.25, 0.8, 0.8];
        let irregularity = irregularity_of(spacing, 8.0, ellipsoid([4.0, 4.0, 2.5]), |p| p[2] < -1.0);
        assert!(irregularity < LOBULATED_MIN_IRREGULARITY, "{irregularity:.3}");
    }

    #[test]
    fn a_lobulated_nodule_is_irregular() {
        for (spacing, d, lobe) in [([1.0, 0.7, 0.7], 7.0, 0.45), ([1.0, 0.7, 0.7], 7.0, 0.6), ([2.0, 0.9, 0.9], 9.0, 0.45), ([2.0, 0.9, 0.9], 9.0, 0.6), ([2.5, 0.9, 0.9], 6.0, 0.5)] {
            let irregularity = irregularity_of(spacing, d / 2.0 + 3.0, lobulated(d / 2.0, lobe), nowhere);
            assert!(irregularity >= LOBULATED_MIN_IRREGULARITY, "{d} mm, lobes of {lobe} r, at {spacing:?}: {irregularity:.3}");
        }
    }
}
