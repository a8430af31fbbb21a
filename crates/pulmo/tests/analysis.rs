//! The node's analyze profile: a phantom CT study pushed by Orthanc (the PACS) is analysed by a
//! job worker, its findings are kept and listed by `pulmo status`, progress is logged without
//! patient identity, the nodules' SEG lands back in Orthanc's study, and a node whose models are
//! missing refuses to start, naming them.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

fn analysis_config(models: &Path) -> String {
    format!("[profiles]\nPULMO = \"analyze\"\n\n[analysis]\nmodels = \"{}\"\ndevice = \"cpu\"\nworkers = 2\n", models.display())
}

fn shipped_models() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// Orthanc, as the hospital PACS, pushes a phantom study to pulmo's analyze title; pulmo finds
/// the nodules, keeps the findings, logs its stages without patient identity, and Orthanc ends
/// up holding pulmo's SEG, SR, summary page, key images and receipt in the same study, the SEG
/// over the true nodules.
#[test]
fn orthanc_pushes_a_study_and_gets_the_results_back() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study");
    let phantom = ["phantom", "--seed", "23", "--rows", "300", "--pixel-spacing", "1.1", "--slice-spacing", "2.5", "--nodules", "4"];
    let made = pulmo(&[&phantom[..], &["--out", study.to_str().unwrap()]].concat());
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let orthanc_dicom = free_port();
    let config = analysis_config(&shipped_models()) + "\n" + &destination("pacs", "ORTHANC", orthanc_dicom);
    // Quiet for 3 s before a study counts as complete: Orthanc's push may pause on a busy machine.
    let mut node = Node::with_config(3.0, &config);
    let Some(pacs) = Orthanc::start(orthanc_dicom, node.port) else { return };
    node.start();
    pacs.upload_folder(&study);
    let orthanc_study = pacs.get("/studies").unwrap()[0].as_str().unwrap().to_string();
    let push = pacs.post("/modalities/pulmo/store", &format!("{{\"Resources\":[\"{orthanc_study}\"],\"Synchronous\":true}}"));
    assert!(push.is_some(), "Orthanc could not push the study to pulmo: {}", node.log());

    let status = node.wait_for_within("the analysis", Duration::from_secs(600), |s| count(s, "jobs", "done") + count(s, "jobs", "failed") >= 1);
    assert_eq!(count(&status, "jobs", "done"), 1, "{status:#}\n{}", node.log());
    let findings = &status["recent_findings"][0];
    let truth: pulmo_phantom::Truth = serde_json::from_str(&std::fs::read_to_string(study.join("truth.json")).unwrap()).unwrap();
    let visible = truth.nodules.iter().filter(|t| t.in_field_of_view && t.lung.is_some() && t.mean_diameter_mm >= 8.0).count();
    assert!(findings["nodules"].as_u64().unwrap() as usize >= visible.max(1), "{status:#}");
    assert_ne!(findings["lung_rads"], "1", "{status:#}");

    let series = pacs.series_by_modality(&orthanc_study, &["SEG", "SR", "OT", "KO", "KO"], Duration::from_secs(60));
    let mut modalities: Vec<&str> = series.iter().map(|(m, _)| m.as_str()).collect();
    modalities.sort_unstable();
    // The receipt and the key images are both KOS.
    assert_eq!(modalities, ["CT", "KO", "KO", "OT", "SEG", "SR"], "{series:?}\n{}", node.log());
    assert_eq!(pacs.get("/studies").unwrap().as_array().unwrap().len(), 1, "the results must join the same study");
    let seg_series = series.iter().find(|(m, _)| m == "SEG").unwrap_or_else(|| panic!("no SEG in Orthanc: {series:?}\n{}", node.log()));
    let instances = pacs.get(&format!("/series/{}/instances", seg_series.1)).unwrap();
    let seg = dir.path().join("seg.dcm");
    pacs.download(&format!("/instances/{}/file", instances[0]["ID"].as_str().unwrap()), &seg);
    let check = std::process::Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"))
        .args(["-c", include_str!("../../pulmo-dicom/tests/seg_check.py")])
        .args([&seg, &study])
        .arg("--truth")
        .arg(study.join("truth.json"))
        .output()
        .expect("the project virtualenv (.venv) exists: run scripts/setup");
    let text = String::from_utf8_lossy(&check.stdout);
    println!("{text}");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert_eq!(text.lines().count() as u64, findings["nodules"].as_u64().unwrap(), "one segment per nodule");
    for line in text.lines() {
        let segment: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(segment["truth_centre_inside"], true, "{segment}");
    }

    let log = node.log();
    for stage in ["lungs", "candidates", "detection", "measurement", "assessment"] {
        assert!(log.contains(stage), "no log line for the {stage} stage:\n{log}");
    }
    let header = pulmo_dicom::DicomFile::open(&std::fs::read_dir(&study).unwrap().flatten().find(|e| e.path().extension().is_some_and(|x| x == "dcm")).unwrap().path()).unwrap();
    let patient = pulmo_dicom::InstanceHeader::read(&header).unwrap().patient_study;
    let id = patient.patient_id.expect("the phantom has a patient ID");
    assert!(!log.contains(&id), "the patient ID {id} is in the log");
    node.signal("-TERM");
}

#[test]
fn a_node_whose_models_are_missing_does_not_start_and_names_them() {
    let empty = tempfile::tempdir().unwrap();
    let node = Node::with_config(0.5, &analysis_config(empty.path()));
    let out = pulmo(&["serve", "--config", &node.config()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fp-reduction.toml"), "{err}");
}
