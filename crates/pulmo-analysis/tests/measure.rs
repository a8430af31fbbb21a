//! Segmentation and measurement of phantom nodules against their exact truth: volume, Lung-RADS
//! mean diameter, density class; seeded at the true centre with half the true long axis.

use pulmo_analysis::{assess, measure, segment_lungs, segment_nodule, Measured, PatientFacts};
use pulmo_clinical::Density;
use pulmo_phantom::{slices_for_coverage, Attachment, NoduleKind, NoduleRequest, NoduleShape, PhantomSpec};
use pulmo_torch::Device;

fn spec(seed: u64) -> PhantomSpec {
    let sized = |d: f64| NoduleRequest { diameter_mm: Some(d), ..Default::default() };
    PhantomSpec {
        seed,
        rows: 384,
        pixel_spacing_mm: 0.8,
        slice_spacing_mm: 1.0,
        slice_thickness_mm: 1.0,
        slices: slices_for_coverage(260.0, 1.0),
        nodule_count: 12,
        // Off the Lung-RADS size cut-offs (6, 8 and 15 mm; 10 mm for the juxtapleural rule):
        // a nodule drawn at one is in either category within 0.05 mm.
        nodules: [6.6, 8.6, 11.0, 12.5, 16.0, 20.0].into_iter().map(sized).collect(),
        ..Default::default()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn phantom_nodules_are_measured_against_truth() {
    let (mut volume_errors, mut diameter_errors, mut density_agree, mut n) = (Vec::new(), Vec::new(), 0, 0);
    let (mut pleura_agree, mut lung_rads_agree) = (0, 0);
    for seed in [31, 32] {
        let phantom = pulmo_phantom::generate(&spec(seed)).unwrap();
        let lungs = segment_lungs(&phantom.volume, Device::Cpu).unwrap();
        for t in phantom.truth.nodules.iter().filter(|t| t.in_field_of_view && t.lung.is_some() && t.long_axis_mm >= 6.0) {
            let want = match t.kind {
                NoduleKind::Solid | NoduleKind::Calcified => Density::Solid,
                NoduleKind::PartSolid => Density::PartSolid,
                NoduleKind::GroundGlass => Density::GroundGlass,
            };
            let Some(mask) = segment_nodule(&phantom.volume, &lungs, t.centre_lps_mm, t.long_axis_mm / 2.0) else {
                panic!("seed {seed} nodule {} ({:?}) not segmented", t.id, t.kind);
            };
            let (m, surface) = measure(&mask, phantom.volume.geometry());
            let measured = Measured { measurements: m.clone(), surface, region: mask.region(), detection_probability: 1.0 };
            let (finding, _) = assess(vec![measured], None, &lungs, &PatientFacts::default(), "1.2.3").remove(0);
            // The truth has 4X for spiculated nodules of category 3 or 4, as pulmo calls spiculation.
            let truth_category = serde_json::to_string(&t.lung_rads).unwrap();
            let category = serde_json::to_string(&finding.lung_rads.category).unwrap();
            lung_rads_agree += usize::from(category == truth_category);
            if category != truth_category {
                eprintln!("  Lung-RADS {category} vs truth {truth_category}: {}", finding.lung_rads.reason);
            }
            let volume_error = (m.volume_mm3 - t.volume_mm3) / t.volume_mm3;
            let diameter_error = m.mean_diameter_mm - t.mean_diameter_mm;
            eprintln!(
                "seed {seed} #{:2} {:11?} {:12?} {:?}: volume {:7.0} vs {:7.0} ({:+5.1}%), mean diameter {:5.1} vs {:5.1} ({:+.1}), {:?}, sphericity {:.2}, juxtapleural {}",
                t.id, t.kind, t.attachment, t.shape, m.volume_mm3, t.volume_mm3, 100.0 * volume_error, m.mean_diameter_mm,
                t.mean_diameter_mm, diameter_error, m.density, m.sphericity, m.juxtapleural
            );
            volume_errors.push(volume_error.abs());
            diameter_errors.push(diameter_error.abs());
            density_agree += usize::from(m.density == want);
            pleura_agree += usize::from(m.juxtapleural == (t.attachment == pulmo_phantom::Attachment::Juxtapleural));
            n += 1;
        }
    }
    let (v, d) = (median(volume_errors.clone()), median(diameter_errors.clone()));
    eprintln!(
        "{n} nodules: median |volume error| {:.1}%, median |mean diameter error| {d:.2} mm, density class agrees {density_agree}/{n}, juxtapleural flag agrees {pleura_agree}/{n}, Lung-RADS agrees {lung_rads_agree}/{n}",
        100.0 * v
    );
    assert!(n >= 15, "{n} nodules measured");
    // The goals for nodules >= 6 mm: median volume error <= 5%, mean diameter <= 0.5 mm.
    assert!(v <= 0.05, "median volume error {v}");
    assert!(d <= 0.5, "median mean-diameter error {d}");
    assert!(density_agree * 100 >= n * 85, "density class agrees on {density_agree} of {n}");
    assert!(pleura_agree * 100 >= n * 85, "juxtapleural flag agrees on {pleura_agree} of {n}");
    assert!(lung_rads_agree * 100 >= n * 80, "Lung-RADS agrees on {lung_rads_agree} of {n}");
}

/// The candidate finder often sizes a part-solid nodule by its solid core; seeded so, the
/// segmentation must still find the ground-glass halo and take the whole nodule.
#[test]
fn part_solid_nodules_seeded_at_their_core_are_segmented_whole() {
    let part_solid = |d: f64| NoduleRequest { kind: Some(NoduleKind::PartSolid), diameter_mm: Some(d), ..Default::default() };
    let spec = PhantomSpec { nodules: [8.0, 10.0, 12.0, 14.0, 16.0, 20.0].into_iter().map(part_solid).collect(), nodule_count: 6, ..spec(33) };
    let phantom = pulmo_phantom::generate(&spec).unwrap();
    let lungs = segment_lungs(&phantom.volume, Device::Cpu).unwrap();
    let (mut whole, mut n) = (0, 0);
    for t in phantom.truth.nodules.iter().filter(|t| t.in_field_of_view && t.lung.is_some()) {
        let core = t.solid_core.as_ref().expect("a part-solid nodule has a core");
        let mask = segment_nodule(&phantom.volume, &lungs, t.centre_lps_mm, core.mean_diameter_mm / 2.0);
        let m = mask.map(|mask| measure(&mask, phantom.volume.geometry()).0);
        let ok = m.as_ref().is_some_and(|m| (m.long_axis_mm - t.long_axis_mm).abs() <= 1.5 && m.density == Density::PartSolid);
        eprintln!(
            "#{} {:?}: truth long {:.1} (core {:.1}), measured {:?}",
            t.id, t.shape, t.long_axis_mm, core.mean_diameter_mm, m.map(|m| (m.long_axis_mm, m.density))
        );
        whole += usize::from(ok);
        n += 1;
    }
    assert!(n >= 5, "{n} part-solid nodules");
    assert!(whole * 100 >= n * 80, "{whole} of {n} segmented whole from a core-sized seed");
}

/// On slices 5 mm thick (2.5 mm apart, as the real TCGA series) the slices above and below a
/// small solid nodule average it with the lung into ground-glass densities: no halo, the
/// nodule is solid. Measured: 6 of 8 (4 of 8 when the halo was looked for above and below
/// too); the two under 7.5 mm read part-solid, as the findings warn for slices over 2.5 mm.
#[test]
fn solid_nodules_on_thick_slices_are_solid() {
    let solid = |d: f64| NoduleRequest {
        kind: Some(NoduleKind::Solid),
        shape: Some(NoduleShape::Spherical),
        attachment: Some(Attachment::Isolated),
        diameter_mm: Some(d),
    };
    let spec = PhantomSpec {
        slice_spacing_mm: 2.5,
        slice_thickness_mm: 5.0,
        slices: slices_for_coverage(260.0, 2.5),
        nodules: [6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 10.0, 11.0].into_iter().map(solid).collect(),
        nodule_count: 8,
        ..spec(34)
    };
    let phantom = pulmo_phantom::generate(&spec).unwrap();
    let lungs = segment_lungs(&phantom.volume, Device::Cpu).unwrap();
    let (mut solid, mut n) = (0, 0);
    for t in phantom.truth.nodules.iter().filter(|t| t.in_field_of_view && t.lung.is_some()) {
        let mask = segment_nodule(&phantom.volume, &lungs, t.centre_lps_mm, t.long_axis_mm / 2.0);
        let density = mask.map(|mask| measure(&mask, phantom.volume.geometry()).0.density);
        eprintln!("#{} {:?} {:?} {:.1} mm: measured {density:?}", t.id, t.shape, t.attachment, t.long_axis_mm);
        solid += usize::from(density == Some(Density::Solid));
        n += 1;
    }
    assert!(n >= 6, "{n} solid nodules");
    assert!(solid * 4 >= n * 3, "{solid} of {n} solid");
}
