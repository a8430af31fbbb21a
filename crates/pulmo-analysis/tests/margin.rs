//! The installed margin model (models/margin-spiculated.toml) on nodules of known margin, in a
//! phantom (seed 1105, a tuning phantom, not a training one) and inserted into the real TCGA
//! series (a copy the training did not use): spiculated margins are called spiculated (on the
//! real series' 5 mm slices: ranked above the others) and the others not. Without the model
//! the pipeline stops with an error naming it.

mod common;

use std::path::{Path, PathBuf};

use pulmo_analysis::{measure, segment_lungs, segment_nodule, MarginModel, Pipeline, WindowedCt};
use pulmo_phantom::{Attachment, BackgroundHeader, NoduleKind, NoduleRequest, NoduleShape, Phantom, PhantomSpec};
use pulmo_torch::Device;

use common::data;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// Nine solid and part-solid nodules of 7-16 mm on 1.25 mm slices, three of each margin,
/// isolated, on vessels and on the pleura.
fn mixed() -> PhantomSpec {
    let shapes = [NoduleShape::Spherical, NoduleShape::Lobulated, NoduleShape::Spiculated];
    let attachments = [Attachment::Isolated, Attachment::Juxtavascular, Attachment::Juxtapleural];
    let nodules: Vec<NoduleRequest> = (0..9)
        .map(|k| NoduleRequest {
            kind: Some(if k % 4 == 3 { NoduleKind::PartSolid } else { NoduleKind::Solid }),
            shape: Some(shapes[k % 3]),
            attachment: Some(attachments[(k / 3) % 3]),
            diameter_mm: Some([7.0, 9.0, 12.0, 16.0, 10.0][k % 5]),
        })
        .collect();
    PhantomSpec { nodule_count: nodules.len(), nodules, ..PhantomSpec::evaluation(1105, 9) }
}

/// The margin model's probability for each of `study`'s nodules whose margin is assessed,
/// segmented at their true centres, as (spiculated margins, the others).
fn probabilities(study: &Phantom) -> (Vec<f64>, Vec<f64>) {
    let margin = MarginModel::load(&models().join("margin-spiculated.toml"), Device::Cpu).expect("the installed margin model loads");
    let lungs = segment_lungs(&study.volume, Device::Cpu).expect("lung mask");
    let windowed = WindowedCt::new(&study.volume);
    let (mut spiculated, mut others) = (Vec::new(), Vec::new());
    for truth in study.truth.nodules.iter().filter(|t| t.in_field_of_view && t.lung.is_some()) {
        let Some(mask) = segment_nodule(&study.volume, &lungs, truth.centre_lps_mm, truth.long_axis_mm / 2.0) else { continue };
        let mut m = measure(&mask, study.volume.geometry()).0;
        margin.call(&windowed, [&mut m]).expect("margin call");
        let Some(p) = m.spiculation_probability else {
            eprintln!("nodule {} ({:?}, {:?}, {:.1} mm): margin not assessed (measured {:?})", truth.id, truth.shape, truth.kind, truth.mean_diameter_mm, m.density);
            continue;
        };
        eprintln!("nodule {} ({:?}, {:?}, {:.1} mm): spiculated {:?}, p {p:.3}", truth.id, truth.shape, truth.attachment, truth.mean_diameter_mm, m.spiculated);
        if truth.shape == NoduleShape::Spiculated { spiculated.push(p) } else { others.push(p) }
    }
    (spiculated, others)
}

/// How many of `probabilities` the model calls spiculated.
fn called(probabilities: &[f64]) -> usize {
    let manifest = pulmo_torch::model::Manifest::read(&models().join("margin-spiculated.toml")).expect("manifest");
    let threshold = manifest.output.threshold.expect("an operating point");
    probabilities.iter().filter(|p| **p >= threshold).count()
}

#[test]
fn spiculated_margins_are_called_and_others_not() {
    let (spiculated, others) = probabilities(&pulmo_phantom::generate(&mixed()).expect("phantom"));
    assert!(spiculated.len() == 3 && others.len() >= 5, "assessed: {} spiculated, {} others", spiculated.len(), others.len());
    // Measured (model 0.2.0, operating point 0.70): 3 of 3 (the lowest p 0.79) and 0 of 6 (a
    // 7 mm smooth nodule the highest, p 0.45).
    assert_eq!(called(&spiculated), spiculated.len(), "every spiculated margin is called");
    assert!(called(&others) <= 1, "{} of {} other margins called spiculated", called(&others), others.len());
}

/// The model trained on phantoms alone called most smooth nodules inserted into this series
/// spiculated (here all 4 assessed). On its 5 mm slices spicules blur: the spiculated margins
/// must still rank above the others, but may fall under the operating point (measured: both
/// assessed under it, p 0.30 and 0.42 against 0.70, the others 0.003-0.25).
#[test]
fn smooth_margins_inserted_into_real_ct_are_not_called_spiculated() {
    let Some(dir) = data("ct/tcga-thca-wholebody") else { return };
    let ct = pulmo_dicom::load_ct_path(&dir).expect("the TCGA series loads");
    let header = BackgroundHeader { slice_thickness_mm: ct.slice_thickness, ..BackgroundHeader::default() };
    let shapes = [NoduleShape::Spherical, NoduleShape::Spiculated, NoduleShape::Lobulated];
    let nodules: Vec<NoduleRequest> = (0..9)
        .map(|k| NoduleRequest {
            kind: Some(if k % 4 == 3 { NoduleKind::PartSolid } else { NoduleKind::Solid }),
            shape: Some(shapes[k % 3]),
            attachment: Some(Attachment::Isolated),
            diameter_mm: Some([8.0, 10.0, 12.0, 7.0][k % 4]),
        })
        .collect();
    // Seed 101: the training used copies 1-40 of this series.
    let spec = PhantomSpec { seed: 101, nodule_count: nodules.len(), nodules, ..PhantomSpec::default() };
    let study = pulmo_phantom::insert_into(ct.volume, &header, &spec).expect("insertion");
    let (spiculated, others) = probabilities(&study);
    assert!(spiculated.len() >= 2 && others.len() >= 4, "assessed: {} spiculated, {} others", spiculated.len(), others.len());
    assert!(called(&others) <= 1, "{} of {} other margins called spiculated", called(&others), others.len());
    let lowest_spiculated = spiculated.iter().copied().fold(f64::INFINITY, f64::min);
    let mut sorted = others.clone();
    sorted.sort_by(f64::total_cmp);
    let median_other = sorted[sorted.len() / 2];
    assert!(lowest_spiculated > median_other, "spiculated margins {spiculated:?} rank above the others {others:?}");
}

#[test]
fn a_pipeline_without_the_margin_model_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["fp-reduction.toml", "fp-reduction.pt"] {
        std::fs::copy(models().join(file), dir.path().join(file)).unwrap();
    }
    let err = Pipeline::load(dir.path(), Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("margin-spiculated.toml"), "{err}");
}
