//! 2-d max pooling with argmax indices (the ResNet stem's 3x3 / stride 2 / padding 1),
//! differentiable: the gradient goes to the first maximum of each window, as in PyTorch.
//!
//! CPU: a custom op that records the argmax of every window in the forward pass and
//! scatters the gradient there in the backward pass (itself a custom op). Other devices: a
//! composition of candle ops (pad with -inf, max over the `k*k` strided shifts); there a
//! window with two equal maxima sends the gradient to both, which only differs from PyTorch
//! on exact ties.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;
use std::sync::Mutex;

use crate::profile::{timed, OpClass};
use crate::select::use_fast;
use crate::util::{dims4, f32_slice, output_vec};
use crate::OpsError;

/// Window size, stride and implicit -inf padding of a [`max_pool2d`] (same on both axes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPoolConfig {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl Default for MaxPoolConfig {
    /// The ResNet stem's pool: 3x3, stride 2, padding 1.
    fn default() -> Self {
        Self {
            kernel: 3,
            stride: 2,
            padding: 1,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct PoolGeom {
    planes: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
}

impl MaxPoolConfig {
    fn geom(&self, shape: &Shape) -> Result<(usize, usize, PoolGeom)> {
        let (n, c, h, w) = dims4(shape, "max_pool2d")?;
        if self.kernel == 0 || self.stride == 0 || 2 * self.padding > self.kernel {
            return Err(OpsError::Config {
                op: "max_pool2d",
                msg: format!("need kernel, stride >= 1 and padding <= kernel / 2, got {self:?}"),
            }
            .into());
        }
        if h + 2 * self.padding < self.kernel || w + 2 * self.padding < self.kernel {
            return Err(OpsError::Shape {
                op: "max_pool2d",
                msg: format!("input {h}x{w} smaller than the window {self:?}"),
            }
            .into());
        }
        let oh = (h + 2 * self.padding - self.kernel) / self.stride + 1;
        let ow = (w + 2 * self.padding - self.kernel) / self.stride + 1;
        Ok((
            n,
            c,
            PoolGeom {
                planes: n * c,
                h,
                w,
                oh,
                ow,
            },
        ))
    }
}

struct MaxPoolOp {
    cfg: MaxPoolConfig,
    /// Flat index within its input plane of each output's maximum, filled by the forward pass.
    argmax: Mutex<Vec<u32>>,
}

struct MaxPoolBwdOp {
    g: PoolGeom,
    argmax: Vec<u32>,
}

impl CustomOp1 for MaxPoolOp {
    fn name(&self) -> &'static str {
        "mmcl-max-pool2d"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        timed(OpClass::PoolForward, || {
            let (n, c, g) = self.cfg.geom(l.shape())?;
            let x = f32_slice(s, l, "max_pool2d")?;
            let (k, st, pad) = (
                self.cfg.kernel as isize,
                self.cfg.stride as isize,
                self.cfg.padding as isize,
            );
            let plane_out = g.oh * g.ow;
            let mut y = output_vec(g.planes * plane_out); // every window written
            let mut idx = vec![0u32; g.planes * plane_out];
            y.par_chunks_mut(plane_out)
                .zip(idx.par_chunks_mut(plane_out))
                .enumerate()
                .for_each(|(pl, (yp, ip))| {
                    let xp = &x[pl * g.h * g.w..(pl + 1) * g.h * g.w];
                    for oh in 0..g.oh {
                        let h0 = oh as isize * st - pad;
                        let (hs, he) = (h0.max(0) as usize, ((h0 + k).min(g.h as isize)) as usize);
                        for ow in 0..g.ow {
                            let w0 = ow as isize * st - pad;
                            let (ws, we) =
                                (w0.max(0) as usize, ((w0 + k).min(g.w as isize)) as usize);
                            let mut best = f32::NEG_INFINITY;
                            let mut bi = hs * g.w + ws;
                            for ih in hs..he {
                                for iw in ws..we {
                                    let v = xp[ih * g.w + iw];
                                    if v > best || v.is_nan() {
                                        best = v;
                                        bi = ih * g.w + iw;
                                        if v.is_nan() {
                                            break;
                                        }
                                    }
                                }
                            }
                            yp[oh * g.ow + ow] = best;
                            ip[oh * g.ow + ow] = bi as u32;
                        }
                    }
                });
            *self
                .argmax
                .lock()
                .map_err(|_| OpsError::Poisoned { op: "max_pool2d" })? = idx;
            Ok((CpuStorage::F32(y), Shape::from((n, c, g.oh, g.ow))))
        })
    }
    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let (_, _, g) = self.cfg.geom(x.shape())?;
        let argmax = std::mem::take(
            &mut *self
                .argmax
                .lock()
                .map_err(|_| OpsError::Poisoned { op: "max_pool2d" })?,
        );
        if argmax.len() != g.planes * g.oh * g.ow {
            return Err(OpsError::Config {
                op: "max_pool2d",
                msg: "backward called twice or before forward".into(),
            }
            .into());
        }
        let bwd = MaxPoolBwdOp { g, argmax };
        let dx = dy.contiguous()?.apply_op1_no_bwd(&bwd)?;
        // Keep the indices for a second backward through the same graph.
        *self
            .argmax
            .lock()
            .map_err(|_| OpsError::Poisoned { op: "max_pool2d" })? = bwd.argmax;
        Ok(Some(dx.reshape(x.shape())?))
    }
}

