//! What the radiologist sees: pulmo's SEG and TID 1500 SR, stored in a PACS (Orthanc with
//! DICOMweb), opened in the real OHIF viewer (@ohif/app 3.13.2) in headless Chromium. The checks
//! are on what is drawn: the nodule's colour over the CT after loading the SEG, and the SR's
//! long-axis line with its "Long axis: N mm" label (tests/viewer/check.mjs). Screenshots are
//! kept under target/test-artifacts/viewer/.
//!
//! Needs chromium, orthanc-dicomweb, node and tests/viewer/node_modules: scripts/setup.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, pulmo, Killed, Orthanc};

const ROWS: u32 = 300;
const PIXEL_SPACING_MM: f64 = 1.1;

fn run_ok(what: &str, args: &[&str]) -> String {
    let out = pulmo(args);
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn viewer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/viewer")
}

/// Starts serve.mjs (OHIF + DICOMweb forwarded to `dicomweb`) and returns it with its origin.
fn serve(dicomweb: &str) -> (Killed, String) {
    let mut child = Command::new("node")
        .arg(viewer_dir().join("serve.mjs"))
        .args(["--orthanc", dicomweb, "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node is installed by scripts/setup");
    let stdout = child.stdout.take().unwrap();
    let child = Killed(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).expect("serve.mjs did not start within 30 s");
    let origin = line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("serve.mjs: {line:?}")).to_string();
    (child, origin)
}

#[test]
fn ohif_shows_the_seg_overlay_and_the_long_axis() {
    let started = Instant::now();
    let viewer = viewer_dir();
    for needed in ["node_modules/@ohif/app/dist/index.html", "node_modules/playwright-core/package.json"] {
        assert!(viewer.join(needed).exists(), "{} is missing: run scripts/setup", viewer.join(needed).display());
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "{chromium} is missing: run scripts/setup");

    // A phantom study and pulmo's analysis of it.
    let dir = tempfile::tempdir().unwrap();
    let (study, out) = (dir.path().join("study"), dir.path().join("out"));
    let (rows, spacing) = (ROWS.to_string(), PIXEL_SPACING_MM.to_string());
    let phantom = ["phantom", "--seed", "23", "--rows", &rows, "--pixel-spacing", &spacing, "--slice-spacing", "2.5", "--nodules", "4"];
    run_ok("pulmo phantom", &[&phantom[..], &["--out", study.to_str().unwrap()]].concat());
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let analyze = ["analyze", study.to_str().unwrap(), "--out", out.to_str().unwrap(), "--device", "cpu", "--models", models.to_str().unwrap()];
    println!("{}", run_ok("pulmo analyze", &analyze));
    let findings: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("findings.json")).unwrap()).unwrap();
    let long_axis = findings["nodules"][0]["measurements"]["long_axis_mm"].as_f64().expect("findings.json: nodules[0].measurements.long_axis_mm");
    let analysed = started.elapsed();

    // The PACS, with the CT, the SEG and the SR stored as a modality would.
    let pacs = Orthanc::start_with_dicomweb(free_port(), free_port()).expect("Orthanc with DICOMweb: run scripts/setup");
    pacs.upload_folder(&study);
    for object in ["seg.dcm", "sr.dcm"] {
        let file = format!("@{}", out.join(object).display());
        let url = format!("http://127.0.0.1:{}/instances", pacs.http);
        assert!(pacs.curl(&["-X", "POST", "--data-binary", &file, &url]).is_some(), "upload of {object} to Orthanc failed");
    }
    let studies = pacs.get("/studies").unwrap();
    assert_eq!(studies.as_array().map(Vec::len), Some(1), "{studies}");
    let info = pacs.get(&format!("/studies/{}", studies[0].as_str().unwrap())).unwrap();
    let study_uid = info["MainDicomTags"]["StudyInstanceUID"].as_str().unwrap().to_string();
    assert_eq!(info["Series"].as_array().map(Vec::len), Some(3), "CT, SEG and SR: {info}");

    let (_server, origin) = serve(&pacs.dicomweb_root());
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("test-artifacts/viewer");
    std::fs::create_dir_all(&artifacts).unwrap();
    for old in std::fs::read_dir(&artifacts).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "png")) {
        let _ = std::fs::remove_file(old);
    }
    let [r, g, b] = pulmo_findings::nodule_colour(1);
    let check = Command::new("timeout")
        .arg("300")
        .arg("node")
        .arg(viewer.join("check.mjs"))
        .args(["--url", &origin, "--study", &study_uid, "--long-axis", &long_axis.to_string()])
        .args(["--colour", &format!("{r},{g},{b}"), "--fov-mm", &(f64::from(ROWS) * PIXEL_SPACING_MM).to_string()])
        .arg("--out")
        .arg(&artifacts)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node is installed by scripts/setup");
    let stderr = String::from_utf8_lossy(&check.stderr);
    let stdout = String::from_utf8_lossy(&check.stdout);
    eprintln!("{stderr}");
    println!("screenshots: {}", artifacts.display());
    println!("{stdout}");
    println!("analysis {:.0} s, viewer {:.0} s", analysed.as_secs_f64(), (started.elapsed() - analysed).as_secs_f64());
    let result: serde_json::Value = stdout.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or_default();
    assert!(check.status.success() && result["ok"] == true, "check.mjs failed ({}): {stderr}\n{stdout}", check.status);
    // The same facts, asserted here too (check.mjs already failed on any of them).
    assert!(result["seg_colour_pixels"].as_u64().unwrap() >= 150 + result["ct_colour_pixels"].as_u64().unwrap(), "{result}");
    assert!((result["long_axis_label_mm"].as_f64().unwrap() - long_axis).abs() <= 0.2, "{result}");
    assert!((result["long_axis_line_mm"].as_f64().unwrap() - long_axis).abs() <= 0.5, "{result}");
    for shot in ["1-seg", "2-sr"] {
        assert!(artifacts.join(format!("{shot}.png")).exists(), "{shot}.png was not written");
    }
}
