//! The real a0002 adenocarcinoma through the whole pipeline: a right hilar mass of about 5 cm on
//! 8 mm slices, reconstructed with a soft (B40f) and a sharp (B70f) kernel. It is seeded at
//! several candidates, which the vessel cut and the thick slices can leave apart; it must come
//! out as one finding, centred in the annotated boxes, measured alike on both reconstructions.

mod common;

use std::path::Path;

use common::{data, tumour_boxes};
use pulmo_analysis::{Pipeline, Side};
use pulmo_torch::Device;

#[test]
fn the_a0002_adenocarcinoma_is_one_finding_measured_alike_in_both_kernels() {
    let Some(root) = data("ct/lung-pet-ct-dx-a0002") else { return };
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let pipeline = Pipeline::load(&models, Device::Cpu).expect("the installed models load");
    let boxes = tumour_boxes(&root.join("annotations"));
    let mut mean_diameters = Vec::new();
    for kernel in ["b40f", "b70f"] {
        let ct = pulmo_dicom::load_ct_path(&root.join(kernel)).expect("the series loads");
        let analysis = pipeline.analyze(&ct, &mut |_| {}).expect("the analysis runs");
        let in_boxes = |lps| {
            let [z, y, x] = ct.volume.geometry().lps_to_index(lps).map(|v| v.round() as usize);
            let slice = ct.sources.get(z).map(|s| &s.sop_instance_uid);
            boxes.iter().any(|(sop, [x0, y0, x1, y1])| slice == Some(sop) && (*x0..=*x1).contains(&x) && (*y0..=*y1).contains(&y))
        };
        let nodules = &analysis.findings.nodules;
        let summary: Vec<String> = nodules.iter().map(|n| format!("{:.1} mm at {:?}", n.measurements.long_axis_mm, n.measurements.centre_lps_mm)).collect();
        eprintln!("a0002 {kernel}: {summary:?}");
        let tumour: Vec<_> = nodules.iter().filter(|n| in_boxes(n.measurements.centre_lps_mm)).collect();
        assert_eq!(tumour.len(), 1, "{kernel}: the tumour is one finding ({summary:?})");
        let m = &tumour[0].measurements;
        assert!(m.long_axis_mm >= 30.0, "{kernel}: measured as a mass, {:.1} mm", m.long_axis_mm);
        assert_eq!(tumour[0].zone.map(|z| z.side), Some(Side::Right), "{kernel}");
        mean_diameters.push(m.mean_diameter_mm);
        // 8 mm slices: the findings say they are thicker than screening CT's.
        assert!(analysis.findings.notes.iter().any(|n| n.starts_with("slices are 8.0 mm thick")), "{kernel}: {:?}", analysis.findings.notes);
    }
    let [soft, sharp] = mean_diameters[..] else { unreachable!() };
    assert!((soft - sharp).abs() <= 5.0, "both reconstructions measure the mass alike: {soft:.1} and {sharp:.1} mm");
}
