//! Shared by the node tests: a `pulmo serve` child with its own config, spool and database,
//! and helpers to run pulmo and DCMTK tools.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn shared(sub: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(sub);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {} is absent", p.display());
        None
    }
}

/// A node with its own config, spool and database in a temporary folder.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub http: u16,
    child: Option<Child>,
}

impl Node {
    pub fn new(quiet_seconds: f64) -> Node {
        Node::with_config(quiet_seconds, "")
    }

    /// Rewrites one `key = value` line of the generated configuration.
    pub fn set(&self, key: &str, value: &str) {
        let path = self.dir.path().join("pulmo.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let text: Vec<String> = text
            .lines()
            .map(|l| if l.starts_with(&format!("{key} =")) { format!("{key} = {value}") } else { l.to_string() })
            .collect();
        std::fs::write(&path, text.join("\n")).unwrap();
    }

    /// `extra` is appended to the generated configuration (e.g. `[[destinations]]`).
    pub fn with_config(quiet_seconds: f64, extra: &str) -> Node {
        let dir = tempfile::TempDir::new().unwrap();
        let free = || TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (port, http) = (free(), free());
        let config = format!(
            "[listen]\ndicom = \"127.0.0.1:{port}\"\nhttp = \"127.0.0.1:{http}\"\n\n[node]\nae_titles = [\"PULMO\"]\n\n\
             [storage]\nspool = \"spool\"\ndatabase = \"pulmo.db\"\nmin_free_mb = 1\n\n\
             [studies]\nquiet_seconds = {quiet_seconds}\n\n{extra}"
        );
        std::fs::write(dir.path().join("pulmo.toml"), config).unwrap();
        Node { dir, port, http, child: None }
    }

    pub fn config(&self) -> String {
        self.dir.path().join("pulmo.toml").display().to_string()
    }

    pub fn start(&mut self) {
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

    /// GET on the node's HTTP port, body as text (None unless 200).
    pub fn http_get(&self, path: &str) -> Option<String> {
        let out = Command::new("curl").args(["-sf", &format!("http://127.0.0.1:{}{path}", self.http)]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    pub fn status(&self) -> Value {
        let out = pulmo(&["status", "--json", "--config", &self.config()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits (up to a minute) until `done(status)` holds.
    pub fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_within(what, Duration::from_secs(60), done)
    }

    pub fn wait_for_within(&self, what: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.status();
            if done(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {s:#}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn signal(&mut self, signal: &str) -> std::process::ExitStatus {
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

pub fn pulmo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pulmo")).args(args).env_remove("LD_LIBRARY_PATH").output().unwrap()
}

pub fn dcmtk(tool: &str, args: &[&str]) -> Output {
    Command::new(tool).args(args).env("TCP_NODELAY", "1").output().expect("DCMTK is installed by scripts/setup")
}

/// The project's Python (the virtualenv scripts/setup makes), for independent checks.
pub fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
}

/// Asserts that dciodvfy (dicom3tools) reports no error on a file; warnings may stand.
pub fn assert_dciodvfy_clean(path: &Path) {
    let out = Command::new("dciodvfy").arg(path).output().expect("dciodvfy (dicom3tools) is installed: run scripts/setup");
    let report = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!report.lines().any(|l| l.starts_with("Error")), "dciodvfy errors in {}:\n{report}", path.display());
}

/// Runs pulmo-dicom's seg_check.py (highdicom) on a SEG over the CT folder `ct`, with its
/// options (`--findings`, `--truth`); one JSON object per segment.
pub fn seg_check(seg: &Path, ct: &Path, options: &[&std::ffi::OsStr]) -> Vec<Value> {
    let check = Command::new(python())
        .args(["-c", include_str!("../../../pulmo-dicom/tests/seg_check.py")])
        .args([seg, ct])
        .args(options)
        .output()
        .expect("the project virtualenv (.venv) exists: run scripts/setup");
    let text = String::from_utf8_lossy(&check.stdout);
    println!("{text}");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

pub fn count(status: &Value, section: &str, state: &str) -> u64 {
    status[section][state].as_u64().unwrap_or(0)
}

pub fn count_files(dir: &Path) -> usize {
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn destination(name: &str, ae: &str, port: u16) -> String {
    format!(
        "[export]\ncalling_ae = \"PULMO\"\nbackoff_base_seconds = 0.2\nbackoff_cap_seconds = 1\nmax_attempts = 50\n\n\
         [[destinations]]\nname = \"{name}\"\nae_title = \"{ae}\"\nhost = \"127.0.0.1\"\nport = {port}\n"
    )
}

pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Orthanc with a temporary storage, pulmo registered as a modality.
pub struct Orthanc {
    _dir: tempfile::TempDir,
    pub http: u16,
    _child: Killed,
}

/// Orthanc's DICOMweb plugin (Debian `orthanc-dicomweb`).
pub const DICOMWEB_PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

impl Orthanc {
    pub fn start(dicom_port: u16, pulmo_port: u16) -> Option<Orthanc> {
        Orthanc::launch(dicom_port, pulmo_port, false)
    }

    /// As `start`, with the DICOMweb plugin serving `dicomweb_root()` (QIDO-RS, WADO-RS, STOW-RS).
    pub fn start_with_dicomweb(dicom_port: u16, pulmo_port: u16) -> Option<Orthanc> {
        if !Path::new(DICOMWEB_PLUGIN).exists() {
            eprintln!("SKIPPED: {DICOMWEB_PLUGIN} is absent (scripts/setup installs orthanc-dicomweb)");
            return None;
        }
        Orthanc::launch(dicom_port, pulmo_port, true)
    }

    /// The DICOMweb root, e.g. `http://127.0.0.1:PORT/dicom-web` (with `start_with_dicomweb`).
    pub fn dicomweb_root(&self) -> String {
        format!("http://127.0.0.1:{}/dicom-web", self.http)
    }

    fn launch(dicom_port: u16, pulmo_port: u16, dicomweb: bool) -> Option<Orthanc> {
        let Ok(_) = Command::new("Orthanc").arg("--version").output() else {
            eprintln!("SKIPPED: Orthanc is not installed (scripts/setup installs it)");
            return None;
        };
        let dir = tempfile::TempDir::new().unwrap();
        let http = free_port();
        let mut config = serde_json::json!({
            "Name": "pulmo-test-pacs",
            "StorageDirectory": dir.path().join("db"),
            "IndexDirectory": dir.path().join("db"),
            "DicomAet": "ORTHANC",
            "DicomPort": dicom_port,
            "HttpPort": http,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            // PULMO_PRIORS: where pulmo asks Orthanc to C-MOVE a patient's prior studies.
            "DicomModalities": {
                "pulmo": ["PULMO", "127.0.0.1", pulmo_port],
                "pulmo-priors": ["PULMO_PRIORS", "127.0.0.1", pulmo_port],
            },
            "DicomAlwaysAllowStore": true,
            "Plugins": [],
        });
        if dicomweb {
            config["Plugins"] = serde_json::json!([DICOMWEB_PLUGIN]);
            config["DicomWeb"] = serde_json::json!({ "Enable": true, "Root": "/dicom-web/" });
        }
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

    pub fn curl(&self, args: &[&str]) -> Option<Value> {
        let out = Command::new("curl").args(["-sf"]).args(args).output().ok()?;
        out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.curl(&[&format!("http://127.0.0.1:{}{path}", self.http)])
    }

    pub fn post(&self, path: &str, body: &str) -> Option<Value> {
        self.curl(&["-X", "POST", "--data-binary", body, &format!("http://127.0.0.1:{}{path}", self.http)])
    }

    /// Uploads every file of `dir` (REST, as a modality would store them); panics on a refusal.
    pub fn upload_folder(&self, dir: &Path) {
        for file in std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "dcm")) {
            let url = format!("http://127.0.0.1:{}/instances", self.http);
            let uploaded = self.curl(&["-X", "POST", "--data-binary", &format!("@{}", file.display()), &url]);
            assert!(uploaded.is_some(), "upload of {} to Orthanc failed", file.display());
        }
    }

    /// Saves a resource's raw bytes (e.g. `/instances/ID/file`) to `to`.
    pub fn download(&self, path: &str, to: &Path) {
        let url = format!("http://127.0.0.1:{}{path}", self.http);
        let out = Command::new("curl").args(["-sf", "-o"]).arg(to).arg(&url).output().unwrap();
        assert!(out.status.success(), "GET {url} failed");
    }

    /// (modality, Orthanc ID) of a study's series, waiting up to `limit` for `want` to be there
    /// (a modality named twice: two series of it).
    pub fn series_by_modality(&self, study: &str, want: &[&str], limit: Duration) -> Vec<(String, String)> {
        let deadline = Instant::now() + limit;
        loop {
            let series = self.get(&format!("/studies/{study}/series")).unwrap_or_default();
            let found: Vec<(String, String)> = series
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| (s["MainDicomTags"]["Modality"].as_str().unwrap_or("").to_string(), s["ID"].as_str().unwrap_or("").to_string()))
                .collect();
            let enough = |m: &&str| found.iter().filter(|(f, _)| f == m).count() >= want.iter().filter(|w| *w == m).count();
            if want.iter().all(enough) || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

