//! The crate's error type.

/// Errors from loss and calibration functions: bad shapes, bad labels, or a candle failure.
#[derive(Debug, thiserror::Error)]
pub enum LossError {
    /// A tensor had the wrong rank or size.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        what: &'static str,
        expected: String,
        got: Vec<usize>,
    },
    /// A label was outside `0..classes`.
    #[error("{what}: label {label} at index {index} is out of range for {classes} classes")]
    LabelOutOfRange {
        what: &'static str,
        label: u32,
        index: usize,
        classes: usize,
    },
    /// Labels must be `u32` so they can index a row without conversion.
    #[error("{what}: labels must be u32, got {got:?}")]
    LabelDtype {
        what: &'static str,
        got: candle_core::DType,
    },
    /// The input was empty where at least one sample is needed.
    #[error("{what}: empty input")]
    Empty { what: &'static str },
    /// A numeric argument was out of its valid range.
    #[error("{what}: {reason}")]
    InvalidArgument { what: &'static str, reason: String },
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, LossError>;

pub(crate) fn shape_err(what: &'static str, expected: &str, got: &[usize]) -> LossError {
    LossError::Shape {
        what,
        expected: expected.to_string(),
        got: got.to_vec(),
    }
}

/// Checks `x` is `[rows, cols]` and returns the sizes.
pub(crate) fn dims2(x: &candle_core::Tensor, what: &'static str) -> Result<(usize, usize)> {
    match x.dims() {
        [r, c] => Ok((*r, *c)),
        got => Err(shape_err(what, "[batch, classes]", got)),
    }
}

/// Checks `labels` is a u32 vector of length `batch` with values below `classes`; returns them.
pub(crate) fn check_labels(
    labels: &candle_core::Tensor,
    batch: usize,
    classes: usize,
    what: &'static str,
) -> Result<Vec<u32>> {
    if labels.dtype() != candle_core::DType::U32 {
        return Err(LossError::LabelDtype {
            what,
            got: labels.dtype(),
        });
    }
    if labels.dims() != [batch] {
        return Err(shape_err(what, &format!("[{batch}] labels"), labels.dims()));
    }
    let values = labels.to_vec1::<u32>()?;
    if let Some((index, &label)) = values
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= classes)
    {
        return Err(LossError::LabelOutOfRange {
            what,
            label,
            index,
            classes,
        });
    }
    Ok(values)
}

pub(crate) fn same_shape(
    a: &candle_core::Tensor,
    b: &candle_core::Tensor,
    what: &'static str,
) -> Result<()> {
    if a.dims() != b.dims() {
        return Err(shape_err(
            what,
            &format!("{:?} (same as first input)", a.dims()),
            b.dims(),
        ));
    }
    Ok(())
}
