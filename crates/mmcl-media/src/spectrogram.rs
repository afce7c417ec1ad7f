//! Short-time Fourier transform log-magnitude spectrograms, matching
//! `numpy.log(numpy.abs(librosa.stft(y, n_fft, hop_length)) + 1e-7)`.
//!
//! The FFT plan and window are built once in [`Stft::new`] and shared: `Stft` is `Sync`, so
//! one instance serves every thread. Per call there is one scratch allocation (none with
//! [`Stft::log_magnitude_into`] and a reused [`crate::fast::StftScratch`]), never one per frame.
//!
//! Windowing, FFT and magnitude run in f64 (input and output are f32): in f32 the rounding
//! error of a 256-point FFT of a loud frame (~1e-6 absolute) would exceed the 1e-3 log-domain
//! tolerance against librosa on quiet bins (|S| ~ 1e-3).
use std::sync::Arc;

use realfft::num_complex::Complex64;
use realfft::{RealFftPlanner, RealToComplex};

use crate::error::{MediaError, Result};
use crate::fast::StftScratch;

/// How the signal is extended by `n_fft / 2` samples on each side (`center=True`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PadMode {
    /// Zeros: librosa >= 0.10's default (`pad_mode="constant"`), used by the reference.
    #[default]
    Constant,
    /// Mirror without repeating the edge sample (numpy `"reflect"`): librosa < 0.10.
    Reflect,
}

impl std::str::FromStr for PadMode {
    type Err = MediaError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "constant" | "zeros" => Ok(PadMode::Constant),
            "reflect" => Ok(PadMode::Reflect),
            other => Err(MediaError::InvalidArgument(format!(
                "pad mode {other:?}: expected \"constant\" or \"reflect\""
            ))),
        }
    }
}

/// STFT parameters. The default is the reference's: n_fft 256, hop 128, periodic Hann window
/// of length n_fft, centred frames padded with zeros, `log(|S| + 1e-7)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpectrogramConfig {
    /// FFT size and window length.
    pub n_fft: usize,
    /// Samples between frame starts.
    pub hop: usize,
    /// Pad `n_fft / 2` on both sides so frame `t` is centred on sample `t * hop`.
    pub center: bool,
    /// Padding used when `center` is true.
    pub pad_mode: PadMode,
    /// Added to the magnitude before the natural log.
    pub log_offset: f32,
}

impl Default for SpectrogramConfig {
    fn default() -> Self {
        Self {
            n_fft: 256,
            hop: 128,
            center: true,
            pad_mode: PadMode::Constant,
            log_offset: 1e-7,
        }
    }
}

impl SpectrogramConfig {
    /// Number of frequency bins, `n_fft / 2 + 1` (129 by default).
    pub fn freq_bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Number of frames for a signal of `n` samples (626 for 80,000 samples by default).
    pub fn frames(&self, n: usize) -> usize {
        if self.center {
            1 + n / self.hop
        } else if n < self.n_fft {
            0
        } else {
            1 + (n - self.n_fft) / self.hop
        }
    }
}

/// A spectrogram in row-major `[freq, time]` layout (librosa's orientation).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Spectrogram {
    /// `freq * time` values; `data[f * time + t]`.
    pub data: Vec<f32>,
    /// Number of frequency bins (rows).
    pub freq: usize,
    /// Number of frames (columns).
    pub time: usize,
}

impl Spectrogram {
    /// Value at bin `f`, frame `t`.
    pub fn at(&self, f: usize, t: usize) -> f32 {
        self.data[f * self.time + t]
    }
}

/// A planned STFT: window and FFT plan built once, shareable across threads.
#[derive(Clone)]
pub struct Stft {
    config: SpectrogramConfig,
    window: Vec<f64>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl std::fmt::Debug for Stft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stft")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Stft {
    /// Plans the FFT. Errors if `n_fft` is below 2 or odd, or `hop` is 0.
    pub fn new(config: SpectrogramConfig) -> Result<Self> {
        if config.n_fft < 2 || config.n_fft % 2 != 0 || config.hop == 0 {
            return Err(MediaError::InvalidArgument(format!(
                "STFT needs an even n_fft >= 2 and hop >= 1 (got n_fft {}, hop {})",
                config.n_fft, config.hop
            )));
        }
        let n = config.n_fft;
        // Periodic Hann (scipy.signal.get_window("hann", n, fftbins=True)), computed in f64.
        let window = (0..n)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
            .collect();
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
        Ok(Self {
            config,
            window,
            fft,
        })
    }

    /// The configuration this STFT was planned for.
    pub fn config(&self) -> &SpectrogramConfig {
        &self.config
    }

    /// `log(|STFT(signal)| + log_offset)` as `[freq, time]`.
    pub fn log_magnitude(&self, signal: &[f32]) -> Result<Spectrogram> {
        let mut out = Spectrogram::default();
        self.log_magnitude_into(signal, &mut out, &mut StftScratch::default())?;
        Ok(out)
    }

