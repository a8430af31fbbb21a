//! Affine maps between patient coordinate frames (e.g. prior LPS -> current LPS), exchanged
//! as row-major 4x4 matrices, as registration code and papers do.

use serde::{Deserialize, Serialize};

use crate::vec3::{add, invert, mat_mul, mat_vec, scale, Mat3, Vec3, IDENTITY};

/// An affine map p -> linear * p + translation, serialised as a row-major 4x4 matrix
/// (last row 0 0 0 1) because that is what registration code and papers exchange.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "[[f64; 4]; 4]", into = "[[f64; 4]; 4]")]
pub struct Affine {
    pub linear: Mat3,
    pub translation: Vec3,
}

impl From<[[f64; 4]; 4]> for Affine {
    fn from(m: [[f64; 4]; 4]) -> Self {
        let linear = [0, 1, 2].map(|r| [m[r][0], m[r][1], m[r][2]]);
        Affine { linear, translation: [m[0][3], m[1][3], m[2][3]] }
    }
}

impl From<Affine> for [[f64; 4]; 4] {
    fn from(a: Affine) -> Self {
        let mut m = [[0.0; 4]; 4];
        for (r, row) in m.iter_mut().take(3).enumerate() {
            row[..3].copy_from_slice(&a.linear[r]);
            row[3] = a.translation[r];
        }
        m[3][3] = 1.0;
        m
    }
}

impl Affine {
    pub const IDENTITY: Affine = Affine { linear: IDENTITY, translation: [0.0; 3] };

    pub fn apply(&self, p: Vec3) -> Vec3 {
        add(mat_vec(&self.linear, p), self.translation)
    }

    pub fn apply_vector(&self, v: Vec3) -> Vec3 {
        mat_vec(&self.linear, v)
    }

    /// `self ∘ other`: apply `other` first.
    pub fn then_after(&self, other: &Affine) -> Affine {
        Affine { linear: mat_mul(&self.linear, &other.linear), translation: self.apply(other.translation) }
    }

    pub fn inverse(&self) -> Option<Affine> {
        let inv = invert(&self.linear)?;
        Some(Affine { linear: inv, translation: scale(mat_vec(&inv, self.translation), -1.0) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vec3::{dist, rotation_deg, transpose};

    #[test]
    fn affine_round_trips_through_4x4_and_inverse() {
        let a = Affine { linear: rotation_deg([3.0, -7.0, 9.0]), translation: [10.0, -4.0, 2.5] };
        let m: [[f64; 4]; 4] = a.into();
        assert_eq!(Affine::from(m), a);
        let p = [12.0, -30.0, 44.0];
        let back = a.inverse().unwrap().apply(a.apply(p));
        assert!(dist(back, p) < 1e-9);
        let r = a.linear;
        let should_be_identity = mat_mul(&r, &transpose(&r));
        assert!((0..3).all(|i| (0..3).all(|j| (should_be_identity[i][j] - IDENTITY[i][j]).abs() < 1e-12)));
    }
}
