//! Traces each truth nodule of one phantom through the pipeline's stages: nearest candidate,
//! its probability, and what segmenting at it gives. For tuning; not part of the pipeline.
//!
//! The acquisition follows the seed as in `pulmo eval`; use tuning seeds (1100-1109), not the
//! evaluation's.
//!
//! cargo run --release -p pulmo-analysis --example truth_trace -- SEED

use std::path::Path;

use pulmo_analysis::{find_candidates, measure, segment_lungs, segment_nodule, Detector, WindowedCt};
use pulmo_phantom::PhantomSpec;
use pulmo_torch::Device;
use pulmo_volume::vec3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seed: u64 = args.first().ok_or("usage: truth_trace SEED")?.parse()?;
    let spec = PhantomSpec::evaluation(seed, 6);
    let phantom = pulmo_phantom::generate(&spec)?;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/fp-reduction.toml");
    let detector = Detector::load(&manifest, Device::Cpu)?;
    let lungs = segment_lungs(&phantom.volume, Device::Cpu)?;
    let candidates = find_candidates(&phantom.volume, &lungs, Device::Cpu)?;
    let scored = detector.score(&WindowedCt::new(&phantom.volume), &candidates)?;
    for t in phantom.truth.nodules.iter().filter(|t| t.in_field_of_view && t.lung.is_some()) {
        println!("#{} {:?} {:?} {:?} mean {:.1} mm", t.id, t.kind, t.shape, t.attachment, t.mean_diameter_mm);
        let mut near: Vec<_> = scored.iter().map(|d| (vec3::dist(d.candidate.centre_lps_mm, t.centre_lps_mm), d)).filter(|(dist, _)| *dist <= t.long_axis_mm).collect();
        near.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (dist, d) in near.iter().take(3) {
            let seg = segment_nodule(&phantom.volume, &lungs, d.candidate.centre_lps_mm, d.candidate.radius_mm);
            let what = seg.map(|m| {
                let (s, _) = measure(&m, phantom.volume.geometry());
                format!(
                    "reaches box {}, long {:.1} 3d {:.1} sph {:.2} centre off {:.1} mm",
                    m.reaches_box_border(),
                    s.long_axis_mm,
                    s.longest_diameter_3d_mm,
                    s.sphericity,
                    vec3::dist(s.centre_lps_mm, t.centre_lps_mm)
                )
            });
            println!("   candidate at {dist:.1} mm, r {:.1}, p {:.2}: {}", d.candidate.radius_mm, d.probability, what.unwrap_or("no segmentation".into()));
        }
        if near.is_empty() {
            println!("   no candidate");
        }
    }
    Ok(())
}