    /// `|STFT(signal)|` as `[freq, time]` (no log).
    pub fn magnitude(&self, signal: &[f32]) -> Result<Spectrogram> {
        let mut out = Spectrogram::default();
        self.run(signal, &mut out, &mut StftScratch::default(), |m| m)?;
        Ok(out)
    }

    /// As [`Stft::log_magnitude`], writing into `out` and reusing `scratch` (no allocation
    /// once both have reached their size): the form for a loader thread.
    pub fn log_magnitude_into(
        &self,
        signal: &[f32],
        out: &mut Spectrogram,
        scratch: &mut StftScratch,
    ) -> Result<()> {
        let offset = self.config.log_offset;
        self.run(signal, out, scratch, |m| m + offset)?;
        ln_in_place(&mut out.data);
        Ok(())
    }

    fn run(
        &self,
        signal: &[f32],
        out: &mut Spectrogram,
        scratch: &mut StftScratch,
        map: impl Fn(f32) -> f32,
    ) -> Result<()> {
        let cfg = &self.config;
        let (n_fft, hop) = (cfg.n_fft, cfg.hop);
        let n = signal.len();
        let pad = if cfg.center { n_fft / 2 } else { 0 };
        if n == 0 {
            return Err(MediaError::InvalidArgument(
                "STFT of an empty signal".into(),
            ));
        }
        if cfg.center && cfg.pad_mode == PadMode::Reflect && n <= pad {
            return Err(MediaError::InvalidArgument(format!(
                "reflect padding needs more than {pad} samples (got {n})"
            )));
        }
        let frames = cfg.frames(n);
        if frames == 0 {
            return Err(MediaError::InvalidArgument(format!(
                "signal of {n} samples is shorter than n_fft {n_fft} (center = false)"
            )));
        }
        let bins = cfg.freq_bins();
        out.freq = bins;
        out.time = frames;
        out.data.clear();
        out.data.resize(bins * frames, 0.0);
        scratch.magnitude.resize(bins * frames, 0.0);
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        scratch.frame.resize(n_fft, 0.0);
        scratch.spectrum.resize(bins, Complex64::default());
        scratch
            .fft
            .resize(self.fft.get_scratch_len(), Complex64::default());

        for t in 0..frames {
            let start = (t * hop) as isize - pad as isize;
            let frame = &mut scratch.frame;
            if start >= 0 && start as usize + n_fft <= n {
                let s = &signal[start as usize..start as usize + n_fft];
                for ((d, &x), &w) in frame.iter_mut().zip(s).zip(&self.window) {
                    *d = x as f64 * w;
                }
            } else {
                for (i, (d, &w)) in frame.iter_mut().zip(&self.window).enumerate() {
                    let idx = start + i as isize;
                    let x = if (0..n as isize).contains(&idx) {
                        signal[idx as usize]
                    } else {
                        match cfg.pad_mode {
                            PadMode::Constant => 0.0,
                            PadMode::Reflect => signal[reflect_index(idx, n)],
                        }
                    };
                    *d = x as f64 * w;
                }
            }
            // The only possible error is a length mismatch, excluded by construction above.
            self.fft
                .process_with_scratch(frame, &mut scratch.spectrum, &mut scratch.fft)
                .map_err(|e| MediaError::InvalidArgument(format!("FFT: {e}")))?;
            let mag = &mut scratch.magnitude[t * bins..(t + 1) * bins];
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: AVX2 was detected above.
                unsafe { magnitudes_avx2(&scratch.spectrum, mag) };
                continue;
            }
            magnitudes(&scratch.spectrum, mag);
        }
        // [time, freq] -> [freq, time] in blocks of 16 frames (contiguous output runs).
        const BLOCK: usize = 16;
        for t0 in (0..frames).step_by(BLOCK) {
            let t1 = (t0 + BLOCK).min(frames);
            for f in 0..bins {
                let dst = &mut out.data[f * frames + t0..f * frames + t1];
                for (d, t) in dst.iter_mut().zip(t0..t1) {
                    *d = map(scratch.magnitude[t * bins + f]);
                }
            }
        }
        Ok(())
    }
}

