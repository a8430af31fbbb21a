//! The scene of one study: the patient (anatomy, tubes, nodules in the body frame), the pose
//! that puts the body into LPS space, and the acquisition (voxel grid, slice profile, noise).

use pulmo_volume::Geometry;

use crate::anatomy::Anatomy;
use crate::math::{Affine, Vec3};
use crate::nodule::NoduleDesign;
use crate::spec::PhantomSpec;
use crate::truth::{GrowthTruth, Pose};
use crate::tubes::Tube;
use crate::PhantomError;

pub(crate) struct PlacedNodule {
    pub id: u32,
    pub design: NoduleDesign,
    pub centre_body: Vec3,
    pub growth: Option<GrowthTruth>,
}

pub(crate) struct Scene {
    pub anatomy: Anatomy,
    pub tubes: Vec<Tube>,
    pub nodules: Vec<PlacedNodule>,
}

/// The voxel grid and imaging physics of one series.
#[derive(Debug, Clone)]
pub(crate) struct Acquisition {
    pub dims: [usize; 3],
    pub geometry: Geometry,
    /// Width of the box slice-sensitivity profile, mm.
    pub thickness: f64,
    pub noise_hu: f64,
    pub noise_seed: u64,
}

impl Acquisition {
    /// An axial stack centred on the isocentre in-plane and on the lungs along z, as a
    /// technologist plans it from the scout.
    pub fn planned(
        spec: &PhantomSpec,
        anatomy: &Anatomy,
        pose: &Pose,
        noise_seed: u64,
    ) -> Result<Acquisition, PhantomError> {
        let n = spec.rows;
        let px = spec.pixel_spacing_mm;
        let half = (n - 1) as f64 * px / 2.0;
        let centre_z = pose.body_to_lps.apply([0.0, 0.0, anatomy.scan_centre_z()])[2];
        let z0 = centre_z - (spec.slices - 1) as f64 * spec.slice_spacing_mm / 2.0;
        let geometry = Geometry::axial([-half, -half, z0], [spec.slice_spacing_mm, px, px])?;
        Ok(Acquisition {
            dims: [spec.slices, n, n],
            geometry,
            thickness: spec.slice_thickness_mm,
            noise_hu: spec.noise_hu,
            noise_seed,
        })
    }

    /// Continuous voxel index (z, y, x) -> LPS mm.
    pub fn index_to_lps(&self) -> Affine {
        Affine { linear: self.geometry.matrix(), translation: self.geometry.origin }
    }

    /// Whether a ball of `radius` mm around an LPS point lies inside the imaged volume.
    pub fn contains_ball(&self, lps: Vec3, radius: f64) -> bool {
        let idx = self.geometry.lps_to_index(lps);
        (0..3).all(|a| {
            let margin = radius / self.geometry.spacing[a];
            idx[a] >= margin && idx[a] <= (self.dims[a] - 1) as f64 - margin
        })
    }

    pub fn contains(&self, lps: Vec3) -> bool {
        self.contains_ball(lps, 0.0)
    }
}
