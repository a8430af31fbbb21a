//! pulmo-phantom: synthetic chest CT studies with exactly known ground truth, the yardstick
//! for every accuracy claim pulmo makes; also nodule insertion into real CT series.
//!
//! A phantom patient is a scene in a *body frame* (x left, y posterior, z superior, mm):
//! torso layers, ribs, spine, mediastinum, two lungs with textured parenchyma, tapering
//! vessel and airway trees, and nodules given as exact implicit shapes. Each study renders
//! that scene through its own pose (body -> LPS) into its own voxel grid, so a follow-up is
//! the same patient moved, breathing a little differently, with grown or new nodules.
//!
//! ```no_run
//! let phantom = pulmo_phantom::generate(&pulmo_phantom::PhantomSpec::default())?;
//! pulmo_phantom::write_study(&phantom, std::path::Path::new("out/baseline"))?;
//! let later = pulmo_phantom::generate_follow_up(&phantom.truth, &Default::default())?;
//! # Ok::<(), pulmo_phantom::PhantomError>(())
//! ```

mod anatomy;
mod dicom_writer;
mod follow_up;
mod generate;
mod identity;
mod insert;
pub mod lungrads_truth;
mod math;
pub mod measure;
mod nodule;
mod placement;
mod render;
mod resample;
mod scene;
mod seeds;
mod spec;
mod truth;
mod tubes;

use std::path::{Path, PathBuf};

use pulmo_volume::{GeometryError, Volume, VolumeError};

pub use anatomy::Side;
pub use dicom_writer::write_study;
pub use follow_up::generate_follow_up;
pub use generate::generate;
pub use identity::StudyIdentity;
pub use insert::{insert_follow_up, insert_into, lung_mask, BackgroundHeader};
pub use lungrads_truth::LungRads;
pub use math::{Affine, Mat3, Vec3};
pub use nodule::{Attachment, Ball, NoduleKind, NoduleModel, NoduleRequest, NoduleShape, Spike};
pub use seeds::uid;
pub use spec::{slices_for_coverage, FollowUpSpec, PatientInfo, PhantomSpec, RigidMotion};
pub use truth::{
    BackgroundInfo, CoreTruth, FollowUpTruth, Generator, GrowthTruth, NoduleMatch, NoduleTruth, PatientModel, Pose,
    StudyKind, Truth, SCENE_VERSION,
};

/// One synthetic study: HU voxels, the answer key, and the DICOM identity to write it under.
#[derive(Debug, Clone)]
pub struct Phantom {
    /// Hounsfield units, (z, y, x), with the study's LPS geometry.
    pub volume: Volume<i16>,
    pub truth: Truth,
    pub dicom: StudyIdentity,
}

#[derive(Debug, thiserror::Error)]
pub enum PhantomError {
    #[error("invalid option {field}: {reason}")]
    InvalidOption { field: &'static str, reason: String },
    #[error("could not place nodule {index}: {reason}")]
    Placement { index: usize, reason: String },
    #[error("prior study unusable for a follow-up: {0}")]
    Prior(String),
    #[error("background series unusable: {0}")]
    Background(String),
    #[error(transparent)]
    Geometry(#[from] GeometryError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("writing DICOM {path}: {message}")]
    Dicom { path: PathBuf, message: String },
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl PhantomError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> PhantomError {
        PhantomError::Io { path: path.to_path_buf(), source }
    }
}
