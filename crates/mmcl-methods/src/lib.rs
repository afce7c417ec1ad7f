//! Continual-learning methods behind one trait: SGD, JOINT, ER and SAMM, with their
//! inference modes.
//!
//! A method owns its own state (replay memory, temperatures) and is handed the network and
//! optimiser ([`Net`]) on every call; the scheduler (`mmcl-scheduler`) drives it through
//! [`Method::begin_task`], [`Method::observe`], [`Method::end_task`] and
//! [`Method::predict`]. To add a method, implement [`Method`] and add a [`MethodKind`].
//!
//! ER's and SAMM's replay memory is an [`mmcl_buffer::ReplayBuffer`] of
//! [`mmcl_buffer::MemoryItem`]s ([`memory`]: the loader's compact samples themselves, shared
//! with the batch, selection policy from [`MethodConfig::buffer_policy`], reservoir by default);
//! its checkpoint is mmcl-buffer's own file, generator state included.
//!
//! ```
//! use mmcl_methods::{build, InferenceMode, MethodConfig, MethodKind};
//! use mmcl_model::Modality;
//! let samm = build(&MethodConfig::new(MethodKind::Samm, 500), Modality::AudioVisual).unwrap();
//! assert_eq!(samm.modes(), vec![InferenceMode::Av, InferenceMode::Audio, InferenceMode::Visual, InferenceMode::Ensemble]);
//! // SAMM needs both modalities.
//! assert!(build(&MethodConfig::new(MethodKind::Samm, 500), Modality::Audio).is_err());
//! // A replay method needs a buffer.
//! assert!(build(&MethodConfig::new(MethodKind::Er, 0), Modality::AudioVisual).is_err());
//! ```

use std::path::{Path, PathBuf};

pub mod config;
pub mod er;
pub mod finetune;
pub mod memory;
pub mod method;
pub mod mode;
pub mod optim;
pub mod samm;

pub use config::{AlignOn, Calibration, MethodConfig, MethodKind, OptimConfig, SammConfig};
pub use memory::Memory;
pub use method::{compact_tensors, Method, Net, StepEnv, TrainBatch};
pub use mode::InferenceMode;
pub use optim::Optimizer;
pub use samm::{samm_step, ReplayBatch, SammStep};

use mmcl_model::Modality;

/// Errors of the methods.
#[derive(Debug, thiserror::Error)]
pub enum MethodError {
    #[error("loss is not finite ({0}): training diverged; lower the learning rate")]
    NonFinite(f32),
    /// Outputs a method computes besides the loss (e.g. SAMM's logits for the temperature
    /// fit) are not finite: the network has diverged.
    #[error("{0} are not finite: training diverged; lower the learning rate")]
    NonFiniteOutput(String),
    #[error("method config: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: bad method state: {reason}")]
    State { path: PathBuf, reason: String },
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    #[error(transparent)]
    Model(#[from] mmcl_model::ModelError),
    #[error(transparent)]
    Loss(#[from] mmcl_losses::LossError),
    #[error(transparent)]
    Data(#[from] mmcl_data::error::CacheError),
    #[error(transparent)]
    Buffer(#[from] mmcl_buffer::BufferError),
}

pub type Result<T> = std::result::Result<T, MethodError>;

/// Construct the method `cfg` describes for a network of `modality`.
pub fn build(cfg: &MethodConfig, modality: Modality) -> Result<Box<dyn Method>> {
    if cfg.kind.uses_buffer() && cfg.minibatch == 0 {
        return Err(MethodError::Config("minibatch must be positive".into()));
    }
    Ok(match cfg.kind {
        MethodKind::Sgd | MethodKind::Joint => Box::new(finetune::FineTune::new(cfg.kind)),
        MethodKind::Er => Box::new(er::Er::new(
            cfg.buffer_size,
            cfg.buffer_policy,
            cfg.minibatch,
        )?),
        MethodKind::Samm => Box::new(samm::Samm::new(
            cfg.samm,
            cfg.buffer_size,
            cfg.buffer_policy,
            cfg.minibatch,
            modality,
        )?),
    })
}

/// Write a file atomically and durably (mmcl-io's shared writer).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    mmcl_io::write_atomic(path, bytes).map_err(|e| MethodError::Io {
        path: path.to_owned(),
        source: e,
    })
}
