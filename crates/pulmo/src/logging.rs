//! Log set-up: `tracing` to stderr, human-readable or JSON lines, level from -v or RUST_LOG.
//! Patient names and IDs are never logged at info level by any module.

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

pub fn init(format: Format, verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        Format::Human => builder.with_target(false).init(),
        Format::Json => builder.json().flatten_event(true).init(),
    }
}