/// `|c|` of each bin, in f64 then rounded to f32.
#[inline(always)]
fn magnitudes(spectrum: &[Complex64], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(spectrum) {
        *o = (c.re * c.re + c.im * c.im).sqrt() as f32;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn magnitudes_avx2(spectrum: &[Complex64], out: &mut [f32]) {
    magnitudes(spectrum, out)
}

/// `x = ln(x)` for every element: a branch-free polynomial the compiler vectorises when every
/// value is a positive normal float (always, with the default `log_offset` of 1e-7 and a finite
/// signal), else `f32::ln` (zeros, infinities, NaN keep their exact `ln`).
fn ln_in_place(data: &mut [f32]) {
    if data
        .iter()
        .all(|&x| (f32::MIN_POSITIVE..=f32::MAX).contains(&x))
    {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was just detected.
            unsafe { ln_normal_avx2(data) };
            return;
        }
        data.iter_mut().for_each(|x| *x = ln_normal(*x));
    } else {
        data.iter_mut().for_each(|x| *x = x.ln());
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn ln_normal_avx2(data: &mut [f32]) {
    data.iter_mut().for_each(|x| *x = ln_normal(*x));
}

/// `ln(x)` for a positive normal `x`, within 2e-7 relative / 1e-6 absolute of `f64::ln`:
/// `x = 2^e m` with `m` in `[sqrt(1/2), sqrt(2))`, `ln(m) = 2 atanh(s)`, `s = (m-1)/(m+1)`,
/// `|s| < 0.172`, whose odd series is exhausted in f32 after the `s^9` term.
#[inline(always)]
fn ln_normal(x: f32) -> f32 {
    const SQRT_HALF_BITS: i32 = 0x3f35_04f3;
    let bits = x.to_bits() as i32;
    let e = (bits - SQRT_HALF_BITS) >> 23;
    let m = f32::from_bits((bits - (e << 23)) as u32);
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let p = 1.0 + z * (1.0 / 3.0 + z * (1.0 / 5.0 + z * (1.0 / 7.0 + z * (1.0 / 9.0))));
    e as f32 * std::f32::consts::LN_2 + 2.0 * s * p
}

/// numpy "reflect" index for a signal of length `n` (> 1), repeated reflections included.
fn reflect_index(mut idx: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    idx = idx.rem_euclid(period);
    if idx >= n {
        idx = period - idx;
    }
    idx as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_of_five_seconds_at_16k() {
        let stft = Stft::new(SpectrogramConfig::default()).unwrap();
        let s = stft.log_magnitude(&vec![0.1; 80_000]).unwrap();
        assert_eq!((s.freq, s.time), (129, 626));
    }

    #[test]
    fn fast_ln_matches_f64_ln() {
        let mut worst = (0f64, 0f64);
        let mut x = f32::MIN_POSITIVE;
        while x < f32::MAX / 1.001 {
            let got = ln_normal(x) as f64;
            let want = (x as f64).ln();
            let err = (got - want).abs();
            worst.0 = worst.0.max(err);
            worst.1 = worst.1.max(err / want.abs().max(1e-30));
            x *= 1.000_37;
        }
        // 1 - 2^-24 .. 1 + 2^-23: the region where a relative bound is hardest.
        for i in -200..200 {
            let x = 1.0 + i as f32 * f32::EPSILON;
            worst.0 = worst.0.max((ln_normal(x) as f64 - (x as f64).ln()).abs());
        }
        assert!(worst.0 < 1e-5 && worst.1 < 3e-7, "{worst:?}");
        let mut v = vec![1e-7f32, 0.5, 1.0, 3.0, 1e6];
        let want: Vec<f32> = v.iter().map(|x| x.ln()).collect();
        ln_in_place(&mut v);
        for (a, b) in v.iter().zip(&want) {
            assert!((a - b).abs() <= 2e-6, "{a} {b}");
        }
        // Zero, infinity and NaN fall back to f32::ln.
        let mut v = vec![0.0, 1.0, f32::INFINITY];
        ln_in_place(&mut v);
        assert_eq!(v, vec![f32::NEG_INFINITY, 0.0, f32::INFINITY]);
        let mut v = vec![f32::NAN, 2.0];
        ln_in_place(&mut v);
        assert!(v[0].is_nan() && (v[1] - 2f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn reflect_index_matches_numpy() {
        // numpy.pad([0,1,2,3], 5, mode="reflect") -> [1 2 3 2 1 | 0 1 2 3 | 2 1 0 1 2]
        let left: Vec<usize> = (-5..0).map(|i| reflect_index(i, 4)).collect();
        assert_eq!(left, vec![1, 2, 3, 2, 1]);
        let right: Vec<usize> = (4..9).map(|i| reflect_index(i, 4)).collect();
        assert_eq!(right, vec![2, 1, 0, 1, 2]);
    }

    #[test]
    fn stft_is_sync_and_send() {
        fn assert_sync<T: Sync + Send>() {}
        assert_sync::<Stft>();
    }

    #[test]
    fn tone_peaks_at_its_bin() {
        let stft = Stft::new(SpectrogramConfig::default()).unwrap();
        // 1 kHz at 16 kHz: bin 1000 / (16000 / 256) = 16.
        let x: Vec<f32> = (0..4000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16000.0).sin())
            .collect();
        let s = stft.magnitude(&x).unwrap();
        let t = s.time / 2;
        let peak = (0..s.freq)
            .max_by(|&a, &b| s.at(a, t).total_cmp(&s.at(b, t)))
            .unwrap();
        assert_eq!(peak, 16);
    }

    #[test]
    fn empty_and_bad_config_are_errors() {
        assert!(Stft::new(SpectrogramConfig {
            hop: 0,
            ..Default::default()
        })
        .is_err());
        let stft = Stft::new(SpectrogramConfig::default()).unwrap();
        assert!(stft.log_magnitude(&[]).is_err());
        let reflect = Stft::new(SpectrogramConfig {
            pad_mode: PadMode::Reflect,
            ..Default::default()
        })
        .unwrap();
        assert!(reflect.log_magnitude(&[0.0; 10]).is_err());
    }
}
