fn main() {
    let lib = pulmo_build::link_libtorch();
    let version = pulmo_build::libtorch_version(&lib).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PULMO_LIBTORCH_VERSION={version}");
}
