//! The geometry helpers the scene, renderer and truth use; they live in pulmo-volume so that
//! every crate shares one implementation.

pub use pulmo_volume::vec3::*;
pub use pulmo_volume::Affine;
