//! Grouping instances into series: by SeriesInstanceUID, split by orientation, matrix and
//! (when positions repeat) acquisition; localizers and stray scout images are set aside.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::{DicomFile, Instance, InstanceHeader, LoadError};

/// A file or instance that is not part of any series, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
    pub kind: SkipKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipKind {
    /// Not readable as DICOM (or missing what every instance needs).
    Unreadable,
    /// A readable image left out of the stacks: a localizer or a stray scout.
    NotInStack,
}

/// Instances that form one image stack.
#[derive(Debug, Clone)]
pub struct Series {
    pub series_uid: String,
    /// Set when one SeriesInstanceUID was split: says which part this is.
    pub part: Option<String>,
    pub instances: Vec<Instance>,
    pub notes: Vec<String>,
}

impl Series {
    pub fn header(&self) -> &InstanceHeader {
        &self.instances[0].header
    }

    /// The series UID, plus the part when the UID was split; used in messages.
    pub fn label(&self) -> String {
        match &self.part {
            Some(part) => format!("{} ({part})", self.series_uid),
            None => self.series_uid.clone(),
        }
    }

    pub fn frame_count(&self) -> usize {
        self.instances.iter().map(|i| i.header.frame_count()).sum()
    }
}

#[derive(Debug, Default)]
pub struct SeriesSet {
    pub series: Vec<Series>,
    pub skipped: Vec<Skipped>,
}

/// Accumulates instances as they arrive (from a folder scan or, later, the network) and groups
/// them on `finish`.
#[derive(Debug, Default)]
pub struct SeriesCollector {
    instances: Vec<Instance>,
    skipped: Vec<Skipped>,
}

/// Images of another orientation inside a series, up to this many, are taken as scouts.
const MAX_STRAY_SCOUT_IMAGES: usize = 3;

impl SeriesCollector {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, instance: Instance) {
        self.instances.push(instance);
    }

    /// Records a file that could not be read; folder scans go on past such files.
    pub fn skip(&mut self, path: PathBuf, reason: String) {
        self.skipped.push(Skipped { path, reason, kind: SkipKind::Unreadable });
    }

    pub fn finish(self) -> SeriesSet {
        let mut set = SeriesSet { series: Vec::new(), skipped: self.skipped };
        let mut by_uid: BTreeMap<String, Vec<Instance>> = BTreeMap::new();
        for inst in self.instances {
            if inst.is_localizer() {
                let reason = "localizer (ImageType LOCALIZER)".to_string();
                set.skipped.push(Skipped { path: inst.path, reason, kind: SkipKind::NotInStack });
            } else {
                by_uid.entry(inst.header.series_uid.clone()).or_default().push(inst);
            }
        }
        for (uid, instances) in by_uid {
            split_series(uid, instances, &mut set);
        }
        set
    }
}

/// Orientation (to 1e-3) and matrix: what must agree within one stack. None when the
/// orientation is missing; such instances join the main stack, where assembly reports them.
fn stack_key(h: &InstanceHeader) -> Option<String> {
    let o = h.frames.first()?.orientation?.map(|v| (v * 1000.0).round() as i64);
    Some(format!("{o:?}/{}x{}", h.rows, h.columns))
}

fn split_series(uid: String, instances: Vec<Instance>, set: &mut SeriesSet) {
    let mut stacks: BTreeMap<String, Vec<Instance>> = BTreeMap::new();
    let mut unplaced = Vec::new();
    for inst in instances {
        match stack_key(&inst.header) {
            Some(key) => stacks.entry(key).or_default().push(inst),
            None => unplaced.push(inst),
        }
    }
    let mut stacks: Vec<Vec<Instance>> = stacks.into_values().collect();
    stacks.sort_by_key(|s| std::cmp::Reverse(s.len()));
    match stacks.first_mut() {
        Some(main) => main.extend(unplaced),
        None => stacks.push(unplaced),
    }
    let split = stacks.len() > 1;
    for (i, stack) in stacks.into_iter().enumerate() {
        let single_frames = stack.iter().all(|s| s.header.frame_count() == 1);
        if i > 0 && single_frames && stack.len() <= MAX_STRAY_SCOUT_IMAGES {
            for inst in stack {
                let reason = format!("orientation or matrix differs from the rest of series {uid} (scout?)");
                set.skipped.push(Skipped { path: inst.path, reason, kind: SkipKind::NotInStack });
            }
            continue;
        }
        let part = (split && i > 0).then(|| format!("stack {}", i + 1));
        for mut series in split_by_acquisition(&uid, stack) {
            if let Some(p) = &part {
                series.part = Some(match series.part.take() {
                    Some(acq) => format!("{p}, {acq}"),
                    None => p.clone(),
                });
            }
            if split {
                series.notes.push("series mixes orientations or matrices; split into stacks".into());
            }
            set.series.push(series);
        }
    }
}

