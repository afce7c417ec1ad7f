//! Softmax, log-softmax and cross-entropy with autograd.

use candle_core::{DType, Tensor, D};

use crate::error::{check_labels, dims2, Result};

/// Row-wise log-softmax of `[batch, classes]` logits.
///
/// The row maximum is subtracted for stability and detached: the result does not depend on it,
/// so detaching only saves a backward pass through the max reduction.
pub fn log_softmax(logits: &Tensor) -> Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let log_sum = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(shifted.broadcast_sub(&log_sum)?)
}

/// Row-wise softmax of `[batch, classes]` logits (differentiable).
pub fn softmax(logits: &Tensor) -> Result<Tensor> {
    Ok(log_softmax(logits)?.exp()?)
}

/// Mean cross-entropy of `[batch, classes]` logits against `u32` labels `[batch]`, as
/// `torch.nn.functional.cross_entropy` with `reduction="mean"`.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (batch, classes) = dims2(logits, "cross_entropy logits")?;
    check_labels(labels, batch, classes, "cross_entropy labels")?;
    let picked = log_softmax(logits)?.gather(&labels.unsqueeze(1)?, 1)?;
    Ok(picked.mean_all()?.neg()?)
}

/// Softmax probability of each sample's true class, `[batch]`, detached (for decisions only).
pub fn true_class_probability(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (batch, classes) = dims2(logits, "true_class_probability logits")?;
    check_labels(labels, batch, classes, "true_class_probability labels")?;
    let probs = softmax(&logits.detach())?;
    Ok(probs.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?)
}

/// Predicted class (first maximum on ties) of `[batch, classes]` scores.
pub fn predictions(scores: &Tensor) -> Result<Vec<u32>> {
    let (batch, classes) = dims2(scores, "predictions scores")?;
    let values = scores
        .detach()
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    Ok((0..batch)
        .map(|i| first_argmax(&values[i * classes..(i + 1) * classes]) as u32)
        .collect())
}

/// Index of the first maximum (NaN never wins).
pub(crate) fn first_argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate().skip(1) {
        if v > row[best] || row[best].is_nan() {
            best = j;
        }
    }
    best
}
