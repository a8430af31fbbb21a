//! DICOM SEG writer against independent validators: the nodules of test findings on the real
//! a0002 CT grid, checked by dciodvfy (dicom3tools) and read back by highdicom, whose decoded
//! voxels must be exactly the findings' regions, on the CT's own slices.

mod common;

use std::path::PathBuf;

use common::findings::{findings_with_balls, Ball};
use pulmo_dicom::write::seg::SEGMENTATION_STORAGE;
use pulmo_dicom::write::{Equipment, NewInstance, NoduleSegmentation, StudyContext, WriteError};
use pulmo_dicom::{load_ct_path, DicomFile, InstanceHeader};
use pulmo_findings::{Side, StudyFindings};

const SERIES: &str = "ct/lung-pet-ct-dx-a0002/b40f";

struct Written {
    _dir: tempfile::TempDir,
    seg: PathBuf,
    findings_json: PathBuf,
    ct_dir: PathBuf,
    findings: StudyFindings,
}

fn instance() -> NewInstance {
    NewInstance::derived("seg test", 9002, "20261129", "101500")
}

fn write() -> Option<Written> {
    let ct_dir = common::shared_data(SERIES)?;
    let ct = load_ct_path(&ct_dir).unwrap();
    let [nz, ny, nx] = ct.volume.dims();
    let balls = [
        Ball { centre: [nz / 2, ny / 2, nx / 3], radius_mm: 12.0, side: Side::Right },
        Ball { centre: [nz / 2 + 3, ny / 3, 2 * nx / 3], radius_mm: 4.0, side: Side::Left },
    ];
    let findings = findings_with_balls(&ct, &balls);
    let study = StudyContext::from(&ct.patient_study);
    let seg = NoduleSegmentation { findings: &findings, study: &study, instance: &instance(), equipment: &Equipment::pulmo("test") };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg.dcm");
    std::fs::write(&path, seg.to_part10().unwrap()).unwrap();
    let findings_json = dir.path().join("findings.json");
    std::fs::write(&findings_json, serde_json::to_vec(&findings).unwrap()).unwrap();
    if let Some(keep) = std::env::var_os("PULMO_SEG_KEEP") {
        std::fs::copy(&path, keep).unwrap(); // for a look in a viewer
    }
    Some(Written { _dir: dir, seg: path, findings_json, ct_dir, findings })
}

#[test]
fn dciodvfy_reports_no_errors() {
    let Some(w) = write() else { return };
    let errors = common::dciodvfy_errors(&w.seg);
    assert!(errors.is_empty(), "dciodvfy errors:\n{}", errors.join("\n"));
}

#[test]
fn highdicom_decodes_exactly_the_findings_regions_on_the_source_slices() {
    let Some(w) = write() else { return };
    let out = common::run_python(
        include_str!("seg_check.py"),
        &[w.seg.to_str().unwrap(), w.ct_dir.to_str().unwrap(), "--findings", w.findings_json.to_str().unwrap()],
    );
    println!("{out}");
    let segments: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(segments.len(), 2);
    for (s, n) in segments.iter().zip(&w.findings.nodules) {
        assert_eq!(s["voxels"].as_u64(), Some(n.region.count()));
    }
}

#[test]
fn our_reader_reads_it_as_seg() {
    let Some(w) = write() else { return };
    let file = DicomFile::open(&w.seg).unwrap();
    let header = InstanceHeader::read(&file).unwrap();
    assert_eq!(header.sop_class_uid, SEGMENTATION_STORAGE);
    assert_eq!(header.modality, "SEG");
    assert_eq!(header.patient_study.study_uid, w.findings.source.study_uid);
    assert_eq!(header.sop_instance_uid, instance().sop_instance_uid, "UIDs follow from the seed");
}

#[test]
fn unwritable_findings_are_named() {
    let Some(w) = write() else { return };
    let ct = load_ct_path(&w.ct_dir).unwrap();
    let study = StudyContext::from(&ct.patient_study);
    let equipment = Equipment::pulmo("test");
    let instance = instance();
    let attempt = |f: &StudyFindings| NoduleSegmentation { findings: f, study: &study, instance: &instance, equipment: &equipment }.to_part10();

    let mut none = w.findings.clone();
    none.nodules.clear();
    assert!(matches!(attempt(&none), Err(WriteError::Empty { field }) if field.starts_with("findings.nodules")));

    let mut resampled = w.findings.clone();
    resampled.source.slices.clear();
    let err = attempt(&resampled).unwrap_err().to_string();
    assert!(err.contains("findings.source.slices") && err.contains("resampled"), "{err}");

    let mut outside = w.findings.clone();
    outside.nodules[1].region.start[2] = 10_000;
    let err = attempt(&outside).unwrap_err().to_string();
    assert!(err.contains("findings.nodules[1].region") && err.contains("past the grid"), "{err}");

    let mut other_study = w.findings.clone();
    other_study.source.study_uid = "1.2.3".into();
    assert!(attempt(&other_study).unwrap_err().to_string().contains("study.study_uid"));

    let mut no_frame_of_reference = w.findings.clone();
    no_frame_of_reference.source.frame_of_reference_uid = None;
    assert!(attempt(&no_frame_of_reference).unwrap_err().to_string().contains("frame_of_reference_uid"));
}
