//! Bad and unusual input: every failure is an error naming the file (or series) and the
//! reason, never a panic; scouts are skipped with a reason; tilt, irregular spacing and
//! Enhanced CT load correctly. Fixtures are edited copies of a real 30-slice series.

mod common;

use std::path::{Path, PathBuf};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use pulmo_dicom::{load_ct_path, scan, DicomFile, FileError, LoadError};
use tempfile::TempDir;

/// A copy of the b40f series (30 slices, 8 mm apart) in a temporary folder, sorted by name.
fn series_copy() -> Option<(TempDir, Vec<PathBuf>)> {
    let src = common::shared_data("ct/lung-pet-ct-dx-a0002/b40f")?;
    let dir = TempDir::new().unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let copies = files
        .iter()
        .map(|f| {
            let to = dir.path().join(f.file_name().unwrap());
            std::fs::copy(f, &to).unwrap();
            to
        })
        .collect();
    Some((dir, copies))
}

/// Rewrites one file in place after `edit`.
fn edit(path: &Path, edit: impl FnOnce(&mut dicom_object::DefaultDicomObject)) {
    let mut obj = DicomFile::open(path).unwrap().object;
    edit(&mut obj);
    obj.write_to_file(path).unwrap();
}

fn put_str(obj: &mut dicom_object::DefaultDicomObject, tag: dicom_core::Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

fn position(path: &Path) -> [f64; 3] {
    let obj = DicomFile::open(path).unwrap().object;
    let v = obj.element(tags::IMAGE_POSITION_PATIENT).unwrap().to_multi_float64().unwrap();
    [v[0], v[1], v[2]]
}

fn set_position(obj: &mut dicom_object::DefaultDicomObject, p: [f64; 3]) {
    put_str(obj, tags::IMAGE_POSITION_PATIENT, VR::DS, &format!("{}\\{}\\{}", p[0], p[1], p[2]));
}

#[test]
fn empty_folder_and_non_dicom_and_truncated_files() {
    let dir = TempDir::new().unwrap();
    let err = load_ct_path(dir.path()).unwrap_err();
    assert!(matches!(err, LoadError::NoDicomFiles(_)), "{err}");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not an image").unwrap();
    let err = load_ct_path(&text).unwrap_err();
    assert!(matches!(err, LoadError::File(FileError::NotDicom(_))), "{err}");
    assert!(err.to_string().contains("notes.txt"));

    let Some(src) = common::shared_data("ct/lung-pet-ct-dx-a0002/b40f/1-01.dcm") else { return };
    let bytes = std::fs::read(src).unwrap();
    for cut in [100, 140, 2000, bytes.len() / 2, bytes.len() - 1] {
        let path = dir.path().join(format!("cut{cut}.dcm"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = load_ct_path(&path).unwrap_err().to_string();
        println!("truncated at {cut}: {err}");
        assert!(err.contains(&format!("cut{cut}.dcm")), "{err}");
    }
}

#[test]
fn a_stray_non_dicom_file_in_a_folder_is_skipped_with_its_reason() {
    let Some((dir, _)) = series_copy() else { return };
    std::fs::write(dir.path().join("README.txt"), "hello").unwrap();
    let set = scan(&[dir.path().to_owned()], false).unwrap();
    assert_eq!(set.series.len(), 1);
    assert_eq!(set.skipped.len(), 1);
    assert!(set.skipped[0].reason.contains("not a DICOM file"));
    assert_eq!(load_ct_path(dir.path()).unwrap().volume.dims()[0], 30);
}

#[test]
fn missing_attributes_name_the_file_and_the_attribute() {
    let cases = [
        (tags::PIXEL_DATA, "PixelData"),
        (tags::PIXEL_SPACING, "PixelSpacing"),
        (tags::IMAGE_POSITION_PATIENT, "ImagePositionPatient"),
        (tags::IMAGE_ORIENTATION_PATIENT, "ImageOrientationPatient"),
    ];
    for (tag, name) in cases {
        let Some((dir, files)) = series_copy() else { return };
        edit(&files[12], |o| {
            o.remove_element(tag);
        });
        let err = load_ct_path(dir.path()).unwrap_err().to_string();
        println!("without {name}: {err}");
        assert!(err.contains("1-13.dcm") && err.contains(name), "{err}");
    }
}

#[test]
fn mixed_patients_are_refused_naming_both_files() {
    let Some((dir, files)) = series_copy() else { return };
    edit(&files[5], |o| put_str(o, tags::PATIENT_ID, VR::LO, "SOMEONE-ELSE"));
    let err = load_ct_path(dir.path()).unwrap_err();
    assert!(matches!(err, LoadError::MixedPatients { .. }), "{err}");
    assert!(err.to_string().contains("1-06.dcm"), "{err}");
}

#[test]
fn a_missing_slice_is_reported_as_a_gap() {
    let Some((dir, files)) = series_copy() else { return };
    std::fs::remove_file(&files[14]).unwrap();
    let err = load_ct_path(dir.path()).unwrap_err();
    println!("{err}");
    assert!(matches!(&err, LoadError::MissingSlices { gaps, .. } if gaps.contains("about 1 slices")), "{err}");
}

#[test]
fn duplicate_positions_are_refused() {
    let Some((dir, files)) = series_copy() else { return };
    let copy = dir.path().join("dup.dcm");
    std::fs::copy(&files[3], &copy).unwrap();
    edit(&copy, |o| put_str(o, tags::SOP_INSTANCE_UID, VR::UI, "2.25.1234567"));
    let err = load_ct_path(dir.path()).unwrap_err();
    assert!(matches!(err, LoadError::DuplicatePosition { .. }), "{err}");
}

#[test]
fn localizers_and_stray_scouts_are_skipped_with_a_reason() {
    let Some((dir, files)) = series_copy() else { return };
    for (name, image_type) in [("loc.dcm", "ORIGINAL\\PRIMARY\\LOCALIZER"), ("scout.dcm", "ORIGINAL\\PRIMARY\\AXIAL")] {
        let copy = dir.path().join(name);
        std::fs::copy(&files[0], &copy).unwrap();
        edit(&copy, |o| {
            put_str(o, tags::SOP_INSTANCE_UID, VR::UI, &format!("2.25.{}", name.len() * 7777));
            put_str(o, tags::IMAGE_TYPE, VR::CS, image_type);
            put_str(o, tags::IMAGE_ORIENTATION_PATIENT, VR::DS, "1\\0\\0\\0\\0\\-1");
        });
    }
    let set = scan(&[dir.path().to_owned()], false).unwrap();
    let reasons: Vec<_> = set.skipped.iter().map(|s| format!("{}: {}", s.path.display(), s.reason)).collect();
    println!("{reasons:#?}");
    assert_eq!(set.series.len(), 1);
    assert!(reasons.iter().any(|r| r.contains("loc.dcm") && r.contains("LOCALIZER")));
    assert!(reasons.iter().any(|r| r.contains("scout.dcm") && r.contains("orientation")));
    assert_eq!(load_ct_path(dir.path()).unwrap().volume.dims()[0], 30);
}

#[test]
fn gantry_tilt_keeps_every_slice_at_its_true_position() {
    let Some((dir, files)) = series_copy() else { return };
    let tilt = 15f64.to_radians();
    let z0 = position(&files[0])[2];
    for f in &files {
        edit(f, |o| {
            let mut p = position(f);
            p[1] += (p[2] - z0) * tilt.tan();
            set_position(o, p);
        });
    }
    let ct = load_ct_path(dir.path()).unwrap();
    let g = ct.volume.geometry();
    println!("notes: {:?}", ct.notes);
    assert!((g.shear_degrees() - 15.0).abs() < 1e-3, "{}", g.shear_degrees());
    assert!(ct.notes.iter().any(|n| n.contains("gantry tilt 15.00")));
    for (k, src) in ct.sources.iter().enumerate() {
        let want = position(&src.path);
        let got = ct.volume.voxel_lps([k, 0, 0]);
        assert!((0..3).all(|a| (got[a] - want[a]).abs() < 1e-3), "slice {k}: {got:?} vs {want:?}");
    }
}

#[test]
fn irregular_spacing_is_resampled_to_uniform() {
    let Some((dir, files)) = series_copy() else { return };
    let z0 = position(&files[0])[2];
    // Steps alternate 7 and 9 mm (mean 8): no gap, but not uniform either.
    for (i, f) in files.iter().enumerate() {
        edit(f, |o| {
            let mut p = position(f);
            p[2] = z0 + 8.0 * i as f64 - if i % 2 == 1 { 1.0 } else { 0.0 };
            set_position(o, p);
        });
    }
    let ct = load_ct_path(dir.path()).unwrap();
    println!("notes: {:?}", ct.notes);
    assert!(ct.resampled);
    assert!(ct.notes.iter().any(|n| n.contains("irregular slice spacing")));
    let g = ct.volume.geometry();
    assert_eq!(ct.volume.dims()[0], 30);
    // Same slice count, mean spacing: the last slice (odd index) sits 231 mm from the first.
    assert!((g.spacing[0] - 231.0 / 29.0).abs() < 1e-9, "{}", g.spacing[0]);
}

#[test]
fn enhanced_ct_multiframe_equals_the_classic_series() {
    let Some(src) = common::shared_data("ct/lung-pet-ct-dx-a0002/b40f") else { return };
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("enhanced.dcm");
    common::run_python(include_str!("make_enhanced_ct.py"), &[src.to_str().unwrap(), out.to_str().unwrap()]);
    let enhanced = load_ct_path(&out).unwrap();
    let classic = load_ct_path(&src).unwrap();
    assert_eq!(enhanced.volume.dims(), classic.volume.dims());
    assert_eq!(enhanced.volume.geometry(), classic.volume.geometry());
    assert!(enhanced.volume.data() == classic.volume.data(), "voxels differ");
}
