//! One module per subcommand: its clap arguments and its `run`.

pub mod devices;
pub mod inspect;
pub mod phantom;
