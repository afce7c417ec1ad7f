//! Typed errors of the model crate.
use std::path::PathBuf;

/// Everything that can go wrong building, running or (de)serialising the model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A tensor operation failed (shape bug, device problem).
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// An input tensor does not have the shape the network expects.
    #[error("bad input {name}: {reason}")]
    BadInput { name: &'static str, reason: String },
    /// The configuration is unusable (width 0, no classes, ...).
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// A checkpoint file could not be read or written.
    #[error("checkpoint {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint file is not a valid safetensors file or does not match the network.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ModelError>;
