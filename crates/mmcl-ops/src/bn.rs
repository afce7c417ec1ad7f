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

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

use crate::profile::{timed, OpClass};
use crate::select::use_fast;
use crate::util::{f32_slice, SendPtr};
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

/// `(sum(g), sum(g * (x - mean)))` with `g = dy` masked by `y > 0` when `relu`, vectorised.
#[inline(always)]
fn lanes_grad_sums(x: &[f32], dy: &[f32], y: &[f32], mean: f32, relu: bool) -> (f64, f64) {
    let (mut a, mut b) = ([0f32; LANES], [0f32; LANES]);
    let n = x.len() / LANES * LANES;
    let (mut ta, mut tb) = (0f64, 0f64);
    if relu {
        for ((xc, gc), yc) in x[..n]
            .chunks_exact(LANES)
            .zip(dy[..n].chunks_exact(LANES))
            .zip(y[..n].chunks_exact(LANES))
        {
            for l in 0..LANES {
                let g = if yc[l] > 0.0 { gc[l] } else { 0.0 };
                a[l] += g;
                b[l] += g * (xc[l] - mean);
            }
        }
        for j in n..x.len() {
            let g = if y[j] > 0.0 { dy[j] } else { 0.0 };
            ta += g as f64;
            tb += (g * (x[j] - mean)) as f64;
        }
    } else {
        for (xc, gc) in x[..n].chunks_exact(LANES).zip(dy[..n].chunks_exact(LANES)) {
            for l in 0..LANES {
                a[l] += gc[l];
                b[l] += gc[l] * (xc[l] - mean);
            }
        }
        for j in n..x.len() {
            ta += dy[j] as f64;
            tb += (dy[j] * (x[j] - mean)) as f64;
        }
    }
    (
        a.iter().map(|&v| v as f64).sum::<f64>() + ta,
        b.iter().map(|&v| v as f64).sum::<f64>() + tb,
    )
}

/// (N, C, elements per channel per sample) of a BN input [N, C, ...].
fn bn_dims(shape: &Shape) -> Result<(usize, usize, usize)> {
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

struct Saved {
    mean: Vec<f32>,
    var: Vec<f32>,
    invstd: Vec<f32>,
    weight: Vec<f32>,
}

struct BnOp {
    eps: f64,
    relu: bool,
    /// Statistics of the forward pass, shared with the caller (who returns mean and var).
    saved: Arc<Mutex<Option<Saved>>>,
}

struct BnBwdOp<'a> {
    relu: bool,
    saved: &'a Saved,
    /// (grad weight, grad bias), filled by the backward kernel.
    grads: Mutex<Option<(Vec<f32>, Vec<f32>)>>,
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
            let count = (n * m) as f64;
            let mut y = vec![0f32; x.len()];
            let yp = SendPtr(y.as_mut_ptr());
            let stats: Vec<(f32, f32, f32)> = (0..c)
                .into_par_iter()
                .map(|ch| {
                    let plane = |i: usize| &x[(i * c + ch) * m..(i * c + ch + 1) * m];
                    let mut sum = 0f64;
                    for i in 0..n {
                        sum += lanes_sum(plane(i), |v| v);
                    }
                    let mean = sum / count;
                    let mf = mean as f32;
                    let mut ss = 0f64;
                    for i in 0..n {
                        ss += lanes_sum(plane(i), |v| (v - mf) * (v - mf));
                    }
                    let var = ss / count;
                    let invstd = 1.0 / (var + self.eps).sqrt();
                    let scale = (w[ch] as f64 * invstd) as f32;
                    let shift = b[ch] - mf * scale;
                    for i in 0..n {
                        // SAFETY: channel `ch` of sample `i` is written by this task only.
                        let out = unsafe {
                            std::slice::from_raw_parts_mut({ yp }.0.add((i * c + ch) * m), m)
                        };
                        if self.relu {
                            for (o, &v) in out.iter_mut().zip(plane(i)) {
                                *o = (v * scale + shift).max(0.0);
                            }
                        } else {
                            for (o, &v) in out.iter_mut().zip(plane(i)) {
                                *o = v * scale + shift;
                            }
                        }
                    }
                    (mf, var as f32, invstd as f32)
                })
                .collect();
            let saved = Saved {
                mean: stats.iter().map(|s| s.0).collect(),
                var: stats.iter().map(|s| s.1).collect(),
                invstd: stats.iter().map(|s| s.2).collect(),
                weight: w.to_vec(),
            };
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
        let dx = x.apply_op3_no_bwd(&dy.contiguous()?, y, &op)?;
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

impl CustomOp3 for BnBwdOp<'_> {
    fn name(&self) -> &'static str {
        "mmcl-batch-norm-train-bwd"
    }
    /// Args: x, dy, y (y only read for the ReLU mask).
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        timed(OpClass::BatchNormBackward, || {
            let (n, c, m) = bn_dims(l1.shape())?;
            let x = f32_slice(s1, l1, "batch_norm_train-bwd")?;
            let dy = f32_slice(s2, l2, "batch_norm_train-bwd")?;
            let y = f32_slice(s3, l3, "batch_norm_train-bwd")?;
            let count = (n * m) as f32;
            let sv = self.saved;
            let mut dx = vec![0f32; x.len()];
            let dxp = SendPtr(dx.as_mut_ptr());
            let relu = self.relu;
            let grads: Vec<(f32, f32)> = (0..c)
                .into_par_iter()
                .map(|ch| {
                    let (mean, invstd) = (sv.mean[ch], sv.invstd[ch]);
                    let range = |i: usize| (i * c + ch) * m..(i * c + ch + 1) * m;
                    // Sweep 1: sum(dy) and sum(dy * (x - mean)), with the ReLU mask applied.
                    let (mut sdy, mut sdyx) = (0f64, 0f64);
                    for i in 0..n {
                        let r = range(i);
                        let (a, bsum) =
                            lanes_grad_sums(&x[r.clone()], &dy[r.clone()], &y[r], mean, relu);
                        sdy += a;
                        sdyx += bsum;
                    }
                    let gbias = sdy as f32;
                    let gweight = (sdyx * invstd as f64) as f32;
                    // Sweep 2: dx = w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)).
                    let k = sv.weight[ch] * invstd;
                    let mdy = gbias / count;
                    let c2 = gweight * invstd / count;
                    for i in 0..n {
                        let r = range(i);
                        // SAFETY: channel `ch` of sample `i` is written by this task only.
                        let out =
                            unsafe { std::slice::from_raw_parts_mut({ dxp }.0.add(r.start), m) };
                        let (xs, gs, ys) = (&x[r.clone()], &dy[r.clone()], &y[r]);
                        if relu {
                            for ((o, (&xv, &gv)), &yv) in
                                out.iter_mut().zip(xs.iter().zip(gs)).zip(ys)
                            {
                                let g = if yv > 0.0 { gv } else { 0.0 };
                                *o = k * (g - mdy - (xv - mean) * c2);
                            }
                        } else {
                            for (o, (&xv, &gv)) in out.iter_mut().zip(xs.iter().zip(gs)) {
                                *o = k * (gv - mdy - (xv - mean) * c2);
                            }
                        }
                    }
                    (gweight, gbias)
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

fn bn_impl(
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

/// BatchNorm in training mode over `x` [N, C, ...] with per-channel `weight`, `bias` [C]:
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
