//! Whole-volume image operations as tensor ops on the worker's device (same code on CPU and
//! CUDA): moving voxels in and out, in-plane resampling, and binary morphology with discs.

use tch::{Device, Kind, TchError, Tensor};

/// A (z, y, x) grid of voxels as a float tensor of shape [z, y, x] on `device`.
pub fn to_tensor(voxels: &[f32], dims: [usize; 3], device: Device) -> Result<Tensor, TchError> {
    let shape: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
    Tensor::f_from_slice(voxels)?.f_reshape(shape)?.f_to(device)
}

/// A binary mask as a 0/1 float tensor of shape [z, y, x].
pub fn mask_to_tensor(mask: &[bool], dims: [usize; 3], device: Device) -> Result<Tensor, TchError> {
    let ones: Vec<f32> = mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect();
    to_tensor(&ones, dims, device)
}

/// The voxels of a tensor, in its (row-major) order, as f32 on the host.
pub fn to_vec(t: &Tensor) -> Result<Vec<f32>, TchError> {
    let host = t.f_to(Device::Cpu)?.f_to_dtype(Kind::Float, false, false)?.f_contiguous()?;
    let n = host.numel();
    let mut out = vec![0f32; n];
    host.f_copy_data(&mut out, n)?;
    Ok(out)
}

/// Voxels above 0.5, as a mask.
pub fn to_mask(t: &Tensor) -> Result<Vec<bool>, TchError> {
    Ok(to_vec(t)?.into_iter().map(|v| v > 0.5).collect())
}

/// Mean over `factor` x `factor` pixel blocks of each slice of a [z, y, x] tensor; a partial
/// block at the edge is the mean of the pixels it has.
pub fn downsample_inplane(t: &Tensor, factor: i64) -> Result<Tensor, TchError> {
    if factor <= 1 {
        return Ok(t.shallow_clone());
    }
    let k = [factor, factor];
    t.f_unsqueeze(1)?.f_avg_pool2d(k, k, [0, 0], true, false, None)?.f_squeeze_dim(1)
}

/// Nearest-neighbour inverse of [`downsample_inplane`]: each pixel repeated `factor` times in
/// y and x, cropped to `ny` x `nx`.
pub fn upsample_inplane(t: &Tensor, factor: i64, ny: i64, nx: i64) -> Result<Tensor, TchError> {
    let up = t.f_repeat_interleave_self_int(factor.max(1), 1, None)?.f_repeat_interleave_self_int(factor.max(1), 2, None)?;
    up.f_narrow(1, 0, ny)?.f_narrow(2, 0, nx)
}

/// In-plane dilation of a 0/1 [z, y, x] mask by a disc of `radius` pixels (a convolution with
/// the disc: any covered pixel sets the centre). Outside the image counts as unset.
pub fn dilate_inplane(mask: &Tensor, radius: i64) -> Result<Tensor, TchError> {
    if radius <= 0 {
        return Ok(mask.shallow_clone());
    }
    let disc = disc_kernel(radius, mask.device())?;
    let hits = mask.f_unsqueeze(1)?.f_conv2d::<Tensor>(&disc, None, [1, 1], [radius, radius], [1, 1], 1)?;
    hits.f_squeeze_dim(1)?.f_gt(0.5)?.f_to_dtype(Kind::Float, false, false)
}

/// In-plane erosion by a disc: the complement of the dilated complement. Outside the image
/// does not erode (the lungs never touch the image edge; the body does).
pub fn erode_inplane(mask: &Tensor, radius: i64) -> Result<Tensor, TchError> {
    dilate_inplane(&mask.f_rsub_scalar(1.0)?, radius)?.f_rsub_scalar(1.0)
}

/// Morphological closing (dilation, then erosion) by a disc of `radius` pixels.
pub fn close_inplane(mask: &Tensor, radius: i64) -> Result<Tensor, TchError> {
    erode_inplane(&dilate_inplane(mask, radius)?, radius)
}

