//! `pulmo serve` as a PACS administrator runs it, with DCMTK as the real peer: C-ECHO (also
//! repeated on one association), a real CT series stored durably and bit-exact, the study
//! completed once after the quiet time, duplicates idempotent, kill -9 safe, SIGTERM orderly.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

fn shared(sub: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(sub);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {} is absent", p.display());
        None
    }
}

/// A node with its own config, spool and database in a temporary folder.
struct Node {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Node {
    fn new(quiet_seconds: f64) -> Node {
        let dir = tempfile::TempDir::new().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = format!(
            "[listen]\ndicom = \"127.0.0.1:{port}\"\n\n[node]\nae_titles = [\"PULMO\"]\n\n\
             [storage]\nspool = \"spool\"\ndatabase = \"pulmo.db\"\nmin_free_mb = 1\n\n\
             [studies]\nquiet_seconds = {quiet_seconds}\n"
        );
        std::fs::write(dir.path().join("pulmo.toml"), config).unwrap();
        Node { dir, port, child: None }
    }

    fn config(&self) -> String {
        self.dir.path().join("pulmo.toml").display().to_string()
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("serve.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pulmo"))
            .args(["serve", "--config", &self.config()])
            .env_remove("LD_LIBRARY_PATH")
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "pulmo serve did not listen: {}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn status(&self) -> Value {
        let out = pulmo(&["status", "--json", "--config", &self.config()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits until `done(status)` holds.
    fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.status();
            if done(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {s:#}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn signal(&mut self, signal: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        child.wait().unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn pulmo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pulmo")).args(args).env_remove("LD_LIBRARY_PATH").output().unwrap()
}

fn dcmtk(tool: &str, args: &[&str]) -> Output {
    Command::new(tool).args(args).env("TCP_NODELAY", "1").output().expect("DCMTK is installed by scripts/setup")
}

fn count(status: &Value, section: &str, state: &str) -> u64 {
    status[section][state].as_u64().unwrap_or(0)
}

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
    let status = node.wait_for("the study to complete", |s| count(s, "studies", "complete") == 1);
    assert_eq!(count(&status, "jobs", "queued"), 1, "{status:#}");

    // Every acknowledged instance is in the spool, and the spool decodes to the same volume.
    let received = pulmo_dicom::load_ct_path(&node.dir.path().join("spool")).unwrap();
    let original = pulmo_dicom::load_ct_path(&series).unwrap();
    assert_eq!(received.volume, original.volume);

    // Sending the same study again is idempotent: no new version, no second job.
    let again = pulmo(&["send", &format!("PULMO@127.0.0.1:{port}"), series.to_str().unwrap()]);
    assert!(again.status.success(), "pulmo send: {}", String::from_utf8_lossy(&again.stderr));
    std::thread::sleep(Duration::from_millis(1500));
    let status = node.status();
    assert_eq!((count(&status, "studies", "complete"), count(&status, "jobs", "queued")), (1, 1), "{status:#}");
    let associations = status["recent_associations"].as_array().unwrap();
    assert!(associations.iter().any(|a| a["instances"] == 30 && a["calling_ae"] == "STORESCU"), "{status:#}");

    // SIGTERM: orderly exit.
    let exit = node.signal("-TERM");
    assert!(exit.success(), "exit {exit:?}: {}", node.log());
}

#[test]
fn survives_kill_9_in_the_middle_of_a_study() {
    let Some(series) = shared("ct/tcga-thca-wholebody") else { return };
    let mut node = Node::new(2.0);
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
    let status = node.wait_for("the study to complete", |s| count(s, "studies", "complete") == 1);
    assert_eq!(count(&status, "jobs", "queued"), 1, "{status:#}");
    assert_eq!(count_files(&spool), 269);
    let received = pulmo_dicom::load_ct_path(&spool).unwrap();
    assert_eq!(received.volume.dims()[0], 269);
    node.signal("-TERM");
}

fn count_files(dir: &Path) -> usize {
    fn walk(d: &Path, n: &mut usize) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, n)
            } else if p.extension().is_some_and(|x| x == "dcm") {
                *n += 1
            }
        }
    }
    let mut n = 0;
    walk(dir, &mut n);
    n
}
