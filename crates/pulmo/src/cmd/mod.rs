//! One module per subcommand: its clap arguments and its `run`.

pub mod analyze;
pub mod devices;
pub mod echo;
pub mod eval;
pub mod inspect;
pub mod models;
pub mod phantom;
pub mod send;
pub mod serve;
pub mod status;
