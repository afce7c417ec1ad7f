//! Continual-learning scenarios (Seq, Dom, GCIL) and the train/eval loop.
//!
//! - [`scenario`]: which samples and targets each task has (pure index logic).
//! - [`gcil`]: the generalised class-incremental stream sampler (Mi et al. 2020).
//! - [`results`]: the `results.json` schema every run writes and the report reads, with its
//!   [`provenance`]; [`metrics_log`]: the per-step `metrics.jsonl`.
//!
//! ```
//! use mmcl_scheduler::scenario::{build, SampleLabels, ScenarioConfig};
//! let train: Vec<SampleLabels> = (0..100u32).map(|c| SampleLabels { label: c, super_label: c / 20 }).collect();
//! let seq = build(&ScenarioConfig::seq_paper(), &train, &train).unwrap();
//! assert_eq!(seq.tasks.len(), 10);
//! assert_eq!(seq.tasks[3].classes, (30..40).collect::<Vec<u32>>());
//! ```

use std::path::{Path, PathBuf};

pub mod bench;
pub mod checkpoint;
pub mod device;
pub mod experiment;
pub mod gcil;
pub mod metrics_log;
pub mod missing;
mod prefetch;
pub mod provenance;
pub mod results;
pub mod robustness;
pub mod run;
pub mod scenario;

pub use experiment::{DataSection, ExperimentConfig, ModelSection, TrainSection};
pub use results::RunResults;
pub use run::{eval_checkpoint, resume, resume_with, train, ResumeOverrides, RunDir, RunOptions};

/// Errors of the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("scenario: {0}")]
    Scenario(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("config: {0}")]
    Config(String),
    /// A device name that does not parse, or a device that cannot be opened.
    #[error("{0}")]
    Device(String),
    #[error("loss became {value} at task {task}, epoch {epoch}, step {step}: training diverged (lower optim.lr); the last checkpoint is kept")]
    Diverged {
        task: usize,
        epoch: usize,
        step: usize,
        value: f32,
    },
    /// The finite-state guard found non-finite values (or a method's step found non-finite
    /// outputs): nothing of this state was saved.
    #[error("{what} at task {task} (epoch {epoch}, step {step}): training diverged, and this state was not saved (lower optim.lr: `mmcl train --resume RUN --lr LR`); the last finite checkpoint is kept")]
    NonFiniteState {
        task: usize,
        epoch: usize,
        step: usize,
        what: String,
    },
    /// A checkpoint that is incomplete, corrupt (checksum mismatch) or cannot be found.
    #[error("{}: {reason}", path.display())]
    Checkpoint { path: PathBuf, reason: String },
    /// Another process writes into the run folder.
    #[error(transparent)]
    Lock(#[from] mmcl_io::LockError),
    #[error("stopped on request at task {task}, epoch {epoch}, step {step}")]
    Interrupted {
        task: usize,
        epoch: usize,
        step: usize,
    },
    #[error(transparent)]
    Method(#[from] mmcl_methods::MethodError),
    #[error(transparent)]
    Model(#[from] mmcl_model::ModelError),
    #[error(transparent)]
    Data(#[from] mmcl_data::error::CacheError),
    #[error(transparent)]
    Loss(#[from] mmcl_losses::LossError),
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

/// SHA-256 of `bytes`, lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Write a file atomically and durably (mmcl-io's shared writer).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SchedulerError> {
    mmcl_io::write_atomic(path, bytes).map_err(|e| SchedulerError::Io {
        path: path.to_owned(),
        source: e,
    })
}
