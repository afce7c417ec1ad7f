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

use crate::direct;
use crate::profile::{timed, OpClass};
use crate::select::use_fast;
use crate::util::{
    dims4, f32_slice, gemm_cm, gemm_cm_acc, gemm_rm, output_vec, put_scratch, take_scratch,
    threads, Mat, SendPtr,
};
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
}

/// Copies one sample [C, H, W] into a zero-bordered [C, H + 2p, W + 2p] buffer, so that
/// im2col and col2im need no bounds logic per row.
fn pad_sample(x: &[f32], g: &Geom, xp: &mut [f32]) {
    let (hp, wp, p) = (g.h + 2 * g.pad, g.w + 2 * g.pad, g.pad);
    for c in 0..g.cin {
        let dst = &mut xp[c * hp * wp..(c + 1) * hp * wp];
        dst[..p * wp].fill(0.0);
        dst[(p + g.h) * wp..].fill(0.0);
        for ih in 0..g.h {
            let row = &mut dst[(ih + p) * wp..(ih + p + 1) * wp];
            row[..p].fill(0.0);
            row[p + g.w..].fill(0.0);
            row[p..p + g.w].copy_from_slice(&x[(c * g.h + ih) * g.w..(c * g.h + ih + 1) * g.w]);
        }
    }
}

/// im2col of one sample into columns `off..off + P` of a row-major matrix with leading
/// dimension `ld`: `col[(c*kh+ki)*kw+kj][off + oh*OW+ow] = x[c][oh*s+ki-pad][ow*s+kj-pad]`
/// (0 outside the input).
pub(crate) fn im2col(x: &[f32], g: &Geom, col: &mut [f32], ld: usize, off: usize) {
    let (hp, wp, s, ow) = (g.h + 2 * g.pad, g.w + 2 * g.pad, g.stride, g.ow);
    let mut padded = if g.pad > 0 {
        take_scratch(g.cin * hp * wp)
    } else {
        Vec::new()
    };
    let xp: &[f32] = if g.pad > 0 {
        pad_sample(x, g, &mut padded);
        &padded[..g.cin * hp * wp]
    } else {
        &x[..g.in_len()]
    };
    assert!(col.len() >= (g.k() - 1) * ld + off + g.p());
    for c in 0..g.cin {
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = (c * g.kh + ki) * g.kw + kj;
                for oh in 0..g.oh {
                    let src0 = (c * hp + oh * s + ki) * wp + kj;
                    let dst0 = row * ld + off + oh * ow;
                    // In bounds: oh*s + ki < hp and (ow-1)*s + kj < wp by the output-size formula.
                    let src = &xp[src0..src0 + (ow - 1) * s + 1];
                    let dst = &mut col[dst0..dst0 + ow];
                    if s == 1 {
                        dst.copy_from_slice(src);
                    } else {
                        for (o, d) in dst.iter_mut().enumerate() {
                            // SAFETY: o * s <= (ow - 1) * s < src.len().
                            *d = unsafe { *src.get_unchecked(o * s) };
                        }
                    }
                }
            }
        }
    }
    if g.pad > 0 {
        put_scratch(padded);
    }
}

