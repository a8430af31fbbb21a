//! Shared helpers for the integration tests: where the real data lives, and a skip notice
//! that says so loudly when it is absent.
#![allow(dead_code)]

pub mod findings;

use std::path::PathBuf;

/// ../shared/data relative to the project root, or None (with a notice) when absent.
pub fn shared_data(sub: &str) -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let path = root.join(sub);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("SKIPPED: {} is absent (real data lives in ../shared/data)", path.display());
        None
    }
}

/// The project's Python (the virtualenv scripts/setup makes), for independent checks.
pub fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
}

pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("the project virtualenv (.venv) exists: run scripts/setup");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a tool installed by scripts/setup: whether it succeeded, and its stdout and stderr.
pub fn output(command: &mut std::process::Command, what: &str) -> (bool, String) {
    let out = command.output().unwrap_or_else(|e| panic!("{what} is installed (run scripts/setup): {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// dciodvfy's error lines for a file (its whole report is printed).
pub fn dciodvfy_errors(path: &std::path::Path) -> Vec<String> {
    let (_, report) = output(std::process::Command::new("dciodvfy").arg(path), "dciodvfy (dicom3tools)");
    println!("dciodvfy report:\n{report}");
    report.lines().filter(|l| l.starts_with("Error")).map(String::from).collect()
}
