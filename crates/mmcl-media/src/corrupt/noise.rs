//! Gaussian noise of a given colour: white i.i.d. draws, or pink / brown by spectral shaping.
//!
//! Pink and brown noise: a spectrum of i.i.d. complex Gaussian bins, each scaled by
//! `max(f, COLOR_CORNER_HZ)^(-beta/2)` (power `~ f^-beta`: pink beta = 1, brown beta = 2), DC
//! set to zero, inverted by a real FFT (realfft) of the next power of two >= the length, and
//! the first `n` samples kept. Below the corner the spectrum is flat: without it a brown
//! noise's power would sit almost entirely below 1 Hz (a slow drift, not a background sound),
//! and the SNR would be spent on content the 256-point STFT cannot resolve.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner};

/// Below this frequency (Hz) pink and brown noise have a flat spectrum (see the module doc).
pub const COLOR_CORNER_HZ: f32 = 20.0;

/// The colour of a noise: its power spectral density falls as `f^-exponent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseColor {
    /// Flat spectrum.
    White,
    /// `1/f` power (-3 dB per octave).
    Pink,
    /// `1/f^2` power (-6 dB per octave).
    Brown,
}

impl NoiseColor {
    /// The exponent beta of `PSD ~ f^-beta`.
    pub fn exponent(self) -> f32 {
        match self {
            NoiseColor::White => 0.0,
            NoiseColor::Pink => 1.0,
            NoiseColor::Brown => 2.0,
        }
    }
}

/// Inverse real FFT plans by length, shared by all threads (planning a 2^17 FFT costs more
/// than running it).
fn inverse_plan(len: usize) -> Arc<dyn ComplexToReal<f32>> {
    static PLANS: OnceLock<Mutex<HashMap<usize, Arc<dyn ComplexToReal<f32>>>>> = OnceLock::new();
    let mut plans = PLANS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    plans
        .entry(len)
        .or_insert_with(|| RealFftPlanner::<f32>::new().plan_fft_inverse(len))
        .clone()
}

/// `n` samples of zero-mean Gaussian noise of `color` at `sample_rate` Hz, scaled to unit
/// mean power (for `n` >= 2; one sample, mean removed, is 0). Deterministic for the state of `rng`.
pub fn colored_noise<R: Rng + ?Sized>(
    color: NoiseColor,
    n: usize,
    sample_rate: u32,
    rng: &mut R,
) -> Vec<f32> {
    if n == 0 {
        return Vec::new();
    }
    let mut out: Vec<f32> = match color {
        NoiseColor::White => (0..n)
            .map(|_| <StandardNormal as Distribution<f32>>::sample(&StandardNormal, rng))
            .collect(),
        _ => shaped(color.exponent(), n, sample_rate, rng),
    };
    let mean = out.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let power = out.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    let scale = if power > 0.0 {
        power.sqrt().recip()
    } else {
        0.0
    };
    for x in &mut out {
        *x = ((*x as f64 - mean) * scale) as f32;
    }
    out
}

fn shaped<R: Rng + ?Sized>(beta: f32, n: usize, sample_rate: u32, rng: &mut R) -> Vec<f32> {
    let len = n.next_power_of_two().max(4);
    let plan = inverse_plan(len);
    let mut spectrum = plan.make_input_vec();
    let bins = spectrum.len(); // len / 2 + 1
    let df = sample_rate as f32 / len as f32;
    let mut normal = || <StandardNormal as Distribution<f32>>::sample(&StandardNormal, rng);
    for (k, c) in spectrum.iter_mut().enumerate().skip(1) {
        let amp = (k as f32 * df).max(COLOR_CORNER_HZ).powf(-beta / 2.0);
        // The Nyquist bin of a real signal is real.
        let im = if k == bins - 1 { 0.0 } else { normal() };
        *c = Complex32::new(amp * normal(), amp * im);
    }
    spectrum[0] = Complex32::new(0.0, 0.0);
    let mut time = plan.make_output_vec();
    // Infallible: the buffers come from the plan and the DC / Nyquist bins are real.
    plan.process(&mut spectrum, &mut time)
        .expect("inverse FFT of plan-sized buffers with real DC and Nyquist bins");
    time.truncate(n);
    time
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use realfft::RealFftPlanner;

    /// Mean power density in `[lo, hi)` Hz of `x` (periodogram, one FFT of the whole signal).
    fn band_density(x: &[f32], sr: f32, lo: f32, hi: f32) -> f64 {
        let mut buf = x.to_vec();
        let plan = RealFftPlanner::<f32>::new().plan_fft_forward(buf.len());
        let mut spec = plan.make_output_vec();
        plan.process(&mut buf, &mut spec).unwrap();
        let df = sr / x.len() as f32;
        let sel: Vec<f64> = spec
            .iter()
            .enumerate()
            .filter(|(k, _)| (lo..hi).contains(&(*k as f32 * df)))
            .map(|(_, c)| c.norm_sqr() as f64)
            .collect();
        sel.iter().sum::<f64>() / sel.len() as f64
    }

    #[test]
    fn spectral_slope_per_octave() {
        let sr = 16_000;
        // (colour, expected density ratio of one octave to the next one up): 0, 3, 6 dB.
        for (color, want_db) in [
            (NoiseColor::White, 0.0),
            (NoiseColor::Pink, 3.01),
            (NoiseColor::Brown, 6.02),
        ] {
            let x = colored_noise(
                color,
                2 * sr as usize,
                sr,
                &mut ChaCha8Rng::seed_from_u64(3),
            );
            let p = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / x.len() as f64;
            assert!((p - 1.0).abs() < 1e-4, "{color:?} power {p}");
            for lo in [250.0, 500.0, 1000.0, 2000.0] {
                let ratio = band_density(&x, sr as f32, lo, 2.0 * lo)
                    / band_density(&x, sr as f32, 2.0 * lo, 4.0 * lo);
                let db = 10.0 * ratio.log10();
                assert!(
                    (db - want_db).abs() < 0.6,
                    "{color:?} {lo} Hz: {db:.2} dB/octave"
                );
            }
        }
    }

    #[test]
    fn deterministic_per_seed_and_any_length() {
        for color in [NoiseColor::White, NoiseColor::Pink, NoiseColor::Brown] {
            // Two samples of zero mean and unit power are +-1 whatever the draw.
            for n in [1, 2, 3, 1000, 4097] {
                let a = colored_noise(color, n, 16_000, &mut ChaCha8Rng::seed_from_u64(1));
                let b = colored_noise(color, n, 16_000, &mut ChaCha8Rng::seed_from_u64(1));
                let c = colored_noise(color, n, 16_000, &mut ChaCha8Rng::seed_from_u64(2));
                assert_eq!(a.len(), n);
                assert_eq!(a, b);
                if n > 2 {
                    assert_ne!(a, c);
                }
            }
        }
    }
}
