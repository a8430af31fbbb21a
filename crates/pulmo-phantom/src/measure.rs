//! Ground-truth measurement of implicit nodule shapes: volume by adaptive octree integration,
//! and Lung-RADS axial long/short axes on the axial plane of maximal cross-section.

use serde::{Deserialize, Serialize};

use crate::math::{mat_vec, transpose, Mat3, Vec3};

/// Volume (mm³) of {p : sd(p) < 0} within the cube of half-width `radius` around the origin.
/// Cells that the distance bound proves inside or outside are counted whole; boundary cells
/// are split down to radius/128 and the last level takes a linear partial fraction.
pub fn volume_mm3(sd: &dyn Fn(Vec3) -> f64, radius: f64) -> f64 {
    integrate(sd, [0.0; 3], radius, 8)
}

fn integrate(sd: &dyn Fn(Vec3) -> f64, c: Vec3, half: f64, depth_left: u32) -> f64 {
    let d = sd(c);
    let reach = half * 3f64.sqrt() * 1.02;
    let cell = (2.0 * half).powi(3);
    if d >= reach {
        return 0.0;
    }
    if d <= -reach {
        return cell;
    }
    if depth_left == 0 {
        return cell * (0.5 - d / (2.0 * half)).clamp(0.0, 1.0);
    }
    let q = half / 2.0;
    let mut sum = 0.0;
    for i in 0..8 {
        let o = [if i & 1 == 0 { -q } else { q }, if i & 2 == 0 { -q } else { q }, if i & 4 == 0 { -q } else { q }];
        sum += integrate(sd, [c[0] + o[0], c[1] + o[1], c[2] + o[2]], q, depth_left - 1);
    }
    sum
}

/// Diameters on one axial (LPS z = const) plane, as a radiologist's callipers take them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AxialAxes {
    /// Maximal Feret diameter on the plane, mm.
    pub long_axis_mm: f64,
    /// Longest chord perpendicular to the long axis, mm.
    pub short_axis_mm: f64,
    /// Offset of the measured plane from the nodule centre along LPS z, mm.
    pub plane_offset_mm: f64,
    pub area_mm2: f64,
}

/// `sd` is in the nodule's frame; `rotation` turns nodule-frame vectors into LPS vectors.
pub fn axial_axes(sd: &dyn Fn(Vec3) -> f64, rotation: &Mat3, radius: f64) -> AxialAxes {
    let to_local = transpose(rotation);
    let at = |u: f64, v: f64, h: f64| sd(mat_vec(&to_local, [u, v, h]));
    let h = best_plane(&at, radius);
    let step = radius / 150.0;
    let points = contour_points(&at, h, radius, step);
    let (long, a, b) = feret(&points);
    let short = perpendicular_extent(&points, a, b, step);
    AxialAxes { long_axis_mm: long, short_axis_mm: short, plane_offset_mm: h, area_mm2: area(&at, h, radius, step) }
}

fn area(at: &dyn Fn(f64, f64, f64) -> f64, h: f64, radius: f64, step: f64) -> f64 {
    let n = (radius / step).ceil() as i64 + 1;
    let mut sum = 0.0;
    for i in -n..=n {
        for j in -n..=n {
            sum += (0.5 - at(i as f64 * step, j as f64 * step, h) / step).clamp(0.0, 1.0);
        }
    }
    sum * step * step
}

/// Plane offset with the largest cross-section: a coarse scan, then two finer ones.
fn best_plane(at: &dyn Fn(f64, f64, f64) -> f64, radius: f64) -> f64 {
    let step = radius / 40.0;
    let (mut centre, mut span) = (0.0, radius);
    for _ in 0..3 {
        let mut best = (f64::MIN, centre);
        for k in -20..=20 {
            let h = centre + span * k as f64 / 20.0;
            if h.abs() > radius {
                continue;
            }
            let a = area(at, h, radius, step);
            if a > best.0 + 1e-12 {
                best = (a, h);
            }
        }
        centre = best.1;
        span /= 10.0;
    }
    centre
}

/// Points on the in-plane contour: centres of boundary grid cells moved onto the surface
/// by Newton steps, so the callipers do not inherit the grid's staircase.
fn contour_points(at: &dyn Fn(f64, f64, f64) -> f64, h: f64, radius: f64, step: f64) -> Vec<[f64; 2]> {
    let n = (radius / step).ceil() as i64 + 2;
    let w = (2 * n + 1) as usize;
    let inside: Vec<bool> = (0..w * w)
        .map(|k| at((k % w) as f64 * step - n as f64 * step, (k / w) as f64 * step - n as f64 * step, h) < 0.0)
        .collect();
    let mut points = Vec::new();
    for j in 1..w - 1 {
        for i in 1..w - 1 {
            let k = j * w + i;
            if inside[k] && !(inside[k - 1] && inside[k + 1] && inside[k - w] && inside[k + w]) {
                let p = [i as f64 * step - n as f64 * step, j as f64 * step - n as f64 * step];
                points.push(snap(at, h, p, step));
            }
        }
    }
    points
}

