//! 2-d convolution (no bias, groups 1, dilation 1) with correct gradients for every shape.
//!
//! CPU: im2col + GEMM (the `gemm` crate) as candle custom ops; the backward pass is itself
//! two custom ops (grad-input = GEMM + col2im, grad-weight = GEMM over im2col columns).
//!
//! Other devices: candle's own `conv2d` on an input that is explicitly zero-padded and then
//! narrowed to exactly the extent the kernel visits, `(out - 1) * stride + k`. With that
//! input candle's backward (a `conv_transpose2d` with `output_padding` 0) produces a gradient
//! of the right shape; candle 0.11 fails with "shape mismatch in add" when it must infer an
//! output padding itself (stride 2 and H, W of different parity). The narrowed-off rows and
//! columns are never read by the convolution, so their gradient is zero, as `narrow`'s
//! backward gives.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::util::{dims4, f32_slice, gemm_rm, put_scratch, take_scratch, threads, Mat, SendPtr};
use crate::OpsError;

/// Stride and zero padding (same on both axes) of a [`conv2d`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dConfig {
    pub stride: usize,
    pub padding: usize,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Self {
            stride: 1,
            padding: 0,
        }
    }
}

/// All sizes of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geom {
    pub fn new(x: &Shape, w: &Shape, cfg: Conv2dConfig) -> Result<Self> {
        let (n, cin, h, wd) = dims4(x, "conv2d")?;
        let (cout, cin_w, kh, kw) = dims4(w, "conv2d")?;
        if cin != cin_w {
            return Err(OpsError::Shape {
                op: "conv2d",
                msg: format!("input has {cin} channels but the kernel expects {cin_w}"),
            }
            .into());
        }
        if cfg.stride == 0 {
            return Err(OpsError::Config {
                op: "conv2d",
                msg: "stride must be at least 1".into(),
            }
            .into());
        }
        if h + 2 * cfg.padding < kh || wd + 2 * cfg.padding < kw {
            return Err(OpsError::Shape {
                op: "conv2d",
                msg: format!(
                    "padded input {h}x{wd} (+2*{}) smaller than kernel {kh}x{kw}",
                    cfg.padding
                ),
            }
            .into());
        }
        let oh = (h + 2 * cfg.padding - kh) / cfg.stride + 1;
        let ow = (wd + 2 * cfg.padding - kw) / cfg.stride + 1;
        Ok(Self {
            n,
            cin,
            h,
            w: wd,
            cout,
            kh,
            kw,
            stride: cfg.stride,
            pad: cfg.padding,
            oh,
            ow,
        })
    }
    /// Rows of the im2col matrix (= GEMM depth of the forward pass).
    pub fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }
    /// Output pixels per sample.
    pub fn p(&self) -> usize {
        self.oh * self.ow
    }
    pub fn in_len(&self) -> usize {
        self.cin * self.h * self.w
    }
    pub fn out_len(&self) -> usize {
        self.cout * self.p()
    }
    /// 1x1, stride 1, no padding: the im2col matrix is the input itself.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }
    /// Output indices `lo..hi` along one axis whose input index `o * s + k - pad` is in range.
    fn valid_range(&self, k_off: usize, in_len: usize, out_len: usize) -> (usize, usize) {
        let s = self.stride;
        let lo = if self.pad > k_off {
            (self.pad - k_off).div_ceil(s)
        } else {
            0
        };
        let hi = if in_len + self.pad > k_off {
            ((in_len - 1 + self.pad - k_off) / s + 1).min(out_len)
        } else {
            0
        };
        (lo.min(hi), hi)
    }
    /// Whether to parallelise over the batch (each sample's GEMM single-threaded) or to run
    /// samples one after another with gemm's own parallelism.
    fn batch_parallel(&self) -> bool {
        self.n >= threads()
    }
}

