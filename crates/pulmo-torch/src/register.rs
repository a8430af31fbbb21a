//! Image registration as tensor optimisation: an affine (global) or rigid (local window) map
//! from a fixed image's world coordinates into a moving image's, fitted by BFGS on NCC.
//!
//! Both images carry their own index -> world matrix, so they may have any grids and
//! orientations. The fitted map is `init ∘ U(params)`: the update `U` acts in the fixed
//! image's world frame about a centre, with coordinates divided by a length scale so that a
//! step of the linear part and a step of the translation move points by similar distances.
//! Similarity is the normalised cross-correlation (NCC, in [-1, 1], 1 = identical up to gain
//! and offset), averaged over channels; trilinear sampling, zeros outside the moving image.

use tch::{Device, Kind, TchError, Tensor};

use crate::image::gaussian_blur;

/// A row-major 4x4 homogeneous matrix (last row 0 0 0 1).
pub type Matrix4 = [[f64; 4]; 4];

pub const IDENTITY: Matrix4 = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]];

/// Length scale (mm) of the global affine's parameters: a linear step of 0.01 moves a point
/// 100 mm from the centre by 1 mm, as a translation step of 0.01 does.
const AFFINE_SCALE_MM: f64 = 100.0;
/// The optimiser's first step along the gradient, in voxels of the level.
const FIRST_STEP_VOXELS: f64 = 0.5;
/// No step moves points further than this many voxels of the level: the loss of a smoothed
/// image is only a good model within a voxel or two.
const MAX_STEP_VOXELS: f64 = 2.0;
/// A step this small (voxels) ends a level.
const CONVERGED_VOXELS: f64 = 1e-3;
const LINE_SEARCH_TRIES: usize = 12;
/// Resolution of each level (standard deviation of the total blur) in voxels of that level:
/// widens the capture range of masks, whose edges are otherwise one voxel wide.
const SMOOTH_VOXELS: f64 = 0.5;
const EPS: f64 = 1e-8;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("tensor operation failed: {0}")]
    Torch(#[from] TchError),
    #[error("image of shape {0:?}: expected [z, y, x] or [channels, z, y, x] with at least 2 voxels per axis")]
    Shape(Vec<i64>),
    #[error("fixed and moving images have {0} and {1} channels")]
    Channels(i64, i64),
    #[error("the {0} matrix is singular or not finite")]
    Singular(&'static str),
    #[error("invalid parameter: {0}")]
    Parameter(String),
}

/// A 3D image, (z, y, x) or (channels, z, y, x), as a float tensor on some device, with the map
/// from its voxel index (z, y, x, 1) to world millimetres.
pub struct Image<'a> {
    pub voxels: &'a Tensor,
    pub index_to_world: Matrix4,
}

/// One resolution of a multi-scale fit: images are seen at about `voxel_mm` and the fit runs
/// at most `iterations` optimiser steps there (each one gradient and a line search).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    pub voxel_mm: f64,
    pub iterations: usize,
}

/// The cube of the fixed image that a rigid window fit compares (axis-aligned in world).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub centre_world: [f64; 3],
    pub half_size_mm: f64,
}

/// A fitted map, with NCC on the last level before (the initial map) and after fitting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub fixed_to_moving: Matrix4,
    pub initial_similarity: f64,
    pub similarity: f64,
}

/// Fits an affine map (12 parameters) from `fixed` world to `moving` world, starting from
/// `init`, coarse level first. Images are average-pooled to each level's voxel size, so pass
/// them at about the finest level's resolution (cropped to what matters) for speed.
pub fn register_affine(fixed: &Image, moving: &Image, init: Matrix4, levels: &[Level]) -> Result<Fit, RegisterError> {
    let centre = image_centre(fixed)?;
    let setup = Setup { model: Model::Affine, init, centre, scale: AFFINE_SCALE_MM };
    fit(&setup, levels, |level| pooled_problem(fixed, moving, &setup, level))
}

/// Fits a rigid correction (rotation about the window centre, then translation; 6
/// parameters) composed with `init`, comparing only the `window` of the fixed image. Images
/// are smoothed, not pooled, per level: pass crops around the window.
pub fn register_rigid_window(
    fixed: &Image,
    moving: &Image,
    init: Matrix4,
    window: Window,
    levels: &[Level],
) -> Result<Fit, RegisterError> {
    if !(window.half_size_mm.is_finite() && window.half_size_mm > 0.0) {
        return Err(RegisterError::Parameter(format!("window half size {} mm", window.half_size_mm)));
    }
    let setup = Setup { model: Model::Rigid, init, centre: window.centre_world, scale: window.half_size_mm };
    fit(&setup, levels, |level| window_problem(fixed, moving, &setup, window, level))
}