/// Resamples a [z, y, x] tensor to `dims` by trilinear interpolation with the corner voxels'
/// centres fixed (align_corners): the new spacing along an axis is old * (n - 1) / (m - 1).
pub fn resample(t: &Tensor, dims: [i64; 3]) -> Result<Tensor, TchError> {
    t.f_unsqueeze(0)?.f_unsqueeze(0)?.f_upsample_trilinear3d(dims, true, None, None, None)?.f_squeeze_dim(0)?.f_squeeze_dim(0)
}

/// Gaussian smoothing of a [z, y, x] tensor with standard deviations `sigma` in voxels per
/// axis: three 1D convolutions, edges replicated so the border does not darken.
pub fn gaussian_blur(t: &Tensor, sigma: [f64; 3]) -> Result<Tensor, TchError> {
    let mut out = t.shallow_clone();
    for (axis, s) in sigma.into_iter().enumerate() {
        out = blur_axis(&out, axis, s)?;
    }
    Ok(out)
}

/// One axis of [`gaussian_blur`].
fn blur_axis(t: &Tensor, axis: usize, sigma: f64) -> Result<Tensor, TchError> {
    if sigma <= 0.0 {
        return Ok(t.shallow_clone());
    }
    let radius = (3.0 * sigma).ceil() as i64;
    let taps: Vec<f32> = (-radius..=radius).map(|i| (-0.5 * (i as f64 / sigma).powi(2)).exp() as f32).collect();
    let sum: f32 = taps.iter().sum();
    let kernel = Tensor::f_from_slice(&taps.iter().map(|w| w / sum).collect::<Vec<f32>>())?
        .f_reshape([1, 1, 2 * radius + 1])?
        .f_to(t.device())?;
    along_axis(t, axis, |rows| rows.f_replication_pad1d([radius, radius])?.f_conv1d::<Tensor>(&kernel, None, [1], [0], [1], 1))
}

/// First derivative along `axis` per `step` mm: central differences, edges replicated.
fn derivative(t: &Tensor, axis: usize, step: f64) -> Result<Tensor, TchError> {
    along_axis(t, axis, |rows| {
        let n = rows.size()[2];
        let padded = rows.f_replication_pad1d([1, 1])?;
        Ok((padded.f_narrow(2, 2, n)? - padded.f_narrow(2, 0, n)?) / (2.0 * step))
    })
}

/// Applies `f` to every line of voxels along `axis`, given as [lines, 1, length]; `f` keeps
/// the shape.
fn along_axis(
    t: &Tensor,
    axis: usize,
    f: impl FnOnce(&Tensor) -> Result<Tensor, TchError>,
) -> Result<Tensor, TchError> {
    let (order, inverse): ([i64; 3], [i64; 3]) = match axis {
        0 => ([1, 2, 0], [2, 0, 1]),
        1 => ([0, 2, 1], [0, 2, 1]),
        _ => ([0, 1, 2], [0, 1, 2]),
    };
    let moved = t.f_permute(order)?.f_contiguous()?;
    let size = moved.size();
    let lines = moved.f_reshape([-1, 1, size[2]])?;
    f(&lines)?.f_reshape(size.as_slice())?.f_permute(inverse)?.f_contiguous()
}

/// Eigenvalues of the Hessian of a [z, y, x] tensor at every voxel, largest first, with
/// derivatives per millimetre (`spacing` in mm per axis; central differences, one-sided at the
/// edges replicated). Closed form for symmetric 3x3 matrices (trigonometric solution of the cubic).
pub fn hessian_eigenvalues(t: &Tensor, spacing: [f64; 3]) -> Result<[Tensor; 3], TchError> {
    let d = |x: &Tensor, axis: usize| derivative(x, axis, spacing[axis]);
    let (gz, gy, gx) = (d(t, 0)?, d(t, 1)?, d(t, 2)?);
    let (hzz, hyy, hxx) = (d(&gz, 0)?, d(&gy, 1)?, d(&gx, 2)?);
    let (hzy, hzx, hyx) = (d(&gz, 1)?, d(&gz, 2)?, d(&gy, 2)?);
    symmetric_eigenvalues([&hzz, &hyy, &hxx], [&hzy, &hzx, &hyx])
}

