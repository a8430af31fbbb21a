//! `pulmo devices`: which libtorch is linked and what it can compute on.

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of a line of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let info = pulmo_torch::torch_info();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!(
            "libtorch {} | CUDA: {} ({} device(s)) | cuDNN: {} | CPU threads: {}",
            info.libtorch_version,
            if info.cuda_available { "yes" } else { "no" },
            info.cuda_devices,
            if info.cudnn_available { "yes" } else { "no" },
            info.cpu_threads
        );
    }
    Ok(())
}