/// col2im of one sample, the adjoint of [`im2col`] (same `ld`, `off`): `dx` is overwritten.
pub(crate) fn col2im(col: &[f32], g: &Geom, dx: &mut [f32], ld: usize, off: usize) {
    let (hp, wp, s, ow) = (g.h + 2 * g.pad, g.w + 2 * g.pad, g.stride, g.ow);
    let mut padded = if g.pad > 0 {
        take_scratch(g.cin * hp * wp)
    } else {
        Vec::new()
    };
    {
        let xp: &mut [f32] = if g.pad > 0 {
            &mut padded[..g.cin * hp * wp]
        } else {
            &mut dx[..g.in_len()]
        };
        xp.fill(0.0);
        assert!(col.len() >= (g.k() - 1) * ld + off + g.p());
        for c in 0..g.cin {
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let row = (c * g.kh + ki) * g.kw + kj;
                    for oh in 0..g.oh {
                        let dst0 = (c * hp + oh * s + ki) * wp + kj;
                        let src0 = row * ld + off + oh * ow;
                        let dst = &mut xp[dst0..dst0 + (ow - 1) * s + 1];
                        let src = &col[src0..src0 + ow];
                        if s == 1 {
                            for (d, v) in dst.iter_mut().zip(src) {
                                *d += *v;
                            }
                        } else {
                            for (o, v) in src.iter().enumerate() {
                                // SAFETY: o * s <= (ow - 1) * s < dst.len().
                                unsafe { *dst.get_unchecked_mut(o * s) += *v };
                            }
                        }
                    }
                }
            }
        }
    }
    if g.pad > 0 {
        let p = g.pad;
        for c in 0..g.cin {
            for ih in 0..g.h {
                let src0 = (c * hp + ih + p) * wp + p;
                dx[(c * g.h + ih) * g.w..(c * g.h + ih + 1) * g.w]
                    .copy_from_slice(&padded[src0..src0 + g.w]);
            }
        }
        put_scratch(padded);
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
                #[allow(clippy::single_range_in_vec_init)] // one group holding the whole batch
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

/// Transposes row-major `src` [rows, cols] into `dst` [cols, rows], in cache blocks.
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const B: usize = 16;
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols);
    for r0 in (0..rows).step_by(B) {
        let r1 = (r0 + B).min(rows);
        for c0 in (0..cols).step_by(B) {
            let c1 = (c0 + B).min(cols);
            for r in r0..r1 {
                for c in c0..c1 {
                    // SAFETY: r < rows and c < cols, checked against both lengths above.
                    unsafe {
                        *dst.get_unchecked_mut(c * rows + r) = *src.get_unchecked(r * cols + c)
                    };
                }
            }
        }
    }
}

/// Samples `r` of a [N, C, P] tensor as a row-major [len(r) * P, C] matrix (pixels major).
fn gather_rows(src: &[f32], c: usize, p: usize, r: std::ops::Range<usize>, dst: &mut [f32]) {
    for (j, i) in r.enumerate() {
        transpose(
            &src[i * c * p..(i + 1) * c * p],
            c,
            p,
            &mut dst[j * p * c..(j + 1) * p * c],
        );
    }
}

