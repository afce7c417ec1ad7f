//! BatchNorm in training mode (batch statistics), optionally fused with the ReLU after it.
//!
//! Returns the normalised output and the batch mean and biased batch variance per channel,
//! detached, for the caller's running-statistics update (PyTorch updates the running
//! variance with the unbiased variance: multiply by `m / (m - 1)`, `m = N * H * W`).
//! Gradients flow to `x`, `weight` and `bias` exactly as through PyTorch's BatchNorm in
//! training mode (including through the batch statistics).
//!
//! CPU: one custom op for the forward pass (statistics, normalisation, affine, ReLU) and one
//! for the backward pass (all three gradients in two sweeps over the data). Other devices:
//! the same formula as a composition of candle ops.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

use crate::profile::{timed, OpClass};
use crate::select::use_fast;
use crate::util::{f32_slice, output_vec, SendPtr};
use crate::OpsError;

/// Lanes of the vectorisable partial sums below (LLVM does not reorder a plain float sum).
const LANES: usize = 16;

/// `sum(f(x))` with `LANES` independent f32 accumulators (vectorised), combined in f64.
#[inline(always)]
fn lanes_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut acc = [0f32; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for ch in &mut chunks {
        for l in 0..LANES {
            acc[l] += f(ch[l]);
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    acc.iter().map(|&a| a as f64).sum::<f64>() + tail as f64
}

/// `(sum(g), sum(g * (x - mean)))` with `g = dy`, masked by `x * scale + shift > 0` (the
/// forward pass's ReLU input, recomputed bit-identically instead of reading `y`) when
/// `relu`; vectorised.
#[inline(always)]
fn lanes_grad_sums(x: &[f32], dy: &[f32], a: Affine, relu: bool) -> (f64, f64) {
    let (mut sa, mut sb) = ([0f32; LANES], [0f32; LANES]);
    let n = x.len() / LANES * LANES;
    let (mut ta, mut tb) = (0f64, 0f64);
    let mean = a.mean;
    for (xc, gc) in x[..n].chunks_exact(LANES).zip(dy[..n].chunks_exact(LANES)) {
        for l in 0..LANES {
            let g = if !relu || a.pass(xc[l]) { gc[l] } else { 0.0 };
            sa[l] += g;
            sb[l] += g * (xc[l] - mean);
        }
    }
    for j in n..x.len() {
        let g = if !relu || a.pass(x[j]) { dy[j] } else { 0.0 };
        ta += g as f64;
        tb += (g * (x[j] - mean)) as f64;
    }
    (
        sa.iter().map(|&v| v as f64).sum::<f64>() + ta,
        sb.iter().map(|&v| v as f64).sum::<f64>() + tb,
    )
}

/// One channel's forward affine map `y = x * scale + shift` and its batch mean.
#[derive(Clone, Copy)]
struct Affine {
    mean: f32,
    scale: f32,
    shift: f32,
}

impl Affine {
    /// Whether the fused ReLU let `x` through (same float ops as the forward pass).
    #[inline(always)]
    fn pass(self, x: f32) -> bool {
        x * self.scale + self.shift > 0.0
    }
}

/// (N, C, elements per channel per sample) of a BN input [N, C, ...].
pub(crate) fn bn_dims(shape: &Shape) -> Result<(usize, usize, usize)> {
    let d = shape.dims();
    if d.len() < 2 {
        return Err(OpsError::Rank {
            op: "batch_norm_train",
            expected: 2,
            got: d.to_vec(),
        }
        .into());
    }
    let m = d[2..].iter().product::<usize>();
    if d[0] * m < 2 {
        return Err(OpsError::Shape {
            op: "batch_norm_train",
            msg: format!("need more than one value per channel, got shape {d:?}"),
        }
        .into());
    }
    Ok((d[0], d[1], m))
}

pub(crate) struct Saved {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    invstd: Vec<f32>,
    weight: Vec<f32>,
    /// The forward pass's per-channel affine map (for the ReLU mask in backward).
    scale: Vec<f32>,
    shift: Vec<f32>,
}

struct BnOp {
    eps: f64,
    relu: bool,
    /// Statistics of the forward pass, shared with the caller (who returns mean and var).
    saved: Arc<Mutex<Option<Saved>>>,
}

pub(crate) struct BnBwdOp<'a> {
    pub relu: bool,
    pub saved: &'a Saved,
    /// (grad weight, grad bias), filled by the backward kernel.
    pub grads: Mutex<Option<(Vec<f32>, Vec<f32>)>>,
}

/// The forward pass of one channel (its planes at `planes[i] .. + m` of x and y).
struct FwdChannel {
    planes: Vec<usize>,
    m: usize,
    count: f64,
    eps: f64,
    weight: f32,
    bias: f32,
    relu: bool,
}

impl FwdChannel {
    /// Writes the channel's planes of `y`; returns (mean, var, invstd, scale, shift).
    #[inline(always)]
    fn body(&self, x: &[f32], yp: SendPtr) -> (f32, f32, f32, f32, f32) {
        let m = self.m;
        let mut sum = 0f64;
        for &p in &self.planes {
            sum += lanes_sum(&x[p..p + m], |v| v);
        }
        let mean = sum / self.count;
        let mf = mean as f32;
        let mut ss = 0f64;
        for &p in &self.planes {
            ss += lanes_sum(&x[p..p + m], |v| (v - mf) * (v - mf));
        }
        let var = ss / self.count;
        let invstd = 1.0 / (var + self.eps).sqrt();
        let scale = (self.weight as f64 * invstd) as f32;
        let shift = self.bias - mf * scale;
        for &p in &self.planes {
            // SAFETY: this channel's planes of y are written by this task only.
            let out = unsafe { std::slice::from_raw_parts_mut({ yp }.0.add(p), m) };
            if self.relu {
                for (o, &v) in out.iter_mut().zip(&x[p..p + m]) {
                    *o = (v * scale + shift).max(0.0);
                }
            } else {
                for (o, &v) in out.iter_mut().zip(&x[p..p + m]) {
                    *o = v * scale + shift;
                }
            }
        }
        (mf, var as f32, invstd as f32, scale, shift)
    }

    fn run(&self, x: &[f32], yp: SendPtr) -> (f32, f32, f32, f32, f32) {
        self.body(x, yp)
    }

    /// [`Self::run`] compiled for AVX-512 (same float operations, same results).
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn run_avx512(&self, x: &[f32], yp: SendPtr) -> (f32, f32, f32, f32, f32) {
        self.body(x, yp)
    }
}

/// The forward kernel: `(y, statistics)` of BatchNorm (+ReLU) over `x` [N, C, M].
pub(crate) fn bn_forward_cpu(
    x: &[f32],
    (n, c, m): (usize, usize, usize),
    w: &[f32],
    b: &[f32],
    eps: f64,
    relu: bool,
) -> (Vec<f32>, Saved) {
    let count = (n * m) as f64;
    let mut y = output_vec(x.len()); // every channel plane written below
    let yp = SendPtr(y.as_mut_ptr());
    let simd = crate::direct::simd_kernels_active();
    let stats: Vec<(f32, f32, f32, f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let job = FwdChannel {
                planes: (0..n).map(|i| (i * c + ch) * m).collect(),
                m,
                count,
                eps,
                weight: w[ch],
                bias: b[ch],
                relu,
            };
            if simd {
                // SAFETY: the CPU has AVX-512F (checked at runtime).
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    return job.run_avx512(x, yp);
                }
            }
            job.run(x, yp)
        })
        .collect();
    let saved = Saved {
        mean: stats.iter().map(|s| s.0).collect(),
        var: stats.iter().map(|s| s.1).collect(),
        invstd: stats.iter().map(|s| s.2).collect(),
        weight: w.to_vec(),
        scale: stats.iter().map(|s| s.3).collect(),
        shift: stats.iter().map(|s| s.4).collect(),
    };
    (y, saved)
}

