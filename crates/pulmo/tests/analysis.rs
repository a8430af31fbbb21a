//! The node's analyze profile: a phantom CT study sent over C-STORE is analysed by a job
//! worker, its findings are kept and listed by `pulmo status`, progress is logged without
//! patient identity, and a node whose models are missing refuses to start, naming them.

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

#[test]
fn a_study_sent_to_the_analyze_title_gets_its_nodules_found_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study");
    let phantom = ["phantom", "--seed", "23", "--rows", "300", "--pixel-spacing", "1.1", "--slice-spacing", "2.5", "--nodules", "4"];
    let made = pulmo(&[&phantom[..], &["--out", study.to_str().unwrap()]].concat());
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let mut node = Node::with_config(0.5, &analysis_config(&shipped_models()));
    node.start();
    let send = dcmtk("storescu", &["-aec", "PULMO", "+sd", "+sp", "*.dcm", "127.0.0.1", &node.port.to_string(), study.to_str().unwrap()]);
    assert!(send.status.success(), "storescu: {}", String::from_utf8_lossy(&send.stderr));

    let status = node.wait_for_within("the analysis", Duration::from_secs(600), |s| count(s, "jobs", "done") + count(s, "jobs", "failed") >= 1);
    assert_eq!(count(&status, "jobs", "done"), 1, "{status:#}\n{}", node.log());
    let findings = &status["recent_findings"][0];
    let truth: pulmo_phantom::Truth = serde_json::from_str(&std::fs::read_to_string(study.join("truth.json")).unwrap()).unwrap();
    let visible = truth.nodules.iter().filter(|t| t.in_field_of_view && t.lung.is_some() && t.mean_diameter_mm >= 8.0).count();
    assert!(findings["nodules"].as_u64().unwrap() as usize >= visible.max(1), "{status:#}");
    assert_ne!(findings["lung_rads"], "1", "{status:#}");

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