/// The moving image sampled at every voxel of the fixed image through `fixed_to_moving`:
/// a tensor with the fixed image's (z, y, x) shape and the moving image's channels.
pub fn warp(fixed: &Image, moving: &Image, fixed_to_moving: Matrix4) -> Result<Tensor, RegisterError> {
    let dims = spatial_dims(fixed.voxels)?;
    let device = fixed.voxels.device();
    let moving_grid = grid_from_world(&moving.index_to_world, spatial_dims(moving.voxels)?)?;
    let to_grid = mul(&moving_grid, &mul(&fixed_to_moving, &fixed.index_to_world));
    let grid = index_points(dims, device)?.f_matmul(&linear_tensor(&to_grid, 1.0, device)?.f_tr()?)?;
    let grid = grid.f_add(&offset_tensor(&to_grid, device)?)?;
    let sampled = sample(&channels(moving.voxels)?, &grid)?.f_reshape([-1, dims[0], dims[1], dims[2]])?;
    if moving.voxels.dim() == 3 {
        Ok(sampled.f_squeeze_dim(0)?)
    } else {
        Ok(sampled)
    }
}

/// Which update the parameters describe.
#[derive(Clone, Copy)]
enum Model {
    /// 9 linear (identity + p) and 3 translation parameters.
    Affine,
    /// 3 rotation (axis-angle, radians) and 3 translation parameters.
    Rigid,
}

/// What is fixed for all levels of one fit.
struct Setup {
    model: Model,
    init: Matrix4,
    centre: [f64; 3],
    scale: f64,
}

/// One level: fixed sample points (world minus centre, over scale), the fixed values there
/// ([C, N]), and the moving image with the map from the update's output to its grid_sample
/// coordinates.
struct Problem {
    points: Tensor,
    fixed: Tensor,
    moving: Tensor,
    to_grid: Tensor,
    grid_offset: Tensor,
    /// A parameter change that moves points by about one voxel of this level.
    step_unit: f64,
}

/// Runs the levels in order, each starting from the last one's parameters.
fn fit(setup: &Setup, levels: &[Level], problem: impl Fn(&Level) -> Result<Problem, RegisterError>) -> Result<Fit, RegisterError> {
    check_levels(levels)?;
    let start = vec![0.0; setup.model.len()];
    let mut params = start.clone();
    let mut last = None;
    for level in levels {
        let p = problem(level)?;
        params = optimise(&p, setup.model, params, level.iterations)?;
        last = Some(p);
    }
    let last = last.ok_or_else(|| RegisterError::Parameter("no levels".into()))?;
    let _guard = tch::no_grad_guard();
    let similarity = |x: &[f64]| -> Result<f64, RegisterError> {
        Ok(-last.loss(setup.model, &params_tensor(x, last.points.device())?)?.f_double_value(&[])?)
    };
    Ok(Fit {
        fixed_to_moving: fitted_matrix(setup, &params)?,
        initial_similarity: similarity(&start)?,
        similarity: similarity(&params)?,
    })
}

fn params_tensor(x: &[f64], device: Device) -> Result<Tensor, TchError> {
    Tensor::f_from_slice(x)?.f_to_kind(Kind::Float)?.f_to(device)
}

fn check_levels(levels: &[Level]) -> Result<(), RegisterError> {
    if levels.is_empty() {
        return Err(RegisterError::Parameter("no levels".into()));
    }
    match levels.iter().find(|l| !(l.voxel_mm.is_finite() && l.voxel_mm > 0.0)) {
        Some(l) => Err(RegisterError::Parameter(format!("level voxel size {} mm", l.voxel_mm))),
        None => Ok(()),
    }
}

/// BFGS (Nocedal & Wright, alg. 6.1) on the host in f64, with a backtracking (Armijo) line
/// search and steps capped at MAX_STEP_VOXELS, for at most `iterations` steps. A dozen
/// parameters make the inverse Hessian estimate free, and it removes the coupling of scale,
/// shear and translation that slows first-order methods (Adam stalled ~1 mm off on the
/// affine test below). The loss never increases, so the last iterate is the best.
fn optimise(problem: &Problem, model: Model, x: Vec<f64>, iterations: usize) -> Result<Vec<f64>, RegisterError> {
    let mut at = problem.evaluate(model, x)?;
    let first = FIRST_STEP_VOXELS * problem.step_unit / norm(&at.grad).max(1e-12);
    let mut h = scaled_identity(at.x.len(), first);
    for _ in 0..iterations {
        let mut d: Vec<f64> = h.iter().map(|row| -dot(row, &at.grad)).collect();
        if dot(&d, &at.grad) >= 0.0 {
            // Not a descent direction (curvature estimate gone bad): restart along the gradient.
            h = scaled_identity(at.x.len(), first);
            d = at.grad.iter().map(|v| -first * v).collect();
        }
        let Some(next) = line_search(problem, model, &at, &d)? else { break };
        let step: Vec<f64> = next.x.iter().zip(&at.x).map(|(a, b)| a - b).collect();
        let change: Vec<f64> = next.grad.iter().zip(&at.grad).map(|(a, b)| a - b).collect();
        update_inverse_hessian(&mut h, &step, &change);
        at = next;
        if step.iter().all(|v| v.abs() < CONVERGED_VOXELS * problem.step_unit) {
            break;
        }
    }
    Ok(at.x)
}

