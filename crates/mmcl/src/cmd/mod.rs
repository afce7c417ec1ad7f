//! One module per subcommand group.
pub mod media;
pub mod model;
