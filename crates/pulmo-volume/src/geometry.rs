//! Geometry: the affine map between voxel indices (z, y, x) and patient LPS millimetres.
//! Direction vectors need not be orthogonal, so a gantry-tilted (sheared) stack is exact too.

use serde::{Deserialize, Serialize};

use crate::vec3::{cross, det, dot, invert, norm, normalize, sub};

pub use crate::vec3::{Mat3, Vec3};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GeometryError {
    #[error("spacing {0:?} must be finite and positive on every axis")]
    BadSpacing(Vec3),
    #[error("direction vectors {0:?} must be unit length and linearly independent")]
    BadDirection(Mat3),
}

/// Where voxels sit in the patient.
///
/// `origin` is the LPS position (mm) of the centre of voxel (0, 0, 0), as ImagePositionPatient
/// of the first slice. `spacing[a]` is the distance in mm between neighbouring voxel centres
/// along index axis `a`, and `direction[a]` the unit LPS vector of that axis:
/// `direction[2]` is the DICOM row cosine (along a row, increasing column), `direction[1]` the
/// column cosine, `direction[0]` the direction of increasing slice index.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "GeometryFields")]
pub struct Geometry {
    pub origin: Vec3,
    pub spacing: Vec3,
    pub direction: Mat3,
    /// Inverse of the index -> mm matrix, computed once by `new`.
    #[serde(skip)]
    inverse: Mat3,
}

/// The serialised form: deserialising goes through `Geometry::new`, so checks and the
/// inverse are never skipped.
#[derive(Deserialize)]
struct GeometryFields {
    origin: Vec3,
    spacing: Vec3,
    direction: Mat3,
}

impl TryFrom<GeometryFields> for Geometry {
    type Error = GeometryError;
    fn try_from(f: GeometryFields) -> Result<Self, Self::Error> {
        Geometry::new(f.origin, f.spacing, f.direction)
    }
}