/// Parameters with the loss and its gradient there.
struct Iterate {
    x: Vec<f64>,
    loss: f64,
    grad: Vec<f64>,
}

/// The first point along `d` that lowers the loss enough (Armijo), halving from the full
/// (capped) step; `None` when none does: a minimum at this resolution.
fn line_search(problem: &Problem, model: Model, at: &Iterate, d: &[f64]) -> Result<Option<Iterate>, RegisterError> {
    let longest = d.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let cap = MAX_STEP_VOXELS * problem.step_unit;
    let mut t = if longest > cap { cap / longest } else { 1.0 };
    let slope = dot(d, &at.grad);
    for _ in 0..LINE_SEARCH_TRIES {
        let trial = problem.evaluate(model, at.x.iter().zip(d).map(|(a, b)| a + t * b).collect())?;
        if trial.loss <= at.loss + 1e-4 * t * slope {
            return Ok(Some(trial));
        }
        t *= 0.5;
    }
    Ok(None)
}

/// The BFGS update of the inverse Hessian estimate, skipped when the curvature along the
/// step is not positive (it would lose positive definiteness).
fn update_inverse_hessian(h: &mut [Vec<f64>], s: &[f64], y: &[f64]) {
    let sy = dot(s, y);
    if sy <= 1e-12 {
        return;
    }
    let rho = 1.0 / sy;
    let hy: Vec<f64> = h.iter().map(|row| dot(row, y)).collect();
    let yhy = dot(y, &hy);
    for (i, row) in h.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v += -rho * (hy[i] * s[j] + s[i] * hy[j]) + (rho * rho * yhy + rho) * s[i] * s[j];
        }
    }
}

