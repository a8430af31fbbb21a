//! Times generating and writing one phantom study:
//! `cargo run --release -p pulmo-phantom --example phantom_bench -- OUT_DIR [SLICES] [ROWS] [SEED]`.

use std::time::Instant;

use pulmo_phantom::{generate, write_study, PhantomSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = args.get(1).ok_or("usage: phantom_bench OUT_DIR [SLICES] [ROWS] [SEED]")?;
    let mut spec = PhantomSpec::default();
    if let Some(s) = args.get(2) {
        spec.slices = s.parse()?;
    }
    if let Some(r) = args.get(3) {
        spec.rows = r.parse()?;
        spec.pixel_spacing_mm = (358.4 / spec.rows as f64).max(0.6);
    }
    if let Some(s) = args.get(4) {
        spec.seed = s.parse()?;
    }
    let t0 = Instant::now();
    let phantom = generate(&spec)?;
    let t1 = Instant::now();
    let files = write_study(&phantom, std::path::Path::new(out))?;
    let t2 = Instant::now();
    let [z, y, x] = phantom.volume.dims();
    println!(
        "{z}x{y}x{x} on {} threads: generate {:.2} s, write {} files {:.2} s, total {:.2} s",
        rayon::current_num_threads(),
        (t1 - t0).as_secs_f64(),
        files.len(),
        (t2 - t1).as_secs_f64(),
        (t2 - t0).as_secs_f64()
    );
    for n in &phantom.truth.nodules {
        println!(
            "nodule {} {:?} {:?} {:?} d={:.1} V={:.0} mm3 LR {:?} at {:?}",
            n.id,
            n.kind,
            n.shape,
            n.attachment,
            n.mean_diameter_mm,
            n.volume_mm3,
            n.lung_rads,
            n.centre_voxel_zyx.map(|v| v.round())
        );
    }
    Ok(())
}