impl CustomOp3 for BnOp {
    fn name(&self) -> &'static str {
        "mmcl-batch-norm-train"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        timed(OpClass::BatchNormForward, || {
            let (n, c, m) = bn_dims(l1.shape())?;
            let x = f32_slice(s1, l1, "batch_norm_train")?;
            let w = f32_slice(s2, l2, "batch_norm_train")?;
            let b = f32_slice(s3, l3, "batch_norm_train")?;
            if w.len() != c || b.len() != c {
                return Err(OpsError::Shape {
                    op: "batch_norm_train",
                    msg: format!("weight/bias must have {c} elements"),
                }
                .into());
            }
            let (y, saved) = bn_forward_cpu(x, (n, c, m), w, b, self.eps, self.relu);
            *self.saved.lock().map_err(|_| OpsError::Poisoned {
                op: "batch_norm_train",
            })? = Some(saved);
            Ok((CpuStorage::F32(y), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let guard = self.saved.lock().map_err(|_| OpsError::Poisoned {
            op: "batch_norm_train",
        })?;
        let saved = guard.as_ref().ok_or(OpsError::Config {
            op: "batch_norm_train",
            msg: "backward before forward".into(),
        })?;
        let op = BnBwdOp {
            relu: self.relu,
            saved,
            grads: Mutex::new(None),
        };
        let _ = y; // the ReLU mask is recomputed from x
        let dx = x.apply_op2_no_bwd(&dy.contiguous()?, &op)?;
        let (gw, gb) = op
            .grads
            .lock()
            .map_err(|_| OpsError::Poisoned {
                op: "batch_norm_train",
            })?
            .take()
            .expect("filled by the kernel");
        let gw = Tensor::from_vec(gw, w.shape(), w.device())?;
        let gb = Tensor::from_vec(gb, b.shape(), b.device())?;
        Ok((Some(dx), Some(gw), Some(gb)))
    }
}

impl CustomOp2 for BnBwdOp<'_> {
    fn name(&self) -> &'static str {
        "mmcl-batch-norm-train-bwd"
    }
    /// Args: x, dy.
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        timed(OpClass::BatchNormBackward, || {
            let (n, c, m) = bn_dims(l1.shape())?;
            let x = f32_slice(s1, l1, "batch_norm_train-bwd")?;
            let dy = f32_slice(s2, l2, "batch_norm_train-bwd")?;
            let count = (n * m) as f32;
            let sv = self.saved;
            let mut dx = output_vec(x.len()); // every channel plane written below
            let dxp = SendPtr(dx.as_mut_ptr());
            let relu = self.relu;
            let simd = crate::direct::simd_kernels_active();
            let grads: Vec<(f32, f32)> = (0..c)
                .into_par_iter()
                .map(|ch| {
                    let ch = BwdChannel {
                        a: Affine {
                            mean: sv.mean[ch],
                            scale: sv.scale[ch],
                            shift: sv.shift[ch],
                        },
                        invstd: sv.invstd[ch],
                        weight: sv.weight[ch],
                        count,
                        relu,
                        planes: (0..n).map(|i| (i * c + ch) * m).collect(),
                        m,
                    };
                    if simd {
                        // SAFETY: the CPU has AVX-512F (checked at runtime).
                        #[cfg(target_arch = "x86_64")]
                        unsafe {
                            return ch.run_avx512(x, dy, dxp);
                        }
                    }
                    ch.run(x, dy, dxp)
                })
                .collect();
            *self.grads.lock().map_err(|_| OpsError::Poisoned {
                op: "batch_norm_train",
            })? = Some((
                grads.iter().map(|g| g.0).collect(),
                grads.iter().map(|g| g.1).collect(),
            ));
            Ok((CpuStorage::F32(dx), l1.shape().clone()))
        })
    }
}

