//! Spicules counted on a phantom with known margins: every spiculated solid or part-solid nodule
//! (six to fourteen spicules each) counts more than any spherical or lobulated one.

use pulmo_analysis::{measure, segment_lungs, segment_nodule};
use pulmo_phantom::{Attachment, NoduleKind, NoduleRequest, NoduleShape, PhantomSpec};
use pulmo_torch::Device;

/// Eight nodules of 5.5-13 mm on 1 mm slices, isolated, on vessels and on the pleura (one of the
/// tuning phantoms the thresholds were chosen on, seed 1105).
fn spec() -> PhantomSpec {
    let seed = 1105;
    let shapes = [NoduleShape::Spiculated, NoduleShape::Lobulated, NoduleShape::Spiculated, NoduleShape::Spherical];
    let attachments = [Attachment::Isolated, Attachment::Juxtavascular, Attachment::Juxtapleural];
    let nodules: Vec<NoduleRequest> = (0..8)
        .map(|k| {
            let j = k + seed as usize;
            let kind = if j.is_multiple_of(3) { NoduleKind::PartSolid } else { NoduleKind::Solid };
            let diameter = [6.5, 8.0, 10.0, 12.0, 15.0, 7.0, 9.0][j % 7];
            NoduleRequest { kind: Some(kind), shape: Some(shapes[k % 4]), attachment: Some(attachments[j % 3]), diameter_mm: Some(diameter) }
        })
        .collect();
    PhantomSpec { nodule_count: nodules.len(), nodules, ..PhantomSpec::evaluation(seed, 8) }
}

#[test]
fn spiculated_nodules_count_more_spicules_than_smooth_ones() {
    let phantom = pulmo_phantom::generate(&spec()).expect("phantom");
    let lungs = segment_lungs(&phantom.volume, Device::Cpu).expect("lung mask");
    let geometry = phantom.volume.geometry();
    let (mut spiculated, mut smooth) = (Vec::new(), Vec::new());
    for truth in phantom.truth.nodules.iter().filter(|t| t.in_field_of_view && t.lung.is_some()) {
        let mask = segment_nodule(&phantom.volume, &lungs, truth.centre_lps_mm, truth.long_axis_mm / 2.0).expect("segmentation");
        let mask = mask.unwrap_or_else(|| panic!("nodule {} not segmented", truth.id));
        let (m, _) = measure(&mask, geometry);
        let count = m.spicules.unwrap_or_else(|| panic!("nodule {} ({:?}): spicules not counted", truth.id, truth.kind));
        eprintln!("nodule {} ({:?}, {:?}, {:.1} mm): {count} spicules", truth.id, truth.kind, truth.shape, truth.mean_diameter_mm);
        if truth.shape == NoduleShape::Spiculated { spiculated.push(count) } else { smooth.push(count) }
        assert_eq!(m.spiculated, None, "pulmo does not call spiculation yet");
    }
    assert!(spiculated.len() >= 3 && smooth.len() >= 3, "spiculated {spiculated:?}, smooth {smooth:?}");
    assert!(spiculated.iter().min() > smooth.iter().max(), "spiculated {spiculated:?}, smooth {smooth:?}");
}
