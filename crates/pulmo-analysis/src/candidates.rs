//! Nodule candidates: bright blobs in the lungs, found by a multi-scale Hessian "dot" filter
//! (Li et al. 2003). Built for sensitivity: false-positive reduction comes after.
//!
//! The CT is cropped to the lungs, everything outside the lung mask is set to lung density (so
//! a nodule against the chest wall becomes an isolated blob, the wall itself no blob at all),
//! and resampled to near-isotropic grids: 1 mm for small scales, 2.5 mm for large ones. At each
//! scale sigma the response is sigma^2 * l1^2 / |l3| where all three Hessian eigenvalues are
//! negative (l1 the one nearest zero, l3 the most negative): large for balls, near zero for
//! tubes (one eigenvalue near zero) and plates. Local maxima of the best response over scales
//! above a threshold are the candidates, with radius sqrt(3) * sigma.

use pulmo_torch::image;
use pulmo_torch::{Device, TchError, Tensor};
use pulmo_volume::{vec3, Vec3, Volume};
use serde::{Deserialize, Serialize};

use crate::lung::LungMask;

/// Density given to everything outside the lungs before filtering, HU.
const LUNG_BACKGROUND_HU: f32 = -850.0;
/// (grid spacing in mm, scales sigma in mm on that grid).
const GRIDS: [(f64, &[f64]); 2] = [(1.0, &[1.0, 1.5, 2.2]), (2.5, &[3.3, 5.0, 7.5])];
/// Responses below this (HU-scaled curvature) are noise and vessel wiggles.
const MIN_RESPONSE: f64 = 20.0;
/// Keep at most this many candidates per scan, strongest first.
const MAX_CANDIDATES: usize = 600;
/// Margin around the lungs' bounding box, mm.
const MARGIN_MM: f64 = 12.0;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub centre_lps_mm: Vec3,
    /// Radius of the best-fitting blob, sqrt(3) * sigma.
    pub radius_mm: f64,
    pub response: f64,
}

/// Candidates in the lungs of `ct`, strongest first.
pub fn find_candidates(ct: &Volume<i16>, lungs: &LungMask, device: Device) -> Result<Vec<Candidate>, TchError> {
    let Some(region) = Region::around_lungs(lungs) else { return Ok(Vec::new()) };
    let masked = region.masked_hu(ct, lungs);
    let tensor = image::to_tensor(&masked, region.dims(), device)?;
    let mut all = Vec::new();
    for (spacing, scales) in GRIDS {
        all.extend(candidates_on_grid(&region, &tensor, spacing, scales, ct)?);
    }
    Ok(suppress_overlaps(all))
}

/// A box of CT voxels [start, end) per axis.
struct Region {
    start: [usize; 3],
    end: [usize; 3],
}

impl Region {
    fn around_lungs(lungs: &LungMask) -> Option<Region> {
        let dims = lungs.labels.dims();
        let (mut start, mut end) = (dims, [0usize; 3]);
        for (i, _) in lungs.labels.data().iter().enumerate().filter(|(_, l)| **l != 0) {
            let idx = [i / (dims[1] * dims[2]), (i / dims[2]) % dims[1], i % dims[2]];
            for a in 0..3 {
                start[a] = start[a].min(idx[a]);
                end[a] = end[a].max(idx[a] + 1);
            }
        }
        if end[0] == 0 {
            return None;
        }
        let spacing = lungs.labels.geometry().spacing;
        for a in 0..3 {
            let margin = (MARGIN_MM / spacing[a]).ceil() as usize;
            start[a] = start[a].saturating_sub(margin);
            end[a] = (end[a] + margin).min(dims[a]);
        }
        Some(Region { start, end })
    }

    fn dims(&self) -> [usize; 3] {
        [0, 1, 2].map(|a| self.end[a] - self.start[a])
    }

