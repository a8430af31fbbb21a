//! Lung segmentation on a phantom with known lungs and nodules, and on the real CT series in
//! ../shared/data (whole body from skull base to thigh; a chest with a lung adenocarcinoma).

mod common;

use pulmo_analysis::{segment_lungs, LungMask, Side};
use pulmo_phantom::{slices_for_coverage, Attachment, NoduleRequest, PhantomSpec};
use pulmo_torch::Device;
use pulmo_volume::Volume;

use common::{data, tumour_boxes};

fn phantom_spec() -> PhantomSpec {
    let juxtapleural = |d: f64| NoduleRequest { attachment: Some(Attachment::Juxtapleural), diameter_mm: Some(d), ..Default::default() };
    PhantomSpec {
        seed: 11,
        rows: 256,
        pixel_spacing_mm: 1.4,
        slice_spacing_mm: 2.5,
        slice_thickness_mm: 2.5,
        slices: slices_for_coverage(300.0, 2.5),
        nodule_count: 10,
        nodules: vec![juxtapleural(8.0), juxtapleural(20.0), juxtapleural(28.0), juxtapleural(12.0)],
        ..Default::default()
    }
}

fn side_of(s: pulmo_phantom::Side) -> Side {
    match s {
        pulmo_phantom::Side::Right => Side::Right,
        pulmo_phantom::Side::Left => Side::Left,
    }
}

#[test]
fn phantom_lungs_hold_every_nodule_on_its_side() {
    let phantom = pulmo_phantom::generate(&phantom_spec()).unwrap();
    let lungs = segment_lungs(&phantom.volume, Device::Cpu).unwrap();
    let (right, left) = (lungs.right.unwrap(), lungs.left.unwrap());
    eprintln!("phantom: right {:.0} mL, left {:.0} mL, carina {:?}, notes {:?}", right.volume_ml, left.volume_ml, lungs.carina_z_mm, lungs.notes);
    for n in phantom.truth.nodules.iter().filter(|n| n.in_field_of_view) {
        let want = n.lung.map(side_of);
        assert_eq!(lungs.side_at(n.centre_lps_mm), want, "nodule {} ({:?}, {:.0} mm) at {:?}", n.id, n.attachment, n.long_axis_mm, n.centre_lps_mm);
    }
    let carina = lungs.carina_z_mm.expect("the phantom's trachea divides in view");
    assert_trachea_outside(&phantom.volume, &lungs, carina);
    assert!(lungs.laa950_fraction < 0.05, "phantom lungs are not emphysematous: {}", lungs.laa950_fraction);
}

/// The whole-body series: two lungs of adult size, the left to the patient's left, the
/// trachea and the bowel gas outside the mask.
#[test]
fn real_whole_body_series() {
    let Some(ct) = load("ct/tcga-thca-wholebody") else { return };
    let lungs = segment_lungs(&ct, Device::Cpu).unwrap();
    let (right, left) = (lungs.right.unwrap(), lungs.left.unwrap());
    eprintln!(
        "tcga: right {:.0} mL ({:.0}..{:.0}), left {:.0} mL ({:.0}..{:.0}), carina {:?}, LAA-950 {:.3}, notes {:?}",
        right.volume_ml, right.bottom_z_mm, right.top_z_mm, left.volume_ml, left.bottom_z_mm, left.top_z_mm,
        lungs.carina_z_mm, lungs.laa950_fraction, lungs.notes
    );
    for lung in [right, left] {
        assert!((800.0..5000.0).contains(&lung.volume_ml), "{lung:?}");
        assert!(lung.top_z_mm - lung.bottom_z_mm < 350.0, "lungs are not taller than 35 cm: {lung:?}");
    }
    assert!(mean_x(&lungs, LungMask::LEFT) > mean_x(&lungs, LungMask::RIGHT));
    let carina = lungs.carina_z_mm.expect("carina in view");
    assert!(carina < right.top_z_mm && carina > right.bottom_z_mm, "carina {carina} inside the lung height");
    assert!(lungs.laa950_fraction < 0.2, "{}", lungs.laa950_fraction);
    assert_trachea_outside(&ct, &lungs, carina);
}

/// From 10 to 40 mm above the carina, the trachea (the trachea-sized air cross-section nearest
/// the body's midline) is in view on every slice and is not lung.
fn assert_trachea_outside(ct: &Volume<i16>, lungs: &LungMask, carina_z: f64) {
    let [nz, ny, nx] = ct.dims();
    let slices: Vec<usize> = (0..nz).filter(|&k| (carina_z + 10.0..carina_z + 40.0).contains(&ct.voxel_lps([k, ny / 2, nx / 2])[2])).collect();
    assert!(!slices.is_empty());
    for k in slices {
        let trachea = trachea_pixels(ct, k).unwrap_or_else(|| panic!("no trachea on slice {k}"));
        let in_lung = trachea.iter().filter(|&&p| lungs.labels.slice(k)[p] != 0).count();
        assert!(in_lung * 20 < trachea.len(), "slice {k}: {in_lung} of {} tracheal pixels labelled lung", trachea.len());
    }
}

