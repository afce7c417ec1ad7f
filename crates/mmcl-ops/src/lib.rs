//! Tensor operations candle 0.11 lacks or is slow at, for training ResNets on spectrograms
//! and video frames: [`conv2d`] with correct gradients for every shape, the ResNet stem's
//! [`max_pool2d`] with a backward pass, [`batch_norm_train`] (optionally fused with ReLU),
//! the conv-BN pair as one node ([`conv2d_batch_norm_train`]) and the residual join
//! [`add_relu`].
//!
//! Every function takes and returns candle [`Tensor`]s and records candle autograd, so
//! `loss.backward()` works through them. On the CPU (f32) they run as candle custom ops
//! with fast kernels (AVX-512 where the CPU has it, else im2col + GEMM through the `gemm`
//! crate; rayon); on other devices they fall back to compositions of candle's own ops, so
//! the same model code runs on CUDA. Errors are candle errors wrapping [`OpsError`] so
//! model code can use `?` directly.
//!
//! `MMCL_KERNELS=composed` (environment, read once; see [`select`]) forces the candle
//! compositions on the CPU too: the training step as it was before these kernels, for
//! before/after timings of whole runs. `mmcl bench step` reports the selection.
//! [`set_simd_kernels`]`(false)` turns the AVX-512 paths off (portable kernels only) for
//! A/B probes. [`alloc::keep_freed_memory`] stops glibc from returning (and page-faulting
//! back) the ~100 MB a step frees; training binaries should call it once.
//!
//! # Kernels (CPU, f32)
//! - conv2d, AVX-512 (runtime-detected; `direct.rs`): implicit GEMM on a zero-bordered,
//!   stride-phase-split copy of a chunk of samples, where every kernel tap reads the input
//!   at one fixed offset from the output position, so no im2col matrix and no packing of
//!   the large operand: forward = 8 x 32 register tiles (weights broadcast), weight gradient
//!   = 4 x 6 tiles of 16-lane dot products, stride-1 input gradient = the forward kernel
//!   with the flipped kernel. Used where the border wastes at most 4.5x the outputs' work
//!   (not 1x1 maps) and not for strided 1x1 shortcuts.
//! - conv2d, portable (and the remaining shapes: strided input gradients, 1x1 maps):
//!   im2col over a zero-bordered copy of each sample, samples batched into one GEMM per
//!   chunk, GEMMs through the `gemm` crate in the operand layouts it packs with contiguous
//!   loads (`examples/gemm_probe.rs`); input gradient = GEMM + col2im.
//! - Both: backward = two custom ops (grad-input, skipped for inputs that need no gradient
//!   such as the network input; grad-weight); the batch is split into one group per rayon
//!   thread with per-group weight-gradient accumulators summed in a fixed order; per-thread
//!   scratch buffers reused across calls.
//! - conv + BatchNorm (+ReLU) ([`conv2d_batch_norm_train`]): both kernels in one candle node,
//!   so candle's backward does not build `zeros + gradient` for the conv output.
//! - BatchNorm (+ReLU): per-channel tasks, statistics in vectorised lane accumulators
//!   combined in f64, one fused normalise/affine/ReLU pass; backward in two sweeps, the ReLU
//!   mask recomputed from x. Built twice (SSE2 baseline and AVX-512, chosen at runtime;
//!   same float operations): the masked backward sums ran scalar in the baseline build.
//! - max pool: argmax recorded in the forward pass, gradient scattered there.
//! - `add_relu`: the residual join in one pass, backward one masked pass.
//!
//! # Where a training step's time goes (`mmcl bench step --profile`)
//! 2-core AMD EPYC VM shared with other jobs (load average 2.3-3.9 during all runs, so
//! absolute times are inflated and noisy). ms per step (profile: mean of the timed steps;
//! total: median, incl. the SGD update); "other" = candle's own ops (gradient accumulation
//! `zeros + add` per node, linear heads, means, cross-entropy) plus the fused add+ReLU.
//! Before: forward 177 ms, backward 1138 ms, not separable per op class.
//!
//! | tiny (batch 32, width 8)    | conv fwd | conv bwd-in | conv bwd-w | BN f+b | pool f+b | other | total |
//! |-----------------------------|---------:|------------:|-----------:|-------:|---------:|------:|------:|
//! | before: candle compositions |        – |           – |          – |      – |        – |   all |  1316 |
//! | first custom ops            |       21 |          16 |         41 |     10 |      1.5 |    28 |   112 |
//! | now                         |       20 |          13 |         19 |    8.8 |      1.3 |   6.5 |    69 |
//!
//! | scale (now)                  | conv fwd | conv bwd-in | conv bwd-w | BN f+b | pool f+b | other | total |
//! |------------------------------|---------:|------------:|-----------:|-------:|---------:|------:|------:|
//! | mini (batch 32, width 16)    |      182 |         129 |        159 |     68 |       18 |    63 |   634 |
//! | paper (batch 8, 4 frames, 64)|     6461 |        4266 |       4687 |    921 |      320 |   854 | 17569 |
//!
//! "Before" is the model's interim composition of candle ops (explicitly padded candle
//! conv2d, max pool as shifted maxima, BN from candle reductions): 8.6-10x slower than
//! PyTorch on a quiet machine and dominated by candle's conv backward. Steps since the
//! first custom ops: batched GEMMs (late layers), gemm-friendly operand layouts (grad-weight
//! packed its operand with strided loads), bounds-free im2col, vectorised BN sums, fused
//! BN+ReLU and add+ReLU, candle's elementwise pool kept single-threaded in the bench.
//!
//! What stands in the way of parity: convolutions are ~85% of the step, and the `gemm`
//! crate reaches about 50-55 GFLOP/s per core here where PyTorch's MKL/oneDNN reaches
//! 85-90 (`examples/gemm_probe.rs` vs `torch.mm`, same minute); candle's backward adds a
//! `zeros_like + add` pass per gradient. Next steps: an own packed AVX2/AVX-512 GEMM
//! micro-kernel or direct 3x3 convolution, and a backward driver that moves the first
//! gradient of a node instead of adding it to zeros.
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

pub mod alloc;
mod bn;
mod conv;
mod conv_bn;
mod direct;
mod fused;
mod pool;
pub mod profile;
pub mod select;
mod util;

pub use bn::{batch_norm_relu_train, batch_norm_train, batch_norm_train_composed};
pub use conv::{conv2d, conv2d_composed, Conv2dConfig};
pub use conv_bn::conv2d_batch_norm_train;
pub use direct::{set_simd_kernels, simd_kernels_active};
pub use fused::add_relu;
pub use pool::{max_pool2d, max_pool2d_composed, MaxPoolConfig};
pub use select::{kernels, Kernels};

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
