//! Build-script helper for every crate whose binaries or tests link libtorch.
//!
//! torch-sys links libtorch dynamically but leaves finding it at run time to LD_LIBRARY_PATH,
//! and the linker's default `--as-needed` drops `libtorch_cuda.so` (nothing references it
//! directly), so CUDA would silently be unavailable. `link_libtorch()` fixes both for the
//! calling package's own targets: an rpath to the libtorch directory, and `torch_cuda` linked
//! with `--no-as-needed` when the installation has it. Cargo applies `rustc-link-arg` only to
//! the package that prints it, hence one tiny build.rs per such package.

use std::path::Path;

/// Reads the libtorch directory that pulmo-torch's build script publishes (links metadata,
/// `DEP_PULMO_TORCH_LIBTORCH_LIB`) or torch-sys's own (`DEP_TCH_LIBTORCH_LIB`).
pub fn link_libtorch() -> String {
    let lib = ["DEP_PULMO_TORCH_LIBTORCH_LIB", "DEP_TCH_LIBTORCH_LIB"]
        .iter()
        .find_map(|k| std::env::var(k).ok())
        .expect("libtorch location from pulmo-torch or torch-sys (add one as a dependency)");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    println!("cargo:libtorch_lib={lib}");
    lib
}

/// The torch wheel's version (e.g. "2.13.0+cu130") from `version.py` beside `lib/`.
pub fn libtorch_version(lib: &str) -> Option<String> {
    let text = std::fs::read_to_string(Path::new(lib).join("../version.py")).ok()?;
    let line = text.lines().find(|l| l.starts_with("__version__"))?;
    Some(line.split(['\'', '"']).nth(1)?.to_string())
}
