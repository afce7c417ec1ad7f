//! Audio rendering: a class's [`AudioSignature`] plus per-clip variation -> mono waveform.
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::signature::{AudioSignature, Timbre};

/// Per-clip audio variation ranges (documented in the dataset report).
pub const F0_JITTER: f32 = 0.03;
/// Pulse-rate jitter (relative).
pub const RATE_JITTER: f32 = 0.08;
/// Background noise SNR range (dB, relative to the class sound).
pub const SNR_DB: (f32, f32) = (0.0, 18.0);
/// Probability of an unrelated distractor tone.
pub const DISTRACTOR_PROB: f64 = 0.4;

/// Renders `n` samples at `sr` Hz, values in [-1, 1].
pub fn render_audio(sig: &AudioSignature, sr: u32, n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let srf = sr as f32;
    let f0 = sig.f0 * (1.0 + rng.random_range(-F0_JITTER..=F0_JITTER));
    let rate = sig.pulse_rate * (1.0 + rng.random_range(-RATE_JITTER..=RATE_JITTER));
    let onset: f32 = rng.random();
    let fm_phase = rng.random::<f32>() * std::f32::consts::TAU;
    let mut phase = rng.random::<f32>() * std::f32::consts::TAU;
    let noise_level = sig.noise_level * rng.random_range(0.7..1.3f32);
    let snr_db = rng.random_range(SNR_DB.0..SNR_DB.1);
    let peak = rng.random_range(0.3..0.9f32);

    // Harmonic amplitudes, dropping partials that would alias.
    let top = f0 * (1.0 + sig.fm_depth);
    let amps: Vec<f32> = (1..=sig.harmonics)
        .take_while(|&h| h as f32 * top < 0.45 * srf)
        .map(|h| sig.harmonic_decay.powi(h as i32 - 1))
        .collect();
    let tone_norm = 1.0
        / amps
            .iter()
            .map(|a| a * a / 2.0)
            .sum::<f32>()
            .sqrt()
            .max(1e-6);

    let mut band = Biquad::band_pass(sig.noise_center.min(0.45 * srf), sig.noise_q, srf);
    // A band-passed white noise has RMS about sqrt(bandwidth / nyquist); rescale to ~1.
    let band_gain = (srf / 2.0 / (sig.noise_center.min(0.45 * srf) / sig.noise_q)).sqrt();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = i as f32 / srf;
        let f =
            f0 * (1.0 + sig.fm_depth * (std::f32::consts::TAU * sig.fm_rate * t + fm_phase).sin());
        phase = (phase + std::f32::consts::TAU * f / srf) % std::f32::consts::TAU;
        // sin(h * phase) by the Chebyshev recurrence: one sin/cos per sample.
        let (s1, c) = phase.sin_cos();
        let (mut prev, mut cur, mut tone) = (0.0f32, s1, 0.0f32);
        for &a in &amps {
            tone += a * cur;
            let next = 2.0 * c * cur - prev;
            prev = cur;
            cur = next;
        }
        let env = envelope(sig.timbre, t, rate, sig.duty, onset);
        let white: f32 = StandardNormal.sample(rng);
        let noise = band.process(white) * band_gain * noise_level;
        out.push(env * (tone * tone_norm * std::f32::consts::FRAC_1_SQRT_2 + noise));
    }

    // Background: pinkish noise (one-pole low-passed white + white) at a random SNR.
    let rms = (out.iter().map(|x| x * x).sum::<f32>() / n.max(1) as f32)
        .sqrt()
        .max(1e-4);
    let bg = rms / 10f32.powf(snr_db / 20.0);
    let mut lp = 0.0f32;
    for x in out.iter_mut() {
        let w: f32 = StandardNormal.sample(rng);
        lp = 0.97 * lp + 0.03 * w;
        *x += bg * (0.5 * w + 3.0 * lp);
    }
    // Sometimes an unrelated steady tone (e.g. a hum or a bird in the background).
    if rng.random_bool(DISTRACTOR_PROB) {
        let fd = (80f32.ln() + rng.random::<f32>() * ((0.4 * srf).ln() - 80f32.ln())).exp();
        let level =
            rms * 10f32.powf(-rng.random_range(6.0..14.0f32) / 20.0) * std::f32::consts::SQRT_2;
        let am = rng.random_range(0.2..1.5f32);
        let ph: f32 = rng.random::<f32>() * std::f32::consts::TAU;
        for (i, x) in out.iter_mut().enumerate() {
            let t = i as f32 / srf;
            let a = 0.6 + 0.4 * (std::f32::consts::TAU * am * t).sin();
            *x += level * a * (std::f32::consts::TAU * fd * t + ph).sin();
        }
    }
    let max = out.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-6);
    let g = peak / max;
    out.iter_mut().for_each(|x| *x *= g);
    out
}

/// The loudness envelope of the class's rhythm at time `t`.
fn envelope(timbre: Timbre, t: f32, rate: f32, duty: f32, onset: f32) -> f32 {
    let period = 1.0 / rate;
    let u = (t * rate + onset).fract();
    let on = duty * period;
    let tau = u * period;
    let pulse = if u >= duty {
        0.0
    } else if timbre == Timbre::Impact {
        (tau / 0.002).min(1.0) * (-tau / (on / 3.0)).exp()
    } else {
        let ramp = 0.015;
        (tau / ramp).min(1.0) * ((on - tau) / ramp).min(1.0)
    };
    match timbre {
        // An engine never stops: its rhythm is an amplitude modulation.
        Timbre::Engine => 0.55 + 0.45 * pulse,
        _ => pulse,
    }
}

/// RBJ band-pass biquad (constant 0 dB peak gain).
struct Biquad {
    b0: f32,
    b2: f32,
    a1: f32,
    a2: f32,
    x1: f32,
    x2: f32,
    y1: f32,
    y2: f32,
}

impl Biquad {
    fn band_pass(fc: f32, q: f32, sr: f32) -> Self {
        let w0 = std::f32::consts::TAU * fc / sr;
        let alpha = w0.sin() / (2.0 * q);
        let a0 = 1.0 + alpha;
        Self {
            b0: alpha / a0,
            b2: -alpha / a0,
            a1: -2.0 * w0.cos() / a0,
            a2: (1.0 - alpha) / a0,
            x1: 0.0,
            x2: 0.0,
            y1: 0.0,
            y2: 0.0,
        }
    }

    fn process(&mut self, x: f32) -> f32 {
        let y = self.b0 * x + self.b2 * self.x2 - self.a1 * self.y1 - self.a2 * self.y2;
        self.x2 = self.x1;
        self.x1 = x;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// Converts to 16-bit PCM (round to nearest, clipped).
pub fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|&x| (x.clamp(-1.0, 1.0) * 32767.0).round() as i16)
        .collect()
}
