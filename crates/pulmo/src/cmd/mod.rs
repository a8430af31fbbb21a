//! One module per subcommand: its clap arguments and its `run`.

pub mod devices;
pub mod echo;
pub mod inspect;
pub mod models;
pub mod phantom;
pub mod send;
pub mod serve;
pub mod status;