/// im2col of one sample: `col[(c*kh+ki)*kw+kj][oh*OW+ow] = x[c][oh*s+ki-pad][ow*s+kj-pad]` (0 outside).
pub(crate) fn im2col(x: &[f32], g: &Geom, col: &mut [f32]) {
    let (p, s) = (g.p(), g.stride);
    for c in 0..g.cin {
        let xc = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let (oh_lo, oh_hi) = g.valid_range(ki, g.h, g.oh);
            for kj in 0..g.kw {
                let row = (c * g.kh + ki) * g.kw + kj;
                let dst = &mut col[row * p..(row + 1) * p];
                let (ow_lo, ow_hi) = g.valid_range(kj, g.w, g.ow);
                dst[..oh_lo * g.ow].fill(0.0);
                dst[oh_hi * g.ow..].fill(0.0);
                for oh in oh_lo..oh_hi {
                    let ih = oh * s + ki - g.pad;
                    let src = &xc[ih * g.w..(ih + 1) * g.w];
                    let d = &mut dst[oh * g.ow..(oh + 1) * g.ow];
                    d[..ow_lo].fill(0.0);
                    d[ow_hi..].fill(0.0);
                    if ow_lo < ow_hi {
                        let iw0 = ow_lo * s + kj - g.pad;
                        if s == 1 {
                            d[ow_lo..ow_hi].copy_from_slice(&src[iw0..iw0 + (ow_hi - ow_lo)]);
                        } else {
                            for (o, v) in d[ow_lo..ow_hi].iter_mut().enumerate() {
                                *v = src[iw0 + o * s];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// col2im of one sample, the adjoint of [`im2col`]: `dx` is overwritten.
pub(crate) fn col2im(col: &[f32], g: &Geom, dx: &mut [f32]) {
    let (p, s) = (g.p(), g.stride);
    dx.fill(0.0);
    for c in 0..g.cin {
        let xc = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let (oh_lo, oh_hi) = g.valid_range(ki, g.h, g.oh);
            for kj in 0..g.kw {
                let row = (c * g.kh + ki) * g.kw + kj;
                let src = &col[row * p..(row + 1) * p];
                let (ow_lo, ow_hi) = g.valid_range(kj, g.w, g.ow);
                if ow_lo >= ow_hi {
                    continue;
                }
                for oh in oh_lo..oh_hi {
                    let ih = oh * s + ki - g.pad;
                    let d = &mut xc[ih * g.w..(ih + 1) * g.w];
                    let sr = &src[oh * g.ow + ow_lo..oh * g.ow + ow_hi];
                    let iw0 = ow_lo * s + kj - g.pad;
                    if s == 1 {
                        for (a, b) in d[iw0..iw0 + sr.len()].iter_mut().zip(sr) {
                            *a += *b;
                        }
                    } else {
                        for (o, b) in sr.iter().enumerate() {
                            d[iw0 + o * s] += *b;
                        }
                    }
                }
            }
        }
    }
}

/// Runs `f(sample, par)` for every sample: in parallel over the batch, or sequentially with
/// `par = true` (the GEMMs then use gemm's own threads) when the batch is smaller than the
/// thread count.
fn for_each_sample(g: &Geom, f: impl Fn(usize, bool) + Sync) {
    if g.batch_parallel() {
        (0..g.n).into_par_iter().for_each(|i| f(i, false));
    } else {
        (0..g.n).for_each(|i| f(i, true));
    }
}

/// Forward pass on CPU: `y[n] = W[cout x K] * im2col(x[n])`.
pub(crate) fn conv_fwd_cpu(x: &[f32], w: &[f32], g: &Geom) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let mut y = vec![0f32; g.n * g.out_len()];
    let yp = SendPtr(y.as_mut_ptr());
    for_each_sample(g, |i, par| {
        // SAFETY: each sample writes its own disjoint output block.
        let yi =
            unsafe { std::slice::from_raw_parts_mut({ yp }.0.add(i * g.out_len()), g.out_len()) };
        let xi = &x[i * g.in_len()..(i + 1) * g.in_len()];
        if g.is_pointwise() {
            gemm_rm(
                g.cout,
                p,
                k,
                yi,
                false,
                Mat::row_major(w, k),
                Mat::row_major(xi, p),
                par,
            );
        } else {
            let mut col = take_scratch(k * p);
            im2col(xi, g, &mut col);
            gemm_rm(
                g.cout,
                p,
                k,
                yi,
                false,
                Mat::row_major(w, k),
                Mat::row_major(&col, p),
                par,
            );
            put_scratch(col);
        }
    });
    y
}

/// Gradient w.r.t. the input on CPU: `dx[n] = col2im(W^T * dy[n])`.
pub(crate) fn conv_bwd_input_cpu(dy: &[f32], w: &[f32], g: &Geom) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let mut dx = vec![0f32; g.n * g.in_len()];
    let dxp = SendPtr(dx.as_mut_ptr());
    for_each_sample(g, |i, par| {
        // SAFETY: each sample writes its own disjoint block.
        let dxi =
            unsafe { std::slice::from_raw_parts_mut({ dxp }.0.add(i * g.in_len()), g.in_len()) };
        let dyi = &dy[i * g.out_len()..(i + 1) * g.out_len()];
        if g.is_pointwise() {
            gemm_rm(
                k,
                p,
                g.cout,
                dxi,
                false,
                Mat::transposed(w, k),
                Mat::row_major(dyi, p),
                par,
            );
        } else {
            let mut col = take_scratch(k * p);
            gemm_rm(
                k,
                p,
                g.cout,
                &mut col,
                false,
                Mat::transposed(w, k),
                Mat::row_major(dyi, p),
                par,
            );
            col2im(&col, g, dxi);
            put_scratch(col);
        }
    });
    dx
}

/// Gradient w.r.t. the weight on CPU: `dW = sum_n dy[n] * im2col(x[n])^T`.
pub(crate) fn conv_bwd_weight_cpu(x: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let wlen = g.cout * k;
    // One accumulator per chunk of the batch; each chunk runs its samples in order.
    let accumulate = |acc: &mut [f32], range: std::ops::Range<usize>, par: bool| {
        let mut col = if g.is_pointwise() {
            Vec::new()
        } else {
            take_scratch(k * p)
        };
        for (j, i) in range.enumerate() {
            let xi = &x[i * g.in_len()..(i + 1) * g.in_len()];
            let dyi = &dy[i * g.out_len()..(i + 1) * g.out_len()];
            let cols = if g.is_pointwise() {
                xi
            } else {
                im2col(xi, g, &mut col);
                &col[..k * p]
            };
            gemm_rm(
                g.cout,
                k,
                p,
                acc,
                j > 0,
                Mat::row_major(dyi, p),
                Mat::transposed(cols, p),
                par,
            );
        }
        if !g.is_pointwise() {
            put_scratch(col);
        }
    };
    if !g.batch_parallel() {
        let mut dw = vec![0f32; wlen];
        accumulate(&mut dw, 0..g.n, true);
        return dw;
    }
    let chunks = threads().min(g.n);
    let per = g.n.div_ceil(chunks);
    let mut accs = vec![0f32; wlen * chunks];
    accs.par_chunks_mut(wlen).enumerate().for_each(|(c, acc)| {
        let lo = (c * per).min(g.n);
        let hi = ((c + 1) * per).min(g.n);
        if lo < hi {
            accumulate(acc, lo..hi, false);
        }
    });
    let (first, rest) = accs.split_at_mut(wlen);
    for r in rest.chunks(wlen) {
        for (a, b) in first.iter_mut().zip(r) {
            *a += *b;
        }
    }
    accs.truncate(wlen);
    accs
}

/// conv2d forward as a candle custom op (arg 1 = input, arg 2 = weight).
struct Conv2dOp {
    cfg: Conv2dConfig,
}

/// grad-input (arg 1 = dy, arg 2 = weight) for a known geometry; no backward of its own.
struct Conv2dBwdInputOp {
    g: Geom,
}

/// grad-weight (arg 1 = input, arg 2 = dy) for a known geometry; no backward of its own.
struct Conv2dBwdWeightOp {
    g: Geom,
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "mmcl-conv2d"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geom::new(l1.shape(), l2.shape(), self.cfg)?;
        let x = f32_slice(s1, l1, "conv2d")?;
        let w = f32_slice(s2, l2, "conv2d")?;
        let y = conv_fwd_cpu(x, w, &g);
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.cout, g.oh, g.ow))))
    }
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = Geom::new(x.shape(), w.shape(), self.cfg)?;
        let dy = dy.contiguous()?;
        // The network input needs no gradient: skip the (large) grad-input GEMM for it.
        let dx = if x.track_op() {
            Some(dy.apply_op2_no_bwd(w, &Conv2dBwdInputOp { g })?)
        } else {
            None
        };
        let dw = if w.track_op() {
            Some(x.apply_op2_no_bwd(&dy, &Conv2dBwdWeightOp { g })?)
        } else {
            None
        };
        Ok((dx, dw))
    }
}

