//! Crash safety with a real SIGKILL: a child process (this test binary, re-run in child mode)
//! puts instances and prints each acknowledged UID; the parent kills it mid-stream and checks
//! that every acknowledged instance is in the spool and the database, intact.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

const CHILD_ENV: &str = "PULMO_STORE_KILL9_DIR";

fn payload(i: u32) -> Vec<u8> {
    (0..16 * 1024)
        .map(|j| (i as usize * 31 + j) as u8)
        .collect()
}

/// Child mode only: without the environment variable this test does nothing.
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = open(std::path::Path::new(&dir));
    for i in 1.. {
        let inst = Inst::new(
            "1.2.7",
            "1.2.7.1",
            &format!("1.2.7.1.{i}"),
            &payload(i),
            i64::from(i),
        );
        inst.put(&store);
        println!("ACK {i}"); // the "C-STORE-RSP": only after put_instance returned Ok
    }
}

#[test]
fn every_acknowledged_instance_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(i) = line.unwrap().strip_prefix("ACK ") {
            acked.push(i.parse::<u32>().unwrap());
            if acked.len() == 100 {
                child.kill().unwrap(); // SIGKILL, mid-stream
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(acked.len(), 100);

    let store = open(dir.path());
    let study = store.study(&uid("1.2.7")).unwrap().unwrap();
    assert!(study.instance_count >= 100, "{}", study.instance_count);
    for i in acked {
        let row = store
            .instance(&uid(&format!("1.2.7.1.{i}")))
            .unwrap()
            .expect("acked row");
        let bytes = store.spool().read(&row.path).unwrap();
        assert_eq!(bytes, payload(i));
        assert_eq!(row.size_bytes, bytes.len() as u64);
    }
}