/// Pixels of the trachea on slice `k`: the air component inside the body (below -900 HU, not
/// reaching the slice border) of 30-800 mm2, as dark as a lumen (mean below -960 HU, which
/// pockets of lung parenchyma are not), whose centre is nearest the body's midline.
fn trachea_pixels(ct: &Volume<i16>, k: usize) -> Option<Vec<usize>> {
    let [_, ny, nx] = ct.dims();
    let g = ct.geometry();
    let x_of = |p: usize| ct.voxel_lps([k, p / nx, p % nx])[0];
    let body: Vec<f64> = (0..ny * nx).filter(|&p| ct.slice(k)[p] > -400).map(x_of).collect();
    let midline = body.iter().sum::<f64>() / body.len().max(1) as f64;
    let mut air: Vec<bool> = ct.slice(k).iter().map(|&v| v < -900).collect();
    pulmo_volume::mask::clear_border_connected(&mut air, ny, nx);
    let parts = pulmo_volume::mask::label_components(&air, [1, ny, nx]);
    let pixel_mm2 = g.spacing[1] * g.spacing[2];
    let mut best: Option<(f64, Vec<usize>)> = None;
    for id in 1..parts.sizes.len() as u32 {
        let area = parts.sizes[id as usize] as f64 * pixel_mm2;
        if !(30.0..=800.0).contains(&area) {
            continue;
        }
        let pixels: Vec<usize> = (0..ny * nx).filter(|&p| parts.labels[p] == id).collect();
        let mean_hu = pixels.iter().map(|&p| f64::from(ct.slice(k)[p])).sum::<f64>() / pixels.len() as f64;
        if mean_hu >= -960.0 {
            continue;
        }
        let off = (pixels.iter().map(|&p| x_of(p)).sum::<f64>() / pixels.len() as f64 - midline).abs();
        if off < 20.0 && best.as_ref().is_none_or(|(b, _)| off < *b) {
            best = Some((off, pixels));
        }
    }
    best.map(|(_, pixels)| pixels)
}

/// The adenocarcinoma of lung-pet-ct-dx-a0002 is a right hilar mass: its box overlaps the right
/// lung's mask on every annotated slice (at least a fifth of the box) and never the left one,
/// in both reconstructions. Its centre lies in the hilum, outside the aerated lung, on most
/// slices: the detector must look at the mask's border, not only inside it.
#[test]
fn real_tumour_box_overlaps_the_right_lung_only() {
    let Some(annotations) = data("ct/lung-pet-ct-dx-a0002/annotations") else { return };
    let boxes = tumour_boxes(&annotations);
    assert!(boxes.len() >= 10, "{} annotated slices", boxes.len());
    let mut checked = 0;
    for kernel in ["b40f", "b70f"] {
        let Some(dir) = data(&format!("ct/lung-pet-ct-dx-a0002/{kernel}")) else { return };
        let series = pulmo_dicom::load_ct_path(&dir).unwrap();
        let lungs = segment_lungs(&series.volume, Device::Cpu).unwrap();
        eprintln!("a0002 {kernel}: right {:?}, left {:?}, notes {:?}", lungs.right, lungs.left, lungs.notes);
        for (sop, [xmin, ymin, xmax, ymax]) in &boxes {
            let Some(k) = series.sources.iter().position(|s| &s.sop_instance_uid == sop) else { continue };
            let labels: Vec<u8> = (*ymin..=*ymax)
                .flat_map(|y| (*xmin..=*xmax).map(move |x| [k, y, x]))
                .map(|v| *lungs.labels.get(v).unwrap())
                .collect();
            let share = |l: u8| labels.iter().filter(|&&v| v == l).count() as f64 / labels.len() as f64;
            assert!(share(LungMask::RIGHT) >= 0.2, "{kernel} slice {k}: {:.2} of the box in the right lung", share(LungMask::RIGHT));
            assert_eq!(share(LungMask::LEFT), 0.0, "{kernel} slice {k}");
            checked += 1;
        }
    }
    assert_eq!(checked, boxes.len(), "every annotation names a slice of one of the two series");
}

fn load(rel: &str) -> Option<pulmo_volume::Volume<i16>> {
    let dir = data(rel)?;
    Some(pulmo_dicom::load_ct_path(&dir).unwrap().volume)
}

fn mean_x(lungs: &LungMask, label: u8) -> f64 {
    let [nz, ny, nx] = lungs.labels.dims();
    let (mut sum, mut n) = (0.0, 0usize);
    for z in (0..nz).step_by(4) {
        for y in (0..ny).step_by(4) {
            for x in (0..nx).step_by(4) {
                if lungs.labels.get([z, y, x]) == Some(&label) {
                    sum += lungs.labels.voxel_lps([z, y, x])[0];
                    n += 1;
                }
            }
        }
    }
    sum / n.max(1) as f64
}