/// The backward pass of one channel (its planes at `planes[i] .. + m` of x, dy and dx).
struct BwdChannel {
    a: Affine,
    invstd: f32,
    weight: f32,
    count: f32,
    relu: bool,
    planes: Vec<usize>,
    m: usize,
}

impl BwdChannel {
    /// Returns (grad weight, grad bias) and writes the channel's planes of `dx`.
    #[inline(always)]
    fn body(&self, x: &[f32], dy: &[f32], dxp: SendPtr) -> (f32, f32) {
        let (a, m, relu) = (self.a, self.m, self.relu);
        // Sweep 1: sum(dy) and sum(dy * (x - mean)), with the ReLU mask applied.
        let (mut sdy, mut sdyx) = (0f64, 0f64);
        for &p in &self.planes {
            let (ga, gb) = lanes_grad_sums(&x[p..p + m], &dy[p..p + m], a, relu);
            sdy += ga;
            sdyx += gb;
        }
        let gbias = sdy as f32;
        let gweight = (sdyx * self.invstd as f64) as f32;
        // Sweep 2: dx = w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)).
        let k = self.weight * self.invstd;
        let mdy = gbias / self.count;
        let c2 = gweight * self.invstd / self.count;
        let mean = a.mean;
        for &p in &self.planes {
            // SAFETY: this channel's planes of dx are written by this task only.
            let out = unsafe { std::slice::from_raw_parts_mut({ dxp }.0.add(p), m) };
            let (xs, gs) = (&x[p..p + m], &dy[p..p + m]);
            if relu {
                for (o, (&xv, &gv)) in out.iter_mut().zip(xs.iter().zip(gs)) {
                    let g = if a.pass(xv) { gv } else { 0.0 };
                    *o = k * (g - mdy - (xv - mean) * c2);
                }
            } else {
                for (o, (&xv, &gv)) in out.iter_mut().zip(xs.iter().zip(gs)) {
                    *o = k * (gv - mdy - (xv - mean) * c2);
                }
            }
        }
        (gweight, gbias)
    }

    fn run(&self, x: &[f32], dy: &[f32], dxp: SendPtr) -> (f32, f32) {
        self.body(x, dy, dxp)
    }

    /// [`Self::run`] compiled for AVX-512 (the crate's baseline target is SSE2 only).
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn run_avx512(&self, x: &[f32], dy: &[f32], dxp: SendPtr) -> (f32, f32) {
        self.body(x, dy, dxp)
    }
}

