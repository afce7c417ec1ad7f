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
//! 2-core AMD EPYC (Zen 4, AVX-512) VM shared with other jobs. ms per step (profile: mean
//! of the timed steps; total: median, incl. the SGD update); "other" = candle's own ops
//! (gradient accumulation `zeros + add` per node, linear heads, means, cross-entropy, SGD)
//! plus the fused add+ReLU.
//!
//! | mini (batch 32, width 16)          | conv fwd | conv bwd-in | conv bwd-w | BN f+b | pool f+b | other | total |
//! |------------------------------------|---------:|------------:|-----------:|-------:|---------:|------:|------:|
//! | candle compositions (`composed`)   |        – |           – |          – |      – |        – |   all |  4794 |
//! | im2col + gemm kernels (08:32)      |     77.5 |        63.1 |       76.4 |   35.0 |     11.6 |  42.5 |   303 |
//! | now (09:28, load average 0.7)      |     39.6 |        35.1 |       39.9 |   12.4 |      5.2 |  15.9 |   146 |
//!
//! | scale (now, 09:16, load 1.4-1.7)   | conv fwd | conv bwd-in | conv bwd-w | BN f+b | pool f+b | other | total |
//! |------------------------------------|---------:|------------:|-----------:|-------:|---------:|------:|------:|
//! | tiny (batch 32, width 8)           |      5.9 |         5.3 |        6.8 |    4.0 |     0.75 |   4.0 |  27.6 |
//! | paper (batch 8, 4 frames, width 64)|     1052 |        1108 |       1149 |    109 |       58 |   258 |  3654 |
//!
//! Ratio mmcl / PyTorch 2.15 (`python3 tools/bench/torch_step.py <scale>`, 2 threads, run
//! alternately with `mmcl bench step --scale <scale>`, three pairs per scale, two at paper
//! with `--steps 3 --warmup 1`; 09:26-09:29, load average 0.2-1.4): tiny 0.73-0.87 (mmcl
//! 22.6-23.4 ms vs 27.0-31.9 ms), mini 1.16-1.29 (145.3-152.6 vs 118.1-131.6 ms), paper
//! 1.02-1.05 (3645-3911 vs 3578-3732 ms).
//! Before this round (lead's quiet-machine measurement): tiny 1.6-2.0, mini 2.4, paper 1.34.
//! The candle compositions (`MMCL_KERNELS=composed`, the pre-speed-work step) take 4794 ms
//! per mini step against 146 ms (same minute).
//!
//! Steps of this round, each measured: AVX-512 implicit-GEMM convolutions (forward 1.8x,
//! weight gradient 1.5x, stride-1 input gradient 1.4x the im2col + gemm kernels), the
//! AVX-512 build of the BatchNorm backward (7x), conv + BN as one autograd node (candle's
//! backward `zeros + add` 40 -> 10 ms at mini), and the allocator policy (a third of the
//! page faults).
//!
//! What stands in the way of parity at mini (the worst ratio): convolutions are still ~80%
//! of the step at roughly 50-65% of the FMA peak in the early layers and less in the late,
//! small-map layers (the grid computes a border of invalid positions: up to 4.5x the work on
//! 2x2 maps) and in the stride-2 input gradients, which still run im2col + gemm + col2im
//! (a phase-decomposed grid version measured slower: it needs a kernel that scatters
//! directly); candle's backward still builds
//! `zeros + add` for each block output and shortcut (~9 ms at mini, ~190 ms at paper; a
//! conv + BN + add + ReLU node for the second conv of each block, tried, removed one of them
//! per block but measured no faster: same CPU time per step);
//! the 3x3/2 max pool forward is scalar (argmax with PyTorch's first-maximum tie rule;
//! ReLU output has many exact ties). PyTorch's oneDNN kernels are JIT-specialised per shape.
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
pub mod process;
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
