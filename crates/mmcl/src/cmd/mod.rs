//! One module per subcommand group.
pub mod bench;
pub mod media;
pub mod model;
pub mod prep;
pub mod eval;
pub mod train;
pub mod manifest;
pub mod synth;
