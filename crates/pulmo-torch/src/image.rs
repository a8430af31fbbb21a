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
