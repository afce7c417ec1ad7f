//! Implicit-GEMM convolution kernels for x86-64 with AVX-512 (runtime-detected): no im2col
//! matrix, no GEMM packing of the large operand.
//!
//! A chunk of samples is copied once into a zero-bordered, stride-phase-split layout
//! `src[phase][c][n][HS][WS]` (`phase` = (row, column) offset modulo the stride, only the
//! phases the kernel touches). On that layout every kernel tap `k = (c, ki, kj)` reads the
//! input at a fixed offset `off[k]` from the output position `q = n*HS*WS + oh*WS + ow` of a
//! "grid" that includes a few invalid rows and columns (the border): the im2col matrix is
//! `B[k][q] = src[off[k] + q]`, contiguous along `q` for every stride. The kernels then
//! compute, with invalid grid positions discarded or zeroed:
//! - forward: `Y[co][q] = sum_k W[co][k] * src[off[k] + q]`, an 8 x 32 register tile
//!   (weights broadcast, two 16-float input vectors per tap; 8 x 48 measured no faster);
//! - weight gradient: `dW[co][k] = sum_q dY[co][q] * src[off[k] + q]` with `dY` zero at
//!   invalid positions, a 4 x 6 tile of 16-lane dot products reduced at the end;
//! - input gradient for stride 1: the forward kernel on `dY` with the flipped, transposed
//!   kernel and padding `k - 1 - p`.
//!
//! Strided input gradients stay on col2im: a phase-decomposed version (one stride-1 grid
//! convolution per stride phase, then interleaving) was measured slower (mini l2-l4 stride-2
//! layers 1.4-1.9 ms vs 0.6-1.8 ms).
//!
//! The grid computes `HS*WS` positions per sample for `OH*OW` outputs; layers where that
//! waste is large (tiny late-layer maps) keep the im2col + GEMM path ([`worth_it`]).
//! All sums run in a fixed order: results are deterministic for a given thread count.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::conv::Geom;
use crate::util::{output_vec, put_scratch, take_scratch, threads, SendPtr};

/// Forward tile: output channels x grid positions.
const MR: usize = 8;
const NR: usize = 16 * NV;
/// 16-float vectors per forward tile row.
const NV: usize = 2;
/// Weight-gradient tile: output channels x kernel taps.
const DM: usize = 4;
const DK: usize = 6;
/// Grid positions per forward cache block (one tile: its input stays in L1 while every
/// output-channel block uses it; measured ~10% faster than 8 tiles) and per weight-gradient
/// block (2048 measured faster than 512 or 1024).
const FWD_QB: usize = NR;
const BWW_QB: usize = 2048;
/// Floats of phase-split input per chunk of samples.
const SRC_BUDGET: usize = 1 << 18;
/// Largest accepted ratio of grid positions to valid outputs (measured: the grid kernels
/// still beat im2col + gemm at 4 on 2x2 maps, not at 9 on 1x1 maps).
const MAX_WASTE: f64 = 4.5;

static DETECTED: OnceLock<bool> = OnceLock::new();
static DISABLED: AtomicBool = AtomicBool::new(false);

/// Turns this crate's AVX-512 code paths (grid convolution kernels, BatchNorm and pool
/// builds) off (`false`) or back on where the CPU has them, for benchmarks and tests that
/// compare them with the portable kernels (im2col + gemm, SSE2 builds). Process-wide.
pub fn set_simd_kernels(on: bool) {
    DISABLED.store(!on, Ordering::Relaxed);
}

/// Whether the AVX-512 code paths run (CPU support checked once, and not turned off).
pub fn simd_kernels_active() -> bool {
    available()
}

fn available() -> bool {
    !DISABLED.load(Ordering::Relaxed) && detected()
}

