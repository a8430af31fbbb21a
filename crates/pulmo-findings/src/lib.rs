//! `StudyFindings`, the one result type of the analysis pipeline, as plain serde data: what was
//! analysed, the lungs, each nodule with its measurements and clinical assessments, and the exam.
//!
//! It has no images, models or DICOM in it, so every reader (the SEG/SR writers, the store, the
//! CLI, the evaluation) depends on this small crate only. Positions are patient LPS millimetres,
//! as DICOM defines them, never voxel indices alone.

mod follow_up;
mod nodule;
mod patient;
mod study;
mod summary;

pub use follow_up::{
    found_on_prior_ct, ChangeSincePrior, Disappearance, NoduleChange, PriorComparison, PriorFindings, PriorNodule, PriorObject, PriorTrack, RegistrationQuality, TrackPoint, UnmatchedPrior,
};
pub use nodule::{nodule_colour, HuStats, Measurements, NoduleFinding, Risk, SolidCore};
pub use patient::PatientFacts;
pub use study::{
    Algorithm, ExamAssessment, FleischnerAdvice, LungExtent, LungSummary, ModelRef, Processing, SourceSeries, SourceSlice,
    StageTime, StudyFindings, SCHEMA_VERSION,
};
pub use summary::{nodule_table, summary};
pub use zone::{Level, Side, Zone};

mod zone {
    //! Where in the chest a nodule lies: which lung, and which third of it.
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Side {
        Right,
        Left,
    }

    /// Upper = above the carina (pulmo's stand-in for the upper lobes, as the Brock model asks);
    /// middle and lower split the lung below the carina in half by height.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Level {
        Upper,
        Middle,
        Lower,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub struct Zone {
        pub side: Side,
        pub level: Level,
    }

    impl std::fmt::Display for Zone {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let side = match self.side {
                Side::Right => "right",
                Side::Left => "left",
            };
            let level = match self.level {
                Level::Upper => "upper",
                Level::Middle => "middle",
                Level::Lower => "lower",
            };
            write!(f, "{side} {level}")
        }
    }
}
