//! Mean ± standard deviation across seeds.

use serde::{Deserialize, Serialize};

/// Which divisor the standard deviation uses.
///
/// The default is [`Ddof::Population`] (divide by `n`), which is what `numpy.std` does by
/// default and therefore what mammoth-derived code such as the paper's most likely
/// reported. [`Ddof::Sample`] (divide by `n - 1`, the unbiased variance) is available for
/// users who prefer it; with a single seed it has no value and renders as "n/a".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ddof {
    /// Divide by `n` (numpy's default, `ddof=0`).
    #[default]
    Population,
    /// Divide by `n - 1` (`ddof=1`).
    Sample,
}

/// Mean and standard deviation of one metric over `n` seeds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    pub mean: f64,
    /// `NaN` when undefined (sample std of a single value).
    pub std: f64,
    pub n: usize,
}

impl MeanStd {
    /// Mean ± population std (`ddof = 0`); `None` for no values.
    pub fn of(values: &[f64]) -> Option<MeanStd> {
        MeanStd::with_ddof(values, Ddof::Population)
    }

    /// Mean ± std with the given divisor; `None` for no values.
    pub fn with_ddof(values: &[f64], ddof: Ddof) -> Option<MeanStd> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        let std = match ddof {
            Ddof::Population => (squares / n as f64).sqrt(),
            Ddof::Sample if n < 2 => f64::NAN,
            Ddof::Sample => (squares / (n - 1) as f64).sqrt(),
        };
        Some(MeanStd { mean, std, n })
    }

    /// `"mean ± std"` with `decimals` digits after the point (std "n/a" when undefined).
    pub fn format(&self, decimals: usize) -> String {
        if self.std.is_finite() {
            format!("{:.*} ± {:.*}", decimals, self.mean, decimals, self.std)
        } else {
            format!("{:.*} ± n/a", decimals, self.mean)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_and_sample_std_match_numpy() {
        // numpy: np.std([1,2,3,4]) = 1.118033988749895, np.std(.., ddof=1) = 1.2909944487358056
        let xs = [1.0, 2.0, 3.0, 4.0];
        let p = MeanStd::of(&xs).unwrap();
        assert_eq!(p.mean, 2.5);
        assert!((p.std - 1.118033988749895).abs() < 1e-12);
        assert_eq!(p.n, 4);
        let s = MeanStd::with_ddof(&xs, Ddof::Sample).unwrap();
        assert!((s.std - 1.2909944487358056).abs() < 1e-12);
    }

    #[test]
    fn edge_cases() {
        assert!(MeanStd::of(&[]).is_none());
        let one = MeanStd::of(&[7.5]).unwrap();
        assert_eq!((one.mean, one.std), (7.5, 0.0));
        let one_sample = MeanStd::with_ddof(&[7.5], Ddof::Sample).unwrap();
        assert!(one_sample.std.is_nan());
        assert_eq!(one_sample.format(2), "7.50 ± n/a");
        assert_eq!(MeanStd::of(&[1.0, 2.0]).unwrap().format(2), "1.50 ± 0.50");
    }
}