pub(crate) fn bn_impl(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (_, c, _) = bn_dims(x.shape())?;
    if weight.elem_count() != c || bias.elem_count() != c {
        return Err(OpsError::Shape {
            op: "batch_norm_train",
            msg: format!("weight/bias must have {c} elements"),
        }
        .into());
    }
    if !use_fast(x)? {
        return batch_norm_train_composed(x, weight, bias, eps, relu);
    }
    let saved = Arc::new(Mutex::new(None));
    let op = BnOp {
        eps,
        relu,
        saved: saved.clone(),
    };
    let y = x
        .contiguous()?
        .apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)?;
    let stats = {
        let g = saved.lock().map_err(|_| OpsError::Poisoned {
            op: "batch_norm_train",
        })?;
        let s = g.as_ref().ok_or(OpsError::Config {
            op: "batch_norm_train",
            msg: "forward kernel did not run".into(),
        })?;
        (s.mean.clone(), s.var.clone())
    };
    let mean = Tensor::from_vec(stats.0, c, x.device())?;
    let var = Tensor::from_vec(stats.1, c, x.device())?;
    Ok((y, mean, var))
}

/// BatchNorm in training mode over `x` [N, C, ...] with per-channel `weight`, `bias` `[C]`:
/// returns `(y, batch_mean [C], biased_batch_var [C])`, mean and variance detached.
pub fn batch_norm_train(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    bn_impl(x, weight, bias, eps, false)
}

/// [`batch_norm_train`] followed by ReLU, fused (one pass forward, one backward kernel).
pub fn batch_norm_relu_train(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    bn_impl(x, weight, bias, eps, true)
}

/// The device-generic composition of candle ops. Public for tests.
pub fn batch_norm_train_composed(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (_, c, _) = bn_dims(x.shape())?;
    let rank = x.rank();
    let mut bshape = vec![1usize; rank];
    bshape[1] = c;
    let axes: Vec<usize> = (0..rank).filter(|&a| a != 1).collect();
    let mean = x.mean_keepdim(axes.as_slice())?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(axes.as_slice())?;
    let xhat = xc.broadcast_div(&(var.clone() + eps)?.sqrt()?)?;
    let y = xhat
        .broadcast_mul(&weight.reshape(bshape.as_slice())?)?
        .broadcast_add(&bias.reshape(bshape.as_slice())?)?;
    let y = if relu { y.relu()? } else { y };
    Ok((y, mean.flatten_all()?.detach(), var.flatten_all()?.detach()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX-512 builds of the per-channel kernels equal the portable builds (same code,
    /// other target features): odd plane sizes (vector tails), ReLU on and off.
    #[test]
    fn channel_kernels_simd_match_portable() {
        if !crate::direct::detected() {
            return;
        }
        let (n, c, m) = (3usize, 2usize, 37usize);
        let mut s = 12345u64;
        let mut rnd = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        let x: Vec<f32> = (0..n * c * m).map(|_| rnd()).collect();
        let dy: Vec<f32> = (0..n * c * m).map(|_| rnd()).collect();
        for relu in [false, true] {
            let ch = BwdChannel {
                a: Affine {
                    mean: 0.1,
                    scale: 1.3,
                    shift: -0.2,
                },
                invstd: 1.1,
                weight: 0.9,
                count: (n * m) as f32,
                relu,
                planes: (0..n).map(|i| (i * c + 1) * m).collect(),
                m,
            };
            let mut d1 = vec![0f32; x.len()];
            let mut d2 = vec![0f32; x.len()];
            let r1 = ch.run(&x, &dy, SendPtr(d1.as_mut_ptr()));
            // SAFETY: AVX-512F checked above.
            let r2 = unsafe { ch.run_avx512(&x, &dy, SendPtr(d2.as_mut_ptr())) };
            assert!(
                (r1.0 - r2.0).abs() <= 1e-5 && (r1.1 - r2.1).abs() <= 1e-5,
                "relu {relu}"
            );
            for (a, b) in d1.iter().zip(&d2) {
                assert!((a - b).abs() <= 1e-5, "relu {relu}: {a} vs {b}");
            }
            assert!(d1.iter().any(|&v| v != 0.0));
            let job = FwdChannel {
                planes: (0..n).map(|i| (i * c + 1) * m).collect(),
                m,
                count: (n * m) as f64,
                eps: 1e-5,
                weight: 0.9,
                bias: 0.1,
                relu,
            };
            let (mut y1, mut y2) = (vec![0f32; x.len()], vec![0f32; x.len()]);
            let s1 = job.run(&x, SendPtr(y1.as_mut_ptr()));
            // SAFETY: AVX-512F checked above.
            let s2 = unsafe { job.run_avx512(&x, SendPtr(y2.as_mut_ptr())) };
            assert_eq!(s1, s2, "forward statistics, relu {relu}");
            assert_eq!(y1, y2, "forward output, relu {relu}");
        }
    }
}
