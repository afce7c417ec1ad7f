//! One module per subcommand group.
pub mod bench;
pub mod eval;
pub mod gpu;
pub mod manifest;
pub mod media;
pub mod model;
pub mod prep;
pub mod report;
pub mod synth;
pub mod train;
