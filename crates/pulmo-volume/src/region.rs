//! A binary region of a volume stored as its bounding box and run lengths: small enough to
//! travel inside JSON findings, and all a DICOM SEG writer needs to rebuild its frames.

use serde::{Deserialize, Serialize};

/// Voxels of a (z, y, x) grid inside a box, run-length encoded.
///
/// `runs` alternate between voxels outside and inside the region, starting with outside (so
/// the first run may be 0), over the box in (z, y, x) order; they add up to the box's voxel
/// count. An empty region has an empty box.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxRegion {
    /// Grid index (z, y, x) of the box's first voxel.
    pub start: [usize; 3],
    pub dims: [usize; 3],
    pub runs: Vec<u32>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegionError {
    #[error("runs add up to {runs} voxels but the box {dims:?} holds {voxels}")]
    RunsMismatch { runs: u64, voxels: u64, dims: [usize; 3] },
    #[error("box {start:?} + {dims:?} extends past the grid {grid:?}")]
    OutsideGrid { start: [usize; 3], dims: [usize; 3], grid: [usize; 3] },
}

impl BoxRegion {
    /// The region of `inside` (one flag per voxel of the box `dims` at `start`), shrunk to the
    /// bounding box of its voxels.
    pub fn from_mask(start: [usize; 3], dims: [usize; 3], inside: &[bool]) -> BoxRegion {
        let [_, ny, nx] = dims;
        let index = |i: usize| [i / (ny * nx), (i / nx) % ny, i % nx];
        let (mut lo, mut hi) = ([usize::MAX; 3], [0usize; 3]);
        for v in (0..inside.len().min(dims.iter().product())).filter(|&i| inside[i]).map(index) {
            for a in 0..3 {
                lo[a] = lo[a].min(v[a]);
                hi[a] = hi[a].max(v[a]);
            }
        }
        if lo[0] == usize::MAX {
            return BoxRegion::default();
        }
        let tight = [0, 1, 2].map(|a| hi[a] - lo[a] + 1);
        let flags = (0..tight[0]).flat_map(|z| (0..tight[1]).flat_map(move |y| (0..tight[2]).map(move |x| [z, y, x]))).map(|[z, y, x]| {
            inside[((z + lo[0]) * ny + y + lo[1]) * nx + x + lo[2]]
        });
        BoxRegion { start: [0, 1, 2].map(|a| start[a] + lo[a]), dims: tight, runs: encode(flags) }
    }

    /// Number of voxels in the region.
    pub fn count(&self) -> u64 {
        self.runs.iter().skip(1).step_by(2).map(|&r| u64::from(r)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Checks that the runs fill the box exactly and that the box lies within `grid`.
    pub fn check(&self, grid: [usize; 3]) -> Result<(), RegionError> {
        let voxels: u64 = self.dims.iter().map(|&d| d as u64).product();
        let runs: u64 = self.runs.iter().map(|&r| u64::from(r)).sum();
        if runs != voxels {
            return Err(RegionError::RunsMismatch { runs, voxels, dims: self.dims });
        }
        if (0..3).any(|a| self.start[a].checked_add(self.dims[a]).is_none_or(|end| end > grid[a])) {
            return Err(RegionError::OutsideGrid { start: self.start, dims: self.dims, grid });
        }
        Ok(())
    }

    /// One flag per voxel of the box, in (z, y, x) order.
    pub fn to_mask(&self) -> Vec<bool> {
        let mut mask = Vec::with_capacity(self.dims.iter().product());
        for (k, &run) in self.runs.iter().enumerate() {
            mask.extend(std::iter::repeat_n(k % 2 == 1, run as usize));
        }
        mask
    }

    /// Grid indices (z, y, x) of the region's voxels, in (z, y, x) order.
    pub fn voxels(&self) -> impl Iterator<Item = [usize; 3]> + '_ {
        let [_, ny, nx] = self.dims;
        let start = self.start;
        let mut offset = 0usize;
        self.runs.iter().enumerate().flat_map(move |(k, &run)| {
            let first = offset;
            offset += run as usize;
            let inside = if k % 2 == 1 { first..offset } else { 0..0 };
            inside.map(move |i| [start[0] + i / (ny * nx), start[1] + (i / nx) % ny, start[2] + i % nx])
        })
    }
}

fn encode(flags: impl Iterator<Item = bool>) -> Vec<u32> {
    // An odd number of runs so far means the last one counts outside voxels.
    let mut runs = vec![0u32];
    for f in flags {
        if f == (runs.len() % 2 == 1) {
            runs.push(0);
        }
        if let Some(last) = runs.last_mut() {
            *last += 1;
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_shrinks_to_the_bounding_box() {
        let dims = [3, 4, 5];
        let mut inside = vec![false; 60];
        for i in [21, 22, 26, 47] {
            inside[i] = true; // (1,0,1) (1,0,2) (1,1,1) (2,1,2)
        }
        let r = BoxRegion::from_mask([10, 20, 30], dims, &inside);
        assert_eq!(r.start, [11, 20, 31]);
        assert_eq!(r.dims, [2, 2, 2]);
        assert_eq!(r.count(), 4);
        assert_eq!(r.check([13, 24, 35]), Ok(()));
        let voxels: Vec<_> = r.voxels().collect();
        assert_eq!(voxels, vec![[11, 20, 31], [11, 20, 32], [11, 21, 31], [12, 21, 32]]);
        assert_eq!(r.to_mask(), vec![true, true, true, false, false, false, false, true]);
        assert_eq!(r.runs, vec![0, 3, 4, 1]);
    }

    #[test]
    fn empty_and_inconsistent_regions() {
        let r = BoxRegion::from_mask([0, 0, 0], [2, 2, 2], &[false; 8]);
        assert!(r.is_empty());
        assert_eq!(r.voxels().count(), 0);
        let bad = BoxRegion { start: [0, 0, 0], dims: [1, 2, 2], runs: vec![1, 2] };
        assert!(matches!(bad.check([5, 5, 5]), Err(RegionError::RunsMismatch { runs: 3, voxels: 4, .. })));
        let outside = BoxRegion { start: [4, 0, 0], dims: [2, 1, 1], runs: vec![0, 2] };
        assert!(matches!(outside.check([5, 5, 5]), Err(RegionError::OutsideGrid { .. })));
    }
}
