//! Exact Euclidean distance transform of binary masks on anisotropic grids, and the ball
//! erosion and dilation built on it. Linear in the voxel count whatever the ball's radius.
//!
//! Separable lower-envelope-of-parabolas algorithm (Felzenszwalb and Huttenlocher, 2012): one
//! pass per axis, each voxel's squared distance the minimum over the line of
//! `(spacing * (q - p))^2 + f(p)`. A ball erosion as a convolution costs the box's voxels times
//! the ball's, which for a 10 mm ball at 0.7 mm spacing is ten thousand times more.

use crate::Vec3;

/// Per voxel, the squared distance in mm to the nearest voxel where `target` is set;
/// `f64::INFINITY` everywhere when none is. Grid `dims` is (z, y, x) with `spacing` in mm.
pub fn squared_distance_mm(target: &[bool], dims: [usize; 3], spacing: Vec3) -> Vec<f64> {
    let mut d: Vec<f64> = target.iter().map(|&t| if t { 0.0 } else { f64::INFINITY }).collect();
    let [_, ny, nx] = dims;
    let strides = [ny * nx, nx, 1];
    let mut envelope = Envelope::default();
    for axis in 0..3 {
        let len = dims[axis];
        let lines = d.len() / len.max(1);
        for line in 0..lines {
            let start = line_start(line, axis, dims);
            let at = |k: usize| start + k * strides[axis];
            let f: Vec<f64> = (0..len).map(|k| d[at(k)]).collect();
            for (k, v) in envelope.transform(&f, spacing[axis]).enumerate() {
                d[at(k)] = v;
            }
        }
    }
    d
}

/// Voxels of `mask` whose whole ball of `radius_mm` lies in the mask; voxels beyond the grid
/// count as inside, so a mask cut by the grid's edge is not eroded from there.
pub fn erode_ball(mask: &[bool], dims: [usize; 3], spacing: Vec3, radius_mm: f64) -> Vec<bool> {
    let outside: Vec<bool> = mask.iter().map(|m| !m).collect();
    squared_distance_mm(&outside, dims, spacing).iter().map(|&d| d > radius_mm * radius_mm).collect()
}

/// Voxels within `radius_mm` of a voxel of `mask`.
pub fn dilate_ball(mask: &[bool], dims: [usize; 3], spacing: Vec3, radius_mm: f64) -> Vec<bool> {
    squared_distance_mm(mask, dims, spacing).iter().map(|&d| d <= radius_mm * radius_mm).collect()
}

/// Flat index of the first voxel of the `line`-th line along `axis`.
fn line_start(line: usize, axis: usize, [_, ny, nx]: [usize; 3]) -> usize {
    match axis {
        0 => line,
        1 => (line / nx) * ny * nx + line % nx,
        _ => line * nx,
    }
}

/// Scratch space for the lower envelope of one line's parabolas, reused across lines.
#[derive(Default)]
struct Envelope {
    /// Positions of the parabolas in the envelope, left to right.
    vertex: Vec<usize>,
    /// Where each envelope parabola starts to be the lowest (position units).
    from: Vec<f64>,
}

impl Envelope {
    /// `min_p (step * (q - p))^2 + f[p]` for each q; `f` may hold infinities (no target).
    fn transform<'a>(&'a mut self, f: &'a [f64], step: f64) -> impl Iterator<Item = f64> + 'a {
        self.vertex.clear();
        self.from.clear();
        let s2 = step * step;
        // Where the parabolas of p and q (p < q) cross, in position units.
        let cross = |p: usize, q: usize| ((f[q] / s2 + (q * q) as f64) - (f[p] / s2 + (p * p) as f64)) / (2.0 * (q - p) as f64);
        for q in (0..f.len()).filter(|&q| f[q].is_finite()) {
            // Parabolas that q's is lower than from where they start are hidden: drop them.
            let start = loop {
                let Some((&p, &from)) = self.vertex.last().zip(self.from.last()) else { break f64::NEG_INFINITY };
                let crossing = cross(p, q);
                if crossing > from {
                    break crossing;
                }
                self.vertex.pop();
                self.from.pop();
            };
            self.vertex.push(q);
            self.from.push(start);
        }
        let (vertex, from) = (&self.vertex, &self.from);
        let mut k = 0;
        (0..f.len()).map(move |q| {
            if vertex.is_empty() {
                return f64::INFINITY;
            }
            while k + 1 < vertex.len() && from[k + 1] <= q as f64 {
                k += 1;
            }
            let p = vertex[k];
            let d = (q as f64 - p as f64) * step;
            d * d + f[p]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scattered mask, deterministic: a few voxels and a slab.
    fn scattered(dims: [usize; 3]) -> Vec<bool> {
        let n = dims[0] * dims[1] * dims[2];
        (0..n).map(|i| (i * 7919) % 97 == 0 || (i / (dims[1] * dims[2]) == 1 && i % 5 == 0)).collect()
    }

    fn brute_force(target: &[bool], dims: [usize; 3], spacing: Vec3) -> Vec<f64> {
        let [_, ny, nx] = dims;
        let at = |i: usize| [i / (ny * nx), (i / nx) % ny, i % nx];
        (0..target.len())
            .map(|i| {
                (0..target.len())
                    .filter(|&j| target[j])
                    .map(|j| (0..3).map(|a| ((at(i)[a] as f64 - at(j)[a] as f64) * spacing[a]).powi(2)).sum::<f64>())
                    .fold(f64::INFINITY, f64::min)
            })
            .collect()
    }

    #[test]
    fn distances_match_brute_force_on_an_anisotropic_grid() {
        let dims = [5, 9, 11];
        let spacing = [2.5, 0.7, 0.9];
        let target = scattered(dims);
        let fast = squared_distance_mm(&target, dims, spacing);
        let slow = brute_force(&target, dims, spacing);
        for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
            assert!((a - b).abs() < 1e-9, "voxel {i}: {a} vs {b}");
        }
    }

    #[test]
    fn no_target_is_infinitely_far() {
        assert!(squared_distance_mm(&[false; 24], [2, 3, 4], [1.0; 3]).iter().all(|d| d.is_infinite()));
    }

    #[test]
    fn a_ball_eroded_by_itself_leaves_its_centre_and_dilates_back() {
        let dims = [21, 21, 21];
        let spacing = [1.0; 3];
        let ball = |r: f64| -> Vec<bool> {
            (0..21 * 21 * 21).map(|i| [i / 441, (i / 21) % 21, i % 21].iter().map(|&c| (c as f64 - 10.0).powi(2)).sum::<f64>() <= r * r).collect()
        };
        // Eroding a radius-6 ball by a radius-5.5 ball: voxels within 0.5 mm of the centre.
        let eroded = erode_ball(&ball(6.0), dims, spacing, 5.5);
        assert_eq!(eroded.iter().filter(|e| **e).count(), 1);
        assert_eq!(dilate_ball(&eroded, dims, spacing, 6.0), ball(6.0));
    }

    #[test]
    fn the_grid_edge_does_not_erode() {
        let dims = [3, 3, 3];
        let eroded = erode_ball(&[true; 27], dims, [1.0; 3], 2.0);
        assert!(eroded.iter().all(|e| *e));
    }
}
