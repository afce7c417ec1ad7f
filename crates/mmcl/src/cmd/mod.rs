//! One module per subcommand group.
pub mod media;
pub mod model;
pub mod manifest;
pub mod synth;
