//! The working grid of lung segmentation: the CT averaged over in-plane blocks of about 1.5 mm,
//! with the mapping of its voxels back to patient coordinates and small per-slice helpers.

use pulmo_torch::image;
use pulmo_torch::{Device, TchError};
use pulmo_volume::{mask, Geometry, Vec3, Volume};

/// Target in-plane pixel size of the working grid: fine enough for airways and fissure-thin
/// contacts between the lungs, coarse enough to keep every step well under a second per step.
const WORK_PIXEL_MM: f64 = 1.5;

pub(crate) struct Work {
    /// (z, y, x) of the working grid.
    pub dims: [usize; 3],
    /// In-plane pixels of the CT per working pixel, per axis.
    pub factor: usize,
    /// Mean HU of each working voxel.
    pub hu: Vec<f32>,
    pub geometry: Geometry,
    pub device: Device,
}

impl Work {
    pub fn new(ct: &Volume<i16>, device: Device) -> Result<Work, TchError> {
        let geometry = *ct.geometry();
        let pixel = geometry.spacing[1].min(geometry.spacing[2]);
        let factor = (WORK_PIXEL_MM / pixel).round().max(1.0) as usize;
        let voxels: Vec<f32> = ct.data().iter().map(|&v| f32::from(v)).collect();
        let full = image::to_tensor(&voxels, ct.dims(), device)?;
        let down = image::downsample_inplane(&full, factor as i64)?;
        let size = down.size();
        let dims = [size[0] as usize, size[1] as usize, size[2] as usize];
        Ok(Work { dims, factor, hu: image::to_vec(&down)?, geometry, device })
    }

    pub fn len(&self) -> usize {
        self.hu.len()
    }

    pub fn plane(&self) -> usize {
        self.dims[1] * self.dims[2]
    }

    /// Volume of one working voxel, mL.
    pub fn voxel_ml(&self) -> f64 {
        self.geometry.voxel_volume_mm3() * (self.factor * self.factor) as f64 / 1000.0
    }

    /// Area of one working pixel, mm2.
    pub fn pixel_mm2(&self) -> f64 {
        self.geometry.spacing[1] * self.geometry.spacing[2] * (self.factor * self.factor) as f64
    }

    /// Patient position (LPS, mm) of the centre of working voxel `i`.
    pub fn lps(&self, i: usize) -> Vec3 {
        let [_, ny, nx] = self.dims;
        let (z, y, x) = (i / (ny * nx), (i / nx) % ny, i % nx);
        let centre = |w: usize| (w * self.factor) as f64 + (self.factor as f64 - 1.0) / 2.0;
        self.geometry.index_to_lps([z as f64, centre(y), centre(x)])
    }

    /// Mean LPS x (mm) of the given working voxels; `None` for none. Which side of the patient
    /// something lies on is decided by comparing these.
    pub fn mean_x(&self, voxels: impl Iterator<Item = usize>) -> Option<f64> {
        let (sum, n) = voxels.fold((0.0, 0usize), |(sum, n), i| (sum + self.lps(i)[0], n + 1));
        (n > 0).then(|| sum / n as f64)
    }

    /// Slice indices from the most superior (largest LPS z) to the most inferior.
    pub fn superior_to_inferior(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dims[0]).collect();
        let z = |k: usize| self.lps(k * self.plane())[2];
        order.sort_by(|&a, &b| z(b).total_cmp(&z(a)));
        order
    }

    /// The 4-connected components of one slice of `m`.
    pub fn slice_components(&self, m: &[bool], k: usize) -> mask::Components {
        let [_, ny, nx] = self.dims;
        mask::label_components(&m[k * self.plane()..(k + 1) * self.plane()], [1, ny, nx])
    }
}

/// Count of set voxels.
pub(crate) fn count(m: &[bool]) -> usize {
    m.iter().filter(|v| **v).count()
}
