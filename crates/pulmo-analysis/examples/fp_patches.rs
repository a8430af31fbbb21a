//! Training data for the false-positive reduction model (scripts/train/fp_reduction.py): for
//! each study, the candidates pulmo finds, labelled by truth, as 32^3 patches at 1 mm
//! (windowed to [0, 1]) in NumPy files, plus jittered patches at every true nodule so that
//! small nodules are well represented. `compact_NAME.npy` flags the candidates whose
//! segmentation the pipeline would report (compact blobs): the negatives among them are the
//! hard ones, what the model must reject.
//!
//! Studies are phantoms (seeds FIRST..=LAST) and, with `--real SERIES_DIR N`, N copies of a
//! real CT series with isolated nodules inserted (seeds 1..=N): real anatomy and noise for the
//! negatives, real texture around the positives.
//!
//! cargo run --release -p pulmo-analysis --example fp_patches -- OUT_DIR FIRST_SEED LAST_SEED [--real SERIES_DIR N]

use std::path::Path;

use pulmo_analysis::pipeline::{compact_nodule, WIDE_CUT_PROBABILITY};
use pulmo_analysis::{find_candidates, patches, segment_lungs};
use pulmo_phantom::{BackgroundHeader, Phantom, PhantomSpec};
use pulmo_torch::model::InputSpec;
use pulmo_torch::{image, Device};
use pulmo_volume::{vec3, Vec3};

#[path = "support/acquisition.rs"]
mod acquisition;
#[path = "support/npy.rs"]
mod npy;
use acquisition::phantom_spec;
use npy::{write_npy, write_npy_u8};

type Error = Box<dyn std::error::Error>;

fn spec() -> InputSpec {
    InputSpec { patch_size: [32, 32, 32], spacing_mm: [1.0, 1.0, 1.0], window_hu: [-1000.0, 400.0] }
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: fp_patches OUT_DIR FIRST_SEED LAST_SEED [--real SERIES_DIR N]";
    let (out, first, last, real) = match args.as_slice() {
        [_, out, first, last] => (out, first, last, None),
        [_, out, first, last, flag, dir, n] if flag == "--real" => (out, first, last, Some((dir, n.parse::<u64>()?))),
        _ => return Err(usage.into()),
    };
    let out = Path::new(out);
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("spec.json"), serde_json::to_string_pretty(&spec())?)?;
    for seed in first.parse::<u64>()?..=last.parse::<u64>()? {
        write_study(&pulmo_phantom::generate(&phantom_spec(seed, 10, Vec::new()))?, out, &format!("{seed:04}"))?;
    }
    if let Some((dir, copies)) = real {
        let ct = pulmo_dicom::load_ct_path(Path::new(dir))?;
        let header = BackgroundHeader { slice_thickness_mm: ct.slice_thickness, ..BackgroundHeader::default() };
        for seed in 1..=copies {
            let spec = PhantomSpec { seed, nodule_count: 10, ..PhantomSpec::default() };
            let study = pulmo_phantom::insert_into(ct.volume.clone(), &header, &spec)?;
            write_study(&study, out, &format!("real{seed:02}"))?;
        }
    }
    Ok(())
}

/// One study's patches, labels and compact flags, as `*_NAME.npy`.
fn write_study(study: &Phantom, out: &Path, name: &str) -> Result<(), Error> {
    let lungs = segment_lungs(&study.volume, Device::Cpu)?;
    let candidates = find_candidates(&study.volume, &lungs, Device::Cpu)?;
    let truth: Vec<(Vec3, f64)> = study
        .truth
        .nodules
        .iter()
        .filter(|n| n.in_field_of_view)
        .map(|n| (n.centre_lps_mm, (n.long_axis_mm / 2.0).max(3.0)))
        .collect();
    let mut centres: Vec<Vec3> = Vec::new();
    let mut labels: Vec<u8> = Vec::new();
    let mut compact: Vec<u8> = Vec::new();
    for c in &candidates {
        centres.push(c.centre_lps_mm);
        labels.push(u8::from(truth.iter().any(|(t, r)| vec3::dist(*t, c.centre_lps_mm) <= *r)));
        // Every vessel cut, the sphericity floors unrelaxed: the rule model 0.3.0's data was made by.
        compact.push(u8::from(compact_nodule(&study.volume, &lungs, c, WIDE_CUT_PROBABILITY).is_some()));
    }
    let seed = study.truth.seed as usize;
    for (i, (t, r)) in truth.iter().enumerate() {
        for k in 0..3 {
            let jitter = |axis: usize| ((seed * 31 + i * 7 + k * 3 + axis) % 7) as f64 / 6.0 - 0.5;
            let shift = (r / 3.0).min(1.5);
            centres.push([0, 1, 2].map(|a| t[a] + jitter(a) * 2.0 * shift));
            labels.push(1);
            compact.push(1);
        }
    }
    let batch = patches(&study.volume, &centres, &spec(), Device::Cpu)?;
    let data = image::to_vec(&batch)?;
    write_npy(&out.join(format!("patches_{name}.npy")), &data, &[centres.len(), 32, 32, 32], "<f4")?;
    write_npy_u8(&out.join(format!("labels_{name}.npy")), &labels)?;
    write_npy_u8(&out.join(format!("compact_{name}.npy")), &compact)?;
    let positives = labels.iter().filter(|l| **l == 1).count();
    let hard = labels.iter().zip(&compact).filter(|(l, c)| **l == 0 && **c == 1).count();
    let true_candidates = labels.iter().take(candidates.len()).filter(|l| **l == 1).count();
    eprintln!(
        "{name}: {} candidates ({true_candidates} true), {} patches, {positives} positive, {hard} hard negatives",
        candidates.len(),
        centres.len()
    );
    Ok(())
}