pub(crate) fn detected() -> bool {
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// The grid layout of one chunk of `nr` samples.
struct Grid {
    s: usize,
    sa: usize,
    sb: usize,
    hs: usize,
    ws: usize,
    /// Grid positions (= valid + border) of the chunk, and that rounded up to `NR`.
    plane: usize,
    q_pad: usize,
    src_len: usize,
    offs: Vec<usize>,
}

impl Grid {
    fn new(g: &Geom, nr: usize) -> Self {
        let s = g.stride;
        let (hp, wp) = (g.h + 2 * g.pad, g.w + 2 * g.pad);
        let (hs, ws) = (hp.div_ceil(s), wp.div_ceil(s));
        let (sa, sb) = (s.min(g.kh), s.min(g.kw));
        let plane = nr * hs * ws;
        let q_pad = plane.next_multiple_of(NR);
        let mut offs = Vec::with_capacity(g.k());
        for c in 0..g.cin {
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let phase = (ki % s) * sb + kj % s;
                    offs.push((phase * g.cin + c) * plane + (ki / s) * ws + kj / s);
                }
            }
        }
        let max_off = offs.iter().copied().max().unwrap_or(0);
        let src_len = (sa * sb * g.cin * plane).max(max_off + q_pad);
        Grid {
            s,
            sa,
            sb,
            hs,
            ws,
            plane,
            q_pad,
            src_len,
            offs,
        }
    }
    fn per_sample(g: &Geom) -> usize {
        let s = g.stride;
        let (hs, ws) = ((g.h + 2 * g.pad).div_ceil(s), (g.w + 2 * g.pad).div_ceil(s));
        s.min(g.kh) * s.min(g.kw) * g.cin * hs * ws
    }
}

/// Whether the grid wastes little enough compute for `g` (see the module docs).
pub(crate) fn worth_it(g: &Geom) -> bool {
    let s = g.stride;
    if g.kh == 1 && g.kw == 1 && s > 1 {
        // Strided 1x1 (the shortcut): the phase split copies 4x the data it uses; the
        // im2col gather is cheaper (measured).
        return false;
    }
    let (hs, ws) = ((g.h + 2 * g.pad).div_ceil(s), (g.w + 2 * g.pad).div_ceil(s));
    (hs * ws) as f64 <= MAX_WASTE * (g.oh * g.ow) as f64
}

/// Whether the forward kernel applies to `g` on this CPU.
pub(crate) fn fwd_ok(g: &Geom) -> bool {
    available() && g.cout >= MR && worth_it(g)
}

/// Whether the weight-gradient kernel applies to `g` on this CPU.
pub(crate) fn bwd_weight_ok(g: &Geom) -> bool {
    available() && g.cout >= DM && g.k() >= DK && worth_it(g)
}

/// The forward geometry whose output is the input gradient of `g` (stride 1 only).
pub(crate) fn bwd_input_geom(g: &Geom) -> Option<Geom> {
    if g.stride != 1 || g.kh != g.kw || g.pad >= g.kh {
        return None;
    }
    let t = Geom {
        n: g.n,
        cin: g.cout,
        h: g.oh,
        w: g.ow,
        cout: g.cin,
        kh: g.kh,
        kw: g.kw,
        stride: 1,
        pad: g.kh - 1 - g.pad,
        oh: g.h,
        ow: g.w,
    };
    debug_assert_eq!(t.oh, t.h + 2 * t.pad - t.kh + 1);
    fwd_ok(&t).then_some(t)
}

/// Contiguous sample groups, one per rayon thread (a batch smaller than the thread count
/// runs on fewer threads).
fn groups(n: usize) -> Vec<Range<usize>> {
    let t = threads().min(n).max(1);
    let per = n.div_ceil(t);
    (0..t)
        .map(|i| (i * per).min(n)..((i + 1) * per).min(n))
        .filter(|r| !r.is_empty())
        .collect()
}

fn chunks(r: Range<usize>, chunk: usize) -> impl Iterator<Item = Range<usize>> {
    (r.start..r.end)
        .step_by(chunk)
        .map(move |s| s..(s + chunk).min(r.end))
}

