//! Registration of a prior CT study to the current one: a global affine map from the lung
//! masks, then a rigid refinement on HU in a window around one prior point (e.g. a nodule).
//!
//! The prior is the fixed image and the current the moving one, so the fitted map is
//! prior LPS -> current LPS directly, and a refinement window is a cube of the prior around
//! the prior point. The global fit compares the lungs' smoothed occupancy (robust to contrast,
//! dose and kernel), starting from a map that lines up their centroids and spreads; the local
//! fit compares HU in a lung window, where vessels and fissures pin the position down.

use pulmo_torch::image;
use pulmo_torch::register::{self, Fit, Image, Level, Matrix4, RegisterError, Window};
use pulmo_torch::{Device, Kind, TchError, Tensor};
use pulmo_volume::{vec3, Affine, Geometry, Vec3, Volume};
use serde::{Deserialize, Serialize};

use crate::lung::LungMask;

/// `lung_dice`: Dice of the lung masks after registration, on the ~2 mm grid of the fit;
/// `similarity`: NCC in [-1, 1] of the smoothed lung occupancies after it (finest level).
pub use pulmo_findings::RegistrationQuality;

/// The lung masks are average-pooled to about this before the global fit (mm).
const BASE_VOXEL_MM: f64 = 2.0;
/// Kept around the lungs' bounding box: more than the coarsest level's blur.
const LUNG_MARGIN_MM: f64 = 24.0;
const GLOBAL_LEVELS: [Level; 2] = [Level { voxel_mm: 8.0, iterations: 40 }, Level { voxel_mm: 4.0, iterations: 30 }];
/// The initial per-axis scale is the ratio of the lungs' spreads, kept within this factor of
/// 1: different inspiration changes lung height by a few per cent, not by a quarter.
const MAX_INITIAL_SCALE: f64 = 1.25;
const LOCAL_LEVELS: [Level; 2] = [Level { voxel_mm: 2.0, iterations: 20 }, Level { voxel_mm: 1.0, iterations: 20 }];
const MIN_HALF_WINDOW_MM: f64 = 20.0;
const HALF_WINDOW_PER_RADIUS: f64 = 1.5;
/// Bounds the cost for a mass: beyond this the window holds more than its surroundings need.
const MAX_HALF_WINDOW_MM: f64 = 60.0;
/// A local fit that moves the point further than this from the global mapping is not trusted.
const MAX_CORRECTION_MM: f64 = 10.0;
/// Crops reach this far beyond what the window samples, for the smoothing of the levels.
const CROP_MARGIN_MM: f64 = 5.0;
/// HU window of the local fit: air to soft tissue; bone and contrast saturate.
const LUNG_WINDOW_HU: (f32, f32) = (-1000.0, 300.0);

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("registration failed: {0}")]
    Register(#[from] RegisterError),
    #[error("tensor operation failed: {0}")]
    Torch(#[from] TchError),
    #[error("the {0} study's lung mask is empty")]
    EmptyLungs(&'static str),
    #[error("the {0} study's lung mask is not on its CT's grid")]
    MaskGrid(&'static str),
    #[error("the fitted map is singular or mirrors")]
    Singular,
    #[error("the window around {point:?} lies outside the {study} study")]
    OutsideScan { point: Vec3, study: &'static str },
}

/// The global map from the prior study's patient coordinates to the current one's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// Prior LPS (mm) -> current LPS (mm).
    pub prior_to_current: Affine,
    pub quality: RegistrationQuality,
}

/// Where a prior point lies in the current study, refined locally.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LocalFit {
    pub current_point_lps: Vec3,
    /// NCC of the HU window around the point under the map used (refined or global).
    pub similarity: f64,
    /// False when the local fit did not improve the similarity or moved the point too far:
    /// the point is then the global mapping.
    pub refined: bool,
}

/// Fits the global affine map from the prior study to the current one on their lung masks.
/// The fit reads only the masks; each CT must share its mask's grid, since the map is
/// between the CTs' patient frames.
pub fn register_to_prior(
    current_ct: &Volume<i16>,
    current_lungs: &LungMask,
    prior_ct: &Volume<i16>,
    prior_lungs: &LungMask,
    device: Device,
) -> Result<Registration, RegistrationError> {
    same_grid(current_ct, current_lungs, "current")?;
    same_grid(prior_ct, prior_lungs, "prior")?;
    // The prior's samples need only cover its lungs; the current is kept whole so that where
    // it has no lung is known to be no lung, not outside the image.
    let prior = Occupancy::of(prior_lungs, device, "prior")?.around_lungs()?;
    let current = Occupancy::of(current_lungs, device, "current")?;
    let init = prior.moments()?.map_onto(&current.moments()?);
    let fit = register::register_affine(&prior.image(), &current.image(), init, &GLOBAL_LEVELS)?;
    let prior_to_current = Affine::from(fit.fixed_to_moving);
    // A mirror image or a collapse is no patient's change of pose or breath.
    let det = vec3::det(&prior_to_current.linear);
    if !(det.is_finite() && det > 0.0) || prior_to_current.inverse().is_none() {
        return Err(RegistrationError::Singular);
    }
    let lung_dice = dice(&prior, &current, &fit)?;
    tracing::debug!(lung_dice, similarity = fit.similarity, "prior registered to current");
    Ok(Registration { prior_to_current, quality: RegistrationQuality { lung_dice, similarity: fit.similarity } })
}

/// Refines where `prior_point_lps` lies in the current study: a rigid fit on HU in a cube of
/// half-size 1.5 `radius_mm` (20 to 60 mm) around it, starting from the global map. Kept only
/// when it raises the similarity and moves the point at most 10 mm; otherwise the global
/// mapping with `refined: false`.
pub fn refine_near(
    current_ct: &Volume<i16>,
    prior_ct: &Volume<i16>,
    global: &Registration,
    prior_point_lps: Vec3,
    radius_mm: f64,
    device: Device,
) -> Result<LocalFit, RegistrationError> {
    let radius = if radius_mm.is_finite() { radius_mm.max(0.0) } else { 0.0 };
    let half = (HALF_WINDOW_PER_RADIUS * radius).clamp(MIN_HALF_WINDOW_MM, MAX_HALF_WINDOW_MM);
    let init: Matrix4 = global.prior_to_current.into();
    let mapped = global.prior_to_current.apply(prior_point_lps);
    let outside = |study| RegistrationError::OutsideScan { point: prior_point_lps, study };
    let prior_box = cube(prior_point_lps, half + CROP_MARGIN_MM);
    let prior = HuCrop::covering(prior_ct, &prior_box, 0.0, device)?.ok_or_else(|| outside("prior"))?;
    // The current crop holds the window carried by the global map, plus the largest accepted
    // correction.
    let window_box = cube(prior_point_lps, half).map(|c| global.prior_to_current.apply(c));
    let current = HuCrop::covering(current_ct, &window_box, MAX_CORRECTION_MM + CROP_MARGIN_MM, device)?
        .ok_or_else(|| outside("current"))?;
    let window = Window { centre_world: prior_point_lps, half_size_mm: half };
    let fit = register::register_rigid_window(&prior.image(), &current.image(), init, window, &LOCAL_LEVELS)?;
    let refined_point = register::apply(&fit.fixed_to_moving, prior_point_lps);
    let correction = distance(refined_point, mapped);
    let accepted = fit.similarity > fit.initial_similarity && correction <= MAX_CORRECTION_MM;
    tracing::debug!(correction, before = fit.initial_similarity, after = fit.similarity, accepted, "local refinement");
    Ok(if accepted {
        LocalFit { current_point_lps: refined_point, similarity: fit.similarity, refined: true }
    } else {
        LocalFit { current_point_lps: mapped, similarity: fit.initial_similarity, refined: false }
    })
}

fn same_grid(ct: &Volume<i16>, lungs: &LungMask, study: &'static str) -> Result<(), RegistrationError> {
    if ct.dims() == lungs.labels.dims() && ct.geometry() == lungs.labels.geometry() {
        Ok(())
    } else {
        Err(RegistrationError::MaskGrid(study))
    }
}

/// A lung mask as occupancy (fraction of lung per ~2 mm voxel), cropped to the lungs.
struct Occupancy {
    voxels: Tensor,
    index_to_world: Matrix4,
}

/// Centroid and per-axis spread (standard deviation) of the lungs in LPS mm.
struct Moments {
    centroid: Vec3,
    spread: Vec3,
}

impl Occupancy {
    fn of(lungs: &LungMask, device: Device, study: &'static str) -> Result<Occupancy, RegistrationError> {
        let labels = &lungs.labels;
        let dims = labels.dims().map(|d| d as i64);
        let lung = Tensor::f_from_slice(labels.data())?.f_reshape(dims)?.f_to(device)?.f_gt(0)?.f_to_kind(Kind::Float)?;
        let (voxels, index_to_world) = register::downsample(&lung, &index_to_world(labels.geometry()), BASE_VOXEL_MM)?;
        if voxels.f_sum(Kind::Double)?.f_double_value(&[])? <= 0.0 {
            return Err(RegistrationError::EmptyLungs(study));
        }
        Ok(Occupancy { voxels, index_to_world })
    }

    /// Cut to the box of voxels with any lung, plus a margin.
    fn around_lungs(&self) -> Result<Occupancy, RegistrationError> {
        let dims = spatial(&self.voxels);
        let spacing = geometry_spacing(&self.index_to_world);
        let (mut start, mut len) = ([0i64; 3], [0i64; 3]);
        for a in 0..3 {
            let others: Vec<i64> = (0..3).filter(|&b| b != a).map(|b| b as i64).collect();
            let profile = image::to_vec(&self.voxels.f_amax(others.as_slice(), false)?)?;
            let first = profile.iter().position(|v| *v > 0.0).unwrap_or(0);
            let last = profile.iter().rposition(|v| *v > 0.0).unwrap_or(dims[a] - 1);
            let margin = (LUNG_MARGIN_MM / spacing[a]).ceil() as usize;
            let lo = first.saturating_sub(margin);
            start[a] = lo as i64;
            len[a] = ((last + margin).min(dims[a] - 1) - lo + 1) as i64;
        }
        let voxels = self.voxels.f_narrow(0, start[0], len[0])?.f_narrow(1, start[1], len[1])?.f_narrow(2, start[2], len[2])?;
        let shift = register::translation(start.map(|s| s as f64));
        Ok(Occupancy { voxels: voxels.f_contiguous()?, index_to_world: register::mul(&self.index_to_world, &shift) })
    }

    fn image(&self) -> Image<'_> {
        Image { voxels: &self.voxels, index_to_world: self.index_to_world }
    }

    fn moments(&self) -> Result<Moments, RegistrationError> {
        let w = image::to_vec(&self.voxels)?;
        let [_, ny, nx] = spatial(&self.voxels);
        let (mut mass, mut sum, mut square) = (0.0, [0.0; 3], [[0.0; 3]; 3]);
        for (i, &v) in w.iter().enumerate().filter(|(_, v)| **v > 0.0) {
            let v = f64::from(v);
            let index = [(i / (ny * nx)) as f64, ((i / nx) % ny) as f64, (i % nx) as f64];
            mass += v;
            for a in 0..3 {
                sum[a] += v * index[a];
                for b in 0..3 {
                    square[a][b] += v * index[a] * index[b];
                }
            }
        }
        let mean = sum.map(|s| s / mass);
        let cov: [[f64; 3]; 3] = std::array::from_fn(|a| std::array::from_fn(|b| square[a][b] / mass - mean[a] * mean[b]));
        // World covariance = M cov M^T with M the index -> world linear part.
        let m = &self.index_to_world;
        let spread = std::array::from_fn(|r| {
            let var: f64 = (0..3).flat_map(|a| (0..3).map(move |b| (a, b))).map(|(a, b)| m[r][a] * cov[a][b] * m[r][b]).sum();
            var.max(0.0).sqrt()
        });
        Ok(Moments { centroid: register::apply(m, mean), spread })
    }
}

impl Moments {
    /// The map that puts these lungs' centroid on `other`'s and scales each LPS axis by the
    /// ratio of their spreads.
    fn map_onto(&self, other: &Moments) -> Matrix4 {
        let mut m = register::IDENTITY;
        for (a, row) in m.iter_mut().take(3).enumerate() {
            let ratio = other.spread[a] / self.spread[a];
            let scale = if ratio.is_finite() { ratio.clamp(1.0 / MAX_INITIAL_SCALE, MAX_INITIAL_SCALE) } else { 1.0 };
            row[a] = scale;
            row[3] = other.centroid[a] - scale * self.centroid[a];
        }
        m
    }
}

/// Dice of the two lung masks (occupancy above one half) on the prior's grid after the fit.
fn dice(prior: &Occupancy, current: &Occupancy, fit: &Fit) -> Result<f64, RegistrationError> {
    let warped = register::warp(&prior.image(), &current.image(), fit.fixed_to_moving)?;
    let a = prior.voxels.f_gt(0.5)?.f_to_kind(Kind::Double)?;
    let b = warped.f_gt(0.5)?.f_to_kind(Kind::Double)?;
    let both = a.f_mul(&b)?.f_sum(Kind::Double)?.f_double_value(&[])?;
    let total = a.f_sum(Kind::Double)?.f_double_value(&[])? + b.f_sum(Kind::Double)?.f_double_value(&[])?;
    Ok(if total > 0.0 { 2.0 * both / total } else { 0.0 })
}

/// A cube of a CT in the lung window, scaled to [0, 1], with its grid.
struct HuCrop {
    voxels: Tensor,
    index_to_world: Matrix4,
}

impl HuCrop {
    /// The voxels of `ct` in the index box around `points` widened by `margin_mm` (clipped to
    /// the scan); `None` when that misses the scan or leaves under 2 voxels on an axis.
    fn covering(ct: &Volume<i16>, points: &[Vec3], margin_mm: f64, device: Device) -> Result<Option<HuCrop>, RegistrationError> {
        let Some((lo, hi)) = index_box(ct, points, margin_mm) else { return Ok(None) };
        let [_, ny, nx] = ct.dims();
        let (lo_hu, hi_hu) = LUNG_WINDOW_HU;
        let mut voxels = Vec::with_capacity((0..3).map(|a| hi[a] - lo[a] + 1).product());
        for z in lo[0]..=hi[0] {
            for y in lo[1]..=hi[1] {
                let row = (z * ny + y) * nx;
                let hu = &ct.data()[row + lo[2]..=row + hi[2]];
                voxels.extend(hu.iter().map(|&h| (f32::from(h).clamp(lo_hu, hi_hu) - lo_hu) / (hi_hu - lo_hu)));
            }
        }
        let dims = std::array::from_fn(|a| hi[a] - lo[a] + 1);
        let index_to_world = register::mul(&index_to_world(ct.geometry()), &register::translation(lo.map(|v| v as f64)));
        Ok(Some(HuCrop { voxels: image::to_tensor(&voxels, dims, device)?, index_to_world }))
    }

    fn image(&self) -> Image<'_> {
        Image { voxels: &self.voxels, index_to_world: self.index_to_world }
    }
}

