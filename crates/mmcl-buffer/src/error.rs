//! The crate's error type.
use std::path::PathBuf;

/// Errors from the replay buffer: invalid arguments, inconsistent samples, bad state files.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// An argument was out of range (capacity 0, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A sample does not fit the buffer's other samples or is internally inconsistent.
    #[error("bad sample: {0}")]
    BadSample(String),
    /// Reading or writing a state file failed.
    #[error("buffer state {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A state file is malformed or does not match.
    #[error("buffer state {path}: {reason}")]
    State { path: PathBuf, reason: String },
    /// An error from candle while building tensors.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, BufferError>;
