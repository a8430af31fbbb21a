//! The chest wall's surface next to a nodule, at the CT's own resolution: where the lung mask,
//! made on a coarser grid, stops short of the pleura, the lung is extended up to it.
//!
//! The lung mask is closed over a juxtapleural nodule on a working grid of ~1.5 mm, so across
//! the nodule its edge may lie a working pixel inside the pleura, and the nodule, segmented
//! inside the mask, loses that slice of its wall side (a fifth of a 6 mm nodule's volume).
//! Where the pleura is seen (lung air against the wall), its surface is found at sub-voxel
//! precision and a plane fitted to it next to the nodule; box voxels on the lung side of that
//! plane, within a working pixel of the mask, are lung.

use pulmo_volume::{distance, mask, vec3, Vec3};

/// The pleura is where the CT crosses this between wall and aerated lung, HU: the midpoint of
/// soft tissue (~40) and lung (~-850).
const PLEURA_HU: f32 = -400.0;
/// Voxels further than this from the lung mask are never added, mm: the working grid's pixel
/// (~1.5 mm) plus a margin.
const MAX_GAP_MM: f64 = 2.0;
/// Pleural surface points within this many mm of the nodule's rim (its seed radius) fit the
/// plane: far enough to see the wall past the nodule, near enough that the chest's curvature
/// (radius ~100 mm and more) bends it under 0.3 mm.
const FIT_MARGIN_MM: f64 = 7.0;
/// At least this many surface points, and no more than this RMS distance from their plane, mm:
/// else the wall here is no plane (the mediastinum, a costophrenic corner) and is left alone.
const MIN_POINTS: usize = 24;
const MAX_RMS_MM: f64 = 0.6;
/// In-plane crossings place a pleura that faces along the slices (a diaphragm's dome, the
/// apex) no better than the slice thickness: only a wall whose normal is at least 60 degrees
/// from the body axis (z component at most this) is refined.
const MAX_NORMAL_Z: f64 = 0.5;

/// `lung` extended to the pleura next to the seed (box voxel `seed` of a nodule of
/// `radius_mm`): the voxels added are the lung side of the fitted pleural plane the mask missed.
pub(crate) fn extend_to_pleura(hu: &[f32], lung: &[bool], dims: [usize; 3], spacing: Vec3, seed: usize, radius_mm: f64) -> Vec<bool> {
    let mm = |i: usize| mask::position_mm(i, dims, spacing);
    let centre = mm(seed);
    let near = |p: Vec3| vec3::dist(p, centre) <= radius_mm + FIT_MARGIN_MM;
    let points: Vec<Vec3> = pleural_points(hu, lung, dims, spacing).into_iter().filter(|p| near(*p)).collect();
    let Some(plane) = Plane::fit(&points).map(|p| p.facing(centre)).filter(|p| p.normal[0].abs() <= MAX_NORMAL_Z) else {
        return lung.to_vec();
    };
    let near_mask = distance::dilate_ball(lung, dims, spacing, MAX_GAP_MM);
    let missed = |i: usize| near_mask[i] && near(mm(i)) && (0.0..=MAX_GAP_MM).contains(&plane.signed_mm(mm(i)));
    (0..lung.len()).map(|i| lung[i] || missed(i)).collect()
}

/// Where the CT crosses [`PLEURA_HU`] between a dense voxel outside the lung mask (the wall)
/// and an aerated in-plane neighbour inside it, linear between their centres. In-plane only:
/// across slices 2-2.5 mm thick a slanted pleura is a partial-volume blur.
fn pleural_points(hu: &[f32], lung: &[bool], dims: [usize; 3], spacing: Vec3) -> Vec<Vec3> {
    let plane = dims[1] * dims[2];
    let mut points = Vec::new();
    for wall in (0..hu.len()).filter(|&i| !lung[i] && hu[i] >= PLEURA_HU) {
        let in_plane = mask::face_neighbours(wall, dims).filter(|&j| j / plane == wall / plane);
        for air in in_plane.filter(|&j| lung[j] && hu[j] < PLEURA_HU) {
            let t = f64::from((hu[wall] - PLEURA_HU) / (hu[wall] - hu[air]));
            let (a, b) = (mask::position_mm(wall, dims, spacing), mask::position_mm(air, dims, spacing));
            points.push(vec3::lerp(a, b, t));
        }
    }
    points
}

/// A plane through `origin` with unit `normal` pointing into the lung.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Plane {
    origin: Vec3,
    normal: Vec3,
}

