//! The candidate finder on phantoms with known nodules: sensitivity by type and size, and how
//! many candidates a scan gives (the false-positive reduction's input).

mod common;

use common::{data, tumour_boxes};
use pulmo_analysis::{find_candidates, segment_lungs};
use pulmo_phantom::{slices_for_coverage, NoduleKind, PhantomSpec};
use pulmo_torch::Device;
use pulmo_volume::vec3;

fn spec(seed: u64) -> PhantomSpec {
    PhantomSpec {
        seed,
        rows: 320,
        pixel_spacing_mm: 1.1,
        slice_spacing_mm: 1.25,
        slice_thickness_mm: 1.25,
        slices: slices_for_coverage(280.0, 1.25),
        nodule_count: 12,
        ..Default::default()
    }
}

#[test]
fn candidates_cover_the_phantom_nodules() {
    let (mut found, mut total, mut counts) = (0, 0, Vec::new());
    for seed in [21, 22] {
        let phantom = pulmo_phantom::generate(&spec(seed)).unwrap();
        let lungs = segment_lungs(&phantom.volume, Device::Cpu).unwrap();
        let candidates = find_candidates(&phantom.volume, &lungs, Device::Cpu).unwrap();
        counts.push(candidates.len());
        for n in phantom.truth.nodules.iter().filter(|n| n.in_field_of_view && n.lung.is_some()) {
            let reach = (n.long_axis_mm / 2.0).max(3.0);
            let hit = candidates.iter().any(|c| vec3::dist(c.centre_lps_mm, n.centre_lps_mm) <= reach);
            eprintln!("seed {seed} nodule {:2} {:?} {:?} {:5.1} mm: {}", n.id, n.kind, n.attachment, n.long_axis_mm, if hit { "found" } else { "MISSED" });
            let must = match n.kind {
                NoduleKind::Solid | NoduleKind::PartSolid | NoduleKind::Calcified => n.long_axis_mm >= 5.0,
                _ => n.long_axis_mm >= 8.0,
            };
            if must {
                total += 1;
                found += usize::from(hit);
            }
        }
    }
    eprintln!("found {found} of {total} required nodules; candidates per scan {counts:?}");
    assert_eq!(found, total, "every solid/part-solid nodule >= 5 mm and ground-glass >= 8 mm has a candidate");
    assert!(counts.iter().all(|&c| c <= 600));
}

/// Real CT: how many candidates the whole-body series gives, and whether one lies in the
/// a0002 adenocarcinoma's annotated box.
#[test]
fn candidates_on_real_series() {
    let Some(root) = data("ct") else { return };
    for rel in ["tcga-thca-wholebody", "lung-pet-ct-dx-a0002/b40f"] {
        let series = pulmo_dicom::load_ct_path(&root.join(rel)).unwrap();
        let t = std::time::Instant::now();
        let lungs = segment_lungs(&series.volume, Device::Cpu).unwrap();
        let candidates = find_candidates(&series.volume, &lungs, Device::Cpu).unwrap();
        eprintln!("{rel}: {} candidates in {:.1} s (lungs + candidates)", candidates.len(), t.elapsed().as_secs_f64());
        assert!(!candidates.is_empty() && candidates.len() <= 600);
        if rel.starts_with("lung-pet") {
            let boxes = tumour_boxes(&root.join("lung-pet-ct-dx-a0002/annotations"));
            let inside = candidates.iter().filter(|c| {
                let [z, y, x] = series.volume.geometry().lps_to_index(c.centre_lps_mm).map(|v| v.round() as usize);
                boxes.iter().any(|(sop, [x0, y0, x1, y1])| {
                    series.sources.get(z).is_some_and(|s| &s.sop_instance_uid == sop) && (*x0..=*x1).contains(&x) && (*y0..=*y1).contains(&y)
                })
            });
            let inside = inside.count();
            eprintln!("a0002: {inside} candidates inside the tumour boxes");
            assert!(inside > 0, "the adenocarcinoma has candidates");
        }
    }
}

