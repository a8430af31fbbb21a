//! Typed errors: FileError for one file, LoadError for a series or a folder.
//! Every message names the file (or series) and the reason, so an operator can act on it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}: cannot read: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: not a DICOM file (no DICM marker at byte 128 and no bare dataset)")]
    NotDicom(PathBuf),
    #[error("{0}: truncated in the {1}")]
    Truncated(PathBuf, String),
    #[error("{0}: file meta group lacks {1}")]
    MissingMeta(PathBuf, &'static str),
    #[error("{0}: transfer syntax {1} is not supported (unknown to the decoder registry)")]
    UnknownTransferSyntax(PathBuf, String),
    #[error("{0}: cannot parse dataset: {1}")]
    Parse(PathBuf, String),
    #[error("{0}: missing {1}")]
    MissingAttribute(PathBuf, &'static str),
    #[error("{0}: invalid {1}: {2}")]
    BadAttribute(PathBuf, &'static str, String),
    #[error("{0}: pixel data: {1}")]
    PixelData(PathBuf, String),
    #[error("{path}: cannot decode pixel data in transfer syntax {name} ({uid}): {reason}")]
    Undecodable { path: PathBuf, uid: String, name: String, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}: no DICOM files found")]
    NoDicomFiles(PathBuf),
    #[error("{path}: no CT series that pulmo can load ({reasons})")]
    NoCtSeries { path: PathBuf, reasons: String },
    #[error("{a} and {b} belong to different patients; load one patient at a time")]
    MixedPatients { a: PathBuf, b: PathBuf },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{path}: modality {modality:?} (SOP class {sop_class}) is not a CT image")]
    NotCt { path: PathBuf, modality: String, sop_class: String },
    #[error("series {series}: {reason}")]
    Series { series: String, reason: String },
    #[error("series {series}: missing slices: {gaps}")]
    MissingSlices { series: String, gaps: String },
    #[error("series {series}: {a} and {b} are at the same position along the slice normal")]
    DuplicatePosition { series: String, a: PathBuf, b: PathBuf },
}

impl LoadError {
    pub(crate) fn series(series: &str, reason: impl Into<String>) -> Self {
        LoadError::Series { series: series.to_string(), reason: reason.into() }
    }
}
