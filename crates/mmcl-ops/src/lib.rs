//! Tensor operations candle 0.11 lacks or is slow at, for training ResNets on spectrograms
//! and video frames: [`conv2d`] with correct gradients for every shape, the ResNet stem's
//! [`max_pool2d`] with a backward pass, [`batch_norm_train`] (optionally fused with ReLU)
//! and the residual join [`add_relu`].
//!
//! Every function takes and returns candle [`Tensor`]s and records candle autograd, so
//! `loss.backward()` works through them. On the CPU (f32) they run as candle custom ops
//! with fast kernels (im2col + GEMM through the `gemm` crate, rayon); on other devices they
//! fall back to compositions of candle's own ops, so the same model code runs on CUDA.
//! Errors are candle errors wrapping [`OpsError`] so model code can use `?` directly.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use mmcl_ops::{batch_norm_relu_train, conv2d, max_pool2d, Conv2dConfig, MaxPoolConfig};
//! # fn main() -> candle_core::Result<()> {
//! let dev = Device::Cpu;
//! let x = Tensor::randn(0f32, 1.0, (2, 1, 33, 63), &dev)?; // odd, non-square spectrogram
//! let w = Var::randn(0f32, 0.1, (4, 1, 7, 7), &dev)?;
//! let gamma = Var::ones(4, candle_core::DType::F32, &dev)?;
//! let beta = Var::zeros(4, candle_core::DType::F32, &dev)?;
//! let y = conv2d(&x, &w, Conv2dConfig { stride: 2, padding: 3 })?;
//! let (y, batch_mean, batch_var) = batch_norm_relu_train(&y, &gamma, &beta, 1e-5)?;
//! let y = max_pool2d(&y, MaxPoolConfig::default())?; // 3x3, stride 2, padding 1
//! assert_eq!(y.dims(), &[2, 4, 9, 16]);
//! assert_eq!(batch_mean.dims(), &[4]);
//! let grads = y.sum_all()?.backward()?;
//! assert_eq!(grads.get(&w).unwrap().dims(), &[4, 1, 7, 7]);
//! # let _ = batch_var; Ok(()) }
//! ```

mod bn;
mod conv;
mod fused;
mod pool;
pub mod profile;
mod util;

pub use bn::{batch_norm_relu_train, batch_norm_train, batch_norm_train_composed};
pub use conv::{conv2d, conv2d_composed, Conv2dConfig};
pub use fused::add_relu;
pub use pool::{max_pool2d, max_pool2d_composed, MaxPoolConfig};

pub use candle_core::{Result, Tensor};

/// What can go wrong in this crate (returned wrapped in a [`candle_core::Error`]).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{op}: only f32 is supported by the CPU kernel, got {dtype}")]
    DType { op: &'static str, dtype: String },
    #[error("{op}: expected a rank-{expected} tensor, got shape {got:?}")]
    Rank {
        op: &'static str,
        expected: usize,
        got: Vec<usize>,
    },
    #[error("{op}: {msg}")]
    Shape { op: &'static str, msg: String },
    #[error("{op}: invalid configuration: {msg}")]
    Config { op: &'static str, msg: String },
    #[error("{op}: input storage is not contiguous")]
    NotContiguous { op: &'static str },
    #[error("{op}: internal lock poisoned by an earlier panic")]
    Poisoned { op: &'static str },
}

impl From<OpsError> for candle_core::Error {
    fn from(e: OpsError) -> Self {
        candle_core::Error::wrap(e)
    }
}
