//! Which implementation the ops use on the CPU, chosen once per process by the environment
//! variable `MMCL_KERNELS`:
//!
//! - unset, empty or `fast`: the custom CPU kernels of this crate (the default);
//! - `composed`: the compositions of candle ops that other devices use
//!   ([`crate::conv2d_composed`], [`crate::max_pool2d_composed`],
//!   [`crate::batch_norm_train_composed`], `(a + b).relu()`), i.e. the training step as it
//!   ran before the fast kernels existed. For before/after timings of whole runs
//!   (`MMCL_KERNELS=composed cargo xtask reproduce`), never needed for correctness.
//!
//! Any other value is reported by [`kernels`] as an error the first time an op runs.

use std::sync::OnceLock;

use crate::OpsError;

/// The CPU implementation selected by `MMCL_KERNELS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// This crate's CPU kernels (custom ops).
    Fast,
    /// candle compositions, as on non-CPU devices.
    Composed,
}

impl Kernels {
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Fast => "fast",
            Kernels::Composed => "composed",
        }
    }
}

/// Parses a `MMCL_KERNELS` value (`None` = unset).
pub fn parse_kernels(value: Option<&str>) -> Result<Kernels, OpsError> {
    match value.map(str::trim) {
        None | Some("") | Some("fast") => Ok(Kernels::Fast),
        Some("composed") => Ok(Kernels::Composed),
        Some(other) => Err(OpsError::Config {
            op: "MMCL_KERNELS",
            msg: format!("expected `fast` or `composed`, got `{other}`"),
        }),
    }
}

static SELECTED: OnceLock<Result<Kernels, String>> = OnceLock::new();

/// The implementation selected by `MMCL_KERNELS` (read once, on first use).
pub fn kernels() -> candle_core::Result<Kernels> {
    SELECTED
        .get_or_init(|| {
            let v = std::env::var("MMCL_KERNELS").ok();
            parse_kernels(v.as_deref()).map_err(|e| e.to_string())
        })
        .clone()
        .map_err(candle_core::Error::msg)
}

/// Whether an op on `t` should take the fast CPU kernel.
pub(crate) fn use_fast(t: &candle_core::Tensor) -> candle_core::Result<bool> {
    Ok(t.device().is_cpu() && t.dtype() == candle_core::DType::F32 && kernels()? == Kernels::Fast)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_values_and_rejects_others() {
        assert_eq!(parse_kernels(None).unwrap(), Kernels::Fast);
        assert_eq!(parse_kernels(Some("fast")).unwrap(), Kernels::Fast);
        assert_eq!(
            parse_kernels(Some(" composed ")).unwrap(),
            Kernels::Composed
        );
        let e = parse_kernels(Some("fastest")).unwrap_err().to_string();
        assert!(e.contains("MMCL_KERNELS") && e.contains("fastest"), "{e}");
    }
}