/// Eigenvalues, largest first, of the symmetric matrices with `diagonal` (a, b, c) and
/// `off` (ab, ac, bc) at every voxel.
fn symmetric_eigenvalues(diagonal: [&Tensor; 3], off: [&Tensor; 3]) -> Result<[Tensor; 3], TchError> {
    let [a, b, c] = diagonal;
    let [ab, ac, bc] = off;
    let q = (a + b + c) / 3.0;
    let (da, db, dc) = (a - &q, b - &q, c - &q);
    let off_sq = ab * ab + ac * ac + bc * bc;
    let p = ((&da * &da + &db * &db + &dc * &dc + &off_sq * 2.0) / 6.0).f_sqrt()?.f_clamp_min(1e-12)?;
    // det((H - qI) / p) / 2, the cosine of three times the angle.
    let det = &da * (&db * &dc - bc * bc) - ab * (ab * &dc - bc * ac) + ac * (ab * bc - &db * ac);
    let r = (det / (&p * &p * &p) / 2.0).f_clamp(-1.0, 1.0)?;
    let phi = r.f_acos()? / 3.0;
    let largest = &q + &p * 2.0 * phi.f_cos()?;
    let smallest = &q + &p * 2.0 * (&phi + 2.0 * std::f64::consts::PI / 3.0).f_cos()?;
    let middle = &q * 3.0 - &largest - &smallest;
    Ok([largest, middle, smallest])
}

/// Voxels that hold the maximum of their (2r+1)^3 neighbourhood, as a 0/1 tensor.
pub fn local_maxima(t: &Tensor, radius: i64) -> Result<Tensor, TchError> {
    let k = 2 * radius + 1;
    let pooled = t.f_unsqueeze(0)?.f_max_pool3d([k, k, k], [1, 1, 1], [radius, radius, radius], [1, 1, 1], false)?.f_squeeze_dim(0)?;
    t.f_ge_tensor(&pooled)?.f_to_dtype(Kind::Float, false, false)
}

/// Trilinear samples of a [z, y, x] tensor on small grids: for each centre (a continuous voxel
/// index), `size` points spaced `step` voxels apart per axis, centred on it. Points outside
/// the tensor read 0. Returns [centres, 1, size_z, size_y, size_x].
pub fn sample_patches(volume: &Tensor, centres: &[[f64; 3]], size: [i64; 3], step: [f64; 3]) -> Result<Tensor, TchError> {
    let dims = volume.size();
    let n = centres.len() as i64;
    let [sz, sy, sx] = size;
    let mut grid = Vec::with_capacity((n * sz * sy * sx * 3) as usize);
    // grid_sample wants (x, y, z) per point, each scaled to [-1, 1] over the tensor's extent.
    let unit = |index: f64, axis: usize| (2.0 * index / (dims[axis] - 1).max(1) as f64 - 1.0) as f32;
    for c in centres {
        for a in 0..sz {
            for b in 0..sy {
                for d in 0..sx {
                    let offset = |k: i64, len: i64, axis: usize| c[axis] + (k as f64 - (len - 1) as f64 / 2.0) * step[axis];
                    grid.extend([unit(offset(d, sx, 2), 2), unit(offset(b, sy, 1), 1), unit(offset(a, sz, 0), 0)]);
                }
            }
        }
    }
    let grid = Tensor::f_from_slice(&grid)?.f_reshape([n, sz, sy, sx, 3])?.f_to(volume.device())?;
    let input = volume.f_unsqueeze(0)?.f_unsqueeze(0)?.f_expand([n, 1, dims[0], dims[1], dims[2]], false)?;
    // Modes: 0 = bilinear (trilinear in 3D), padding 0 = zeros.
    input.f_grid_sampler(&grid, 0, 0, true)
}

