//! Links and runs libtorch without LD_LIBRARY_PATH, and says what it sees. On a CUDA machine
//! (PULMO_EXPECT_CUDA=1, set by scripts/gpu-check) CUDA must be visible and compute.

use pulmo_torch::{select_device, torch_info, DeviceError};
use tch::{Device, Kind, Tensor};

/// cargo test puts link search paths on LD_LIBRARY_PATH, which would hide a missing rpath:
/// the real check runs in a child process of this test binary with that variable removed.
#[test]
fn libtorch_runs_without_ld_library_path_and_reports_its_devices() {
    if std::env::var_os("PULMO_TORCH_CHILD").is_some() {
        return check_devices();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "libtorch_runs_without_ld_library_path_and_reports_its_devices", "--nocapture"])
        .env_remove("LD_LIBRARY_PATH")
        .env("PULMO_TORCH_CHILD", "1")
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child without LD_LIBRARY_PATH failed");
}

fn check_devices() {
    assert!(std::env::var_os("LD_LIBRARY_PATH").is_none());
    let info = torch_info();
    println!("libtorch {} | CUDA available: {} ({} device(s)), cuDNN: {} | CPU threads: {}",
        info.libtorch_version, info.cuda_available, info.cuda_devices, info.cudnn_available, info.cpu_threads);
    assert!(info.libtorch_version.starts_with("2.13"), "{}", info.libtorch_version);
    let x = Tensor::arange(10, (Kind::Float, Device::Cpu));
    assert_eq!(x.sum(Kind::Float).double_value(&[]), 45.0);
    if std::env::var("PULMO_EXPECT_CUDA").as_deref() == Ok("1") {
        assert!(info.cuda_available, "CUDA expected on this machine but libtorch does not see it");
        let y = Tensor::ones([1024, 1024], (Kind::Float, Device::Cuda(0)));
        assert_eq!(y.matmul(&y).double_value(&[0, 0]), 1024.0);
    }
}

#[test]
fn device_names_parse() {
    assert_eq!(select_device("cpu"), Ok(Device::Cpu));
    assert!(matches!(select_device("gpu"), Err(DeviceError::Unknown(_))));
    assert!(matches!(select_device("cuda:99"), Err(DeviceError::CudaUnavailable { .. })));
    assert!(select_device("auto").is_ok());
}