fn chunk_len(g: &Geom) -> usize {
    (SRC_BUDGET / Grid::per_sample(g).max(1)).max(1)
}

/// Copies samples `r` of `x` [N, Cin, H, W] into the grid layout (`src` fully written).
fn fill_src(x: &[f32], g: &Geom, r: Range<usize>, gr: &Grid, src: &mut [f32]) {
    let src = &mut src[..gr.src_len];
    src.fill(0.0);
    let (p, s, hw) = (g.pad, gr.s, gr.hs * gr.ws);
    for (j, n) in r.enumerate() {
        for c in 0..g.cin {
            let plane_x = &x[(n * g.cin + c) * g.h * g.w..(n * g.cin + c + 1) * g.h * g.w];
            for ih in 0..g.h {
                let i = ih + p;
                let (a, row) = (i % s, i / s);
                if a >= gr.sa {
                    continue;
                }
                let xrow = &plane_x[ih * g.w..(ih + 1) * g.w];
                if s == 1 {
                    let d0 = (c * gr.plane) + j * hw + row * gr.ws + p;
                    src[d0..d0 + g.w].copy_from_slice(xrow);
                } else {
                    for b in 0..gr.sb {
                        // Columns iw with (iw + p) % s == b land in phase (a, b).
                        let first = (b + s - p % s) % s;
                        if first >= g.w {
                            continue;
                        }
                        let base = ((a * gr.sb + b) * g.cin + c) * gr.plane + j * hw + row * gr.ws;
                        let count = (g.w - first).div_ceil(s);
                        let d0 = base + (first + p) / s;
                        for (d, &v) in src[d0..d0 + count]
                            .iter_mut()
                            .zip(xrow[first..].iter().step_by(s))
                        {
                            *d = v;
                        }
                    }
                }
            }
        }
    }
}

/// Forward convolution on the grid: `y` [N, Cout, OH, OW].
pub(crate) fn conv_fwd(x: &[f32], w: &[f32], g: &Geom) -> Vec<f32> {
    let k = g.k();
    let nb = g.cout.div_ceil(MR);
    let co0 = |cb: usize| (cb * MR).min(g.cout - MR);
    // Weights packed per block of MR output channels: wp[cb][k][i] = w[co0 + i][k].
    let mut wp = vec![0f32; nb * k * MR];
    for cb in 0..nb {
        for i in 0..MR {
            let row = &w[(co0(cb) + i) * k..(co0(cb) + i + 1) * k];
            for (kk, &v) in row.iter().enumerate() {
                wp[(cb * k + kk) * MR + i] = v;
            }
        }
    }
    let mut y = output_vec(g.n * g.out_len()); // every sample compacted below
    let yp = SendPtr(y.as_mut_ptr());
    let chunk = chunk_len(g);
    let wp = &wp;
    groups(g.n).into_par_iter().for_each(|grp| {
        let mut src = take_scratch(0);
        let mut yg = take_scratch(0);
        for r in chunks(grp, chunk) {
            let gr = Grid::new(g, r.len());
            if src.len() < gr.src_len {
                src.resize(gr.src_len, 0.0);
            }
            if yg.len() < g.cout * gr.q_pad {
                yg.resize(g.cout * gr.q_pad, 0.0);
            }
            fill_src(x, g, r.clone(), &gr, &mut src);
            for qb in (0..gr.q_pad).step_by(FWD_QB) {
                let qe = (qb + FWD_QB).min(gr.q_pad);
                for cb in 0..nb {
                    let wb = &wp[cb * k * MR..(cb + 1) * k * MR];
                    for q0 in (qb..qe).step_by(NR) {
                        // SAFETY: avx512f checked by `fwd_ok`; src reads end below
                        // max(off) + q_pad <= src_len; the tile's rows co0..co0+MR and
                        // columns q0..q0+NR lie inside yg [cout, q_pad].
                        unsafe {
                            kern_fwd(
                                wb.as_ptr(),
                                src.as_ptr().add(q0),
                                &gr.offs,
                                yg.as_mut_ptr().add(co0(cb) * gr.q_pad + q0),
                                gr.q_pad,
                            );
                        }
                    }
                }
            }
            // Keep the valid grid positions.
            let hw = gr.hs * gr.ws;
            for (j, n) in r.enumerate() {
                // SAFETY: sample n belongs to this group only.
                let yn = unsafe {
                    std::slice::from_raw_parts_mut({ yp }.0.add(n * g.out_len()), g.out_len())
                };
                for co in 0..g.cout {
                    for oh in 0..g.oh {
                        let s0 = co * gr.q_pad + j * hw + oh * gr.ws;
                        let d0 = (co * g.oh + oh) * g.ow;
                        yn[d0..d0 + g.ow].copy_from_slice(&yg[s0..s0 + g.ow]);
                    }
                }
            }
        }
        put_scratch(src);
        put_scratch(yg);
    });
    y
}

