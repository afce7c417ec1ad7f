//! The three tensor operations the network needs beyond plain candle ops, behind one seam.
//!
//! Interim: these are candle compositions with the exact signatures agreed for `mmcl_ops`
//! (`conv2d`, `max_pool2d`, `batch_norm_train`); they will forward to `mmcl_ops` once it
//! lands. Each composition has correct gradients for every input shape:
//! - conv2d pads explicitly and crops the bottom/right rows and columns that no output
//!   reads, so candle's transposed-conv backward never sees an off-by-one output size
//!   (candle 0.11 fails with "shape mismatch in add" for stride 2 when H and W differ in
//!   parity);
//! - max pool 3x3/2/1 is three shifted element-wise maxima per axis (candle 0.11 has no
//!   backward for overlapping windows);
//! - BatchNorm in training mode differentiates through the batch mean and variance.
use candle_core::{Result, Tensor, D};

/// Stride and zero padding of a bias-free, single-group 2-D convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dConfig {
    pub stride: usize,
    pub padding: usize,
}

/// Max-pool window; the ResNet stem uses kernel 3, stride 2, padding 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPoolConfig {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

/// `x` [N, Cin, H, W] * `w` [Cout, Cin, kh, kw] -> [N, Cout, Ho, Wo].
pub fn conv2d(x: &Tensor, w: &Tensor, cfg: Conv2dConfig) -> Result<Tensor> {
    let (_, _, h, wd) = x.dims4()?;
    let (_, _, kh, kw) = w.dims4()?;
    let (s, p) = (cfg.stride, cfg.padding);
    if s == 1 {
        return x.conv2d(w, p, 1, 1, 1);
    }
    let x = if p > 0 {
        x.pad_with_zeros(2, p, p)?.pad_with_zeros(3, p, p)?
    } else {
        x.clone()
    };
    let (hp, wp) = (h + 2 * p, wd + 2 * p);
    if hp < kh || wp < kw {
        candle_core::bail!("conv2d: input {h}x{wd} (padding {p}) smaller than kernel {kh}x{kw}");
    }
    // Keep only the rows/columns some output window reads.
    let used_h = (hp - kh) / s * s + kh;
    let used_w = (wp - kw) / s * s + kw;
    let x = x.narrow(2, 0, used_h)?.narrow(3, 0, used_w)?;
    x.conv2d(w, 0, s, 1, 1)
}

/// Max pooling; only kernel 3 / stride 2 / padding 1 (the ResNet stem) is supported.
/// Zero padding equals PyTorch's -inf padding here because the input is a ReLU output
/// (non-negative) and every window holds at least one real element.
pub fn max_pool2d(x: &Tensor, cfg: MaxPoolConfig) -> Result<Tensor> {
    if cfg
        != (MaxPoolConfig {
            kernel: 3,
            stride: 2,
            padding: 1,
        })
    {
        candle_core::bail!(
            "max_pool2d: only kernel 3, stride 2, padding 1 is supported, got {cfg:?}"
        );
    }
    let x = pool_axis(x, 2)?;
    pool_axis(&x, 3)
}

/// out[i] = max(xp[2i], xp[2i+1], xp[2i+2]) along `dim`, xp = x zero-padded by 1 (and to even length).
fn pool_axis(x: &Tensor, dim: usize) -> Result<Tensor> {
    let n = x.dim(dim)?;
    let out = (n + 2 - 3) / 2 + 1;
    let padded_len = 2 * (out + 1);
    let xp = x.pad_with_zeros(dim, 1, padded_len - n - 1)?;
    let mut shape = xp.dims().to_vec();
    shape[dim] = out + 1;
    shape.insert(dim + 1, 2);
    let r = xp.reshape(shape)?;
    let even = r.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)?;
    let odd = r.narrow(dim + 1, 1, 1)?.squeeze(dim + 1)?;
    let a = even.narrow(dim, 0, out)?;
    let b = odd.narrow(dim, 0, out)?;
    let c = even.narrow(dim, 1, out)?;
    a.maximum(&b)?.maximum(&c)
}

/// Training-mode batch normalisation over (N, H, W) per channel.
/// Returns (y, batch mean [C], biased batch variance [C]); mean/var are detached.
pub fn batch_norm_train(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let c = x.dim(1)?;
    let mean = x
        .mean_keepdim(D::Minus1)?
        .mean_keepdim(D::Minus2)?
        .mean_keepdim(0)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred
        .sqr()?
        .mean_keepdim(D::Minus1)?
        .mean_keepdim(D::Minus2)?
        .mean_keepdim(0)?;
    let inv_std = (var.clone() + eps)?.sqrt()?.recip()?;
    let y = centred
        .broadcast_mul(&inv_std)?
        .broadcast_mul(&weight.reshape((1, c, 1, 1))?)?
        .broadcast_add(&bias.reshape((1, c, 1, 1))?)?;
    Ok((y, mean.flatten_all()?.detach(), var.flatten_all()?.detach()))
}
