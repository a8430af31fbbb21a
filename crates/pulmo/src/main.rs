//! pulmo: a DICOM node that finds, measures and tracks lung nodules in chest CT.
//!
//! This binary wires the library crates into subcommands; each subcommand lives in its own
//! module under `cmd/` and owns its arguments.

mod cmd;
mod config;
mod eval;
mod logging;
mod node;
mod outputs;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "pulmo", version, about = "Lung nodule AI node for PACS: DICOM in, findings out")]
struct Cli {
    /// Log output: `human` for terminals, `json` (one object a line) for services.
    #[arg(long, global = true, value_enum, default_value_t = logging::Format::Human)]
    log_format: logging::Format,
    /// More log detail (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the DICOM node: receive studies, store them durably, queue complete studies.
    Serve(cmd::serve::Args),
    /// Check a DICOM peer with C-ECHO.
    Echo(cmd::echo::Args),
    /// Send DICOM files to a peer (C-STORE, one association).
    Send(cmd::send::Args),
    /// What the node holds: studies, jobs, exports, recent associations.
    Status(cmd::status::Args),
    /// Analyse one CT series from files: findings.json and nodule meshes, with a summary.
    Analyze(cmd::analyze::Args),
    /// Evaluate against known truth: a phantom set and the real series; writes report.md.
    Eval(cmd::eval::Args),
    /// List the DICOM series under a folder or files: UIDs, geometry, syntaxes, problems.
    Inspect(cmd::inspect::Args),
    /// Generate a synthetic chest CT study (or follow-up, or insertion) with exact truth.
    Phantom(cmd::phantom::Args),
    /// Show the libtorch version and the devices pulmo can compute on.
    Devices(cmd::devices::Args),
    /// List the installed models and their manifests; --check loads each one.
    Models(cmd::models::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format, cli.verbose);
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(args),
        Command::Echo(args) => cmd::echo::run(args),
        Command::Send(args) => cmd::send::run(args),
        Command::Status(args) => cmd::status::run(args),
        Command::Analyze(args) => cmd::analyze::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Phantom(args) => cmd::phantom::run(args),
        Command::Devices(args) => cmd::devices::run(args),
        Command::Models(args) => cmd::models::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, "a: b: c", leaving out a cause its parent's message already
/// quotes (the library errors put their source in their own message too).
fn report(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    let mut parent = text.clone();
    for cause in e.chain().skip(1) {
        let message = cause.to_string();
        if !parent.ends_with(&message) {
            text = format!("{text}: {message}");
        }
        parent = message;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::report;

    #[test]
    fn report_names_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let quoted = anyhow::Error::new(io).context("models/x.toml: cannot read: gone").context("loading the models");
        assert_eq!(report(&quoted), "loading the models: models/x.toml: cannot read: gone");
        let plain = anyhow::anyhow!("root").context("middle").context("top");
        assert_eq!(report(&plain), "top: middle: root");
    }
}
