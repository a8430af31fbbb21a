//! Shared fixtures for the DCMTK interoperability tests: our SCP on a free loopback port, a
//! real store handler writing Part-10 files, DCMTK tools as child processes, data locations.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dicom_object::FileMetaTableBuilder;
use pulmo_net::{
    status, AssociationInfo, AssociationSummary, NetError, NodePolicy, ReceivedInstance, StoreHandler, StoreResponse,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// `../shared/data/<rel>` if present; prints the SKIPPED line the test suite greps for if not.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        println!("SKIPPED: {} absent", p.display());
        None
    }
}

/// DCMTK must be installed for these tests; say so instead of failing obscurely.
pub fn have_dcmtk() -> bool {
    let ok = Command::new("echoscu")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("SKIPPED: DCMTK (echoscu, storescu, storescp) not installed");
    }
    ok
}

pub fn b40f_files() -> Option<Vec<PathBuf>> {
    let dir = shared_data("ct/lung-pet-ct-dx-a0002/b40f")?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).ok()?.map(|e| e.unwrap().path()).collect();
    files.sort();
    Some(files)
}

/// A store handler that really stores: Part-10 file per instance (temp + fsync + rename),
/// named by the (validated) SOP Instance UID. It can be told to answer a fixed failure.
#[derive(Default)]
pub struct DirHandler {
    pub dir: PathBuf,
    pub stored: Mutex<Vec<ReceivedInstance>>,
    pub ended: Mutex<Vec<(AssociationInfo, AssociationSummary)>>,
    pub started: Mutex<Vec<AssociationInfo>>,
}

impl DirHandler {
    pub fn new(dir: &Path) -> Arc<Self> {
        Arc::new(DirHandler {
            dir: dir.to_owned(),
            ..Default::default()
        })
    }

    pub fn stored_count(&self) -> usize {
        self.stored.lock().unwrap().len()
    }

    pub fn path_of(&self, sop_instance_uid: &str) -> PathBuf {
        self.dir.join(format!("{sop_instance_uid}.dcm"))
    }

    fn write(&self, req: &ReceivedInstance) -> std::io::Result<()> {
        let meta = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(req.sop_class_uid.as_str())
            .media_storage_sop_instance_uid(req.sop_instance_uid.as_str())
            .transfer_syntax(req.transfer_syntax_uid.as_str())
            .build()
            .map_err(std::io::Error::other)?;
        let tmp = self.dir.join(format!(".{}.tmp", req.sop_instance_uid));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&[0u8; 128])?;
        f.write_all(b"DICM")?;
        meta.write(&mut f).map_err(std::io::Error::other)?;
        f.write_all(&req.dataset)?;
        f.sync_all()?;
        std::fs::rename(tmp, self.path_of(&req.sop_instance_uid))
    }
}

impl StoreHandler for DirHandler {
    fn store(&self, req: &ReceivedInstance) -> StoreResponse {
        assert!(
            pulmo_net::valid_uid(&req.sop_instance_uid),
            "the SCP only passes valid UIDs"
        );
        if let Err(e) = self.write(req) {
            return StoreResponse::failure(status::OUT_OF_RESOURCES, format!("cannot write: {e}"));
        }
        self.stored.lock().unwrap().push(ReceivedInstance {
            dataset: Vec::new(),
            ..req.clone()
        });
        StoreResponse::success()
    }

    fn association_started(&self, info: &AssociationInfo) {
        self.started.lock().unwrap().push(info.clone());
    }

    fn association_ended(&self, info: &AssociationInfo, summary: &AssociationSummary) {
        self.ended.lock().unwrap().push((info.clone(), summary.clone()));
    }
}

/// Our SCP running on 127.0.0.1:<free port>.
pub struct Scp {
    pub port: u16,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), NetError>>,
}

impl Scp {
    pub async fn start(policy: NodePolicy, handler: Arc<dyn StoreHandler>) -> Scp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(pulmo_net::serve(listener, Arc::new(policy), handler, rx));
        Scp {
            port: addr.port(),
            stop,
            task,
        }
    }

    /// Requests shutdown and waits for `serve` to return.
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("serve returned")
            .unwrap()
            .unwrap();
    }

    pub fn request_stop(&self) {
        self.stop.send(true).unwrap();
    }

    pub async fn join(self) -> Result<(), NetError> {
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("serve returned")
            .unwrap()
    }
}

/// Test policy: our AE is PULMO, short timeouts so that misbehaving clients end quickly.
pub fn test_policy() -> NodePolicy {
    NodePolicy {
        read_timeout: Duration::from_secs(5),
        write_timeout: Duration::from_secs(5),
        shutdown_grace: Duration::from_secs(5),
        ..NodePolicy::default()
    }
}

/// The result of one DCMTK tool run.
pub struct Run {
    pub ok: bool,
    pub log: String,
}

/// Runs a DCMTK tool to completion (off the async threads), with TCP_NODELAY=1 as the
/// benchmarks use; stdout and stderr are merged into `log`.
pub async fn dcmtk(program: &str, args: Vec<String>) -> Run {
    let program = program.to_string();
    tokio::task::spawn_blocking(move || {
        let out: Output = Command::new(&program)
            .args(&args)
            .env("TCP_NODELAY", "1")
            .output()
            .expect("run DCMTK tool");
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Run {
            ok: out.status.success(),
            log,
        }
    })
    .await
    .unwrap()
}

pub fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub async fn echoscu(port: u16, extra: &[&str]) -> Run {
    let mut a = args(&["-aec", "PULMO"]);
    a.extend(args(extra));
    a.extend(args(&["127.0.0.1", &port.to_string()]));
    dcmtk("echoscu", a).await
}

/// `echoscu` until it succeeds (a slot freed by a just-closed association may take a moment).
pub async fn echo_eventually(port: u16) -> Run {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let run = echoscu(port, &[]).await;
        if run.ok || Instant::now() > deadline {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn storescu(port: u16, extra: &[&str], files: &[PathBuf]) -> Run {
    let mut a = args(&["-v", "-aec", "PULMO"]);
    a.extend(args(extra));
    a.extend(args(&["127.0.0.1", &port.to_string()]));
    a.extend(files.iter().map(|f| f.display().to_string()));
    dcmtk("storescu", a).await
}

/// A free loopback port for a peer we start (small race between probing and binding).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
pub struct Peer {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Peer {
    /// Starts DCMTK `storescp` with `extra` flags, writing into `dir`, and waits until it listens.
    pub async fn storescp(dir: &Path, extra: &[&str]) -> Peer {
        let port = free_port();
        let log = dir.join(format!("storescp-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("storescp")
            .args(["-v", "-aet", "STORESCP", "-od"])
            .arg(dir)
            .args(extra)
            .arg(port.to_string())
            .env("TCP_NODELAY", "1")
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("start storescp");
        let peer = Peer { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "storescp did not start listening");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        peer
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn target(&self) -> pulmo_net::Peer {
        format!("STORESCP@127.0.0.1:{}", self.port).parse().unwrap()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
