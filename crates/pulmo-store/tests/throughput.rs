//! Ingest throughput of `put_instance` with full durability (file fsync, directory fsync, WAL
//! fsync), 512 KB instances. Ignored by default; run with
//! `cargo test -p pulmo-store --release --test throughput -- --ignored --nocapture`
//! (PULMO_BENCH_DIR picks the file system; default: the system temp dir).

mod common;

use std::thread;
use std::time::Instant;

use common::*;
use pulmo_store::Outcome;

const SIZE: usize = 512 * 1024;
const PER_THREAD: usize = 400;

fn run(threads: usize) {
    let base = std::env::var_os("PULMO_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).unwrap();
    let store = open(dir.path());
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|n| {
            let store = store.clone();
            thread::spawn(move || {
                let mut bytes = vec![0u8; SIZE];
                for i in 0..PER_THREAD {
                    bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
                    let sop = format!("1.2.{}.{}", n + 1, i + 1);
                    let inst =
                        Inst::new("1.2.9", &format!("1.2.9.{}", n + 1), &sop, &bytes, i as i64);
                    assert_eq!(inst.put(&store), Outcome::Stored);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let n = threads * PER_THREAD;
    println!(
        "{threads} thread(s): {n} instances of 512 KB in {secs:.2} s = {:.0} instances/s, {:.0} MB/s",
        n as f64 / secs,
        (n * SIZE) as f64 / secs / 1e6
    );
}

#[test]
#[ignore = "benchmark: writes 2.6 GB in all; run it on purpose"]
fn put_instance_throughput_512k() {
    for threads in [1, 4, 8] {
        run(threads);
    }
}
