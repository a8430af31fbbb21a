//! Evaluation against known truth: each finding matched to the truth nodule it names
//! ([`matching`]), detection and measurement statistics ([`metrics`]), the markdown report.
//!
//! Runs from `pulmo eval` on phantom studies (exact truth) and on the annotated real series.

pub mod matching;
pub mod follow_up;
pub mod metrics;
pub mod report;