/// A [1, 1, 2r+1, 2r+1] kernel of ones inside the disc of radius r.
fn disc_kernel(radius: i64, device: Device) -> Result<Tensor, TchError> {
    let side = 2 * radius + 1;
    let r2 = (radius * radius) as f64 + 0.5;
    let weights: Vec<f32> = (0..side * side)
        .map(|i| {
            let (dy, dx) = ((i / side - radius) as f64, (i % side - radius) as f64);
            if dy * dy + dx * dx <= r2 { 1.0 } else { 0.0 }
        })
        .collect();
    Tensor::f_from_slice(&weights)?.f_reshape([1, 1, side, side])?.f_to(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(t: &Tensor) -> usize {
        to_mask(t).unwrap().iter().filter(|m| **m).count()
    }

    #[test]
    fn round_trips_and_resampling() {
        let dims = [2, 5, 7];
        let voxels: Vec<f32> = (0..70).map(|i| i as f32).collect();
        let t = to_tensor(&voxels, dims, Device::Cpu).unwrap();
        assert_eq!(to_vec(&t).unwrap(), voxels);
        let down = downsample_inplane(&t, 2).unwrap();
        assert_eq!(down.size(), [2, 3, 4]);
        // First block of slice 0: pixels 0, 1, 7, 8.
        assert_eq!(to_vec(&down).unwrap()[0], 4.0);
        // Last block of slice 0 is the lone corner pixel 34.
        assert_eq!(to_vec(&down).unwrap()[11], 34.0);
        let up = upsample_inplane(&down, 2, 5, 7).unwrap();
        assert_eq!(up.size(), [2, 5, 7]);
        assert_eq!(to_vec(&up).unwrap()[8], 4.0);
    }

    #[test]
    fn eigenvalues_of_known_matrices() {
        let one = |v: f32| Tensor::from_slice(&[v]);
        // diag(3, -1, 2) and a rotated diag(5, 2, -4) with the same eigenvalues after rotation.
        let [l1, l2, l3] = symmetric_eigenvalues([&one(3.0), &one(-1.0), &one(2.0)], [&one(0.0), &one(0.0), &one(0.0)]).unwrap();
        let v = |t: &Tensor| to_vec(t).unwrap()[0];
        assert!((v(&l1) - 3.0).abs() < 1e-4 && (v(&l2) - 2.0).abs() < 1e-4 && (v(&l3) + 1.0).abs() < 1e-4);
        // [[2,1,0],[1,2,0],[0,0,5]] has eigenvalues 5, 3, 1.
        let [l1, l2, l3] = symmetric_eigenvalues([&one(2.0), &one(2.0), &one(5.0)], [&one(1.0), &one(0.0), &one(0.0)]).unwrap();
        assert!((v(&l1) - 5.0).abs() < 1e-4 && (v(&l2) - 3.0).abs() < 1e-4 && (v(&l3) - 1.0).abs() < 1e-4);
    }

    /// A bright Gaussian blob: negative curvature in all three directions at its centre, equal
    /// to -1/sigma^2 per mm^2 of its amplitude; a local maximum there and nowhere else.
    #[test]
    fn blob_curvature_and_maximum() {
        let n = 21usize;
        let sigma_mm = 3.0;
        let spacing = [1.5, 1.0, 1.0];
        let voxels: Vec<f32> = (0..n * n * n)
            .map(|i| {
                let (z, y, x) = ((i / (n * n)) as f64, ((i / n) % n) as f64, (i % n) as f64);
                let r2 = ((z - 10.0) * spacing[0]).powi(2) + ((y - 10.0) * spacing[1]).powi(2) + ((x - 10.0) * spacing[2]).powi(2);
                (-0.5 * r2 / (sigma_mm * sigma_mm)).exp() as f32
            })
            .collect();
        let t = to_tensor(&voxels, [n, n, n], Device::Cpu).unwrap();
        let [l1, _, l3] = hessian_eigenvalues(&t, spacing).unwrap();
        let centre = 10 * n * n + 10 * n + 10;
        let (top, bottom) = (to_vec(&l1).unwrap()[centre], to_vec(&l3).unwrap()[centre]);
        assert!(top < 0.0 && (bottom as f64 + 1.0 / 9.0).abs() < 0.02, "{top} {bottom}");
        let maxima = to_mask(&local_maxima(&t, 2).unwrap()).unwrap();
        assert!(maxima[centre]);
        assert_eq!(maxima.iter().filter(|m| **m).count(), 1);
        let blurred = gaussian_blur(&t, [1.0, 2.0, 0.5]).unwrap();
        let b = to_vec(&blurred).unwrap();
        assert!(b[centre] < 1.0 && b[centre] > 0.5, "blurring lowers the peak: {}", b[centre]);
        let sum = |v: &[f32]| v.iter().map(|x| *x as f64).sum::<f64>();
        assert!((sum(&b) - sum(&voxels)).abs() / sum(&voxels) < 1e-2, "normalised taps keep the total (edges replicated: nearly)");
        let r = resample(&t, [11, 11, 11]).unwrap();
        assert!((to_vec(&r).unwrap()[5 * 121 + 5 * 11 + 5] - 1.0).abs() < 1e-6, "the centre voxel is kept");
    }

    #[test]
    fn patches_sample_around_their_centres() {
        // value = x index, so a patch's voxels read their own x coordinate.
        let dims = [6, 7, 8];
        let voxels: Vec<f32> = (0..6 * 7 * 8).map(|i| (i % 8) as f32).collect();
        let t = to_tensor(&voxels, dims, Device::Cpu).unwrap();
        let p = sample_patches(&t, &[[2.0, 3.0, 4.0], [2.5, 3.0, 1.0]], [2, 3, 4], [1.0, 1.0, 0.5]).unwrap();
        assert_eq!(p.size(), [2, 1, 2, 3, 4]);
        let v = to_vec(&p).unwrap();
        // x offsets -0.75, -0.25, 0.25, 0.75 around x = 4, then around x = 1.
        let close = |a: f32, b: f32| (a - b).abs() < 1e-5;
        assert!(close(v[0], 3.25) && close(v[3], 4.75), "{:?}", &v[..4]);
        assert!(close(v[24], 0.25) && close(v[27], 1.75), "{:?}", &v[24..28]);
        // Outside the volume reads 0.
        let outside = sample_patches(&t, &[[2.0, 3.0, 20.0]], [1, 1, 1], [1.0, 1.0, 1.0]).unwrap();
        assert_eq!(to_vec(&outside).unwrap(), [0.0]);
    }

    #[test]
    fn disc_morphology() {
        let dims = [1, 21, 21];
        let mut point = vec![false; 441];
        point[10 * 21 + 10] = true;
        let m = mask_to_tensor(&point, dims, Device::Cpu).unwrap();
        let d = dilate_inplane(&m, 3).unwrap();
        assert_eq!(count(&d), 29, "a radius-3 digital disc has 29 pixels");
        assert_eq!(count(&erode_inplane(&d, 3).unwrap()), 1, "eroding the disc by itself leaves its centre");
        // Closing bridges a 2-pixel gap between two bars but keeps their outline elsewhere.
        let mut bars = vec![false; 441];
        for y in 5..16 {
            for x in (3..9).chain(11..17) {
                bars[y * 21 + x] = true;
            }
        }
        let closed = to_mask(&close_inplane(&mask_to_tensor(&bars, dims, Device::Cpu).unwrap(), 2).unwrap()).unwrap();
        assert!(closed[10 * 21 + 9] && closed[10 * 21 + 10], "the gap is closed");
        assert!(!closed[2 * 21 + 10], "nothing grows outside");
        assert!(bars.iter().zip(&closed).all(|(b, c)| !b || *c), "closing only adds");
    }
}
