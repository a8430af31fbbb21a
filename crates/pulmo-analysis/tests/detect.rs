//! Detection with the installed false-positive reduction model (models/fp-reduction.toml) on
//! phantom seeds it was not trained on: sensitivity by type and size, false positives per scan.
//! Without the model the pipeline stops with an error naming it.
//!
//! At its own threshold the model (0.3.0, validation AUC 0.995 in its manifest) keeps 15 of
//! the 18 required nodules here (the misses are juxtavascular, which the model was never strong
//! on) and 2% of the candidates, with 0 and 1 false positives; the assertions hold it near that
//! (>= 70% of the nodules, <= 10% of the candidates, <= 3 false positives per scan; the first,
//! three-block model kept 15 of 18 and 27-48% of the candidates) so that a regression fails.

use std::path::{Path, PathBuf};

use pulmo_analysis::{find_candidates, segment_lungs, Detector, WindowedCt};
use pulmo_phantom::{slices_for_coverage, NoduleKind, PhantomSpec};
use pulmo_torch::model::ModelError;
use pulmo_torch::Device;
use pulmo_volume::vec3;

fn manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/fp-reduction.toml")
}

#[test]
fn a_missing_model_is_an_error_naming_it() {
    let err = Detector::load(Path::new("/nonexistent/fp-reduction.toml"), Device::Cpu).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }) && err.to_string().contains("/nonexistent/fp-reduction.toml"), "{err}");
}

#[test]
fn detection_on_unseen_phantoms() {
    let detector = Detector::load(&manifest(), Device::Cpu).expect("the installed model loads");
    let (mut found, mut required, mut false_positives, mut kept) = (0, 0, Vec::new(), Vec::new());
    for seed in [41, 42] {
        let spec = PhantomSpec {
            seed,
            rows: 384,
            pixel_spacing_mm: 0.85,
            slice_spacing_mm: 1.25,
            slice_thickness_mm: 1.25,
            slices: slices_for_coverage(280.0, 1.25),
            nodule_count: 12,
            ..Default::default()
        };
        let phantom = pulmo_phantom::generate(&spec).unwrap();
        let lungs = segment_lungs(&phantom.volume, Device::Cpu).unwrap();
        let candidates = find_candidates(&phantom.volume, &lungs, Device::Cpu).unwrap();
        let detections = detector.detect(&WindowedCt::new(&phantom.volume), &candidates).unwrap();
        let truth: Vec<_> = phantom.truth.nodules.iter().filter(|n| n.in_field_of_view && n.lung.is_some()).collect();
        let near = |d: &pulmo_analysis::Detection, n: &pulmo_phantom::NoduleTruth| {
            vec3::dist(d.candidate.centre_lps_mm, n.centre_lps_mm) <= (n.long_axis_mm / 2.0).max(3.0)
        };
        for n in &truth {
            let hit = detections.iter().any(|d| near(d, n));
            eprintln!("seed {seed} #{:2} {:11?} {:12?} {:5.1} mm: {}", n.id, n.kind, n.attachment, n.long_axis_mm, if hit { "detected" } else { "MISSED" });
            let must = match n.kind {
                NoduleKind::GroundGlass => n.long_axis_mm >= 8.0,
                _ => n.long_axis_mm >= 5.0,
            };
            if must {
                required += 1;
                found += usize::from(hit);
            }
        }
        false_positives.push(detections.iter().filter(|d| !truth.iter().any(|n| near(d, n))).count());
        kept.push(detections.len() as f64 / candidates.len().max(1) as f64);
        eprintln!("seed {seed}: {} candidates, {} detections", candidates.len(), detections.len());
    }
    eprintln!("detected {found} of {required} required nodules; false positives per scan {false_positives:?}");
    assert!(found * 100 >= required * 70, "sensitivity {found}/{required}");
    assert!(kept.iter().all(|&k| k <= 0.1), "share of candidates kept {kept:?}");
    assert!(false_positives.iter().all(|&n| n <= 3), "false positives per scan {false_positives:?}");
}
