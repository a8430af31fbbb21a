//! Instances fed one by one (as the network node will) group and assemble exactly like a folder
//! scan, and a series whose images come in two orientations is split into two stacks.

mod common;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use pulmo_dicom::{load_ct_path, scan, CtSeries, DicomFile, Instance, SeriesCollector};

#[test]
fn instances_fed_one_by_one_assemble_like_a_folder() {
    let Some(dir) = common::shared_data("ct/lung-pet-ct-dx-a0002/b70f") else { return };
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.reverse(); // arrival order must not matter
    let mut collector = SeriesCollector::new();
    for path in &files {
        // As received over the network: a bare dataset plus the negotiated transfer syntax.
        let file = DicomFile::open(path).unwrap();
        let dataset: InMemDicomObject = file.object.into_inner();
        let received = DicomFile::from_dataset(path, dataset, &file.transfer_syntax).unwrap();
        collector.add(Instance::from_file(received, true).unwrap());
    }
    let set = collector.finish();
    assert_eq!(set.series.len(), 1);
    let fed = CtSeries::assemble(&set.series[0]).unwrap();
    let folder = load_ct_path(&dir).unwrap();
    assert_eq!(fed.volume, folder.volume);
}

#[test]
fn a_series_with_two_orientations_is_split_into_stacks() {
    let Some(dir) = common::shared_data("ct/lung-pet-ct-dx-a0002/b40f") else { return };
    let tmp = tempfile::TempDir::new().unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for (i, path) in files.iter().enumerate() {
        let mut obj = DicomFile::open(path).unwrap().object;
        if i < 6 {
            // Six images re-declared as coronal, at distinct coronal positions.
            let put = |o: &mut dicom_object::DefaultDicomObject, tag, vr, v: String| {
                o.put(DataElement::new(tag, vr, PrimitiveValue::from(v)))
            };
            put(&mut obj, tags::IMAGE_ORIENTATION_PATIENT, VR::DS, "1\\0\\0\\0\\0\\-1".into());
            put(&mut obj, tags::IMAGE_POSITION_PATIENT, VR::DS, format!("-170\\{}\\300", -100 + 5 * i as i32));
        }
        obj.write_to_file(tmp.path().join(path.file_name().unwrap())).unwrap();
    }
    let set = scan(&[tmp.path().to_owned()], true).unwrap();
    let mut sizes: Vec<_> = set.series.iter().map(|s| (s.frame_count(), s.part.clone())).collect();
    sizes.sort();
    assert_eq!(sizes, vec![(6, Some("stack 2".into())), (24, None)]);
    let coronal = set.series.iter().find(|s| s.part.is_some()).unwrap();
    let ct = CtSeries::assemble(coronal).unwrap();
    assert!(ct.notes.iter().any(|n| n.contains("split into stacks")));
    // Coronal stack: slices step along anterior-posterior (LPS y), rows run inferior.
    let g = ct.volume.geometry();
    assert!((g.direction[0][1] - 1.0).abs() < 1e-9 && (g.direction[1][2] + 1.0).abs() < 1e-9);
}

#[test]
fn canonical_dataset_ignores_how_a_sender_encoded_sequences() {
    let Some(path) = common::shared_data("ct/lung-pet-ct-dx-a0002/b40f/1-01.dcm") else { return };
    let original = DicomFile::open(&path).unwrap();
    // Re-encode as DCMTK does when sending (explicit sequence lengths) with dcmconv.
    let tmp = tempfile::TempDir::new().unwrap();
    let rewritten = tmp.path().join("x.dcm");
    let out = std::process::Command::new("dcmconv").args(["+e", "+g"]).arg(&path).arg(&rewritten).output().expect("dcmconv (DCMTK)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let other = DicomFile::open(&rewritten).unwrap();
    assert_ne!(std::fs::read(&path).unwrap().len(), std::fs::read(&rewritten).unwrap().len(), "dcmconv changed nothing");
    assert!(original.canonical_content() == other.canonical_content());
    // And a real change is seen.
    let mut changed = other.clone();
    changed.object.put(dicom_core::DataElement::new(dicom_dictionary_std::tags::PATIENT_ID, dicom_core::VR::LO, dicom_core::PrimitiveValue::from("OTHER")));
    assert!(original.canonical_content() != changed.canonical_content());
}