/// Two acquisitions stored under one SeriesInstanceUID repeat slice positions; only then does
/// AcquisitionNumber split them (sequential scans legitimately number every rotation).
fn split_by_acquisition(uid: &str, stack: Vec<Instance>) -> Vec<Series> {
    let one = |instances, part, notes| Series { series_uid: uid.to_string(), part, instances, notes };
    let positions: Vec<_> = stack.iter().filter_map(|i| i.header.frames.first()?.position).collect();
    let repeats = positions.iter().enumerate().any(|(i, p)| {
        positions[..i].iter().any(|q| (0..3).all(|a| (p[a] - q[a]).abs() < 1e-3))
    });
    let mut by_acq: BTreeMap<Option<i64>, Vec<Instance>> = BTreeMap::new();
    for inst in stack {
        by_acq.entry(inst.header.acquisition_number).or_default().push(inst);
    }
    if !repeats || by_acq.len() < 2 {
        return vec![one(by_acq.into_values().flatten().collect(), None, vec![])];
    }
    let note = "slice positions repeat across acquisitions; split by AcquisitionNumber".to_string();
    by_acq
        .into_iter()
        .map(|(acq, insts)| {
            let part = format!("acquisition {}", acq.map_or("none".into(), |a| a.to_string()));
            one(insts, Some(part), vec![note.clone()])
        })
        .collect()
}

/// Reads every file under `paths` (folders recursively) in parallel and groups them.
/// Unreadable files are listed in `skipped`, not fatal; an input with no DICOM file is, and a
/// single file that fails reports its own error.
pub fn scan(paths: &[PathBuf], keep_pixels: bool) -> Result<SeriesSet, LoadError> {
    let mut files = Vec::new();
    for p in paths {
        collect_files(p, &mut files)?;
    }
    let mut read: Vec<_> = files
        .par_iter()
        .map(|p| DicomFile::open(p).and_then(|f| Instance::from_file(f, keep_pixels)))
        .collect();
    if files.len() == 1 && read[0].is_err() {
        return Err(LoadError::File(read.remove(0).unwrap_err()));
    }
    let read_count = files.len();
    let mut collector = SeriesCollector::new();
    for (path, result) in files.into_iter().zip(read) {
        match result {
            Ok(inst) => collector.add(inst),
            Err(e) => collector.skip(path, e.to_string()),
        }
    }
    if collector.instances.is_empty() {
        return Err(LoadError::NoDicomFiles(paths.first().cloned().unwrap_or_default()));
    }
    let set = collector.finish();
    // Localizers and scouts are worth an operator's attention; stray non-DICOM files
    // (reports, DICOMDIRs, annotations) are routine and listed at debug level.
    for s in &set.skipped {
        match s.kind {
            SkipKind::Unreadable => tracing::debug!(path = %s.path.display(), reason = %s.reason, "skipped"),
            SkipKind::NotInStack => tracing::info!(path = %s.path.display(), reason = %s.reason, "skipped"),
        }
    }
    tracing::info!(files = read_count, series = set.series.len(), skipped = set.skipped.len(), "scanned");
    Ok(set)
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| LoadError::File(crate::FileError::Io(path.to_owned(), e)))?;
    if meta.is_file() {
        out.push(path.to_owned());
        return Ok(());
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| LoadError::File(crate::FileError::Io(path.to_owned(), e)))?;
    let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    children.sort();
    for child in children {
        collect_files(&child, out)?;
    }
    Ok(())
}