/// The inverse of [`gather_rows`]: `dst` holds the samples of `r` only ([len(r), C, P]).
fn scatter_rows(src: &[f32], c: usize, p: usize, nr: usize, dst: &mut [f32]) {
    for j in 0..nr {
        transpose(
            &src[j * p * c..(j + 1) * p * c],
            p,
            c,
            &mut dst[j * c * p..(j + 1) * c * p],
        );
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
///
/// The GEMM writes `Y^T` [chunk * P, Cout] from `W^T` and the im2col matrix: gemm packs
/// those layouts with contiguous loads (a row-major `Y` made it gather strided values,
/// 1.3-2x slower for narrow layers; see `examples/gemm_probe.rs`).
pub(crate) fn conv_fwd_cpu(x: &[f32], w: &[f32], g: &Geom) -> Vec<f32> {
    if direct::fwd_ok(g) {
        return direct::conv_fwd(x, w, g);
    }
    conv_fwd_im2col(x, w, g)
}

/// [`conv_fwd_cpu`] through im2col and the `gemm` crate (any CPU, any shape).
pub(crate) fn conv_fwd_im2col(x: &[f32], w: &[f32], g: &Geom) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let mut y = output_vec(g.n * g.out_len()); // every chunk written by gemm/scatter
    let yp = SendPtr(y.as_mut_ptr());
    let mut wt = vec![0f32; w.len()];
    transpose(w, g.cout, k, &mut wt);
    let wt = &wt;
    let plan = Plan::new(g);
    plan.run(|_, group, par| {
        let mut col = take_scratch(0);
        let mut tmp = take_scratch(0);
        for r in plan.chunks(group) {
            let nr = r.len();
            let ld = nr * p;
            // SAFETY: groups and their chunks are disjoint sample ranges.
            let yr = unsafe { samples_mut(yp, g.out_len(), r.clone()) };
            let cols = cols_of(x, g, r, &mut col);
            if nr == 1 {
                // Large images come one per chunk: write Y directly (no transpose pass).
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
                continue;
            }
            if tmp.len() < g.cout * ld {
                tmp.resize(g.cout * ld, 0.0);
            }
            // Y^T [ld, cout] (column-major Y) = col^T * W^T.
            gemm_cm(
                g.cout,
                ld,
                k,
                &mut tmp,
                Mat::transposed(wt, g.cout),
                Mat::row_major(cols, ld),
                par,
            );
            scatter_rows(&tmp, g.cout, p, nr, yr);
        }
        put_scratch(col);
        put_scratch(tmp);
    });
    y
}

/// Gradient w.r.t. the input on CPU: `dx[n] = col2im(W^T * dy[n])`, samples batched per GEMM.
pub(crate) fn conv_bwd_input_cpu(dy: &[f32], w: &[f32], g: &Geom) -> Vec<f32> {
    if let Some(t) = direct::bwd_input_geom(g) {
        return direct::conv_bwd_input(dy, w, g, &t);
    }
    conv_bwd_input_im2col(dy, w, g)
}

/// [`conv_bwd_input_cpu`] through the `gemm` crate and col2im (any CPU, any shape).
pub(crate) fn conv_bwd_input_im2col(dy: &[f32], w: &[f32], g: &Geom) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let mut dx = output_vec(g.n * g.in_len()); // overwritten by gemm, scatter or col2im
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
/// `chunk * P` per chunk, one accumulator per group. Computed as
/// `dW^T [K, Cout] = col [K, ld] * dY^T [ld, Cout]` with column-major output: the layouts gemm
/// packs fastest (the row-major form packed the im2col matrix with strided loads, ~7x slower
/// for narrow layers).
pub(crate) fn conv_bwd_weight_cpu(x: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    if direct::bwd_weight_ok(g) {
        return direct::conv_bwd_weight(x, dy, g);
    }
    conv_bwd_weight_im2col(x, dy, g)
}

/// [`conv_bwd_weight_cpu`] through im2col and the `gemm` crate (any CPU, any shape).
pub(crate) fn conv_bwd_weight_im2col(x: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let wlen = g.cout * k;
    let plan = Plan::new(g);
    let mut accs = vec![0f32; wlen * plan.groups.len()];
    let ap = SendPtr(accs.as_mut_ptr());
    plan.run(|gi, group, par| {
        // SAFETY: each group owns its accumulator (holding dW column-major = dW^T row-major).
        let acc = unsafe { samples_mut(ap, wlen, gi..gi + 1) };
        let mut col = take_scratch(0);
        let mut dyt = take_scratch(0);
        for (ci, r) in plan.chunks(group).enumerate() {
            let ld = r.len() * p;
            if dyt.len() < g.cout * ld {
                dyt.resize(g.cout * ld, 0.0);
            }
            if r.len() == 1 {
                // One (large) sample per chunk: read dY in place, no transpose pass.
                let dyi = &dy[r.start * g.out_len()..(r.start + 1) * g.out_len()];
                let cols = cols_of(x, g, r, &mut col);
                gemm_cm_acc(
                    g.cout,
                    k,
                    ld,
                    acc,
                    ci > 0,
                    Mat::row_major(dyi, ld),
                    Mat::transposed(cols, ld),
                    par,
                );
                continue;
            }
            gather_rows(dy, g.cout, p, r.clone(), &mut dyt);
            let cols = cols_of(x, g, r, &mut col);
            // dW (col-major, = dW^T row-major) [cout x K] = dY [cout x ld] * col^T [ld x K].
            gemm_cm_acc(
                g.cout,
                k,
                ld,
                acc,
                ci > 0,
                Mat::transposed(&dyt, g.cout),
                Mat::transposed(cols, ld),
                par,
            );
        }
        put_scratch(col);
        put_scratch(dyt);
    });
    let (first, rest) = accs.split_at_mut(wlen);
    for r in rest.chunks(wlen) {
        for (a, b) in first.iter_mut().zip(r) {
            *a += *b;
        }
    }
    let mut dw = vec![0f32; wlen];
    transpose(&accs[..wlen], k, g.cout, &mut dw);
    dw
}

/// conv2d forward as a candle custom op (arg 1 = input, arg 2 = weight).
struct Conv2dOp {
    cfg: Conv2dConfig,
}

/// grad-input (arg 1 = dy, arg 2 = weight) for a known geometry; no backward of its own.
pub(crate) struct Conv2dBwdInputOp {
    pub g: Geom,
}

/// grad-weight (arg 1 = input, arg 2 = dy) for a known geometry; no backward of its own.
pub(crate) struct Conv2dBwdWeightOp {
    pub g: Geom,
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
/// for every shape. The fast kernel runs for f32 on the CPU; other dtypes and devices (and
/// `MMCL_KERNELS=composed`) take [`conv2d_composed`].
pub fn conv2d(x: &Tensor, w: &Tensor, cfg: Conv2dConfig) -> Result<Tensor> {
    Geom::new(x.shape(), w.shape(), cfg)?;
    if use_fast(x)? && w.dtype() == candle_core::DType::F32 {
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