    /// The CT inside the box, lung density outside the lung mask.
    fn masked_hu(&self, ct: &Volume<i16>, lungs: &LungMask) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.dims().iter().product());
        for z in self.start[0]..self.end[0] {
            for y in self.start[1]..self.end[1] {
                for x in self.start[2]..self.end[2] {
                    let inside = lungs.labels.get([z, y, x]).is_some_and(|l| *l != 0);
                    let hu = ct.get([z, y, x]).map_or(LUNG_BACKGROUND_HU, |v| f32::from(*v));
                    out.push(if inside { hu } else { LUNG_BACKGROUND_HU });
                }
            }
        }
        out
    }
}

/// The dot filter at `scales` on a grid of about `spacing` mm.
fn candidates_on_grid(region: &Region, hu: &Tensor, spacing: f64, scales: &[f64], ct: &Volume<i16>) -> Result<Vec<Candidate>, TchError> {
    let src = region.dims();
    let ct_spacing = ct.geometry().spacing;
    let dims = [0, 1, 2].map(|a| ((src[a] as f64 - 1.0) * ct_spacing[a] / spacing).round().max(1.0) as i64 + 1);
    // align_corners: the grid's first and last voxel centres are the region's.
    let step = [0, 1, 2].map(|a| if dims[a] > 1 { (src[a] as f64 - 1.0) / (dims[a] - 1) as f64 } else { 1.0 });
    let grid_spacing = [0, 1, 2].map(|a| step[a] * ct_spacing[a]);
    let grid = image::resample(hu, dims)?;
    let mut best: Option<(Tensor, Tensor)> = None;
    for &sigma in scales {
        let response = dot_response(&grid, sigma, grid_spacing)?;
        let scale = response.f_ones_like()? * sigma;
        best = Some(match best {
            None => (response, scale),
            Some((r, s)) => {
                let better = response.f_gt_tensor(&r)?;
                (response.f_where_self(&better, &r)?, scale.f_where_self(&better, &s)?)
            }
        });
    }
    let Some((response, scale)) = best else { return Ok(Vec::new()) };
    let peaks = image::local_maxima(&response, 2)?.f_mul(&response.f_gt(MIN_RESPONSE)?)?;
    let (r, s, p) = (image::to_vec(&response)?, image::to_vec(&scale)?, image::to_vec(&peaks)?);
    let [_, ny, nx] = dims.map(|d| d as usize);
    let found = p.iter().enumerate().filter(|(_, v)| **v > 0.5).map(|(i, _)| {
        let grid_index = [i / (ny * nx), (i / nx) % ny, i % nx];
        let ct_index = [0, 1, 2].map(|a| region.start[a] as f64 + grid_index[a] as f64 * step[a]);
        Candidate {
            centre_lps_mm: ct.geometry().index_to_lps(ct_index),
            radius_mm: 3f64.sqrt() * f64::from(s[i]),
            response: f64::from(r[i]),
        }
    });
    Ok(found.collect())
}

/// sigma^2 * l1^2 / |l3| where all eigenvalues are negative, else 0.
fn dot_response(grid: &Tensor, sigma: f64, spacing: [f64; 3]) -> Result<Tensor, TchError> {
    let blurred = image::gaussian_blur(grid, spacing.map(|s| sigma / s))?;
    let [l1, _, l3] = image::hessian_eigenvalues(&blurred, spacing)?;
    let dot = (&l1 * &l1) / l3.f_abs()?.f_clamp_min(1e-6)? * (sigma * sigma);
    let bright = l1.f_lt(0.0)?;
    dot.f_where_self(&bright, &dot.f_zeros_like()?)
}

/// Strongest first; a candidate within the radius of a stronger one (or 3 mm) is the same blob.
/// Only the stronger one's radius counts: a faint large blob (a ground-glass nodule) is not
/// the bright vessel crossing its edge.
fn suppress_overlaps(mut all: Vec<Candidate>) -> Vec<Candidate> {
    all.sort_by(|a, b| b.response.total_cmp(&a.response));
    let mut kept: Vec<Candidate> = Vec::new();
    for c in all {
        let overlaps = kept.iter().any(|k| vec3::dist(k.centre_lps_mm, c.centre_lps_mm) < k.radius_mm.max(3.0));
        if !overlaps {
            kept.push(c);
        }
        if kept.len() == MAX_CANDIDATES {
            break;
        }
    }
    kept
}
