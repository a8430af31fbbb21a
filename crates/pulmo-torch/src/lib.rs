//! Everything that touches libtorch lives here, so the rest of the workspace builds and tests
//! without it: which devices this process can compute on, choosing one from the configuration
//! (`auto`, `cpu`, `cuda:N`), whole-volume image operations as tensor ops ([`image`]), and the
//! model contract: TorchScript plus a checked manifest ([`model`]), and image registration
//! (affine and local rigid fits, gradients by autograd) ([`register`]).

pub mod image;
pub mod model;
pub mod register;

use serde::Serialize;
pub use tch::{Device, Kind, TchError, Tensor};
use tch::Cuda;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DeviceError {
    #[error("device {0:?} is not one of auto, cpu, cuda, cuda:N")]
    Unknown(String),
    #[error("device {requested} requested but {available} CUDA device(s) are available")]
    CudaUnavailable { requested: String, available: usize },
}

/// What this process's libtorch can compute on.
#[derive(Debug, Clone, Serialize)]
pub struct TorchInfo {
    pub libtorch_version: String,
    pub cuda_available: bool,
    pub cuda_devices: usize,
    pub cudnn_available: bool,
    pub cpu_threads: i32,
}

pub fn torch_info() -> TorchInfo {
    TorchInfo {
        libtorch_version: libtorch_version(),
        cuda_available: Cuda::is_available(),
        cuda_devices: Cuda::device_count().max(0) as usize,
        cudnn_available: Cuda::cudnn_is_available(),
        cpu_threads: tch::get_num_threads(),
    }
}

/// The version of the libtorch this binary was linked against (and finds by rpath).
fn libtorch_version() -> String {
    env!("PULMO_LIBTORCH_VERSION").to_string()
}

/// Parses a configured device name; `auto` is CUDA device 0 when present, else the CPU.
pub fn select_device(name: &str) -> Result<Device, DeviceError> {
    let available = Cuda::device_count().max(0) as usize;
    match name.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => select_cuda(0, name, available),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => select_cuda(i, name, available),
            _ => Err(DeviceError::Unknown(name.to_string())),
        },
    }
}

fn select_cuda(index: usize, name: &str, available: usize) -> Result<Device, DeviceError> {
    if index < available {
        Ok(Device::Cuda(index))
    } else {
        Err(DeviceError::CudaUnavailable { requested: name.to_string(), available })
    }
}

/// Threads libtorch uses for CPU work in this process; 0 keeps libtorch's default (one per core).
pub fn set_cpu_threads(threads: usize) {
    if threads > 0 {
        tch::set_num_threads(i32::try_from(threads).unwrap_or(i32::MAX));
    }
}
