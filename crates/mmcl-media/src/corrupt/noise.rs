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
    type Plans = HashMap<usize, Arc<dyn ComplexToReal<f32>>>;
    static PLANS: OnceLock<Mutex<Plans>> = OnceLock::new();
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
        let f = (k as f32 * df).max(COLOR_CORNER_HZ);
        // f^(-beta/2); the two colours used avoid `powf` (65k calls cost as much as the FFT).
        let amp = match beta {
            1.0 => f.sqrt().recip(),
            2.0 => f.recip(),
            _ => f.powf(-beta / 2.0),
        };
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

/// Bits of uniform randomness behind one draw of [`fill_gaussian_u16`].
const TABLE_BITS: u32 = 16;

/// The standard normal quantiles at the midpoints `(i + 1/2) / 2^16`, i = 0..2^16, built once
/// by integrating the density (Phi(-6), then Simpson's rule on [-6, 6], 2^20 steps) and inverting the
/// cumulative sums by linear interpolation (error < 1e-6).
fn quantile_table() -> &'static [f32] {
    static TABLE: OnceLock<Vec<f32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        const STEPS: usize = 1 << 20;
        const LO: f64 = -6.0;
        let h = 12.0 / STEPS as f64;
        let pdf = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let n = 1usize << TABLE_BITS;
        let mut table = Vec::with_capacity(n);
        // Phi(-6): small, but 1e-9 of mass moves the extreme quantiles by 3e-5.
        const CDF_LO: f64 = 9.865_876_450_377_012e-10;
        let (mut x, mut cdf) = (LO, CDF_LO);
        for i in 0..n {
            let p = (i as f64 + 0.5) / n as f64;
            loop {
                let next = cdf + h / 6.0 * (pdf(x) + 4.0 * pdf(x + h / 2.0) + pdf(x + h));
                if next >= p {
                    table.push((x + h * (p - cdf) / (next - cdf)) as f32);
                    break;
                }
                cdf = next;
                x += h;
            }
        }
        table
    })
}

/// Fills `out` with standard normal draws at 16-bit resolution: each is the quantile at the
/// midpoint of one of 2^16 equal-probability cells (so |z| <= 4.33), four draws per `u64` of
/// `rng`. About 4x cheaper than exact draws for the millions a clip's frames need, and
/// indistinguishable once scaled and rounded to u8 pixels.
pub fn fill_gaussian_u16<R: Rng + ?Sized>(out: &mut [f32], rng: &mut R) {
    let table = quantile_table();
    let mut chunks = out.chunks_exact_mut(4);
    for c in &mut chunks {
        let r = rng.next_u64();
        for (k, z) in c.iter_mut().enumerate() {
            *z = table[(r >> (16 * k)) as u16 as usize];
        }
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let r = rng.next_u64();
        for (k, z) in rest.iter_mut().enumerate() {
            *z = table[(r >> (16 * k)) as u16 as usize];
        }
    }
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
    fn the_quantile_table_is_a_standard_normal() {
        let t = quantile_table();
        assert_eq!(t.len(), 1 << 16);
        assert!(t.windows(2).all(|w| w[0] < w[1]));
        // Symmetric, median 0, and known quantiles: Phi^-1(0.975) = 1.959964.
        for i in [0usize, 1, 100, 30_000] {
            assert!(
                (t[i] + t[65_535 - i]).abs() < 2e-6,
                "{i}: {} {}",
                t[i],
                t[65_535 - i]
            );
        }
        let p975 = (0.975f64 * 65_536.0 - 0.5) as usize; // the cell whose midpoint is 0.975
        let mid = (p975 as f64 + 0.5) / 65_536.0;
        assert!((mid - 0.975).abs() < 1e-5);
        assert!((t[p975] as f64 - 1.959_964).abs() < 2e-4, "{}", t[p975]);
        assert!((t[65_535] as f64 - 4.324_919).abs() < 1e-4, "{}", t[65_535]);
        let mut z = vec![0f32; 400_001];
        fill_gaussian_u16(&mut z, &mut ChaCha8Rng::seed_from_u64(9));
        let n = z.len() as f64;
        let mean = z.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = z.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(
            mean.abs() < 0.005 && (var - 1.0).abs() < 0.01,
            "{mean} {var}"
        );
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
