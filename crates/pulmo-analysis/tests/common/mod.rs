//! Shared by the analysis tests: where ../shared/data is, and the a0002 tumour annotations.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A folder of ../shared/data, or `None` (after saying SKIPPED) when it is absent.
pub fn data(rel: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(rel);
    if dir.exists() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: {} is absent", dir.display());
        None
    }
}

/// (SOP Instance UID of the slice, [xmin, ymin, xmax, ymax]) of every Pascal-VOC annotation
/// file in `dir` (file name = the slice's SOP Instance UID).
pub fn tumour_boxes(dir: &Path) -> Vec<(String, [usize; 4])> {
    let mut boxes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let value = |tag: &str| -> usize {
            let start = text.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
            text[start..].split('<').next().unwrap().trim().parse().unwrap()
        };
        let sop = path.file_stem().unwrap().to_string_lossy().into_owned();
        boxes.push((sop, [value("xmin"), value("ymin"), value("xmax"), value("ymax")]));
    }
    boxes
}
