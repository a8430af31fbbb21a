//! Results reach the PACS: with Orthanc as the hospital PACS (it pushes a study to pulmo, and
//! pulmo's receipt object arrives back in the same study), and with a DCMTK storescp that is
//! down at first (exports retried with backoff, attempts visible, delivered once it is up).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn exports_are_retried_until_a_late_destination_accepts_them() {
    let Some(series) = shared("ct/lung-pet-ct-dx-a0002/b70f") else { return };
    let dest_port = free_port();
    let mut node = Node::with_config(0.5, &destination("archive", "ARCHIVE", dest_port));
    node.start();
    let send = dcmtk("storescu", &["-aec", "PULMO", "+sd", "+r", "127.0.0.1", &node.port.to_string(), series.to_str().unwrap()]);
    assert!(send.status.success(), "storescu: {}", String::from_utf8_lossy(&send.stderr));
    // Nobody listens at the destination yet: the export fails and is retried.
    let status = node.wait_for("a failed export attempt", |s| {
        s["pending_exports"].as_array().is_some_and(|p| p.iter().any(|g| g["attempts"].as_u64() >= Some(2)))
    });
    println!("while down: {:#}", status["pending_exports"]);
    let out = tempfile::TempDir::new().unwrap();
    let _peer = Killed(
        Command::new("storescp")
            .args(["-aet", "ARCHIVE", "-od", out.path().to_str().unwrap(), &dest_port.to_string()])
            .env("TCP_NODELAY", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let status = node.wait_for("the export to be delivered", |s| {
        s["exports"].as_array().is_some_and(|d| d.iter().any(|x| x["counts"]["done"] == 1))
    });
    assert_eq!(count_all_files(out.path()), 1, "{status:#}");
    let received = std::fs::read_dir(out.path()).unwrap().next().unwrap().unwrap().path();
    let dump = Command::new("dcmdump").arg(&received).output().unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("(0008,0060) CS [KO]"), "{dump}");
    node.signal("-TERM");
}

/// A destination that misbehaves (DCMTK storescp fault flags) until it is replaced by a
/// well-behaved one: the export is retried, the attempts are visible, then it is delivered.
#[test]
fn exports_survive_a_refusing_an_aborting_and_a_sleeping_destination() {
    let Some(series) = shared("ct/lung-pet-ct-dx-a0002/b40f") else { return };
    for fault in [&["--refuse"][..], &["--abort-during"], &["--sleep-during", "30"]] {
        let dest_port = free_port();
        let mut node = Node::with_config(0.5, &destination("archive", "ARCHIVE", dest_port));
        node.start();
        let out = tempfile::TempDir::new().unwrap();
        let storescp = |extra: &[&str]| {
            Killed(
                Command::new("storescp")
                    .args(["-aet", "ARCHIVE", "-od", out.path().to_str().unwrap()])
                    .args(extra)
                    .arg(dest_port.to_string())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        };
        let faulty = storescp(fault);
        let send = dcmtk("storescu", &["-aec", "PULMO", "+sd", "+r", "127.0.0.1", &node.port.to_string(), series.to_str().unwrap()]);
        assert!(send.status.success(), "storescu: {}", String::from_utf8_lossy(&send.stderr));
        let wanted = if fault[0] == "--sleep-during" { 1 } else { 2 };
        let status = node.wait_for("failed attempts against the faulty peer", |s| {
            s["pending_exports"].as_array().is_some_and(|p| p.iter().any(|g| g["attempts"].as_u64() >= Some(wanted)))
        });
        println!("{fault:?}: {}", status["pending_exports"]);
        drop(faulty);
        let _good = storescp(&[]);
        let status = node.wait_for("delivery once the peer behaves", |s| {
            s["exports"].as_array().is_some_and(|d| d.iter().any(|x| x["counts"]["done"] == 1))
        });
        let received: Vec<_> = std::fs::read_dir(out.path()).unwrap().flatten().filter(|e| e.path().is_file()).collect();
        assert_eq!(received.len(), 1, "{fault:?}: {status:#}");
        node.signal("-TERM");
    }
}

fn count_all_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn orthanc_pushes_a_study_and_gets_the_result_back_in_the_same_study() {
    let Some(series) = shared("ct/lung-pet-ct-dx-a0002/b40f") else { return };
    let orthanc_dicom = free_port();
    let mut node = Node::with_config(1.0, &destination("pacs", "ORTHANC", orthanc_dicom));
    let Some(pacs) = Orthanc::start(orthanc_dicom, node.port) else { return };
    node.start();
    pacs.upload_folder(&series);
    let studies = pacs.get("/studies").unwrap();
    let study = studies[0].as_str().unwrap().to_string();
    let push = pacs.post("/modalities/pulmo/store", &format!("{{\"Resources\":[\"{study}\"],\"Synchronous\":true}}"));
    assert!(push.is_some(), "Orthanc could not push the study to pulmo: {}", node.log());
    let series = pacs.series_by_modality(&study, &["CT", "KO"], Duration::from_secs(60));
    assert!(series.iter().any(|(m, _)| m == "KO") && series.iter().any(|(m, _)| m == "CT"), "{series:?}\n{}", node.log());
    assert_eq!(pacs.get("/studies").unwrap().as_array().unwrap().len(), 1, "the result must join the same study");
    node.signal("-TERM");
}

/// The called AE title selects the pipeline: a study sent to a store-only AE is kept but
/// produces no result; the same node's default AE produces and exports the receipt.
#[test]
fn the_called_ae_title_selects_the_pipeline_profile() {
    let Some(series) = shared("ct/lung-pet-ct-dx-a0002/b40f") else { return };
    let dest_port = free_port();
    let extra = destination("archive", "ARCHIVE", dest_port) + "\n[profiles]\nPRIORS = \"store-only\"\n";
    let mut node = Node::with_config(0.5, &extra);
    node.set("ae_titles", "[\"PULMO\", \"PRIORS\"]");
    node.start();
    let send = dcmtk("storescu", &["-aec", "PRIORS", "+sd", "+r", "127.0.0.1", &node.port.to_string(), series.to_str().unwrap()]);
    assert!(send.status.success(), "storescu: {}", String::from_utf8_lossy(&send.stderr));
    let status = node.wait_for("the job to run", |s| count(s, "jobs", "done") == 1);
    assert!(status["pending_exports"].as_array().unwrap().is_empty(), "{status:#}");
    assert!(status["recent_jobs"].to_string().contains("done"), "{status:#}");
    assert_eq!(count_files(&node.dir.path().join("spool")), 30, "no receipt for a store-only study");
    node.signal("-TERM");
}
