//! Element-wise regression losses: SmoothL1 (Huber with beta) and mean squared error.

use candle_core::Tensor;

use crate::error::{same_shape, LossError, Result};

/// Mean SmoothL1 loss between same-shaped tensors, as `torch.nn.functional.smooth_l1_loss`
/// with `reduction="mean"`: `0.5 d^2 / beta` where `|d| < beta`, else `|d| - 0.5 beta`.
pub fn smooth_l1(input: &Tensor, target: &Tensor, beta: f64) -> Result<Tensor> {
    same_shape(input, target, "smooth_l1")?;
    if beta.is_nan() || beta <= 0.0 {
        return Err(LossError::InvalidArgument {
            what: "smooth_l1 beta",
            reason: format!("must be > 0, got {beta}"),
        });
    }
    let diff = (input - target)?;
    let abs = diff.abs()?;
    let quadratic = (diff.sqr()? * (0.5 / beta))?;
    let linear = (&abs - 0.5 * beta)?;
    let inside = abs.lt(beta)?;
    Ok(inside.where_cond(&quadratic, &linear)?.mean_all()?)
}

/// Mean squared error over every element (`torch.nn.functional.mse_loss`, mean reduction).
///
/// The target is detached: in SAMM it is a stored logit vector, never a function of the model.
pub fn consistency_mse(prediction: &Tensor, target: &Tensor) -> Result<Tensor> {
    same_shape(prediction, target, "consistency_mse")?;
    Ok((prediction - target.detach())?.sqr()?.mean_all()?)
}
