//! Volume<T>: a dense (z, y, x) voxel array that knows where it is in the patient.
//! Slices are contiguous, so a DICOM slice or a SEG frame is one `slice(z)`.

use serde::{Deserialize, Serialize};

use crate::Geometry;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VolumeError {
    #[error("volume of {dims:?} voxels needs {expected} values, got {got}")]
    WrongLength { dims: [usize; 3], expected: usize, got: usize },
    #[error("volume dimensions {0:?} must all be non-zero")]
    Empty([usize; 3]),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume<T> {
    dims: [usize; 3],
    geometry: Geometry,
    data: Vec<T>,
}

impl<T> Volume<T> {
    /// `dims` is (slices, rows, columns); `data` is slice-major, then row-major.
    pub fn new(dims: [usize; 3], geometry: Geometry, data: Vec<T>) -> Result<Self, VolumeError> {
        if dims.contains(&0) {
            return Err(VolumeError::Empty(dims));
        }
        let expected = dims[0] * dims[1] * dims[2];
        if data.len() != expected {
            return Err(VolumeError::WrongLength { dims, expected, got: data.len() });
        }
        Ok(Volume { dims, geometry, data })
    }

    pub fn filled(dims: [usize; 3], geometry: Geometry, value: T) -> Result<Self, VolumeError>
    where
        T: Clone,
    {
        Self::new(dims, geometry, vec![value; dims[0] * dims[1] * dims[2]])
    }

    pub fn dims(&self) -> [usize; 3] {
        self.dims
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    pub fn data(&self) -> &[T] {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    pub fn into_data(self) -> Vec<T> {
        self.data
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Flat offset of voxel (z, y, x), or None outside the volume.
    pub fn offset(&self, [z, y, x]: [usize; 3]) -> Option<usize> {
        let [nz, ny, nx] = self.dims;
        (z < nz && y < ny && x < nx).then(|| (z * ny + y) * nx + x)
    }

    pub fn get(&self, zyx: [usize; 3]) -> Option<&T> {
        self.offset(zyx).map(|o| &self.data[o])
    }

    pub fn get_mut(&mut self, zyx: [usize; 3]) -> Option<&mut T> {
        self.offset(zyx).map(|o| &mut self.data[o])
    }

    pub fn slice(&self, z: usize) -> &[T] {
        let n = self.dims[1] * self.dims[2];
        &self.data[z * n..(z + 1) * n]
    }

    pub fn slice_mut(&mut self, z: usize) -> &mut [T] {
        let n = self.dims[1] * self.dims[2];
        &mut self.data[z * n..(z + 1) * n]
    }

    /// A volume of the same shape and geometry with every voxel mapped.
    pub fn map<U>(&self, f: impl FnMut(&T) -> U) -> Volume<U> {
        Volume { dims: self.dims, geometry: self.geometry, data: self.data.iter().map(f).collect() }
    }

    /// Patient LPS position (mm) of the centre of voxel (z, y, x).
    pub fn voxel_lps(&self, [z, y, x]: [usize; 3]) -> [f64; 3] {
        self.geometry.index_to_lps([z as f64, y as f64, x as f64])
    }

    /// Physical extent along each index axis, centre of first to centre of last voxel (mm).
    pub fn extent_mm(&self) -> [f64; 3] {
        let s = self.geometry.spacing;
        [0, 1, 2].map(|a| (self.dims[a] - 1) as f64 * s[a])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexing_is_slice_then_row_then_column() {
        let g = Geometry::axial([0.0; 3], [2.0, 1.0, 1.0]).unwrap();
        let v = Volume::new([2, 3, 4], g, (0..24).collect::<Vec<i16>>()).unwrap();
        assert_eq!(v.get([1, 2, 3]), Some(&23));
        assert_eq!(v.get([0, 1, 0]), Some(&4));
        assert_eq!(v.get([2, 0, 0]), None);
        assert_eq!(v.slice(1)[0], 12);
        assert_eq!(v.voxel_lps([1, 2, 3]), [3.0, 2.0, 2.0]);
        assert_eq!(v.extent_mm(), [2.0, 2.0, 3.0]);
    }

    #[test]
    fn rejects_wrong_length_and_empty() {
        let g = Geometry::axial([0.0; 3], [1.0; 3]).unwrap();
        assert!(matches!(Volume::new([2, 2, 2], g, vec![0u8; 7]), Err(VolumeError::WrongLength { .. })));
        assert!(matches!(Volume::<u8>::new([0, 2, 2], g, vec![]), Err(VolumeError::Empty(_))));
    }
}