fn snap(at: &dyn Fn(f64, f64, f64) -> f64, h: f64, mut p: [f64; 2], step: f64) -> [f64; 2] {
    let e = step * 1e-3;
    for _ in 0..4 {
        let f = at(p[0], p[1], h);
        let gx = (at(p[0] + e, p[1], h) - at(p[0] - e, p[1], h)) / (2.0 * e);
        let gy = (at(p[0], p[1] + e, h) - at(p[0], p[1] - e, h)) / (2.0 * e);
        let g2 = gx * gx + gy * gy;
        if g2 < 1e-12 {
            break;
        }
        let (dx, dy) = (f * gx / g2, f * gy / g2);
        // A Newton step larger than a cell means a crease (where lobes meet): stay put.
        if dx.hypot(dy) > 2.0 * step {
            break;
        }
        p = [p[0] - dx, p[1] - dy];
    }
    p
}

fn convex_hull(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let mut pts = points.to_vec();
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    let cross = |o: [f64; 2], a: [f64; 2], b: [f64; 2]| (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    let mut hull: Vec<[f64; 2]> = Vec::new();
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &[f64; 2]>> =
            if pass == 0 { Box::new(pts.iter()) } else { Box::new(pts.iter().rev()) };
        for &p in iter {
            while hull.len() >= start + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0 {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

/// Maximal Feret diameter and its end points.
fn feret(points: &[[f64; 2]]) -> (f64, [f64; 2], [f64; 2]) {
    let hull = convex_hull(points);
    let mut best = (0.0, [0.0; 2], [0.0; 2]);
    for (i, a) in hull.iter().enumerate() {
        for b in &hull[i + 1..] {
            let d = (a[0] - b[0]).hypot(a[1] - b[1]);
            if d > best.0 {
                best = (d, *a, *b);
            }
        }
    }
    best
}

/// Longest extent perpendicular to a→b, taken within strips one grid step wide along a→b.
fn perpendicular_extent(points: &[[f64; 2]], a: [f64; 2], b: [f64; 2], step: f64) -> f64 {
    let len = (b[0] - a[0]).hypot(b[1] - a[1]);
    if len == 0.0 {
        return 0.0;
    }
    let e = [(b[0] - a[0]) / len, (b[1] - a[1]) / len];
    let n = [-e[1], e[0]];
    let mut strips: std::collections::HashMap<i64, (f64, f64)> = std::collections::HashMap::new();
    for p in points {
        let s = ((p[0] * e[0] + p[1] * e[1]) / step).round() as i64;
        let t = p[0] * n[0] + p[1] * n[1];
        let entry = strips.entry(s).or_insert((t, t));
        entry.0 = entry.0.min(t);
        entry.1 = entry.1.max(t);
    }
    strips.values().map(|(lo, hi)| hi - lo).fold(0.0, f64::max)
}

/// Lung-RADS rounding: each axis to 0.1 mm, then their mean to 0.1 mm.
pub fn mean_diameter(long: f64, short: f64) -> f64 {
    let r = |x: f64| (x * 10.0).round() / 10.0;
    r((r(long) + r(short)) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::{dist, dot, rotation_deg, IDENTITY};

    #[test]
    fn sphere_volume_and_axes_are_exact() {
        for d in [4.0, 8.0, 23.0] {
            let r = d / 2.0;
            let sd = move |p: Vec3| dist(p, [0.0; 3]) - r;
            let v = volume_mm3(&sd, r * 1.1);
            let exact = 4.0 / 3.0 * std::f64::consts::PI * r.powi(3);
            assert!((v / exact - 1.0).abs() < 1e-3, "d {d}: {v} vs {exact}");
            let axes = axial_axes(&sd, &rotation_deg([5.0, 7.0, 30.0]), r * 1.1);
            assert!((axes.long_axis_mm - d).abs() < 0.01 * d, "{axes:?}");
            assert!((axes.short_axis_mm - d).abs() < 0.01 * d, "{axes:?}");
            assert!(axes.plane_offset_mm.abs() < 0.02 * d);
            assert_eq!(mean_diameter(axes.long_axis_mm, axes.short_axis_mm), d);
        }
    }

    #[test]
    fn ellipsoid_axes_follow_the_axial_section() {
        // Semi-axes 6 (x), 3 (y), 4 (z): axial section is 12 x 6 mm.
        let sd = |p: Vec3| {
            let q = [p[0] / 6.0, p[1] / 3.0, p[2] / 4.0];
            (dot(q, q).sqrt() - 1.0) * 3.0
        };
        let axes = axial_axes(&sd, &IDENTITY, 6.5);
        assert!((axes.long_axis_mm - 12.0).abs() < 0.1, "{axes:?}");
        assert!((axes.short_axis_mm - 6.0).abs() < 0.1, "{axes:?}");
    }
}
