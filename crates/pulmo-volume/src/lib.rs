//! Dense 3D volumes in patient coordinates, with no DICOM and no torch in sight.
//!
//! A [`Volume<T>`] stores voxels in (z, y, x) order (slice, row, column), the order numpy and
//! libtorch use. Its [`Geometry`] maps a voxel index to DICOM patient coordinates (LPS, mm) and
//! back. Every index triple and every per-axis array in this crate is in that same (z, y, x)
//! order, so `spacing[0]` is the slice spacing and `direction[2]` is the row direction cosine.

mod affine;
pub mod distance;
mod geometry;
pub mod mask;
pub mod mesh;
mod region;
pub mod vec3;
mod volume;

pub use affine::Affine;
pub use geometry::{Geometry, GeometryError};
pub use region::{BoxRegion, RegionError};
pub use vec3::{Mat3, Vec3};
pub use volume::{Volume, VolumeError};
