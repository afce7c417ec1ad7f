//! Relational knowledge distillation (Park et al. 2019) as used by SAMM to align modalities.
//!
//! Both inputs are flattened to `[N, D]` and L2-normalised per row (`F.normalize`, eps 1e-12).
//! The distance potential is the pairwise Euclidean distance matrix, `sqrt(clamp(d^2, 1e-12))`,
//! divided by its mean; the loss is SmoothL1 (beta 1, mean over all `N^2` entries) between the
//! student's and the teacher's potentials. The teacher is always detached (the `sg(.)` of SAMM).
//!
//! Squared distances use the reference's `|x_i|^2 + |x_j|^2 - 2 x_i.x_j` (one matmul) with the
//! diagonal, 0 in exact arithmetic, set to exactly 0 before the clamp: the reference leaves f32
//! rounding noise there, which can pass the clamp and leak a (meaningless) gradient.

use candle_core::{DType, Tensor};

use crate::error::{same_shape, shape_err, LossError, Result};
use crate::regression::smooth_l1;

/// Which entries the distance mean runs over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RkdMean {
    /// The SAMM reference: all `N^2` entries (the clamped diagonal is `1e-6 > 0` and counts),
    /// and the potential is `d / (mean + 1e-8)`.
    #[default]
    Inclusive,
    /// The original RKD: the diagonal is set to 0 and the mean runs over the positive
    /// (off-diagonal) entries; the potential is `d / mean`.
    Exclusive,
}

/// `x` reshaped to `[N, D]` (all trailing dimensions flattened).
fn flatten_rows(x: &Tensor, what: &'static str) -> Result<Tensor> {
    if x.rank() < 2 {
        return Err(shape_err(what, "[N, ...] with rank >= 2", x.dims()));
    }
    if x.dim(0)? == 0 {
        return Err(LossError::Empty { what });
    }
    Ok(x.flatten_from(1)?)
}

/// `max(x, min)` with torch's clamp gradient: passes where `x >= min`, zero elsewhere.
pub(crate) fn clamp_min(x: &Tensor, min: f64) -> Result<Tensor> {
    let floor = (x.zeros_like()? + min)?;
    Ok(x.ge(min)?.where_cond(x, &floor)?)
}

/// `x / max(||x||_2, 1e-12)` along the last dimension, as `F.normalize(x, dim=-1)`.
///
/// The norm is `sqrt(clamp(sum x^2, 1e-24))`: the same value and gradient, and never takes the
/// derivative of `sqrt` at 0 (which is NaN in candle).
pub fn l2_normalize_last(x: &Tensor) -> Result<Tensor> {
    let sum_sq = x.sqr()?.sum_keepdim(x.rank() - 1)?;
    let norm = clamp_min(&sum_sq, 1e-24)?.sqrt()?;
    Ok(x.broadcast_div(&norm)?)
}

/// Pairwise Euclidean distances `[N, N]` of the rows of `x` `[N, D]`, `sqrt(clamp(., 1e-12))`.
pub fn pairwise_distance(x: &Tensor) -> Result<Tensor> {
    let n = x.dim(0)?;
    let sq_norm = x.sqr()?.sum_keepdim(1)?; // [N, 1]
    let gram = x.matmul(&x.t()?)?;
    let sq = sq_norm.broadcast_add(&sq_norm.t()?)?.sub(&(gram * 2.0)?)?;
    // The diagonal is 0 in exact arithmetic; zero it so rounding cannot leak a gradient.
    let off_diagonal = Tensor::eye(n, x.dtype(), x.device())?.affine(-1.0, 1.0)?;
    Ok(clamp_min(&(sq * off_diagonal)?, 1e-12)?.sqrt()?)
}

/// Distance potential of the rows of `x` `[N, D]`: distances divided by their mean.
pub fn distance_potential(x: &Tensor, mean: RkdMean) -> Result<Tensor> {
    let n = x.dim(0)?;
    let mut d = pairwise_distance(x)?;
    if mean == RkdMean::Exclusive {
        let off_diagonal = Tensor::eye(n, x.dtype(), x.device())?.affine(-1.0, 1.0)?;
        d = (d * off_diagonal)?;
    }
    // `d[d > 0].mean()`: the count is data, not a function of x.
    let count = d
        .detach()
        .gt(0.0)?
        .to_dtype(DType::F64)?
        .sum_all()?
        .to_scalar::<f64>()?;
    if count == 0.0 {
        // Exclusive mean of a single sample: no pairs, nothing to align (torch would give NaN;
        // a 1-sample batch must not poison training).
        return Ok(d);
    }
    let mu = (d.sum_all()? / count)?;
    let mu = match mean {
        RkdMean::Inclusive => (mu + 1e-8)?,
        RkdMean::Exclusive => mu,
    };
    Ok(d.broadcast_div(&mu)?)
}

/// Angle potential `[N, N, N]` of the rows of `x`: cosines of the angles `x_j - x_i`, `x_k - x_i`.
pub fn angle_potential(x: &Tensor) -> Result<Tensor> {
    let e = x.unsqueeze(0)?.broadcast_sub(&x.unsqueeze(1)?)?;
    let e = l2_normalize_last(&e)?;
    Ok(e.matmul(&e.transpose(1, 2)?.contiguous()?)?)
}

fn prepare(student: &Tensor, teacher: &Tensor, what: &'static str) -> Result<(Tensor, Tensor)> {
    let s = flatten_rows(student, what)?;
    let t = flatten_rows(&teacher.detach(), what)?;
    same_shape(&s, &t, what)?;
    Ok((l2_normalize_last(&s)?, l2_normalize_last(&t)?))
}

/// RKD distance loss of `student` towards the (detached) `teacher`, both `[N, ...]`.
pub fn rkd_distance(student: &Tensor, teacher: &Tensor, mean: RkdMean) -> Result<Tensor> {
    let (s, t) = prepare(student, teacher, "rkd_distance")?;
    smooth_l1(
        &distance_potential(&s, mean)?,
        &distance_potential(&t, mean)?,
        1.0,
    )
}

/// RKD angle loss of `student` towards the (detached) `teacher` (SmoothL1 mean over `N^3`).
/// Off in SAMM by default (the reference computes it only when asked).
pub fn rkd_angle(student: &Tensor, teacher: &Tensor) -> Result<Tensor> {
    let (s, t) = prepare(student, teacher, "rkd_angle")?;
    smooth_l1(&angle_potential(&s)?, &angle_potential(&t)?, 1.0)
}