impl Plane {
    /// Least-squares plane of `points`, refitted once without those over 2.5 RMS (or 1 mm)
    /// away, which are not the wall (a vessel's root, the nodule's own rim where it meets the
    /// wall at a slant); `None` where too few points are left or they are not flat.
    fn fit(points: &[Vec3]) -> Option<Plane> {
        let first = Plane::least_squares(points)?;
        let limit = (2.5 * first.rms_mm(points)).max(1.0);
        let kept: Vec<Vec3> = points.iter().copied().filter(|p| first.signed_mm(*p).abs() <= limit).collect();
        let plane = Plane::least_squares(&kept)?;
        (plane.rms_mm(&kept) <= MAX_RMS_MM).then_some(plane)
    }

    /// The normal is the scatter matrix's least eigenvector, found by power iteration on
    /// `trace - scatter` (whose greatest it is) from each axis, keeping the flattest.
    fn least_squares(points: &[Vec3]) -> Option<Plane> {
        if points.len() < MIN_POINTS {
            return None;
        }
        let (origin, cov) = vec3::scatter(points);
        let trace = cov[0][0] + cov[1][1] + cov[2][2];
        let shifted = |v: Vec3| vec3::sub(vec3::scale(v, trace), vec3::mat_vec(&cov, v));
        let spread = |v: Vec3| vec3::dot(v, vec3::mat_vec(&cov, v));
        let normal = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
            .map(|start| (0..60).fold(start, |v, _| vec3::normalize(shifted(v))))
            .into_iter()
            .min_by(|a, b| spread(*a).total_cmp(&spread(*b)))?;
        Some(Plane { origin, normal })
    }

    /// The same plane with its normal turned towards `p` (the nodule, in the lung).
    fn facing(self, p: Vec3) -> Plane {
        match self.signed_mm(p) < 0.0 {
            true => Plane { normal: vec3::scale(self.normal, -1.0), ..self },
            false => self,
        }
    }

    fn signed_mm(&self, p: Vec3) -> f64 {
        vec3::dot(vec3::sub(p, self.origin), self.normal)
    }

    fn rms_mm(&self, points: &[Vec3]) -> f64 {
        (points.iter().map(|p| self.signed_mm(*p).powi(2)).sum::<f64>() / points.len().max(1) as f64).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::extend_to_pleura;

    const DIMS: [usize; 3] = [12, 40, 40];
    const SPACING: [f64; 3] = [1.0, 0.7, 0.7];
    const SEED: usize = (6 * 40 + 20) * 40 + 15;

    fn zyx(i: usize) -> [usize; 3] {
        [i / 1600, (i / 40) % 40, i % 40]
    }

    /// Chest wall where `wall` holds, lung elsewhere; the mask is the lung except where `short`.
    fn scene(wall: impl Fn([usize; 3]) -> bool, short: impl Fn([usize; 3]) -> bool) -> (Vec<f32>, Vec<bool>) {
        let hu = (0..1600 * 12).map(|i| if wall(zyx(i)) { 40.0 } else { -850.0 }).collect();
        let lung = (0..1600 * 12).map(|i| !wall(zyx(i)) && !short(zyx(i))).collect();
        (hu, lung)
    }

    #[test]
    fn a_mask_short_of_the_pleura_next_to_a_nodule_reaches_it_and_no_further() {
        // The wall is x < 10; next to the seed the mask stops two pixels (1.4 mm) short of it.
        let short = |[z, y, x]: [usize; 3]| (3..9).contains(&z) && (15..25).contains(&y) && x < 12;
        let (hu, lung) = scene(|[_, _, x]| x < 10, short);
        let extended = extend_to_pleura(&hu, &lung, DIMS, SPACING, SEED, 3.0);
        for i in 0..hu.len() {
            let [_, _, x] = zyx(i);
            assert_eq!(extended[i], x >= 10, "voxel {:?}", zyx(i));
        }
    }

    #[test]
    fn a_pleura_facing_along_the_slices_is_left_alone() {
        // A diaphragm's dome under the nodule: in-plane crossings cannot place it.
        let (hu, lung) = scene(|[z, _, _]| z < 4, |[z, _, _]| z < 6);
        assert_eq!(extend_to_pleura(&hu, &lung, DIMS, SPACING, SEED, 3.0), lung);
    }

    #[test]
    fn without_a_wall_in_view_the_mask_is_unchanged() {
        let (hu, lung) = scene(|_| false, |[_, y, _]| y < 3);
        assert_eq!(extend_to_pleura(&hu, &lung, DIMS, SPACING, SEED, 3.0), lung);
    }
}