fn scaled_identity(n: usize, scale: f64) -> Vec<Vec<f64>> {
    (0..n).map(|i| (0..n).map(|j| if i == j { scale } else { 0.0 }).collect()).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

impl Problem {
    /// Loss and its gradient at host parameters.
    fn evaluate(&self, model: Model, x: Vec<f64>) -> Result<Iterate, RegisterError> {
        let p = params_tensor(&x, self.points.device())?.set_requires_grad(true);
        let loss = self.loss(model, &p)?;
        let grad = Tensor::f_run_backward(&[&loss], &[&p], false, false)?.remove(0);
        Ok(Iterate { x, loss: loss.f_double_value(&[])?, grad: host(&grad)? })
    }

    /// Negative NCC of the moving image sampled through the update `params`, over the sample
    /// points that land inside the moving image: outside it nothing is known, and reading
    /// zeros there would pull a partly covered scan towards its own edge.
    fn loss(&self, model: Model, params: &Tensor) -> Result<Tensor, TchError> {
        let (linear, translation) = model.update(params)?;
        let moved = self.points.f_matmul(&linear.f_tr()?)?.f_add(&translation)?;
        let grid = moved.f_matmul(&self.to_grid.f_tr()?)?.f_add(&self.grid_offset)?;
        let inside = grid.f_detach()?.f_abs()?.f_le(1.0 + 1e-6)?.f_all_dim(-1, false)?.f_to_kind(Kind::Double)?;
        let sampled = sample(&self.moving, &grid)?.f_to_kind(Kind::Double)?;
        weighted_ncc(&self.fixed, &sampled, &inside)?.f_neg()
    }
}

/// NCC of each channel of `a` and `b` ([C, N]) over the points of weight 1 in `w` ([N]),
/// averaged over channels. In f64: near the optimum NCC changes in its sixth digit, below the
/// noise of f32 sums, and the line search must still see the decrease.
fn weighted_ncc(a: &Tensor, b: &Tensor, w: &Tensor) -> Result<Tensor, TchError> {
    let count = w.f_sum(Kind::Double)?.f_clamp_min(1.0)?;
    let centred = |t: &Tensor| -> Result<Tensor, TchError> {
        let mean = t.f_mul(w)?.f_sum_dim_intlist(-1i64, true, Kind::Double)?.f_div(&count)?;
        t.f_sub(&mean)?.f_mul(w)
    };
    let (a, b) = (centred(a)?, centred(b)?);
    let sum = |t: Tensor| t.f_sum_dim_intlist(-1i64, false, Kind::Double);
    let cross = sum(a.f_mul(&b)?)?;
    let norms = sum(a.f_square()?)?.f_mul(&sum(b.f_square()?)?)?.f_add_scalar(EPS)?.f_sqrt()?;
    cross.f_div(&norms)?.f_mean(Kind::Double)
}

impl Model {
    fn len(self) -> usize {
        match self {
            Model::Affine => 12,
            Model::Rigid => 6,
        }
    }

    /// The update's linear part [3, 3] and translation [3] (in units of the setup's scale).
    fn update(self, params: &Tensor) -> Result<(Tensor, Tensor), TchError> {
        let device = params.device();
        match self {
            Model::Affine => {
                let eye = Tensor::f_eye(3, (Kind::Float, device))?;
                Ok((params.f_narrow(0, 0, 9)?.f_reshape([3, 3])?.f_add(&eye)?, params.f_narrow(0, 9, 3)?))
            }
            Model::Rigid => Ok((rotation(&params.f_narrow(0, 0, 3)?)?, params.f_narrow(0, 3, 3)?)),
        }
    }
}

/// The rotation matrix of an axis-angle vector (radians): exp of its skew-symmetric matrix,
/// which has a gradient at zero (Rodrigues' formula divides by the angle).
fn rotation(w: &Tensor) -> Result<Tensor, TchError> {
    let c = |i: i64| w.f_select(0, i);
    let zero = c(0)?.f_zeros_like()?;
    let (wx, wy, wz) = (c(0)?, c(1)?, c(2)?);
    let entries = [&zero, &wz.f_neg()?, &wy, &wz, &zero, &wx.f_neg()?, &wy.f_neg()?, &wx, &zero];
    Tensor::f_stack(&entries, 0)?.f_reshape([3, 3])?.f_linalg_matrix_exp()
}

/// `init ∘ U`, with U(x) = centre + A (x - centre) + scale * t, in f64.
fn fitted_matrix(setup: &Setup, params: &[f64]) -> Result<Matrix4, RegisterError> {
    let (linear, translation) = setup.model.update(&Tensor::f_from_slice(params)?)?;
    let a = host(&linear)?;
    let t = host(&translation)?;
    let c = setup.centre;
    let mut u = IDENTITY;
    for r in 0..3 {
        for k in 0..3 {
            u[r][k] = a[r * 3 + k];
        }
        u[r][3] = c[r] - (0..3).map(|k| a[r * 3 + k] * c[k]).sum::<f64>() + setup.scale * t[r];
    }
    Ok(mul(&setup.init, &u))
}

fn host(t: &Tensor) -> Result<Vec<f64>, TchError> {
    let flat = t.f_detach()?.f_to(Device::Cpu)?.f_to_kind(Kind::Double)?.f_contiguous()?;
    let n = flat.numel();
    let mut out = vec![0.0; n];
    flat.f_copy_data(&mut out, n)?;
    Ok(out)
}

/// A level of [`register_affine`]: every voxel of the pooled fixed image is a sample point.
fn pooled_problem(fixed: &Image, moving: &Image, setup: &Setup, level: &Level) -> Result<Problem, RegisterError> {
    let (fixed_voxels, moving_voxels) = same_channels(fixed, moving)?;
    let (fixed_pooled, fixed_index) = pool(&fixed_voxels, &fixed.index_to_world, level.voxel_mm)?;
    let (moving_pooled, moving_index) = pool(&moving_voxels, &moving.index_to_world, level.voxel_mm)?;
    let dims = spatial_dims(&fixed_pooled)?;
    let device = fixed_pooled.device();
    let to_points = centred(&fixed_index, setup);
    let points = index_points(dims, device)?.f_matmul(&linear_tensor(&to_points, 1.0, device)?.f_tr()?)?;
    let points = points.f_add(&offset_tensor(&to_points, device)?)?;
    let values = fixed_pooled.f_reshape([fixed_pooled.size()[0], -1])?;
    let moving_image = Image { voxels: &moving_pooled, index_to_world: moving_index };
    problem(points, &values, &moving_image, setup, level)
}

/// A level of [`register_rigid_window`]: a world-aligned grid of points over the window,
/// `voxel_mm` apart, the fixed image sampled there.
fn window_problem(fixed: &Image, moving: &Image, setup: &Setup, window: Window, level: &Level) -> Result<Problem, RegisterError> {
    let (fixed_voxels, moving_voxels) = same_channels(fixed, moving)?;
    let fixed_smooth = smooth(&fixed_voxels, &fixed.index_to_world, level.voxel_mm)?;
    let moving_smooth = smooth(&moving_voxels, &moving.index_to_world, level.voxel_mm)?;
    let device = fixed_smooth.device();
    let n = (window.half_size_mm / level.voxel_mm).floor().max(1.0) as i64;
    let steps = Tensor::f_arange_start(-n, n + 1, (Kind::Float, device))?.f_mul_scalar(level.voxel_mm)?;
    let axis = |shape: [i64; 3]| steps.f_reshape(shape)?.f_expand([2 * n + 1; 3], false);
    let offsets = Tensor::f_stack(&[axis([-1, 1, 1])?, axis([1, -1, 1])?, axis([1, 1, -1])?], 3)?.f_reshape([-1, 3])?;
    let to_fixed = mul(&grid_from_world(&fixed.index_to_world, spatial_dims(&fixed_smooth)?)?, &translation(window.centre_world));
    let fixed_grid = offsets.f_matmul(&linear_tensor(&to_fixed, 1.0, device)?.f_tr()?)?.f_add(&offset_tensor(&to_fixed, device)?)?;
    // Points outside the fixed image have no value: they are left out, not read as zeros.
    let inside = fixed_grid.f_abs()?.f_le(1.0 + 1e-6)?.f_all_dim(-1, false)?.f_nonzero()?.f_squeeze_dim(1)?;
    if inside.size()[0] < 2 {
        return Err(RegisterError::Parameter("the window lies outside the fixed image".into()));
    }
    let values = sample(&fixed_smooth, &fixed_grid.f_index_select(0, &inside)?)?;
    let points = offsets.f_index_select(0, &inside)?.f_div_scalar(setup.scale)?;
    let moving_image = Image { voxels: &moving_smooth, index_to_world: moving.index_to_world };
    problem(points, &values, &moving_image, setup, level)
}

/// Composes world -> moving grid coordinates with `init`.
fn problem(points: Tensor, values: &Tensor, moving: &Image, setup: &Setup, level: &Level) -> Result<Problem, RegisterError> {
    let device = points.device();
    let to_grid = mul(&grid_from_world(&moving.index_to_world, spatial_dims(moving.voxels)?)?, &setup.init);
    Ok(Problem {
        points,
        fixed: values.f_to_kind(Kind::Double)?,
        moving: moving.voxels.f_unsqueeze(0)?,
        to_grid: linear_tensor(&to_grid, setup.scale, device)?,
        grid_offset: offset_tensor(&mul(&to_grid, &translation(setup.centre)), device)?,
        step_unit: level.voxel_mm / setup.scale,
    })
}

/// Trilinear samples of a [C, z, y, x] tensor at grid_sample coordinates [N, 3] (x, y, z in
/// [-1, 1], align_corners): [C, N], 0 outside.
fn sample(image: &Tensor, grid: &Tensor) -> Result<Tensor, TchError> {
    let input = if image.dim() == 4 { image.f_unsqueeze(0)? } else { image.shallow_clone() };
    let n = grid.size()[0];
    // Modes: 0 = bilinear (trilinear in 3D), padding 0 = zeros.
    let out = input.f_grid_sampler(&grid.f_reshape([1, n, 1, 1, 3])?, 0, 0, true)?;
    out.f_reshape([-1, n])
}

/// The voxels as [C, z, y, x] floats, checked.
fn channels(voxels: &Tensor) -> Result<Tensor, RegisterError> {
    let t = match voxels.dim() {
        3 => voxels.f_unsqueeze(0)?,
        4 => voxels.shallow_clone(),
        _ => return Err(RegisterError::Shape(voxels.size())),
    };
    spatial_dims(&t)?;
    Ok(t.f_to_kind(Kind::Float)?)
}

fn same_channels(fixed: &Image, moving: &Image) -> Result<(Tensor, Tensor), RegisterError> {
    let (f, m) = (channels(fixed.voxels)?, channels(moving.voxels)?);
    if f.size()[0] != m.size()[0] {
        return Err(RegisterError::Channels(f.size()[0], m.size()[0]));
    }
    Ok((f, m))
}

/// (z, y, x) sizes of a [z, y, x] or [C, z, y, x] tensor, each at least 2.
fn spatial_dims(t: &Tensor) -> Result<[i64; 3], RegisterError> {
    let size = t.size();
    let dims: [i64; 3] = match size.len() {
        3 | 4 => [size[size.len() - 3], size[size.len() - 2], size[size.len() - 1]],
        _ => return Err(RegisterError::Shape(size)),
    };
    if dims.iter().any(|&d| d < 2) {
        return Err(RegisterError::Shape(size));
    }
    Ok(dims)
}

/// Average-pools an image ([z, y, x] or [C, z, y, x]) to about `voxel_mm` per axis in whole
/// blocks of voxels (at least 2 blocks per axis), with the pooled grid's index -> world map.
pub fn downsample(voxels: &Tensor, index_to_world: &Matrix4, voxel_mm: f64) -> Result<(Tensor, Matrix4), RegisterError> {
    let dims = spatial_dims(voxels)?;
    let spacing = spacing(index_to_world)?;
    let factors: [i64; 3] = std::array::from_fn(|a| ((voxel_mm / spacing[a]).round() as i64).clamp(1, (dims[a] / 2).max(1)));
    let pooled = if factors == [1, 1, 1] {
        voxels.shallow_clone()
    } else {
        let batch = voxels.f_to_kind(Kind::Float)?.f_unsqueeze(0)?;
        batch.f_avg_pool3d(factors, factors, [0, 0, 0], false, true, None)?.f_squeeze_dim(0)?
    };
    // Pooled voxel i covers original voxels f*i .. f*i + f - 1: its centre is f*i + (f - 1)/2.
    let mut block = IDENTITY;
    for a in 0..3 {
        block[a][a] = factors[a] as f64;
        block[a][3] = (factors[a] - 1) as f64 / 2.0;
    }
    Ok((pooled, mul(index_to_world, &block)))
}

/// [`downsample`] to a level, then [`smooth`].
fn pool(t: &Tensor, index_to_world: &Matrix4, voxel_mm: f64) -> Result<(Tensor, Matrix4), RegisterError> {
    let (pooled, pooled_index) = downsample(t, index_to_world, voxel_mm)?;
    Ok((smooth(&pooled, &pooled_index, voxel_mm)?, pooled_index))
}

/// Gaussian smoothing of [C, z, y, x] up to a resolution of SMOOTH_VOXELS * `voxel_mm`
/// (standard deviation, mm) on every axis, counting each voxel as a box of its spacing. Both
/// images of a fit end up equally blurred whatever their grids: unequal blur biases the fit
/// (a blurred surface's iso-contour moves inwards, which reads as a scale change).
fn smooth(t: &Tensor, index_to_world: &Matrix4, voxel_mm: f64) -> Result<Tensor, RegisterError> {
    let spacing = spacing(index_to_world)?;
    let target = SMOOTH_VOXELS * voxel_mm;
    let sigma: [f64; 3] = std::array::from_fn(|a| (target.powi(2) - spacing[a].powi(2) / 12.0).max(0.0).sqrt() / spacing[a]);
    let blurred: Vec<Tensor> = (0..t.size()[0]).map(|c| gaussian_blur(&t.f_select(0, c)?, sigma)).collect::<Result<_, _>>()?;
    Ok(Tensor::f_stack(&blurred, 0)?)
}

/// Millimetres per index step along each axis (norms of the matrix's columns).
fn spacing(index_to_world: &Matrix4) -> Result<[f64; 3], RegisterError> {
    let s: [f64; 3] = std::array::from_fn(|a| (0..3).map(|r| index_to_world[r][a].powi(2)).sum::<f64>().sqrt());
    if s.iter().all(|v| v.is_finite() && *v > 0.0) {
        Ok(s)
    } else {
        Err(RegisterError::Singular("index to world"))
    }
}

/// World position of the centre of an image's voxel grid.
fn image_centre(image: &Image) -> Result<[f64; 3], RegisterError> {
    let dims = spatial_dims(image.voxels)?;
    Ok(apply(&image.index_to_world, dims.map(|d| (d - 1) as f64 / 2.0)))
}

/// World -> grid_sample coordinates of an image with `dims`: rows give (x, y, z) in [-1, 1]
/// from the first voxel centre to the last (align_corners = true).
fn grid_from_world(index_to_world: &Matrix4, dims: [i64; 3]) -> Result<Matrix4, RegisterError> {
    let world_to_index = invert(index_to_world).ok_or(RegisterError::Singular("index to world"))?;
    let mut m = IDENTITY;
    for (row, axis) in [2usize, 1, 0].into_iter().enumerate() {
        let s = 2.0 / (dims[axis] - 1) as f64;
        for k in 0..4 {
            m[row][k] = s * world_to_index[axis][k];
        }
        m[row][3] -= 1.0;
    }
    Ok(m)
}

/// `(m - centre) / scale` as one matrix: world of the fixed grid -> the update's coordinates.
fn centred(index_to_world: &Matrix4, setup: &Setup) -> Matrix4 {
    let mut m = *index_to_world;
    for (row, c) in m.iter_mut().zip(setup.centre) {
        row[3] -= c;
        for v in row.iter_mut() {
            *v /= setup.scale;
        }
    }
    m
}

/// Every (z, y, x) index of a grid as [N, 3] floats, in row-major order.
fn index_points(dims: [i64; 3], device: Device) -> Result<Tensor, TchError> {
    let axis = |a: usize, shape: [i64; 3]| {
        Tensor::f_arange(dims[a], (Kind::Float, device))?.f_reshape(shape)?.f_expand(dims, false)
    };
    let z = axis(0, [-1, 1, 1])?;
    let y = axis(1, [1, -1, 1])?;
    let x = axis(2, [1, 1, -1])?;
    Tensor::f_stack(&[z, y, x], 3)?.f_reshape([-1, 3])
}

/// The 3x3 part of `m` times `factor` as a float tensor.
fn linear_tensor(m: &Matrix4, factor: f64, device: Device) -> Result<Tensor, TchError> {
    let v: Vec<f32> = (0..9).map(|i| (m[i / 3][i % 3] * factor) as f32).collect();
    Tensor::f_from_slice(&v)?.f_reshape([3, 3])?.f_to(device)
}

fn offset_tensor(m: &Matrix4, device: Device) -> Result<Tensor, TchError> {
    Tensor::f_from_slice(&[m[0][3] as f32, m[1][3] as f32, m[2][3] as f32])?.f_to(device)
}

/// The map p -> p + t.
pub fn translation(t: [f64; 3]) -> Matrix4 {
    let mut m = IDENTITY;
    for (row, v) in m.iter_mut().zip(t) {
        row[3] = v;
    }
    m
}

/// The product `a b` (apply `b` first).
pub fn mul(a: &Matrix4, b: &Matrix4) -> Matrix4 {
    std::array::from_fn(|r| std::array::from_fn(|c| (0..4).map(|k| a[r][k] * b[k][c]).sum()))
}

/// The point `m p`.
pub fn apply(m: &Matrix4, p: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|r| m[r][0] * p[0] + m[r][1] * p[1] + m[r][2] * p[2] + m[r][3])
}