impl Geometry {
    pub fn new(origin: Vec3, spacing: Vec3, direction: Mat3) -> Result<Self, GeometryError> {
        if spacing.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(GeometryError::BadSpacing(spacing));
        }
        let unit = direction.iter().all(|d| (norm(*d) - 1.0).abs() < 1e-4);
        let mut g = Geometry { origin, spacing, direction, inverse: [[0.0; 3]; 3] };
        let inverse = invert(&g.matrix()).filter(|_| unit);
        g.inverse = inverse.ok_or(GeometryError::BadDirection(direction))?;
        Ok(g)
    }

    /// Axis-aligned geometry: index x, y, z step along LPS x, y, z (a plain axial stack).
    pub fn axial(origin: Vec3, spacing: Vec3) -> Result<Self, GeometryError> {
        Self::new(origin, spacing, [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    }

    /// Columns of this matrix are `direction[a] * spacing[a]`: mm moved per index step.
    pub fn matrix(&self) -> Mat3 {
        let mut m = [[0.0; 3]; 3];
        for (a, d) in self.direction.iter().enumerate() {
            for (r, row) in m.iter_mut().enumerate() {
                row[a] = d[r] * self.spacing[a];
            }
        }
        m
    }

    /// Patient LPS position (mm) of a continuous voxel index (z, y, x).
    pub fn index_to_lps(&self, index: Vec3) -> Vec3 {
        let m = self.matrix();
        let mut p = self.origin;
        for (r, pr) in p.iter_mut().enumerate() {
            *pr += m[r][0] * index[0] + m[r][1] * index[1] + m[r][2] * index[2];
        }
        p
    }

    /// Continuous voxel index (z, y, x) of a patient LPS position (mm).
    pub fn lps_to_index(&self, point: Vec3) -> Vec3 {
        let d = sub(point, self.origin);
        let m = &self.inverse;
        [dot(m[0], d), dot(m[1], d), dot(m[2], d)]
    }

    /// Unit normal of the slice planes (row cosine x column cosine), as DICOM defines it.
    pub fn slice_normal(&self) -> Vec3 {
        normalize(cross(self.direction[2], self.direction[1]))
    }

    /// Angle in degrees between the stacking direction and the slice normal: 0 for an ordinary
    /// stack, the gantry tilt for a tilted acquisition.
    pub fn shear_degrees(&self) -> f64 {
        let c = dot(self.slice_normal(), self.direction[0]).abs().min(1.0);
        c.acos().to_degrees()
    }

    pub fn is_orthogonal(&self) -> bool {
        self.shear_degrees() < 1e-3
            && dot(self.direction[1], self.direction[2]).abs() < 1e-6
    }

    /// Volume of one voxel in mm³ (|det| of the index -> mm matrix, so shear is accounted for).
    pub fn voxel_volume_mm3(&self) -> f64 {
        det(&self.matrix()).abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oblique() -> Geometry {
        // A coronal-ish oblique stack with 0.7 x 0.7 mm pixels and 1.25 mm slices.
        let (s, c) = (0.3f64.sin(), 0.3f64.cos());
        let row = [c, s, 0.0];
        let col = [0.0, 0.0, -1.0];
        let normal = cross(row, col);
        Geometry::new([-180.2, 31.7, 402.5], [1.25, 0.7, 0.7], [normal, col, row]).unwrap()
    }

    #[test]
    fn round_trip_is_exact_to_a_micrometre_fraction() {
        for g in [oblique(), Geometry::axial([-250.0, -250.0, -1200.0], [2.5, 0.977, 0.977]).unwrap()] {
            for &idx in &[[0.0, 0.0, 0.0], [268.0, 511.0, 511.0], [12.25, -3.5, 400.75]] {
                let back = g.lps_to_index(g.index_to_lps(idx));
                for a in 0..3 {
                    assert!((back[a] - idx[a]).abs() * g.spacing[a] < 1e-6, "{idx:?} -> {back:?}");
                }
            }
            for &p in &[[10.0, -20.0, 30.0], [-300.0, 123.456, -987.6]] {
                let q = g.index_to_lps(g.lps_to_index(p));
                assert!((0..3).all(|a| (q[a] - p[a]).abs() < 1e-6), "{p:?} -> {q:?}");
            }
        }
    }

    #[test]
    fn axial_index_steps_move_along_lps_axes() {
        let g = Geometry::axial([1.0, 2.0, 3.0], [5.0, 0.5, 0.25]).unwrap();
        assert_eq!(g.index_to_lps([1.0, 0.0, 0.0]), [1.0, 2.0, 8.0]);
        assert_eq!(g.index_to_lps([0.0, 2.0, 0.0]), [1.0, 3.0, 3.0]);
        assert_eq!(g.index_to_lps([0.0, 0.0, 4.0]), [2.0, 2.0, 3.0]);
        assert!((g.voxel_volume_mm3() - 0.625).abs() < 1e-12);
        assert!(g.is_orthogonal());
    }

    #[test]
    fn gantry_tilt_is_a_shear_with_exact_mapping() {
        // Slices step 2.5 mm along z and 0.44 mm along y: a 10 degree tilt.
        let step = [0.0, 2.5 * 10f64.to_radians().tan(), 2.5];
        let len = norm(step);
        let dir = [step[0] / len, step[1] / len, step[2] / len];
        let g = Geometry::new([0.0; 3], [len, 1.0, 1.0], [dir, [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
            .unwrap();
        assert!((g.shear_degrees() - 10.0).abs() < 1e-9);
        assert!(!g.is_orthogonal());
        let p = g.index_to_lps([4.0, 0.0, 0.0]);
        assert!((p[1] - 4.0 * step[1]).abs() < 1e-9 && (p[2] - 10.0).abs() < 1e-9);
        let back = g.lps_to_index(p);
        assert!((back[0] - 4.0).abs() < 1e-9 && back[1].abs() < 1e-9);
    }

    #[test]
    fn serde_round_trip_rebuilds_the_inverse() {
        let g = oblique();
        let back: Geometry = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(back, g);
        let bad = r#"{"origin":[0,0,0],"spacing":[-1,1,1],"direction":[[0,0,1],[0,1,0],[1,0,0]]}"#;
        assert!(serde_json::from_str::<Geometry>(bad).is_err());
    }

    #[test]
    fn rejects_degenerate_geometry() {
        assert!(matches!(Geometry::axial([0.0; 3], [0.0, 1.0, 1.0]), Err(GeometryError::BadSpacing(_))));
        let flat = [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        assert!(matches!(Geometry::new([0.0; 3], [1.0; 3], flat), Err(GeometryError::BadDirection(_))));
    }
}
