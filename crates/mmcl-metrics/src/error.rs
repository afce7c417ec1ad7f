//! Typed errors of the metrics crate.

use std::path::PathBuf;

/// Everything that can go wrong while computing metrics, rendering tables or writing a report.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// An accuracy matrix does not have the lower-triangular shape the metrics need.
    #[error("invalid accuracy matrix: {0}")]
    InvalidMatrix(String),
    /// An input vector (baseline accuracies, prediction counts, ...) does not fit its matrix.
    #[error("invalid metric input: {0}")]
    InvalidInput(String),
    /// Runs that must agree (one group of seeds) do not.
    #[error("inconsistent runs: {0}")]
    InconsistentRuns(String),
    /// Drawing a plot failed.
    #[error("plotting {path}: {reason}")]
    Plot { path: PathBuf, reason: String },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl MetricsError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MetricsError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = MetricsError> = std::result::Result<T, E>;
