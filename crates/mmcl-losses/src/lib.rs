//! Losses and calibration for SAMM (multimodal continual learning): cross-entropy, the
//! consistency loss with dynamic logit selection, relational knowledge distillation (RKD),
//! SmoothL1, expected calibration error, temperature scaling and the calibrated ensemble.
//!
//! Every loss takes and returns candle [`Tensor`]s and is differentiable with candle's autograd
//! (f32 or f64). Each is checked against PyTorch by golden fixtures written by
//! `tools/golden/losses.py` (`tests/golden.rs`).
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use mmcl_losses::{samm_loss, HeadLogits, SammBatch, SammLossConfig};
//!
//! let dev = Device::Cpu;
//! let logits = |s: f32| Tensor::new(&[[s, 0.5, -1.0], [0.2, -s, 1.0], [1.0, 0.0, s]], &dev);
//! let heads = HeadLogits::new(logits(1.0)?, logits(2.0)?, logits(0.5)?)?;
//! let labels = Tensor::new(&[0u32, 2, 1], &dev)?;
//! let batch = SammBatch { logits: &heads, labels: &labels, align: None };
//! let stored = heads.detach();
//! let loss = samm_loss(&SammLossConfig::default(), &batch, Some((&batch, &stored)))?;
//! assert!(loss.total.to_scalar::<f32>()? > 0.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod calibration;
pub mod classification;
pub mod error;
pub mod regression;
pub mod rkd;
pub mod samm;
pub mod selection;

pub use calibration::{
    calibrated_ensemble, ece, ece_from_confidences, ece_from_logits, ensemble_weights,
    fit_head_temperatures, fit_temperature, fit_temperature_with, ConfidenceBins, HeadTemperatures,
    TemperatureFit, TemperatureSolver, ECE_BINS,
};
pub use classification::{
    cross_entropy, log_softmax, predictions, softmax, true_class_probability,
};
pub use error::{LossError, Result};
pub use regression::{consistency_mse, smooth_l1};
pub use rkd::{rkd_angle, rkd_distance, RkdMean};
pub use samm::{
    rkd_term, samm_loss, supervised_terms, ConsistencyTarget, SammBatch, SammLoss, SammLossConfig,
};
pub use selection::{select_targets, Head, HeadLogits, Selection};
