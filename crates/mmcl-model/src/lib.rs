//! The audio-visual classifier of SAMM / MMCL on candle, with checkpoints that are
//! interchangeable with the reference PyTorch implementation's state_dict.
//!
//! Two ResNet-18 encoders (audio: 1 channel spectrogram; visual: frames folded into the
//! batch and averaged over time and space), a fusion module (FiLM by default, sum, concat,
//! gated, or a unimodal fused head) and three heads: audio (`fusion_module.x_out`), visual
//! (`fusion_module.y_out`) and fused. A unimodal network holds and runs only its own encoder
//! and the heads on it (its own and the fused one), with the same initial values as the
//! two-encoder network of the same seed; it still loads the older two-encoder checkpoints.
//! Initialisation follows the reference (kaiming-normal fan-out convs, BN weight ~
//! N(1, 0.02), PyTorch-default linears) drawn from our own seeded RNG. BatchNorm running
//! statistics are state, never trainable variables.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use mmcl_model::{AvNet, AvNetConfig, Fusion, Modality};
//!
//! let cfg = AvNetConfig { width: 2, classes: 5, fusion: Fusion::Film, modality: Modality::AudioVisual, frames: 2 };
//! let net = AvNet::seeded(cfg, &Device::Cpu, 0)?;
//! let audio = Tensor::zeros((2, 1, 33, 63), candle_core::DType::F32, &Device::Cpu)?;
//! let video = Tensor::zeros((2, 3, 2, 16, 16), candle_core::DType::F32, &Device::Cpu)?;
//! let out = net.forward_t(&audio, &video, false)?;
//! assert_eq!(out.av_logits.dims(), &[2, 5]);
//! // Parameters for the optimiser; BN running stats are not among them.
//! let _vars = net.trainable_vars();
//! let dir = tempfile::tempdir().unwrap();
//! net.save(dir.path().join("w.safetensors"))?;
//! let again = AvNet::from_checkpoint(dir.path().join("w.safetensors"), &Device::Cpu)?;
//! # Ok::<(), mmcl_model::ModelError>(())
//! ```
mod avnet;
mod batch_norm;
mod checkpoint;
mod error;
mod fusion;
pub mod golden;
mod init;
mod layers;
mod ops;
pub mod optim;
mod resnet;

pub use avnet::{AvNet, AvNetConfig, AvOutput};
pub use batch_norm::{RunningStats, BN_EPS, BN_MOMENTUM};
pub use checkpoint::{infer_config, infer_config_with};
pub use error::{ModelError, Result};
pub use fusion::{Fusion, Modality};
