//! DICOM files <-> pulmo's domain.
//!
//! Reading: [`DicomFile`] parses one file (tolerant of real archives' meta groups),
//! [`Instance`] extracts the header pulmo needs, [`SeriesCollector`] / [`scan`] group instances
//! into [`Series`], and [`CtSeries::assemble`] turns a CT series into a HU [`Volume`] in patient
//! coordinates. [`wire`] reads what a node files an instance under straight from the received
//! bytes. [`write`] builds the objects pulmo sends back (Key Object Selection, SEG, SR,
//! Secondary Capture) from typed values; [`report`] reads pulmo's own SR back as a prior's
//! findings.
//!
//! [`Volume`]: pulmo_volume::Volume

mod attrs;
mod ct;
mod error;
mod instance;
mod part10;
mod pixels;
pub mod report;
mod series;
pub mod wire;
pub mod write;

use std::path::{Path, PathBuf};

pub use ct::{CtSeries, SliceSource, StackPlan, CT_SOP_CLASSES};
pub use error::{FileError, LoadError};
pub use instance::{FramePlane, Instance, InstanceHeader, PatientStudy};
pub use part10::{part10_bytes, part10_header, DicomFile, FileMeta, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};
pub use series::{scan, Series, SeriesCollector, SeriesSet, SkipKind, Skipped};

impl SeriesSet {
    /// Errors if the instances belong to more than one patient (PatientID, else name).
    pub fn check_single_patient(&self) -> Result<(), LoadError> {
        let key = |i: &Instance| {
            let p = &i.header.patient_study;
            p.patient_id.clone().or_else(|| p.patient_name.clone())
        };
        let mut all = self.series.iter().flat_map(|s| &s.instances);
        let Some(first) = all.next() else { return Ok(()) };
        match all.find(|i| key(i) != key(first)) {
            Some(other) => Err(LoadError::MixedPatients { a: first.path.clone(), b: other.path.clone() }),
            None => Ok(()),
        }
    }
}

/// Loads the CT series under `paths` (files or folders). When there are several, the one with
/// the most slices is taken and the choice noted; one patient only.
pub fn load_ct_series(paths: &[PathBuf]) -> Result<CtSeries, LoadError> {
    let set = scan(paths, true)?;
    set.check_single_patient()?;
    let mut candidates: Vec<&Series> = set.series.iter().collect();
    candidates.sort_by_key(|s| std::cmp::Reverse(s.frame_count()));
    let mut reasons = Vec::new();
    for series in &candidates {
        match CtSeries::assemble(series) {
            Ok(mut ct) => {
                if candidates.len() > 1 {
                    ct.notes.push(format!("{} series found; this one has the most slices", candidates.len()));
                }
                return Ok(ct);
            }
            Err(e) if candidates.len() == 1 => return Err(e),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    let path = paths.first().cloned().unwrap_or_default();
    reasons.extend(set.skipped.iter().take(3).map(|s| format!("{}: {}", s.path.display(), s.reason)));
    Err(LoadError::NoCtSeries { path, reasons: reasons.join("; ") })
}

/// Convenience for one folder or file.
pub fn load_ct_path(path: &Path) -> Result<CtSeries, LoadError> {
    load_ct_series(&[path.to_owned()])
}

/// A UID derived from `seed`: "2.25." and the first 128 bits of SHA-256(seed) as a decimal
/// (PS3.5 B.2). The same seed always gives the same UID, so re-running an export for one study
/// version replaces its objects instead of duplicating them.
pub fn derived_uid(seed: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(seed.as_bytes());
    let mut high = [0u8; 16];
    high.copy_from_slice(&digest[..16]);
    format!("2.25.{}", u128::from_be_bytes(high))
}

/// DICOM UID syntax (PS3.5 9.1): 1-64 characters, digits and dots, no empty component, no
/// leading zero in a multi-digit component. Values that pass are safe in file names and logs.
pub fn valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid.split('.').all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) && (c == "0" || !c.starts_with('0')))
}