impl CustomOp1 for MaxPoolBwdOp {
    fn name(&self) -> &'static str {
        "mmcl-max-pool2d-bwd"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        timed(OpClass::PoolBackward, || {
            let g = self.g;
            let dy = f32_slice(s, l, "max_pool2d-bwd")?;
            let (pin, pout) = (g.h * g.w, g.oh * g.ow);
            let mut dx = vec![0f32; g.planes * pin];
            dx.par_chunks_mut(pin).enumerate().for_each(|(pl, d)| {
                let gi = &dy[pl * pout..(pl + 1) * pout];
                let ii = &self.argmax[pl * pout..(pl + 1) * pout];
                for (v, &i) in gi.iter().zip(ii) {
                    d[i as usize] += *v;
                }
            });
            Ok((CpuStorage::F32(dx), Shape::from((g.planes, g.h, g.w))))
        })
    }
}

/// Max pooling over windows of `x` [N, C, H, W] (floor output size, like PyTorch's default),
/// differentiable w.r.t. `x`.
pub fn max_pool2d(x: &Tensor, cfg: MaxPoolConfig) -> Result<Tensor> {
    cfg.geom(x.shape())?;
    if use_fast(x)? {
        x.contiguous()?.apply_op1(MaxPoolOp {
            cfg,
            argmax: Mutex::new(Vec::new()),
        })
    } else {
        max_pool2d_composed(x, cfg)
    }
}

/// The device-generic composition of candle ops (see the module docs). Public for tests.
pub fn max_pool2d_composed(x: &Tensor, cfg: MaxPoolConfig) -> Result<Tensor> {
    let (n, c, g) = cfg.geom(x.shape())?;
    let (k, s, p) = (cfg.kernel, cfg.stride, cfg.padding);
    // Pad with -inf so that padding never wins, and to a multiple of the stride so that
    // strided sampling is a reshape.
    let hp = ((g.oh - 1) * s + k).max(g.h + 2 * p).div_ceil(s) * s + s;
    let wp = ((g.ow - 1) * s + k).max(g.w + 2 * p).div_ceil(s) * s + s;
    let neg = |dims: (usize, usize, usize, usize)| {
        Tensor::full(f32::NEG_INFINITY, dims, x.device())?.to_dtype(x.dtype())
    };
    let mut xp = x.clone();
    if p > 0 {
        xp = Tensor::cat(&[&neg((n, c, g.h, p))?, &xp], D::Minus1)?;
    }
    if wp > g.w + p {
        xp = Tensor::cat(&[&xp, &neg((n, c, g.h, wp - g.w - p))?], D::Minus1)?;
    }
    if p > 0 {
        xp = Tensor::cat(&[&neg((n, c, p, wp))?, &xp], 2)?;
    }
    if hp > g.h + p {
        xp = Tensor::cat(&[&xp, &neg((n, c, hp - g.h - p, wp))?], 2)?;
    }
    let mut out: Option<Tensor> = None;
    for ki in 0..k {
        for kj in 0..k {
            let v = xp.narrow(2, ki, g.oh * s)?.narrow(3, kj, g.ow * s)?;
            let v = v
                .reshape((n, c, g.oh, s, g.ow, s))?
                .narrow(3, 0, 1)?
                .narrow(5, 0, 1)?
                .reshape((n, c, g.oh, g.ow))?;
            out = Some(match out {
                None => v,
                Some(o) => o.maximum(&v)?,
            });
        }
    }
    Ok(out.expect("kernel >= 1"))
}
