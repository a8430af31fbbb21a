//! `pulmo serve` as a PACS administrator runs it, with DCMTK as the real peer: C-ECHO (also
//! repeated on one association), a real CT series stored durably and bit-exact, the study
//! completed once after the quiet time (one job, run once), duplicates idempotent, kill -9
//! safe, health and metrics over HTTP, SIGTERM orderly.

use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::*;

#[test]
fn stores_a_real_series_durably_and_completes_it_once() {
    let Some(series) = shared("ct/lung-pet-ct-dx-a0002/b40f") else { return };
    let mut node = Node::new(1.0);
    node.start();
    let port = node.port.to_string();
    let echo = dcmtk("echoscu", &["-aec", "PULMO", "--repeat", "3", "127.0.0.1", &port]);
    assert!(echo.status.success(), "echoscu: {}", String::from_utf8_lossy(&echo.stderr));
    let echo = pulmo(&["echo", &format!("PULMO@127.0.0.1:{port}")]);
    assert!(echo.status.success(), "pulmo echo: {}", String::from_utf8_lossy(&echo.stderr));

    let send = dcmtk("storescu", &["-aec", "PULMO", "+sd", "+r", "127.0.0.1", &port, series.to_str().unwrap()]);
    assert!(send.status.success(), "storescu: {}", String::from_utf8_lossy(&send.stderr));
    let status = node.wait_for("the study's job to run", |s| count(s, "jobs", "done") == 1);
    assert_eq!((count(&status, "studies", "complete"), total_jobs(&status)), (1, 1), "{status:#}");

    // Every acknowledged instance is in the spool, and the spool decodes to the same volume.
    let received = pulmo_dicom::load_ct_path(&node.dir.path().join("spool")).unwrap();
    let original = pulmo_dicom::load_ct_path(&series).unwrap();
    assert_eq!(received.volume, original.volume);

    // Sending the same study again is idempotent: no new version, no second job.
    let again = pulmo(&["send", &format!("PULMO@127.0.0.1:{port}"), series.to_str().unwrap()]);
    assert!(again.status.success(), "pulmo send: {}", String::from_utf8_lossy(&again.stderr));
    std::thread::sleep(Duration::from_millis(1500));
    let status = node.status();
    assert_eq!((count(&status, "studies", "complete"), total_jobs(&status)), (1, 1), "{status:#}");
    let associations = status["recent_associations"].as_array().unwrap();
    assert!(associations.iter().any(|a| a["instances"] == 30 && a["calling_ae"] == "STORESCU"), "{status:#}");

    // Health and Prometheus metrics on the HTTP port.
    assert_eq!(node.http_get("/healthz").as_deref(), Some("ok\n"));
    let metrics = node.http_get("/metrics").unwrap();
    assert!(metrics.contains("pulmo_instances_stored_total 60"), "{metrics}");
    assert!(metrics.contains("pulmo_store_latency_seconds_count 60"), "{metrics}");
    assert!(metrics.contains("pulmo_jobs{state=\"done\"} 1"), "{metrics}");

    // SIGTERM: orderly exit.
    let exit = node.signal("-TERM");
    assert!(exit.success(), "exit {exit:?}: {}", node.log());
}

