//! Audio corruptions of a mono f32 waveform (the crop the STFT sees).
use rand::Rng;

use super::noise::{colored_noise, NoiseColor};
use super::spec::{AudioCorruption, Severity};
use crate::error::{MediaError, Result};

/// Target SNR (dB) of the additive noises (white, pink, brown) at severities 1..=5.
pub const SNR_DB: [f32; 5] = [20.0, 15.0, 10.0, 5.0, 0.0];
/// Clip level as a fraction of the waveform's peak at severities 1..=5: the signal is
/// amplified by `1 / level` and hard-clipped at the original peak (gain +6, +10.5, +14,
/// +20, +26 dB).
pub const CLIP_LEVEL: [f32; 5] = [0.5, 0.3, 0.2, 0.1, 0.05];
/// Fraction of the duration zeroed by dropouts at severities 1..=5.
pub const DROPOUT_FRACTION: [f32; 5] = [0.1, 0.2, 0.3, 0.4, 0.5];
/// Length of one dropout segment in seconds (the last one of a waveform may be shorter).
pub const DROPOUT_SEGMENT_S: f32 = 0.1;

impl AudioCorruption {
    /// Corrupts `wave` (mono, `sample_rate` Hz) in place with draws from `rng`.
    ///
    /// Severity 0 returns at once without touching `wave` or `rng`. Errors (wave unchanged):
    /// `sample_rate` 0, or a non-finite sample (NaN / infinity) for the kinds that measure
    /// the signal.
    pub fn apply<R: Rng + ?Sized>(
        &self,
        wave: &mut [f32],
        sample_rate: u32,
        rng: &mut R,
    ) -> Result<()> {
        if self.is_identity() {
            return Ok(());
        }
        if sample_rate == 0 {
            return Err(MediaError::InvalidArgument(
                "audio corruption needs a positive sample rate".into(),
            ));
        }
        if *self == AudioCorruption::Missing {
            wave.fill(0.0);
            return Ok(());
        }
        if let Some(i) = wave.iter().position(|x| !x.is_finite()) {
            return Err(MediaError::InvalidArgument(format!(
                "audio corruption `{self}`: sample {i} is {}",
                wave[i]
            )));
        }
        let pick = |s: Severity, t: &[f32; 5]| s.pick(t).expect("severity 0 returned above");
        match *self {
            AudioCorruption::White(s) => {
                add_noise(wave, NoiseColor::White, pick(s, &SNR_DB), sample_rate, rng)
            }
            AudioCorruption::Pink(s) => {
                add_noise(wave, NoiseColor::Pink, pick(s, &SNR_DB), sample_rate, rng)
            }
            AudioCorruption::Brown(s) => {
                add_noise(wave, NoiseColor::Brown, pick(s, &SNR_DB), sample_rate, rng)
            }
            AudioCorruption::Clip(s) => overdrive(wave, pick(s, &CLIP_LEVEL)),
            AudioCorruption::Dropout(s) => {
                let seg = ((DROPOUT_SEGMENT_S * sample_rate as f32).round() as usize).max(1);
                dropout(wave, pick(s, &DROPOUT_FRACTION), seg, rng)
            }
            AudioCorruption::Missing => unreachable!("handled above"),
        }
        Ok(())
    }
}

/// Mean power of `x` (f64 accumulation).
pub fn mean_power(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / x.len() as f64
}

/// Adds noise of `color` scaled so that `10 log10(P_wave / P_noise)` is `snr_db`, with the
/// powers measured on this waveform and this noise draw (exact up to rounding, not only in
/// expectation). A silent waveform stays silent (there is no signal level to refer to).
fn add_noise<R: Rng + ?Sized>(
    wave: &mut [f32],
    color: NoiseColor,
    snr_db: f32,
    sample_rate: u32,
    rng: &mut R,
) {
    let signal = mean_power(wave);
    if signal == 0.0 {
        return;
    }
    let noise = colored_noise(color, wave.len(), sample_rate, rng);
    let noise_power = mean_power(&noise);
    if noise_power == 0.0 {
        return; // one sample: no zero-mean noise exists
    }
    let gain = (signal / noise_power / 10f64.powf(snr_db as f64 / 10.0)).sqrt() as f32;
    for (x, n) in wave.iter_mut().zip(&noise) {
        *x += gain * n;
    }
}

/// Amplifies by `1 / level` and clips at the original peak: `clamp(x / level, -peak, peak)`.
fn overdrive(wave: &mut [f32], level: f32) {
    let peak = wave.iter().fold(0f32, |m, &x| m.max(x.abs()));
    for x in wave.iter_mut() {
        *x = (*x / level).clamp(-peak, peak);
    }
}

/// Zeroes `round(fraction * n)` samples in segments of `segment` samples (the last one
/// shorter), placed at random without overlap: the `n - zeroed` kept samples are split into
/// the gaps before, between and after the segments at uniformly drawn cut points.
fn dropout<R: Rng + ?Sized>(wave: &mut [f32], fraction: f32, segment: usize, rng: &mut R) {
    let n = wave.len();
    let zeroed = ((fraction as f64 * n as f64).round() as usize).min(n);
    if zeroed == 0 {
        return;
    }
    let count = zeroed.div_ceil(segment);
    let kept = n - zeroed;
    let mut cuts: Vec<usize> = (0..count).map(|_| rng.random_range(0..=kept)).collect();
    cuts.sort_unstable();
    let mut before = 0; // zeroed samples of the earlier segments
    for (i, &cut) in cuts.iter().enumerate() {
        let len = if i + 1 == count {
            zeroed - segment * (count - 1)
        } else {
            segment
        };
        let start = cut + before;
        wave[start..start + len].fill(0.0);
        before += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn dropout_zeroes_the_exact_fraction() {
        for n in [1usize, 7, 1600, 16_001] {
            for f in DROPOUT_FRACTION {
                let mut w = vec![1.0f32; n];
                dropout(&mut w, f, 160, &mut ChaCha8Rng::seed_from_u64(n as u64));
                let zeros = w.iter().filter(|&&x| x == 0.0).count();
                assert_eq!(zeros, (f as f64 * n as f64).round() as usize, "n {n} f {f}");
            }
        }
    }

    #[test]
    fn overdrive_keeps_the_peak_and_scales_the_rest() {
        let mut w = vec![0.1f32, -0.8, 0.02, 0.5];
        overdrive(&mut w, 0.5);
        assert_eq!(w, vec![0.2, -0.8, 0.04, 0.8]);
    }
}
