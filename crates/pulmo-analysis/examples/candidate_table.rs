//! Every scored candidate of phantom studies with what segmenting it at several vessel cuts
//! gives, and each study's truth, as CSV on stdout: the table the reporting rules (shape,
//! probability, vessel cut) are tuned on offline. For tuning; not part of the pipeline.
//!
//! Rows starting `T` are truth nodules (seed, id, kind, shape, attachment, mean diameter, and
//! in `p`, `cand_r` and `long` the nearest candidate's probability, radius and distance in mm);
//! rows starting `C` are candidates at or above probability 0.1 with one segmentation per cut.
//! The acquisition follows the seed as in `pulmo eval`; use tuning seeds, not the evaluation's.
//!
//! cargo run --release -p pulmo-analysis --example candidate_table -- FIRST_SEED LAST_SEED

use std::path::Path;

use pulmo_analysis::nodule::{segment_nodule_with_cut, Pleura, VESSEL_CUTS};
use pulmo_analysis::{find_candidates, measure, segment_lungs, Detection, Detector, WindowedCt};
use pulmo_phantom::PhantomSpec;
use pulmo_torch::Device;
use pulmo_volume::{vec3, Vec3};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let [first, last] = args[..] else { return Err("usage: candidate_table FIRST_SEED LAST_SEED".into()) };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/fp-reduction.toml");
    let detector = Detector::load(&manifest, Device::Cpu)?;
    println!("row,seed,id,p,cand_r,cut,status,long,short,mean,sph,juxtapleural,density,truth,kind,shape,attachment,truth_mean,cx,cy,cz");
    for seed in first..=last {
        let phantom = pulmo_phantom::generate(&PhantomSpec::evaluation(seed, 6))?;
        let truth: Vec<_> = phantom.truth.nodules.iter().filter(|t| t.in_field_of_view && t.lung.is_some()).collect();
        let named = |at: Vec3| {
            truth.iter().find(|t| vec3::dist(at, t.centre_lps_mm) <= (t.mean_diameter_mm / 2.0).max(3.0)).map_or(-1, |t| t.id as i64)
        };
        let lungs = segment_lungs(&phantom.volume, Device::Cpu)?;
        let candidates = find_candidates(&phantom.volume, &lungs, Device::Cpu)?;
        let scored = detector.score(&WindowedCt::new(&phantom.volume), &candidates)?;
        for t in &truth {
            let from_truth = |d: &Detection| vec3::dist(d.candidate.centre_lps_mm, t.centre_lps_mm);
            let nearest = scored.iter().min_by(|a, b| from_truth(a).total_cmp(&from_truth(b)));
            let (p, r, d) = nearest.map_or((0.0, 0.0, f64::INFINITY), |n| (n.probability, n.candidate.radius_mm, from_truth(n)));
            println!(
                "T,{seed},{},{p:.3},{r:.1},,,{d:.1},,,,,,{},{:?},{:?},{:?},{:.2},,,",
                t.id, t.id, t.kind, t.shape, t.attachment, t.mean_diameter_mm
            );
        }
        for (k, d) in scored.iter().enumerate().filter(|(_, d)| d.probability >= 0.1) {
            let c = d.candidate;
            for cut in VESSEL_CUTS {
                let mask = segment_nodule_with_cut(&phantom.volume, &lungs, c.centre_lps_mm, c.radius_mm, cut, Pleura::Cut);
                let Some(mask) = mask else {
                    println!("C,{seed},{k},{:.3},{:.1},{cut},none,,,,,,,{},,,,,,,", d.probability, c.radius_mm, named(c.centre_lps_mm));
                    continue;
                };
                let (m, _) = measure(&mask, phantom.volume.geometry());
                let status = if mask.reaches_box_border() { "box" } else { "ok" };
                let [x, y, z] = m.centre_lps_mm;
                println!(
                    "C,{seed},{k},{:.3},{:.1},{cut},{status},{:.1},{:.1},{:.1},{:.3},{},{:?},{},,,,,{x:.1},{y:.1},{z:.1}",
                    d.probability, c.radius_mm, m.long_axis_mm, m.short_axis_mm, m.mean_diameter_mm, m.sphericity, m.juxtapleural,
                    m.density, named(m.centre_lps_mm)
                );
            }
        }
        eprintln!("seed {seed}: {} candidates", scored.len());
    }
    Ok(())
}