/// The inverse of an affine matrix (last row 0 0 0 1), `None` when singular or not finite.
pub fn invert(m: &Matrix4) -> Option<Matrix4> {
    let c = |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let det = m[0][0] * c(1, 1, 2, 2) - m[0][1] * c(1, 0, 2, 2) + m[0][2] * c(1, 0, 2, 1);
    if !det.is_finite() || det.abs() < 1e-12 {
        return None;
    }
    let inv3 = [
        [c(1, 1, 2, 2) / det, -c(0, 1, 2, 2) / det, c(0, 1, 1, 2) / det],
        [-c(1, 0, 2, 2) / det, c(0, 0, 2, 2) / det, -c(0, 0, 1, 2) / det],
        [c(1, 0, 2, 1) / det, -c(0, 0, 2, 1) / det, c(0, 0, 1, 1) / det],
    ];
    let mut out = IDENTITY;
    for r in 0..3 {
        out[r][..3].copy_from_slice(&inv3[r]);
        out[r][3] = -(0..3).map(|k| inv3[r][k] * m[k][3]).sum::<f64>();
    }
    out.iter().flatten().all(|v| v.is_finite()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An axial grid: index (z, y, x) -> world (x, y, z) = origin + spacing * index.
    fn grid(origin: [f64; 3], spacing: f64) -> Matrix4 {
        let mut m = IDENTITY;
        m[0] = [0.0, 0.0, spacing, origin[0]];
        m[1] = [0.0, spacing, 0.0, origin[1]];
        m[2] = [spacing, 0.0, 0.0, origin[2]];
        m
    }

    /// `scene` evaluated at every voxel of an n^3 grid.
    fn render(n: i64, index_to_world: &Matrix4, scene: impl Fn([f64; 3]) -> f64) -> Tensor {
        let mut v = Vec::with_capacity((n * n * n) as usize);
        for z in 0..n {
            for y in 0..n {
                for x in 0..n {
                    v.push(scene(apply(index_to_world, [z as f64, y as f64, x as f64])) as f32);
                }
            }
        }
        Tensor::from_slice(&v).reshape([n, n, n])
    }

    /// A soft ellipsoid with three off-centre blobs of different sizes, so that no rotation or
    /// reflection maps it onto itself.
    fn body(p: [f64; 3]) -> f64 {
        let r = ((p[0] / 60.0).powi(2) + (p[1] / 45.0).powi(2) + (p[2] / 35.0).powi(2)).sqrt();
        let shell = 1.0 / (1.0 + ((r - 1.0) * 20.0).exp());
        let blob = |c: [f64; 3], s: f64, a: f64| {
            a * (-((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2) + (p[2] - c[2]).powi(2)) / (2.0 * s * s)).exp()
        };
        shell + blob([25.0, 10.0, 5.0], 8.0, 1.0) + blob([-20.0, -15.0, 10.0], 5.0, -0.7) + blob([5.0, 20.0, -15.0], 6.0, 0.8)
    }

    fn rotation_z_then_x(z_deg: f64, x_deg: f64) -> [[f64; 3]; 3] {
        let (a, b) = (z_deg.to_radians(), x_deg.to_radians());
        let rz = [[a.cos(), -a.sin(), 0.0], [a.sin(), a.cos(), 0.0], [0.0, 0.0, 1.0]];
        let rx = [[1.0, 0.0, 0.0], [0.0, b.cos(), -b.sin()], [0.0, b.sin(), b.cos()]];
        std::array::from_fn(|r| std::array::from_fn(|c| (0..3).map(|k| rx[r][k] * rz[k][c]).sum()))
    }

    fn affine(linear: [[f64; 3]; 3], shift: [f64; 3]) -> Matrix4 {
        let mut m = IDENTITY;
        for r in 0..3 {
            m[r][..3].copy_from_slice(&linear[r]);
            m[r][3] = shift[r];
        }
        m
    }

    fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
        (0..3).map(|i| (a[i] - b[i]).powi(2)).sum::<f64>().sqrt()
    }

    #[test]
    fn matrices_invert_and_compose() {
        let m = affine(rotation_z_then_x(8.0, -3.0), [4.0, -2.0, 7.0]);
        let back = mul(&invert(&m).unwrap(), &m);
        assert!((0..4).all(|r| (0..4).all(|c| (back[r][c] - IDENTITY[r][c]).abs() < 1e-12)));
        assert!(invert(&[[0.0; 4]; 4]).is_none());
    }

    /// A known affine (8 degrees about z, 3 about x, 3 % larger, 20 mm shift) between two
    /// differently gridded renderings of one scene is found to well under a voxel.
    #[test]
    fn affine_recovers_a_known_map() {
        let mut linear = rotation_z_then_x(8.0, 3.0);
        linear.iter_mut().flatten().for_each(|v| *v *= 1.03);
        let truth = affine(linear, [14.0, -12.0, 8.0]);
        let inverse = invert(&truth).unwrap();
        let fixed_grid = grid([-96.0, -96.0, -96.0], 3.0);
        let moving_grid = grid([-90.0, -100.0, -85.0], 2.5);
        let fixed = render(64, &fixed_grid, body);
        // moving(truth(p)) = fixed(p): the moving scene is the fixed one carried by `truth`.
        let moving = render(76, &moving_grid, |q| body(apply(&inverse, q)));
        let levels = [Level { voxel_mm: 8.0, iterations: 40 }, Level { voxel_mm: 4.0, iterations: 30 }];
        let fit = register_affine(
            &Image { voxels: &fixed, index_to_world: fixed_grid },
            &Image { voxels: &moving, index_to_world: moving_grid },
            IDENTITY,
            &levels,
        )
        .unwrap();
        let points = [[0.0, 0.0, 0.0], [40.0, 20.0, 10.0], [-35.0, -25.0, 20.0], [10.0, 30.0, -25.0], [-50.0, 0.0, 0.0]];
        let errors: Vec<f64> = points.iter().map(|p| dist(apply(&fit.fixed_to_moving, *p), apply(&truth, *p))).collect();
        eprintln!("affine: errors {errors:.2?} mm, NCC {:.4} -> {:.4}", fit.initial_similarity, fit.similarity);
        assert!(errors.iter().all(|e| *e < 1.0), "{errors:?}");
        assert!(fit.similarity > 0.99 && fit.similarity > fit.initial_similarity);
        // Warping the moving image back through the fit reproduces the fixed one.
        let warped = warp(&Image { voxels: &fixed, index_to_world: fixed_grid }, &Image { voxels: &moving, index_to_world: moving_grid }, fit.fixed_to_moving).unwrap();
        assert_eq!(warped.size(), fixed.size());
        let residual = (&warped - &fixed).abs().narrow(0, 8, 48).narrow(1, 8, 48).narrow(2, 8, 48).max().double_value(&[]);
        assert!(residual < 0.1, "{residual}");
    }

    /// A textured block shifted 3 mm (and turned 2 degrees) is found inside a window.
    #[test]
    fn rigid_window_recovers_a_small_motion() {
        // Smooth random texture: many Gaussian blobs at fixed pseudo-random places.
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let blobs: Vec<([f64; 3], f64)> = (0..300).map(|_| ([next() * 60.0 - 30.0, next() * 60.0 - 30.0, next() * 60.0 - 30.0], next() - 0.5)).collect();
        let texture = |p: [f64; 3]| blobs.iter().map(|(c, a)| a * (-dist(p, *c).powi(2) / 8.0).exp()).sum::<f64>();
        let truth = affine(rotation_z_then_x(2.0, 0.0), [3.0, -1.5, 2.0]);
        let inverse = invert(&truth).unwrap();
        let fixed_grid = grid([-24.0, -24.0, -24.0], 1.0);
        let moving_grid = grid([-26.0, -26.0, -26.0], 1.0);
        let fixed = render(49, &fixed_grid, texture);
        let moving = render(53, &moving_grid, |q| texture(apply(&inverse, q)));
        let window = Window { centre_world: [0.0; 3], half_size_mm: 15.0 };
        let levels = [Level { voxel_mm: 2.0, iterations: 20 }, Level { voxel_mm: 1.0, iterations: 20 }];
        let fit = register_rigid_window(
            &Image { voxels: &fixed, index_to_world: fixed_grid },
            &Image { voxels: &moving, index_to_world: moving_grid },
            IDENTITY,
            window,
            &levels,
        )
        .unwrap();
        let errors: Vec<f64> = [[0.0; 3], [10.0, 5.0, -8.0], [-12.0, 0.0, 6.0]].iter().map(|p| dist(apply(&fit.fixed_to_moving, *p), apply(&truth, *p))).collect();
        eprintln!("window: errors {errors:.3?} mm, NCC {:.4} -> {:.4}", fit.initial_similarity, fit.similarity);
        assert!(errors.iter().all(|e| *e < 0.3), "{errors:?}");
        assert!(fit.similarity > fit.initial_similarity);
    }

    #[test]
    fn bad_input_is_an_error() {
        let flat = Tensor::zeros([1, 8, 8], (Kind::Float, Device::Cpu));
        let ok = Tensor::zeros([8, 8, 8], (Kind::Float, Device::Cpu));
        let image = |t| Image { voxels: t, index_to_world: IDENTITY };
        let level = [Level { voxel_mm: 1.0, iterations: 1 }];
        assert!(matches!(register_affine(&image(&flat), &image(&ok), IDENTITY, &level), Err(RegisterError::Shape(_))));
        assert!(matches!(register_affine(&image(&ok), &image(&ok), IDENTITY, &[]), Err(RegisterError::Parameter(_))));
        let singular = Image { voxels: &ok, index_to_world: [[0.0; 4]; 4] };
        assert!(register_affine(&image(&ok), &singular, IDENTITY, &level).is_err());
        let window = Window { centre_world: [0.0; 3], half_size_mm: f64::NAN };
        assert!(register_rigid_window(&image(&ok), &image(&ok), IDENTITY, window, &level).is_err());
    }
}