#[test]
fn survives_kill_9_in_the_middle_of_a_study() {
    let Some(series) = shared("ct/tcga-thca-wholebody") else { return };
    // Quiet time well above any pause of a loaded machine during the resend, which must
    // complete the study once.
    let mut node = Node::new(5.0);
    node.start();
    let port = node.port.to_string();
    let sender = Command::new("storescu")
        .args(["-aec", "PULMO", "-v", "+sd", "+r", "127.0.0.1", &port, series.to_str().unwrap()])
        .env("TCP_NODELAY", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the node once part of the series is in.
    let spool = node.dir.path().join("spool");
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_files(&spool) < 60 {
        assert!(Instant::now() < deadline, "no progress: {}", node.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    node.signal("-KILL");
    let sent = sender.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&sent.stdout).to_string() + &String::from_utf8_lossy(&sent.stderr);
    let acknowledged = log.matches("Received Store Response (Success)").count();
    assert!(acknowledged < 269, "the kill came too late to test anything");

    node.start();
    let status = node.status();
    let db_instances: u64 = status["recent_associations"].as_array().unwrap().iter().map(|a| a["instances"].as_u64().unwrap_or(0)).sum();
    assert!(count_files(&spool) >= acknowledged, "{} files < {acknowledged} acknowledged", count_files(&spool));
    println!("acknowledged before kill: {acknowledged}; files in spool: {}; logged: {db_instances}", count_files(&spool));
    let resend = dcmtk("storescu", &["-aec", "PULMO", "+sd", "+r", "127.0.0.1", &port, series.to_str().unwrap()]);
    assert!(resend.status.success(), "storescu: {}", String::from_utf8_lossy(&resend.stderr));
    let status = node.wait_for("the study's job to run", |s| count(s, "jobs", "done") == 1);
    assert_eq!((count(&status, "studies", "complete"), total_jobs(&status)), (1, 1), "{status:#}");
    // 269 CT instances plus the receipt pulmo wrote.
    assert_eq!(count_files(&spool), 270);
    let received = pulmo_dicom::load_ct_path(&spool).unwrap();
    assert_eq!(received.volume.dims()[0], 269);
    node.signal("-TERM");
}

fn total_jobs(status: &serde_json::Value) -> u64 {
    ["queued", "running", "done", "failed"].iter().map(|s| count(status, "jobs", s)).sum()
}

#[test]
fn below_the_free_space_floor_instances_are_refused_with_out_of_resources() {
    let Some(series) = shared("ct/lung-pet-ct-dx-a0002/b40f") else { return };
    let mut node = Node::new(1.0);
    node.set("min_free_mb", "1000000000"); // a petabyte: never available
    node.start();
    let one = series.join("1-01.dcm");
    let send = dcmtk("storescu", &["-aec", "PULMO", "-v", "127.0.0.1", &node.port.to_string(), one.to_str().unwrap()]);
    let log = String::from_utf8_lossy(&send.stdout).to_string() + &String::from_utf8_lossy(&send.stderr);
    assert!(log.contains("Refused: OutOfResources"), "{log}");
    assert_eq!(count_files(&node.dir.path().join("spool")), 0);
    let status = node.status();
    assert_eq!(count(&status, "studies", "receiving") + count(&status, "studies", "complete"), 0, "{status:#}");
    // The node keeps serving.
    assert!(dcmtk("echoscu", &["-aec", "PULMO", "127.0.0.1", &node.port.to_string()]).status.success());
    node.signal("-TERM");
}

#[test]
fn one_study_over_concurrent_associations_completes_once() {
    let Some(series) = shared("ct/lung-pet-ct-dx-a0002/b70f") else { return };
    let mut node = Node::new(1.5);
    node.start();
    let mut files: Vec<String> = std::fs::read_dir(&series).unwrap().map(|e| e.unwrap().path().display().to_string()).collect();
    files.sort();
    let port = node.port.to_string();
    let senders: Vec<_> = files
        .chunks(10)
        .map(|chunk| {
            let mut args = vec!["-aec", "PULMO", "127.0.0.1", &port];
            args.extend(chunk.iter().map(String::as_str));
            Command::new("storescu").args(&args).env("TCP_NODELAY", "1").spawn().unwrap()
        })
        .collect();
    for mut s in senders {
        assert!(s.wait().unwrap().success());
    }
    let status = node.wait_for("the study's job to run", |s| count(s, "jobs", "done") == 1);
    assert_eq!((count(&status, "studies", "complete"), total_jobs(&status)), (1, 1), "{status:#}");
    let associations = status["recent_associations"].as_array().unwrap();
    assert_eq!(associations.iter().map(|a| a["instances"].as_u64().unwrap()).sum::<u64>(), 30, "{status:#}");
    node.signal("-TERM");
}
