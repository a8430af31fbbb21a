//! The analysis pipeline, stage by stage, from a CT volume in HU to what the radiologist gets.
//! Heavy voxel work runs as tensor operations (pulmo-torch) on the worker's device; what
//! libtorch has no kernel for (connected components, region growing) is plain Rust, and so is
//! the per-nodule vessel cut (a distance transform, linear where a ball convolution is not).
//!
//! [`pipeline`] runs the stages in order and returns `StudyFindings` (pulmo-findings):
//! [`lung`] (left and right lung masks, airways excluded, zones, emphysema), [`candidates`]
//! (blobs in the lungs, for sensitivity), [`detect`] (the false-positive reduction CNN),
//! [`nodule`] (one nodule's voxels, cut from vessels and chest wall), [`measure`] (what is
//! reported about it; [`spiculation`] counts spicules on its margin, [`margin`] calls it
//! spiculated with a CNN, [`lobulation`] measures how far it departs from a smooth outline),
//! [`findings`] (the clinical rules
//! applied), [`follow_up`] (matching with the prior's nodules, growth and doubling time),
//! [`registration`] (the prior study's coordinates mapped into the current one's: global
//! affine, local refinement).

pub mod candidates;
pub mod detect;
pub mod findings;
pub mod follow_up;
pub mod lobulation;
pub mod lung;
pub mod margin;
pub mod measure;
pub mod nodule;
pub mod pipeline;
mod pleura;
pub mod registration;
pub mod spiculation;
#[cfg(test)]
mod test_support;

pub use candidates::{find_candidates, Candidate};
pub use findings::{assess, Measured, NoduleFinding, PatientFacts};
pub use pipeline::{Analysis, AnalysisError, Pipeline, PriorExam, Progress, Stage};
pub use detect::{patches, DetectError, Detection, Detector, WindowedCt};
pub use margin::MarginModel;
pub use measure::{measure, Measurements};
pub use nodule::{segment_nodule, NoduleMask};
pub use lung::{segment_lungs, Level, LungError, LungMask, Side, Zone};
pub use registration::{refine_near, register_to_prior, LocalFit, Registration, RegistrationError, RegistrationQuality};
