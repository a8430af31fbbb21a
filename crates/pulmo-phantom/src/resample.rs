//! Resampling a real series under a known affine motion, so an insertion follow-up's anatomy
//! moves as a patient's does between two exams.

use pulmo_volume::Volume;
use rayon::prelude::*;

use crate::math::{add, scale, Affine, Vec3};
use crate::PhantomError;

/// What a voxel whose source lies outside the scanned volume shows: air.
pub(crate) const OUTSIDE_HU: i16 = -1024;

/// `current(x) = volume(A^-1 x)` on `volume`'s own grid and geometry, trilinear, where A is
/// `prior_to_current` in LPS mm; voxels mapped from outside the volume are air.
pub(crate) fn resample(volume: &Volume<i16>, prior_to_current: &Affine) -> Result<Volume<i16>, PhantomError> {
    let g = volume.geometry();
    let grid = Affine { linear: g.matrix(), translation: g.origin };
    let to_prior = prior_to_current.inverse().ok_or(PhantomError::Internal("resampling transform is singular"))?;
    let from_lps = grid.inverse().ok_or(PhantomError::Internal("resampling grid is singular"))?;
    // One index -> index map, so each row is a start point plus a constant step.
    let source_index = from_lps.then_after(&to_prior.then_after(&grid));
    let [_, ny, nx] = volume.dims();
    let step = [0, 1, 2].map(|r| source_index.linear[r][2]);
    let mut data = vec![OUTSIDE_HU; volume.len()];
    data.par_chunks_mut(ny * nx).enumerate().for_each(|(z, slice)| {
        for (y, row) in slice.chunks_mut(nx).enumerate() {
            let start = source_index.apply([z as f64, y as f64, 0.0]);
            for (x, out) in row.iter_mut().enumerate() {
                if let Some(v) = trilinear(volume, add(start, scale(step, x as f64))) {
                    *out = v;
                }
            }
        }
    });
    Ok(Volume::new(volume.dims(), *g, data)?)
}

/// The volume at the continuous index `p` (z, y, x); None outside the voxel centres' hull.
fn trilinear(volume: &Volume<i16>, p: Vec3) -> Option<i16> {
    let dims = volume.dims();
    let mut lo = [0usize; 3];
    let mut hi = [0usize; 3];
    let mut t = [0.0; 3];
    for a in 0..3 {
        let last = (dims[a] - 1) as f64;
        if !(0.0..=last).contains(&p[a]) {
            return None;
        }
        // The lower corner stays one below the last voxel, so a point on the far face still has
        // an upper neighbour (with weight 1).
        lo[a] = (p[a].floor() as usize).min(dims[a].saturating_sub(2));
        hi[a] = (lo[a] + 1).min(dims[a] - 1);
        t[a] = p[a] - lo[a] as f64;
    }
    let data = volume.data();
    let at = |z: usize, y: usize, x: usize| data[(z * dims[1] + y) * dims[2] + x] as f64;
    let lerp = |a: f64, b: f64, t: f64| a + (b - a) * t;
    let plane = |z: usize| {
        let top = lerp(at(z, lo[1], lo[2]), at(z, lo[1], hi[2]), t[2]);
        let bottom = lerp(at(z, hi[1], lo[2]), at(z, hi[1], hi[2]), t[2]);
        lerp(top, bottom, t[1])
    };
    Some(lerp(plane(lo[0]), plane(hi[0]), t[0]).round() as i16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulmo_volume::Geometry;

    fn ramp() -> Volume<i16> {
        let dims = [6, 7, 8];
        let geometry = Geometry::axial([-10.0, 5.0, 30.0], [2.5, 1.5, 1.0]).unwrap();
        let data = (0..6 * 7 * 8).map(|i| ((i / 56) * 100 + ((i / 8) % 7) * 10 + i % 8) as i16).collect();
        Volume::new(dims, geometry, data).unwrap()
    }

    /// A linear image stays exact under trilinear interpolation, so a shifted ramp is the ramp
    /// minus the shift's value, and what moves in from outside is air.
    #[test]
    fn a_shift_moves_a_ramp_and_fills_air() {
        let v = ramp();
        let shift = Affine { linear: crate::math::IDENTITY, translation: [1.0, 0.75, 1.25] };
        let moved = resample(&v, &shift).unwrap();
        // x by 1 mm = 1 column (1), y by 0.75 mm = 0.5 row (5), z by 1.25 mm = 0.5 slice (50).
        assert_eq!(moved.get([2, 3, 4]), Some(&(v.get([2, 3, 4]).unwrap() - 1 - 5 - 50)));
        assert_eq!(moved.get([0, 3, 4]), Some(&OUTSIDE_HU));
        assert_eq!(moved.get([3, 3, 0]), Some(&OUTSIDE_HU));
    }

    #[test]
    fn the_identity_reproduces_the_volume() {
        let v = ramp();
        assert_eq!(resample(&v, &Affine::IDENTITY).unwrap(), v);
    }
}
