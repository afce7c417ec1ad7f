//! The log-magnitude spectrogram of an audio file, or of a synthetic chirp, printed as a
//! coarse text heat map with the loudest frequency over time; then the model input that the
//! reference audio transform makes from it.
//!
//! ```sh
//! cargo run -p mmcl-media --example spectrogram             # a 3 s chirp, 200 Hz -> 6 kHz
//! cargo run -p mmcl-media --example spectrogram -- clip.wav # any format the build decodes
//! ```
use std::path::Path;

use mmcl_media::spectrogram::{Spectrogram, SpectrogramConfig, Stft};
use mmcl_media::transform::{AudioTransform, AudioTransformConfig};

/// The rate everything is resampled to (the reference's 16 kHz).
const RATE: u32 = 16_000;

fn main() -> std::process::ExitCode {
    // Errors by their message, which names the file and the reason.
    if let Err(e) = run() {
        eprintln!("error: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (name, wave) = match std::env::args_os().nth(1) {
        // Decoded, down-mixed to mono and resampled; errors name the file.
        Some(file) => {
            let path = Path::new(&file);
            (
                path.display().to_string(),
                mmcl_media::audio::load_mono(path, RATE)?,
            )
        }
        None => ("a synthetic chirp".to_string(), chirp(3.0, 200.0, 6_000.0)),
    };
    println!(
        "{name}: {} samples, {:.2} s at {RATE} Hz",
        wave.len(),
        wave.len() as f64 / RATE as f64
    );

    // The whole clip: n_fft 256, hop 128 (8 ms), log(|S| + 1e-7), as [freq, time].
    let config = SpectrogramConfig::default();
    let spec = Stft::new(config)?.log_magnitude(&wave)?;
    println!(
        "log-STFT: {} bins x {} frames ({:.1} Hz per bin)",
        spec.freq,
        spec.time,
        bin_hz(&config)
    );
    print_heat_map(&spec, 16, 64);
    print_peaks(&spec, &config, 8);

    // What a model sees: tiled to 10 s, a 5 s crop (the centre, as in evaluation), clipped
    // to [-1, 1], then the same log-STFT.
    let transform = AudioTransform::new(AudioTransformConfig::default())?;
    let input = transform.apply(&wave, transform.center_offset(wave.len()))?;
    let (lo, hi) = min_max(&input.data);
    println!(
        "model input: [1, {}, {}], values {lo:.2} ..= {hi:.2}",
        input.freq, input.time
    );
    Ok(())
}

/// A linear chirp of `seconds` from `f0` to `f1` Hz at amplitude 0.5.
fn chirp(seconds: f64, f0: f64, f1: f64) -> Vec<f32> {
    let n = (seconds * RATE as f64) as usize;
    let rate = (f1 - f0) / seconds;
    (0..n)
        .map(|i| {
            let t = i as f64 / RATE as f64;
            let phase = 2.0 * std::f64::consts::PI * (f0 * t + 0.5 * rate * t * t);
            0.5 * phase.sin() as f32
        })
        .collect()
}

fn bin_hz(config: &SpectrogramConfig) -> f64 {
    RATE as f64 / config.n_fft as f64
}

fn min_max(values: &[f32]) -> (f32, f32) {
    values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// `rows` x `cols` text rendering, high frequencies on top: each cell is the mean
/// log-magnitude of its block, shaded from the quietest to the loudest cell.
fn print_heat_map(spec: &Spectrogram, rows: usize, cols: usize) {
    const SHADES: &[u8] = b" .:-=+*#%@";
    let (rows, cols) = (rows.min(spec.freq), cols.min(spec.time));
    let cell = |r: usize, c: usize| {
        let (f0, f1) = (r * spec.freq / rows, (r + 1) * spec.freq / rows);
        let (t0, t1) = (c * spec.time / cols, (c + 1) * spec.time / cols);
        let sum: f32 = (f0..f1)
            .flat_map(|f| (t0..t1).map(move |t| (f, t)))
            .map(|(f, t)| spec.at(f, t))
            .sum();
        sum / ((f1 - f0) * (t1 - t0)) as f32
    };
    let grid: Vec<Vec<f32>> = (0..rows)
        .map(|r| (0..cols).map(|c| cell(r, c)).collect())
        .collect();
    let (lo, hi) = min_max(&grid.concat());
    for row in grid.iter().rev() {
        let line: String = row
            .iter()
            .map(|&v| {
                let x = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
                SHADES[((x * (SHADES.len() - 1) as f32).round() as usize).min(SHADES.len() - 1)]
                    as char
            })
            .collect();
        println!("  |{line}|");
    }
}

/// The loudest frequency at `n` evenly spaced frames.
fn print_peaks(spec: &Spectrogram, config: &SpectrogramConfig, n: usize) {
    let frame_s = config.hop as f64 / RATE as f64;
    for k in 0..n.min(spec.time) {
        let t = (2 * k + 1) * spec.time / (2 * n);
        let peak = (0..spec.freq)
            .max_by(|&a, &b| spec.at(a, t).total_cmp(&spec.at(b, t)))
            .unwrap_or(0);
        println!(
            "  t = {:5.2} s: loudest at {:6.0} Hz",
            t as f64 * frame_s,
            peak as f64 * bin_hz(config)
        );
    }
}