/// The inclusive index box of `ct` that holds `points` with `margin_mm` to spare on every
/// axis, clipped to the scan.
fn index_box(ct: &Volume<i16>, points: &[Vec3], margin_mm: f64) -> Option<([usize; 3], [usize; 3])> {
    if points.iter().flatten().any(|v| !v.is_finite()) {
        return None;
    }
    let (dims, geometry) = (ct.dims(), ct.geometry());
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for p in points {
        let index = geometry.lps_to_index(*p);
        for a in 0..3 {
            let margin = margin_mm / geometry.spacing[a];
            lo[a] = lo[a].min((index[a] - margin).floor());
            hi[a] = hi[a].max((index[a] + margin).ceil());
        }
    }
    let mut out = ([0usize; 3], [0usize; 3]);
    for a in 0..3 {
        let (l, h) = (lo[a].max(0.0), hi[a].min(dims[a] as f64 - 1.0));
        if !(l.is_finite() && h.is_finite()) || h - l < 1.0 {
            return None;
        }
        out.0[a] = l as usize;
        out.1[a] = h as usize;
    }
    Some(out)
}

/// The 8 corners of the axis-aligned cube of half-size `half_mm` around `centre`.
fn cube(centre: Vec3, half_mm: f64) -> [Vec3; 8] {
    std::array::from_fn(|corner| {
        std::array::from_fn(|a| centre[a] + if corner & (1 << a) == 0 { -half_mm } else { half_mm })
    })
}

/// A geometry's voxel index (z, y, x) -> LPS map as a row-major 4x4 matrix.
fn index_to_world(g: &Geometry) -> Matrix4 {
    let m = g.matrix();
    let mut out = register::IDENTITY;
    for r in 0..3 {
        out[r][..3].copy_from_slice(&m[r]);
        out[r][3] = g.origin[r];
    }
    out
}

fn geometry_spacing(m: &Matrix4) -> [f64; 3] {
    std::array::from_fn(|a| (0..3).map(|r| m[r][a].powi(2)).sum::<f64>().sqrt())
}

fn spatial(t: &Tensor) -> [usize; 3] {
    let s = t.size();
    [s[0] as usize, s[1] as usize, s[2] as usize]
}

fn distance(a: Vec3, b: Vec3) -> f64 {
    (0..3).map(|i| (a[i] - b[i]).powi(2)).sum::<f64>().sqrt()
}