/// Input gradient of a stride-1 convolution `g`, given `t = bwd_input_geom(g)`.
pub(crate) fn conv_bwd_input(dy: &[f32], w: &[f32], g: &Geom, t: &Geom) -> Vec<f32> {
    // wt[ci][co][i][j] = w[co][ci][kh-1-i][kw-1-j].
    let (kh, kw) = (g.kh, g.kw);
    let mut wt = vec![0f32; w.len()];
    for co in 0..g.cout {
        for ci in 0..g.cin {
            for i in 0..kh {
                for j in 0..kw {
                    wt[((ci * g.cout + co) * kh + i) * kw + j] =
                        w[((co * g.cin + ci) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)];
                }
            }
        }
    }
    conv_fwd(dy, &wt, t)
}

/// Weight gradient on the grid: `dW` [Cout, Cin, KH, KW].
pub(crate) fn conv_bwd_weight(x: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    let k = g.k();
    let wlen = g.cout * k;
    let grps = groups(g.n);
    let mut accs = vec![0f32; wlen * grps.len()];
    let ap = SendPtr(accs.as_mut_ptr());
    let chunk = chunk_len(g);
    let co_blocks: Vec<(usize, usize)> = block_starts(g.cout, DM);
    let k_blocks: Vec<(usize, usize)> = block_starts(k, DK);
    grps.into_par_iter().enumerate().for_each(|(gi, grp)| {
        // SAFETY: each group owns its accumulator.
        let acc = unsafe { std::slice::from_raw_parts_mut({ ap }.0.add(gi * wlen), wlen) };
        let mut src = take_scratch(0);
        let mut dyg = take_scratch(0);
        for r in chunks(grp, chunk) {
            let gr = Grid::new(g, r.len());
            if src.len() < gr.src_len {
                src.resize(gr.src_len, 0.0);
            }
            if dyg.len() < g.cout * gr.q_pad {
                dyg.resize(g.cout * gr.q_pad, 0.0);
            }
            fill_src(x, g, r.clone(), &gr, &mut src);
            // dY on the grid, zero at invalid positions.
            let dyv = &mut dyg[..g.cout * gr.q_pad];
            dyv.fill(0.0);
            let hw = gr.hs * gr.ws;
            for (j, n) in r.enumerate() {
                for co in 0..g.cout {
                    for oh in 0..g.oh {
                        let d0 = co * gr.q_pad + j * hw + oh * gr.ws;
                        let s0 = ((n * g.cout + co) * g.oh + oh) * g.ow;
                        dyv[d0..d0 + g.ow].copy_from_slice(&dy[s0..s0 + g.ow]);
                    }
                }
            }
            for qb in (0..gr.q_pad).step_by(BWW_QB) {
                let qe = (qb + BWW_QB).min(gr.q_pad);
                for &(c0, cskip) in &co_blocks {
                    for &(k0, kskip) in &k_blocks {
                        let offs: [usize; DK] = std::array::from_fn(|j| gr.offs[k0 + j] + qb);
                        // SAFETY: avx512f checked by `bwd_weight_ok`; reads stay below
                        // max(off) + q_pad <= src_len and inside dyg's rows c0..c0+DM;
                        // writes stay inside acc rows c0..c0+DM, columns k0..k0+DK.
                        unsafe {
                            kern_dot(
                                dyv.as_ptr().add(c0 * gr.q_pad + qb),
                                gr.q_pad,
                                src.as_ptr(),
                                &offs,
                                qe - qb,
                                acc.as_mut_ptr().add(c0 * k + k0),
                                k,
                                cskip,
                                kskip,
                            );
                        }
                    }
                }
            }
        }
        put_scratch(src);
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

/// Tile starts covering `0..len` with tiles of `t` (the last one shifted back to fit), each
/// with the number of leading rows already covered by the previous tile.
fn block_starts(len: usize, t: usize) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut done = 0;
    while done < len {
        let start = done.min(len - t);
        v.push((start, done - start));
        done = start + t;
    }
    v
}

/// `dst[i][0..NR] = sum_k wp[k][i] * src[offs[k] + 0..NR]` for i < MR.
///
/// # Safety
/// avx512f available; `wp` holds `offs.len() * MR` floats; `src + offs[k] + NR` readable;
/// `dst + i * ldd + NR` writable for i < MR.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::needless_range_loop)] // index loops over register arrays unroll cleanly
unsafe fn kern_fwd(wp: *const f32, src: *const f32, offs: &[usize], dst: *mut f32, ldd: usize) {
    use std::arch::x86_64::*;
    // No closures here: they would not inherit the target feature (and not be inlined).
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    let mut wk = wp;
    for &o in offs {
        let s = src.wrapping_add(o);
        let mut b = [_mm512_setzero_ps(); NV];
        for v in 0..NV {
            b[v] = _mm512_loadu_ps(s.wrapping_add(16 * v));
        }
        for i in 0..MR {
            let wv = _mm512_set1_ps(*wk.wrapping_add(i));
            for v in 0..NV {
                acc[i][v] = _mm512_fmadd_ps(wv, b[v], acc[i][v]);
            }
        }
        wk = wk.wrapping_add(MR);
    }
    for i in 0..MR {
        let d = dst.wrapping_add(i * ldd);
        for v in 0..NV {
            _mm512_storeu_ps(d.wrapping_add(16 * v), acc[i][v]);
        }
    }
}

/// `out[i][j] += sum_{q < qlen} dy[i * ldy + q] * src[offs[j] + q]` for `i` in
/// `cskip..DM`, `j` in `kskip..DK` (`qlen` a multiple of 16).
///
/// # Safety
/// avx512f available; all the reads and writes named above in bounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn kern_dot(
    dy: *const f32,
    ldy: usize,
    src: *const f32,
    offs: &[usize; DK],
    qlen: usize,
    out: *mut f32,
    ldo: usize,
    cskip: usize,
    kskip: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); DK]; DM];
    let mut sp = [src; DK];
    for j in 0..DK {
        sp[j] = src.wrapping_add(offs[j]);
    }
    let mut dp = [dy; DM];
    for i in 0..DM {
        dp[i] = dy.wrapping_add(i * ldy);
    }
    let mut q = 0;
    while q < qlen {
        let mut b = [_mm512_setzero_ps(); DK];
        for j in 0..DK {
            b[j] = _mm512_loadu_ps(sp[j].wrapping_add(q));
        }
        for i in 0..DM {
            let a = _mm512_loadu_ps(dp[i].wrapping_add(q));
            for j in 0..DK {
                acc[i][j] = _mm512_fmadd_ps(a, b[j], acc[i][j]);
            }
        }
        q += 16;
    }
    for i in cskip..DM {
        for j in kskip..DK {
            *out.wrapping_add(i * ldo + j) += _mm512_reduce_add_ps(acc[i][j]);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn kern_fwd(_: *const f32, _: *const f32, _: &[usize], _: *mut f32, _: usize) {
    unreachable!("`available()` is false off x86-64")
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn kern_dot(
    _: *const f32,
    _: usize,
    _: *const f32,
    _: &[usize; DK],
    _: usize,
    _: *mut f32,
    _: usize,
    _: usize,
    _: usize,
) {
    unreachable!("`available()` is false off x86-64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::{
        conv_bwd_input_im2col, conv_bwd_weight_im2col, conv_fwd_im2col, Conv2dConfig,
    };
    use candle_core::Shape;

    fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn assert_close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: length");
        let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * scale * 10.0,
                "{what}: element {i}: {x} vs {y}"
            );
        }
    }

    /// The AVX-512 grid kernels equal the im2col + GEMM kernels on odd, non-square shapes,
    /// strides 1 and 2, padding 0, 1 and 3, batch 1 and 3, channel counts that are not
    /// multiples of the register tiles.
    #[test]
    fn grid_kernels_match_im2col_kernels() {
        if !available() {
            eprintln!("no AVX-512 on this CPU: only the im2col kernels run");
            return;
        }
        // (n, cin, h, w, cout, k, stride, pad)
        let cases = [
            (1, 3, 13, 22, 8, 7, 2, 3),
            (3, 1, 17, 12, 9, 7, 2, 3),
            (3, 8, 9, 14, 13, 3, 1, 1),
            (1, 11, 10, 7, 8, 3, 2, 1),
            (3, 9, 7, 11, 12, 1, 2, 0),
            (3, 10, 6, 9, 8, 3, 1, 0),
            (1, 12, 5, 8, 16, 3, 1, 1),
            (3, 8, 12, 7, 10, 1, 1, 0),
            (1, 5, 4, 3, 8, 3, 1, 3),
            (3, 8, 8, 9, 8, 3, 2, 3),
            (3, 8, 13, 10, 9, 7, 2, 3),
            (1, 9, 11, 13, 8, 3, 3, 1),
            (3, 10, 12, 9, 8, 3, 2, 0),
        ];
        for (ci, &(n, cin, h, w, cout, k, stride, pad)) in cases.iter().enumerate() {
            let g = Geom::new(
                &Shape::from((n, cin, h, w)),
                &Shape::from((cout, cin, k, k)),
                Conv2dConfig {
                    stride,
                    padding: pad,
                },
            )
            .unwrap();
            let x = rand_vec(g.n * g.in_len(), 3 * ci as u64);
            let wt = rand_vec(g.cout * g.k(), 3 * ci as u64 + 1);
            let dy = rand_vec(g.n * g.out_len(), 3 * ci as u64 + 2);
            let what = format!("case {ci} {:?}", cases[ci]);
            assert_close(
                &conv_fwd(&x, &wt, &g),
                &conv_fwd_im2col(&x, &wt, &g),
                &format!("forward, {what}"),
            );
            assert_close(
                &conv_bwd_weight(&x, &dy, &g),
                &conv_bwd_weight_im2col(&x, &dy, &g),
                &format!("grad-weight, {what}"),
            );
            if let Some(t) = bwd_input_geom(&g) {
                assert_close(
                    &conv_bwd_input(&dy, &wt, &g, &t),
                    &conv_bwd_input_im2col(&dy, &wt, &g),
                    &format!("grad-input, {what}"),
                );
            } else {
                assert!(
                    g.stride != 1 || g.cin < MR,
                    "{what}: grad-input not covered"
                );
            }
            // Same inputs, same bits.
            assert_eq!(conv_bwd_weight(&x, &dy, &g), conv_bwd_weight(&x, &dy, &g));
        }
    }

    #[test]
    fn tile_starts_cover_every_index_once() {
        for len in [4usize, 5, 6, 7, 11, 12, 13] {
            let mut seen = vec![0; len];
            for (start, skip) in block_starts(len, 4) {
                for s in &mut seen[start + skip..start + 4] {
                    *s += 1;
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "len {len}: {seen:?}");
        }
    }
}
