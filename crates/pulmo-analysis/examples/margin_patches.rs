//! Training data for the margin model (scripts/train/margin.py): phantom studies of solid and
//! part-solid nodules, a third each smooth (spherical), lobulated and spiculated, every one cut
//! out as 40^3 patches at 1 mm (windowed to [0, 1]) around its centre, once as placed and three
//! times moved by up to 1.5 mm (the pipeline centres a patch on its segmentation, which a lobe
//! or a cut-off spicule moves off the body's centre).
//!
//! With `--real SERIES_DIR N` (repeatable), N copies of a real CT series with isolated nodules
//! inserted (seeds 1..=N) are added: real noise, kernels and vessels around known margins. A
//! model that saw phantom lungs only called most smooth nodules inserted into real CT spiculated.
//!
//! Writes `spec.json` (the patch), and per study NAME (the seed, or `real-SERIES-SEED`)
//! `patches_NAME.npy` (N x 40 x 40 x 40, f4), `labels_NAME.npy` (0 smooth, 1 lobulated,
//! 2 spiculated) and `nodules_NAME.csv` (one row per patch: kind, attachment, mean diameter).
//!
//! cargo run --release -p pulmo-analysis --example margin_patches -- OUT_DIR FIRST_SEED LAST_SEED [--real SERIES_DIR N]...

use std::path::Path;

use pulmo_analysis::patches;
use pulmo_phantom::{Attachment, BackgroundHeader, NoduleKind, NoduleRequest, NoduleShape, NoduleTruth, Phantom, PhantomSpec};
use pulmo_torch::model::InputSpec;
use pulmo_torch::{image, Device};
use pulmo_volume::Vec3;

#[path = "support/acquisition.rs"]
mod acquisition;
#[path = "support/npy.rs"]
mod npy;
use acquisition::phantom_spec;
use npy::{write_npy, write_npy_u8};

type Error = Box<dyn std::error::Error>;

fn spec() -> InputSpec {
    InputSpec { patch_size: [40, 40, 40], spacing_mm: [1.0, 1.0, 1.0], window_hu: [-1000.0, 400.0] }
}

const NODULES_PER_STUDY: usize = 12;
const LARGEST_MM: f64 = 28.0;
/// Insertion into real CT: isolated nodules only, clear of every vessel by 2 mm, and a real
/// lung has few such places for large ones.
const INSERTED_PER_STUDY: usize = 8;
const LARGEST_INSERTED_MM: f64 = 14.0;
const SHAPES: [NoduleShape; 3] = [NoduleShape::Spherical, NoduleShape::Lobulated, NoduleShape::Spiculated];

/// Shapes in turn, two solid triples to one part-solid triple, diameters 5-`largest_mm` mm
/// log-uniform (from a hash of seed and index, so that every study differs); the attachment is
/// the generator's.
fn request(seed: u64, i: usize, largest_mm: f64) -> NoduleRequest {
    let hash = (seed.wrapping_mul(2_654_435_761) ^ (i as u64).wrapping_mul(40_503)) % 1000;
    let share = hash as f64 / 1000.0;
    NoduleRequest {
        kind: Some(if (seed as usize + i / 3) % 3 == 2 { NoduleKind::PartSolid } else { NoduleKind::Solid }),
        shape: Some(SHAPES[(seed as usize + i) % 3]),
        attachment: None,
        diameter_mm: Some((5f64.ln() + share * (largest_mm.ln() - 5f64.ln())).exp()),
    }
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: margin_patches OUT_DIR FIRST_SEED LAST_SEED [--real SERIES_DIR N]...";
    let [_, out, first, last, real @ ..] = args.as_slice() else {
        return Err(usage.into());
    };
    let out = Path::new(out);
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("spec.json"), serde_json::to_string_pretty(&spec())?)?;
    for seed in first.parse::<u64>()?..=last.parse::<u64>()? {
        // A study whose lungs have no room for one of its nodules is left out, not fatal.
        match pulmo_phantom::generate(&phantom_spec(seed, NODULES_PER_STUDY, (0..NODULES_PER_STUDY).map(|i| request(seed, i, LARGEST_MM)).collect())) {
            Ok(study) => write_study(&study, out, &format!("{seed:04}"))?,
            Err(e) => eprintln!("{seed}: left out: {e}"),
        }
    }
    for option in real.chunks(3) {
        let [flag, dir, copies] = option else { return Err(usage.into()) };
        if flag != "--real" {
            return Err(usage.into());
        }
        let ct = pulmo_dicom::load_ct_path(Path::new(dir))?;
        let header = BackgroundHeader { slice_thickness_mm: ct.slice_thickness, ..BackgroundHeader::default() };
        let series = Path::new(dir).file_name().map_or("series".into(), |n| n.to_string_lossy().into_owned());
        for seed in 1..=copies.parse::<u64>()? {
            let isolated = (0..INSERTED_PER_STUDY)
                .map(|i| NoduleRequest { attachment: Some(Attachment::Isolated), ..request(seed, i, LARGEST_INSERTED_MM) })
                .collect();
            let spec = PhantomSpec { seed, nodule_count: INSERTED_PER_STUDY, nodules: isolated, ..PhantomSpec::default() };
            let name = format!("real-{series}-{seed:02}");
            match pulmo_phantom::insert_into(ct.volume.clone(), &header, &spec) {
                Ok(study) => write_study(&study, out, &name)?,
                Err(e) => eprintln!("{name}: left out: {e}"),
            }
        }
    }
    Ok(())
}

/// A study's nodules as four patches each (as placed and three moved), with labels and rows.
fn write_study(study: &Phantom, out: &Path, name: &str) -> Result<(), Error> {
    let seed = study.truth.seed as usize;
    let nodules: Vec<&NoduleTruth> = study.truth.nodules.iter().filter(|n| n.in_field_of_view).collect();
    let mut centres: Vec<Vec3> = Vec::new();
    let mut labels: Vec<u8> = Vec::new();
    let mut rows = String::from("kind,shape,attachment,mean_diameter_mm\n");
    for (i, n) in nodules.iter().enumerate() {
        for k in 0..4 {
            let jitter = |axis: usize| if k == 0 { 0.0 } else { ((seed * 31 + i * 7 + k * 3 + axis) % 7) as f64 / 2.0 - 1.5 };
            centres.push([0, 1, 2].map(|a| n.centre_lps_mm[a] + jitter(a)));
            labels.push(label(n.shape));
            rows += &format!("{:?},{:?},{:?},{:.1}\n", n.kind, n.shape, n.attachment, n.mean_diameter_mm);
        }
    }
    let spec = spec();
    let batch = patches(&study.volume, &centres, &spec, Device::Cpu)?;
    let [d, h, w] = spec.patch_size.map(|n| n as usize);
    write_npy(&out.join(format!("patches_{name}.npy")), &image::to_vec(&batch)?, &[centres.len(), d, h, w], "<f4")?;
    write_npy_u8(&out.join(format!("labels_{name}.npy")), &labels)?;
    std::fs::write(out.join(format!("nodules_{name}.csv")), rows)?;
    eprintln!("{name}: {} nodules, {} patches", nodules.len(), centres.len());
    Ok(())
}

fn label(shape: NoduleShape) -> u8 {
    match shape {
        NoduleShape::Spherical => 0,
        NoduleShape::Lobulated => 1,
        NoduleShape::Spiculated => 2,
    }
}
