//! Real CT series from ../shared/data load with the geometry and HU values that pydicom
//! (an independent reader, run in the test) finds, and with sane tissue values.

mod common;

use std::path::Path;

use pulmo_dicom::load_ct_path;
use serde_json::Value;

fn check_against_pydicom(dir: &Path) {
    let script = include_str!("pydicom_reference.py");
    let expected: Value = serde_json::from_str(&common::run_python(script, &[dir.to_str().unwrap()])).unwrap();
    let ct = load_ct_path(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let v = &ct.volume;
    let g = v.geometry();
    let f = |key: &str| expected[key].as_f64().unwrap();
    let arr = |key: &str| -> Vec<f64> { expected[key].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
    println!("{}: dims {:?}, spacing {:?}, origin {:?}, notes {:?}", dir.display(), v.dims(), g.spacing, g.origin, ct.notes);
    assert_eq!(v.dims(), [f("n") as usize, f("rows") as usize, f("cols") as usize]);
    let ps = arr("ps");
    assert!((g.spacing[1] - ps[0]).abs() < 1e-6 && (g.spacing[2] - ps[1]).abs() < 1e-6);
    assert!((g.spacing[0] - f("step")).abs() < 1e-3, "slice spacing {} vs {}", g.spacing[0], f("step"));
    let first = arr("first");
    let last = arr("last");
    let our_last = v.voxel_lps([v.dims()[0] - 1, 0, 0]);
    for a in 0..3 {
        assert!((g.origin[a] - first[a]).abs() < 1e-6, "origin {:?} vs {first:?}", g.origin);
        assert!((our_last[a] - last[a]).abs() < 1e-3, "last slice {our_last:?} vs {last:?}");
    }
    for s in expected["samples"].as_array().unwrap() {
        let [z, y, x, hu] = [0, 1, 2, 3].map(|i| s[i].as_i64().unwrap());
        assert_eq!(i64::from(*v.get([z as usize, y as usize, x as usize]).unwrap()), hu, "HU at {z},{y},{x}");
    }
    let data = v.data();
    assert_eq!(i64::from(*data.iter().min().unwrap()), expected["min"].as_i64().unwrap());
    assert_eq!(i64::from(*data.iter().max().unwrap()), expected["max"].as_i64().unwrap());
    // Sanity, independent of pydicom: air outside the body, soft tissue near water.
    let mid = v.slice(v.dims()[0] / 2);
    let cols = v.dims()[2];
    let mut corner: Vec<i16> = (0..20).flat_map(|y| mid[y * cols..y * cols + 20].to_vec()).collect();
    corner.sort();
    assert!((-1100..=-900).contains(&corner[corner.len() / 2]), "air {}", corner[corner.len() / 2]);
    let mut soft: Vec<i16> = mid.iter().copied().filter(|h| (-200..200).contains(h)).collect();
    soft.sort();
    assert!((-60..=80).contains(&soft[soft.len() / 2]), "soft tissue median {}", soft[soft.len() / 2]);
}

#[test]
fn tcga_whole_body_series_matches_pydicom() {
    let Some(dir) = common::shared_data("ct/tcga-thca-wholebody") else { return };
    check_against_pydicom(&dir);
}

#[test]
fn lung_pet_ct_dx_both_kernels_match_pydicom() {
    for kernel in ["b40f", "b70f"] {
        let Some(dir) = common::shared_data(&format!("ct/lung-pet-ct-dx-a0002/{kernel}")) else { return };
        check_against_pydicom(&dir);
    }
}