impl CustomOp2 for Conv2dBwdInputOp {
    fn name(&self) -> &'static str {
        "mmcl-conv2d-bwd-input"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.g;
        let dy = f32_slice(s1, l1, "conv2d-bwd-input")?;
        let w = f32_slice(s2, l2, "conv2d-bwd-input")?;
        let dx = conv_bwd_input_cpu(dy, w, &g);
        Ok((CpuStorage::F32(dx), Shape::from((g.n, g.cin, g.h, g.w))))
    }
}

impl CustomOp2 for Conv2dBwdWeightOp {
    fn name(&self) -> &'static str {
        "mmcl-conv2d-bwd-weight"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.g;
        let x = f32_slice(s1, l1, "conv2d-bwd-weight")?;
        let dy = f32_slice(s2, l2, "conv2d-bwd-weight")?;
        let dw = conv_bwd_weight_cpu(x, dy, &g);
        Ok((
            CpuStorage::F32(dw),
            Shape::from((g.cout, g.cin, g.kh, g.kw)),
        ))
    }
}

/// 2-d convolution of `x` [N, Cin, H, W] with `w` [Cout, Cin, KH, KW]: no bias, groups 1,
/// dilation 1, zero padding `cfg.padding` on every side. Differentiable w.r.t. both inputs
/// for every shape. f32 only on CPU.
pub fn conv2d(x: &Tensor, w: &Tensor, cfg: Conv2dConfig) -> Result<Tensor> {
    Geom::new(x.shape(), w.shape(), cfg)?;
    if x.device().is_cpu() {
        x.contiguous()?
            .apply_op2(&w.contiguous()?, Conv2dOp { cfg })
    } else {
        conv2d_composed(x, w, cfg)
    }
}

/// The device-generic path: candle's conv2d on the explicitly padded input narrowed to the
/// exactly used extent (see the module docs). Public for tests and benchmarks.
pub fn conv2d_composed(x: &Tensor, w: &Tensor, cfg: Conv2dConfig) -> Result<Tensor> {
    let g = Geom::new(x.shape(), w.shape(), cfg)?;
    let p = cfg.padding;
    let xp = if p > 0 {
        x.pad_with_zeros(2, p, p)?.pad_with_zeros(3, p, p)?
    } else {
        x.clone()
    };
    let used_h = (g.oh - 1) * g.stride + g.kh;
    let used_w = (g.ow - 1) * g.stride + g.kw;
    let xp = if used_h < g.h + 2 * p {
        xp.narrow(2, 0, used_h)?
    } else {
        xp
    };
    let xp = if used_w < g.w + 2 * p {
        xp.narrow(3, 0, used_w)?
    } else {
        xp
    };
    xp.conv2d(w, 0, g.stride, 1, 1)
}
