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

use crate::profile::{timed, OpClass};
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
}

/// im2col of one sample into columns `off..off + P` of a row-major matrix with leading
/// dimension `ld`: `col[(c*kh+ki)*kw+kj][off + oh*OW+ow] = x[c][oh*s+ki-pad][ow*s+kj-pad]`
/// (0 outside the input).
pub(crate) fn im2col(x: &[f32], g: &Geom, col: &mut [f32], ld: usize, off: usize) {
    let (p, s) = (g.p(), g.stride);
    for c in 0..g.cin {
        let xc = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let (oh_lo, oh_hi) = g.valid_range(ki, g.h, g.oh);
            for kj in 0..g.kw {
                let row = (c * g.kh + ki) * g.kw + kj;
                let dst = &mut col[row * ld + off..row * ld + off + p];
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

/// col2im of one sample, the adjoint of [`im2col`] (same `ld`, `off`): `dx` is overwritten.
pub(crate) fn col2im(col: &[f32], g: &Geom, dx: &mut [f32], ld: usize, off: usize) {
    let (p, s) = (g.p(), g.stride);
    dx.fill(0.0);
    for c in 0..g.cin {
        let xc = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let (oh_lo, oh_hi) = g.valid_range(ki, g.h, g.oh);
            for kj in 0..g.kw {
                let row = (c * g.kh + ki) * g.kw + kj;
                let src = &col[row * ld + off..row * ld + off + p];
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

/// Floats of im2col columns one GEMM may use per thread: samples are batched into one GEMM
/// (better shapes for the small late layers) up to this size.
const COL_BUDGET: usize = 1 << 20;

/// How a batch is split: contiguous groups of samples (one per rayon task, each GEMM
/// single-threaded), each processed in chunks of up to `chunk` samples per GEMM. With fewer
/// samples than threads there is one group and the GEMMs use gemm's own threads.
struct Plan {
    groups: Vec<std::ops::Range<usize>>,
    chunk: usize,
    par_gemm: bool,
}

impl Plan {
    fn new(g: &Geom) -> Self {
        let t = threads();
        let chunk = (COL_BUDGET / (g.k() * g.p()).max(1)).max(1);
        if g.n >= t && t > 1 {
            let per = g.n.div_ceil(t);
            let groups = (0..t)
                .map(|i| (i * per).min(g.n)..((i + 1) * per).min(g.n))
                .filter(|r| !r.is_empty())
                .collect();
            Plan {
                groups,
                chunk: chunk.min(per),
                par_gemm: false,
            }
        } else {
            Plan {
                groups: vec![0..g.n],
                chunk: chunk.min(g.n.max(1)),
                par_gemm: t > 1,
            }
        }
    }
    /// Runs `f(group index, sample range, par_gemm)` over every group, in parallel.
    fn run(&self, f: impl Fn(usize, std::ops::Range<usize>, bool) + Sync) {
        if self.groups.len() == 1 {
            f(0, self.groups[0].clone(), self.par_gemm);
        } else {
            self.groups
                .par_iter()
                .enumerate()
                .for_each(|(i, r)| f(i, r.clone(), false));
        }
    }
    /// The chunks of a group's sample range.
    fn chunks(&self, r: std::ops::Range<usize>) -> impl Iterator<Item = std::ops::Range<usize>> {
        let c = self.chunk;
        (r.start..r.end)
            .step_by(c)
            .map(move |s| s..(s + c).min(r.end))
    }
}

/// Copies samples `r` of a [N, C, P] tensor into a row-major [C, len(r) * P] matrix.
fn gather_cols(src: &[f32], c: usize, p: usize, r: std::ops::Range<usize>, dst: &mut [f32]) {
    let ld = r.len() * p;
    for (j, i) in r.enumerate() {
        for ch in 0..c {
            dst[ch * ld + j * p..ch * ld + (j + 1) * p]
                .copy_from_slice(&src[(i * c + ch) * p..(i * c + ch + 1) * p]);
        }
    }
}

/// The inverse of [`gather_cols`]: `dst` holds the samples of `r` only ([len(r), C, P]).
fn scatter_cols(src: &[f32], c: usize, p: usize, nr: usize, dst: &mut [f32]) {
    let ld = nr * p;
    for j in 0..nr {
        for ch in 0..c {
            dst[(j * c + ch) * p..(j * c + ch + 1) * p]
                .copy_from_slice(&src[ch * ld + j * p..ch * ld + (j + 1) * p]);
        }
    }
}

/// The im2col matrix [K, len(r) * P] of samples `r` (borrowed directly for a single
/// pointwise sample).
fn cols_of<'a>(
    x: &'a [f32],
    g: &Geom,
    r: std::ops::Range<usize>,
    buf: &'a mut Vec<f32>,
) -> &'a [f32] {
    let (k, p) = (g.k(), g.p());
    if g.is_pointwise() && r.len() == 1 {
        return &x[r.start * g.in_len()..(r.start + 1) * g.in_len()];
    }
    let ld = r.len() * p;
    if buf.len() < k * ld {
        buf.resize(k * ld, 0.0);
    }
    if g.is_pointwise() {
        gather_cols(x, g.cin, p, r, buf);
    } else {
        for (j, i) in r.enumerate() {
            im2col(&x[i * g.in_len()..(i + 1) * g.in_len()], g, buf, ld, j * p);
        }
    }
    &buf[..k * ld]
}

/// Mutable view of samples `r` of a [N, len] buffer shared across tasks.
///
/// SAFETY: callers only pass disjoint sample ranges from different tasks.
unsafe fn samples_mut<'a>(base: SendPtr, len: usize, r: std::ops::Range<usize>) -> &'a mut [f32] {
    std::slice::from_raw_parts_mut(base.0.add(r.start * len), r.len() * len)
}

/// Forward pass on CPU: `y[n] = W[cout x K] * im2col(x[n])`, samples batched per GEMM.
pub(crate) fn conv_fwd_cpu(x: &[f32], w: &[f32], g: &Geom) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let mut y = vec![0f32; g.n * g.out_len()];
    let yp = SendPtr(y.as_mut_ptr());
    let plan = Plan::new(g);
    plan.run(|_, group, par| {
        let mut col = take_scratch(0);
        let mut tmp = take_scratch(0);
        for r in plan.chunks(group) {
            let nr = r.len();
            // SAFETY: groups and their chunks are disjoint sample ranges.
            let yr = unsafe { samples_mut(yp, g.out_len(), r.clone()) };
            let cols = cols_of(x, g, r, &mut col);
            if nr == 1 {
                gemm_rm(
                    g.cout,
                    p,
                    k,
                    yr,
                    false,
                    Mat::row_major(w, k),
                    Mat::row_major(cols, p),
                    par,
                );
            } else {
                if tmp.len() < g.cout * nr * p {
                    tmp.resize(g.cout * nr * p, 0.0);
                }
                gemm_rm(
                    g.cout,
                    nr * p,
                    k,
                    &mut tmp,
                    false,
                    Mat::row_major(w, k),
                    Mat::row_major(cols, nr * p),
                    par,
                );
                scatter_cols(&tmp, g.cout, p, nr, yr);
            }
        }
        put_scratch(col);
        put_scratch(tmp);
    });
    y
}

/// Gradient w.r.t. the input on CPU: `dx[n] = col2im(W^T * dy[n])`, samples batched per GEMM.
pub(crate) fn conv_bwd_input_cpu(dy: &[f32], w: &[f32], g: &Geom) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let mut dx = vec![0f32; g.n * g.in_len()];
    let dxp = SendPtr(dx.as_mut_ptr());
    let plan = Plan::new(g);
    plan.run(|_, group, par| {
        let mut col = take_scratch(0);
        let mut dyg = take_scratch(0);
        for r in plan.chunks(group) {
            let nr = r.len();
            let ld = nr * p;
            // SAFETY: groups and their chunks are disjoint sample ranges.
            let dxr = unsafe { samples_mut(dxp, g.in_len(), r.clone()) };
            let dys: &[f32] = if nr == 1 {
                &dy[r.start * g.out_len()..(r.start + 1) * g.out_len()]
            } else {
                if dyg.len() < g.cout * ld {
                    dyg.resize(g.cout * ld, 0.0);
                }
                gather_cols(dy, g.cout, p, r.clone(), &mut dyg);
                &dyg[..g.cout * ld]
            };
            if g.is_pointwise() && nr == 1 {
                gemm_rm(
                    k,
                    p,
                    g.cout,
                    dxr,
                    false,
                    Mat::transposed(w, k),
                    Mat::row_major(dys, p),
                    par,
                );
                continue;
            }
            if col.len() < k * ld {
                col.resize(k * ld, 0.0);
            }
            gemm_rm(
                k,
                ld,
                g.cout,
                &mut col,
                false,
                Mat::transposed(w, k),
                Mat::row_major(dys, ld),
                par,
            );
            if g.is_pointwise() {
                scatter_cols(&col, g.cin, p, nr, dxr);
            } else {
                for j in 0..nr {
                    col2im(
                        &col,
                        g,
                        &mut dxr[j * g.in_len()..(j + 1) * g.in_len()],
                        ld,
                        j * p,
                    );
                }
            }
        }
        put_scratch(col);
        put_scratch(dyg);
    });
    dx
}

/// Gradient w.r.t. the weight on CPU: `dW = sum_n dy[n] * im2col(x[n])^T`, one GEMM of depth
/// `chunk * P` per chunk, one accumulator per group.
pub(crate) fn conv_bwd_weight_cpu(x: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let wlen = g.cout * k;
    let plan = Plan::new(g);
    let mut accs = vec![0f32; wlen * plan.groups.len()];
    let ap = SendPtr(accs.as_mut_ptr());
    plan.run(|gi, group, par| {
        // SAFETY: each group owns its accumulator.
        let acc = unsafe { samples_mut(ap, wlen, gi..gi + 1) };
        let mut col = take_scratch(0);
        let mut dyg = take_scratch(0);
        for (ci, r) in plan.chunks(group).enumerate() {
            let nr = r.len();
            let ld = nr * p;
            let dys: &[f32] = if nr == 1 {
                &dy[r.start * g.out_len()..(r.start + 1) * g.out_len()]
            } else {
                if dyg.len() < g.cout * ld {
                    dyg.resize(g.cout * ld, 0.0);
                }
                gather_cols(dy, g.cout, p, r.clone(), &mut dyg);
                &dyg[..g.cout * ld]
            };
            let cols = cols_of(x, g, r, &mut col);
            gemm_rm(
                g.cout,
                k,
                ld,
                acc,
                ci > 0,
                Mat::row_major(dys, ld),
                Mat::transposed(cols, ld),
                par,
            );
        }
        put_scratch(col);
        put_scratch(dyg);
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
        let y = timed(OpClass::ConvForward, || conv_fwd_cpu(x, w, &g));
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
        let dx = timed(OpClass::ConvBackwardInput, || conv_bwd_input_cpu(dy, w, &g));
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
        let dw = timed(OpClass::ConvBackwardWeight, || {
            conv_bwd_weight_cpu(x, dy, &g)
        });
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
