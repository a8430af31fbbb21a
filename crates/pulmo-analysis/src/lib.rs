//! The analysis pipeline, stage by stage, from a CT volume in HU to what the radiologist gets.
//! Heavy voxel work runs as tensor operations (pulmo-torch) on the worker's device; what
//! libtorch has no kernel for (connected components, region growing) is plain Rust.
//!
//! Stages so far: [`lung`] (left and right lung masks, airways excluded, zones, emphysema) and
//! [`candidates`] (blobs in the lungs, for sensitivity).

pub mod candidates;
pub mod detect;
pub mod findings;
pub mod lung;
pub mod measure;
pub mod nodule;

pub use candidates::{find_candidates, Candidate};
pub use findings::{assess, NoduleFinding, PatientFacts};
pub use detect::{patches, DetectError, Detection, Detector};
pub use measure::{measure, Measurements};
pub use nodule::{segment_nodule, NoduleMask};
pub use lung::{segment_lungs, Level, LungError, LungMask, Side, Zone};
