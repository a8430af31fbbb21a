//! Results reach the PACS: with Orthanc as the hospital PACS (it pushes a study to pulmo, and
//! pulmo's receipt object arrives back in the same study), and with a DCMTK storescp that is
//! down at first (exports retried with backoff, attempts visible, delivered once it is up).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn destination(name: &str, ae: &str, port: u16) -> String {
    format!(
        "[export]\ncalling_ae = \"PULMO\"\nbackoff_base_seconds = 0.2\nbackoff_cap_seconds = 1\nmax_attempts = 50\n\n\
         [[destinations]]\nname = \"{name}\"\nae_title = \"{ae}\"\nhost = \"127.0.0.1\"\nport = {port}\n"
    )
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

/// Orthanc with a temporary storage, pulmo registered as a modality.
struct Orthanc {
    _dir: tempfile::TempDir,
    http: u16,
    _child: Killed,
}

impl Orthanc {
    fn start(dicom_port: u16, pulmo_port: u16) -> Option<Orthanc> {
        let Ok(_) = Command::new("Orthanc").arg("--version").output() else {
            eprintln!("SKIPPED: Orthanc is not installed (scripts/setup installs it)");
            return None;
        };
        let dir = tempfile::TempDir::new().unwrap();
        let http = free_port();
        let config = serde_json::json!({
            "Name": "pulmo-test-pacs",
            "StorageDirectory": dir.path().join("db"),
            "IndexDirectory": dir.path().join("db"),
            "DicomAet": "ORTHANC",
            "DicomPort": dicom_port,
            "HttpPort": http,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "DicomModalities": { "pulmo": ["PULMO", "127.0.0.1", pulmo_port] },
            "DicomAlwaysAllowStore": true,
            "Plugins": [],
        });
        let path = dir.path().join("orthanc.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let child = Command::new("Orthanc").arg(&path).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let orthanc = Orthanc { _dir: dir, http, _child: Killed(child) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while orthanc.get("/system").is_none() {
            assert!(Instant::now() < deadline, "Orthanc did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(orthanc)
    }

    fn curl(&self, args: &[&str]) -> Option<Value> {
        let out = Command::new("curl").args(["-sf"]).args(args).output().ok()?;
        out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
    }

    fn get(&self, path: &str) -> Option<Value> {
        self.curl(&[&format!("http://127.0.0.1:{}{path}", self.http)])
    }

    fn post(&self, path: &str, body: &str) -> Option<Value> {
        self.curl(&["-X", "POST", "--data-binary", body, &format!("http://127.0.0.1:{}{path}", self.http)])
    }
}

#[test]
fn orthanc_pushes_a_study_and_gets_the_result_back_in_the_same_study() {
    let Some(series) = shared("ct/lung-pet-ct-dx-a0002/b40f") else { return };
    let orthanc_dicom = free_port();
    let mut node = Node::with_config(1.0, &destination("pacs", "ORTHANC", orthanc_dicom));
    let Some(pacs) = Orthanc::start(orthanc_dicom, node.port) else { return };
    node.start();
    for file in std::fs::read_dir(&series).unwrap() {
        let file = file.unwrap().path();
        let uploaded = pacs.curl(&["-X", "POST", "--data-binary", &format!("@{}", file.display()), &format!("http://127.0.0.1:{}/instances", pacs.http)]);
        assert!(uploaded.is_some(), "upload of {} to Orthanc failed", file.display());
    }
    let studies = pacs.get("/studies").unwrap();
    let study = studies[0].as_str().unwrap().to_string();
    let push = pacs.post("/modalities/pulmo/store", &format!("{{\"Resources\":[\"{study}\"],\"Synchronous\":true}}"));
    assert!(push.is_some(), "Orthanc could not push the study to pulmo: {}", node.log());
    let deadline = Instant::now() + Duration::from_secs(60);
    let modalities = loop {
        let series = pacs.get(&format!("/studies/{study}/series")).unwrap();
        let modalities: Vec<String> =
            series.as_array().unwrap().iter().map(|s| s["MainDicomTags"]["Modality"].as_str().unwrap_or("").to_string()).collect();
        if modalities.len() >= 2 || Instant::now() > deadline {
            break modalities;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(modalities.contains(&"KO".to_string()) && modalities.contains(&"CT".to_string()), "{modalities:?}\n{}", node.log());
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
