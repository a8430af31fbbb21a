//! `pulmo echo AE@host:port`: is that DICOM peer there and does it talk to us (C-ECHO)?

use std::time::{Duration, Instant};

use pulmo_net::Peer;

#[derive(clap::Args)]
pub struct Args {
    /// The peer, as AE_TITLE@host:port.
    peer: Peer,
    /// Our calling AE title.
    #[arg(long, default_value = "PULMO")]
    calling_ae: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let start = Instant::now();
    runtime.block_on(pulmo_net::echo(&args.peer, &args.calling_ae, Duration::from_secs_f64(args.timeout)))?;
    println!("C-ECHO {}@{}:{} ok in {:.0} ms", args.peer.ae_title, args.peer.host, args.peer.port, start.elapsed().as_secs_f64() * 1e3);
    Ok(())
}
