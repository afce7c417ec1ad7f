//! Audio: librosa parity of the STFT, every format's length and rate, resampling quality,
//! and typed errors on bad files. Fixtures: tools/golden_media/make_fixtures.py.
use std::path::{Path, PathBuf};

use mmcl_media::audio::{self, DecodeOptions};
use mmcl_media::spectrogram::{PadMode, SpectrogramConfig, Stft};
use mmcl_media::MediaError;
use safetensors::SafeTensors;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// One fixture per decoder path (direct WAV, symphonia PCM, FLAC, the lossy codecs, MP4
/// with an edit list), with its rate, length (0.5 s or 1 s tones made by ffmpeg) and the
/// cargo feature that decodes it.
const FORMATS: [(&str, u32, usize, &str); 8] = [
    ("fmt_pcm16_44k_stereo.wav", 44_100, 22_050, "wav"),
    ("fmt_pcm24_22k_mono.wav", 22_050, 11_025, "wav"),
    ("fmt_pcm32_16k_mono.wav", 16_000, 8_000, "wav"),
    ("fmt_f32_8k_stereo.wav", 8_000, 4_000, "wav"),
    ("fmt_flac_44k_stereo.flac", 44_100, 22_050, "flac"),
    ("fmt_mp3_44k_stereo.mp3", 44_100, 44_100, "mp3"),
    ("fmt_vorbis_44k_stereo.ogg", 44_100, 44_100, "vorbis"),
    ("fmt_aac_44k_stereo.m4a", 44_100, 44_100, "aac"),
];

/// Whether this build has the cargo feature `name` (the tests run under any feature set).
fn enabled(feature: &str) -> bool {
    match feature {
        "wav" => cfg!(feature = "wav"),
        "flac" => cfg!(feature = "flac"),
        "mp3" => cfg!(feature = "mp3"),
        "aac" => cfg!(feature = "aac"),
        "vorbis" => cfg!(feature = "vorbis"),
        other => panic!("unknown feature {other}"),
    }
}

fn f32_tensor(st: &SafeTensors, name: &str) -> (Vec<f32>, Vec<usize>) {
    let t = st.tensor(name).unwrap();
    let data = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (data, t.shape().to_vec())
}

#[test]
fn log_spectrogram_matches_librosa_both_pad_modes() {
    let bytes = std::fs::read(fixture("stft_golden.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    for name in ["tone", "noise", "chirp"] {
        let (wave, _) = f32_tensor(&st, &format!("{name}.wave"));
        assert_ne!(wave.len() % 128, 0);
        for (mode, pad_mode) in [
            ("constant", PadMode::Constant),
            ("reflect", PadMode::Reflect),
        ] {
            let (want, shape) = f32_tensor(&st, &format!("{name}.{mode}"));
            let stft = Stft::new(SpectrogramConfig {
                pad_mode,
                ..Default::default()
            })
            .unwrap();
            let got = stft.log_magnitude(&wave).unwrap();
            assert_eq!(vec![got.freq, got.time], shape, "{name} {mode}");
            let mut max_diff = 0f32;
            let mut compared = 0;
            for (g, w) in got.data.iter().zip(&want) {
                if w.exp() - 1e-7 > 1e-3 {
                    max_diff = max_diff.max((g - w).abs());
                    compared += 1;
                }
            }
            assert!(
                compared > got.data.len() / 10,
                "{name} {mode}: too few bins compared"
            );
            eprintln!("{name} {mode}: max |diff| {max_diff:.2e} over {compared} bins");
            assert!(max_diff <= 1e-3, "{name} {mode}: max |diff| {max_diff}");
        }
    }
}

#[test]
fn every_format_decodes_to_its_length_and_rate() {
    for (file, rate, len, feature) in FORMATS {
        if !enabled(feature) {
            continue;
        }
        let a = audio::decode_file(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(a.sample_rate, rate, "{file}");
        assert_eq!(a.samples.len(), len, "{file}");
        // The tone is really there (ffmpeg's sine source has amplitude 1/8: RMS 0.088).
        let rms = (a.samples.iter().map(|x| x * x).sum::<f32>() / len as f32).sqrt();
        assert!(rms > 0.05 && rms < 0.2, "{file}: rms {rms}");
    }
}

#[test]
fn a_format_left_out_of_the_build_is_an_unsupported_format_naming_the_file() {
    // FFmpeg, when built in, decodes what symphonia leaves out.
    if cfg!(feature = "ffmpeg") {
        return;
    }
    for (file, _, _, feature) in FORMATS {
        if enabled(feature) {
            continue;
        }
        let p = fixture(file);
        let e = audio::decode_file(&p).unwrap_err();
        assert!(
            matches!(e, MediaError::UnsupportedFormat { .. }),
            "{file}: {e:?}"
        );
        assert!(e.to_string().contains(p.to_str().unwrap()), "{e}");
    }
}

#[test]
fn a_decoded_span_is_the_prefix_of_the_whole_decode() {
    // Every decoder path, with and without resampling: the first seconds are bit-identical
    // to a whole-file decode.
    let files = FORMATS
        .iter()
        .filter(|f| enabled(f.3))
        .map(|f| f.0)
        .chain(cfg!(feature = "wav").then_some("resample_src_44k_stereo.wav"));
    for f in files {
        let p = fixture(f);
        let whole = audio::decode_file(&p).unwrap();
        for secs in [0.05, 0.3, 1e6] {
            let part = audio::decode_file_with(&p, &DecodeOptions::first_seconds(secs)).unwrap();
            let n = ((secs * whole.sample_rate as f64).ceil() as usize).min(whole.samples.len());
            assert_eq!(part.sample_rate, whole.sample_rate, "{f}");
            assert_eq!(part.samples, whole.samples[..n], "{f} {secs} s");
        }
        for target in [16_000, 8_000, 44_100] {
            let whole = audio::load_mono(&p, target).unwrap();
            for secs in [0.05, 0.3, 1e6] {
                let part =
                    audio::load_mono_with(&p, target, &DecodeOptions::first_seconds(secs)).unwrap();
                let n = ((secs * target as f64).ceil() as usize).min(whole.len());
                assert_eq!(part, whole[..n], "{f} -> {target} Hz, {secs} s");
            }
        }
    }
    let bad = DecodeOptions {
        max_seconds: Some(f64::NAN),
    };
    assert!(matches!(
        audio::decode_file_with(&fixture("fmt_pcm16_44k_stereo.wav"), &bad),
        Err(MediaError::InvalidArgument(_))
    ));
}

fn snr_db(reference: &[f32], test: &[f32]) -> f64 {
    let sig: f64 = reference.iter().map(|&x| (x as f64).powi(2)).sum();
    let err: f64 = reference
        .iter()
        .zip(test)
        .map(|(&a, &b)| ((a - b) as f64).powi(2))
        .sum();
    10.0 * (sig / err).log10()
}

#[test]
#[cfg(feature = "wav")] // WAV fixtures
fn stereo_44k_to_mono_16k_matches_librosa_load() {
    let bytes = std::fs::read(fixture("resample_golden.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (want, _) = f32_tensor(&st, "waveform");
    let got = audio::load_mono(&fixture("resample_src_44k_stereo.wav"), 16_000).unwrap();
    assert_eq!(got.len(), want.len());
    // Leave out the edges, where the two resamplers' boundary handling differs.
    let snr = snr_db(&want[64..want.len() - 64], &got[64..got.len() - 64]);
    eprintln!("SNR vs librosa.load: {snr:.1} dB");
    assert!(
        snr > 35.0,
        "SNR vs librosa.load(sr=16000, mono=True): {snr:.1} dB"
    );
}

#[test]
fn resampling_keeps_tone_frequency_and_passband_level() {
    let (from, to) = (44_100u32, 16_000u32);
    for freq in [440.0f64, 1000.0, 3000.0, 6000.0] {
        let n = 44_100;
        let x: Vec<f32> = (0..n)
            .map(|i| {
                (2.0 * std::f64::consts::PI * freq * i as f64 / from as f64).sin() as f32 * 0.5
            })
            .collect();
        let y = audio::resample(&x, from, to).unwrap();
        assert_eq!(y.len(), 16_000);
        let mid = &y[2000..14_000];
        // Amplitude and frequency by least squares against sin/cos at the expected frequency.
        let w = 2.0 * std::f64::consts::PI * freq / to as f64;
        let (mut s, mut c) = (0.0, 0.0);
        for (i, &v) in mid.iter().enumerate() {
            let t = (i + 2000) as f64;
            s += v as f64 * (w * t).sin();
            c += v as f64 * (w * t).cos();
        }
        let amp = 2.0 * (s * s + c * c).sqrt() / mid.len() as f64;
        let loss_db = 20.0 * (0.5 / amp).log10();
        assert!(
            loss_db.abs() < 0.1,
            "{freq} Hz: passband change {loss_db:.4} dB"
        );
        // Phase aligned (no resampler delay) and all energy at the tone: a pure fit leaves
        // a residual far below the signal.
        let fit: Vec<f32> = (0..mid.len())
            .map(|i| (0.5 * (w * (i + 2000) as f64).sin()) as f32)
            .collect();
        assert!(snr_db(&fit, mid) > 40.0, "{freq} Hz: tone moved or delayed");
    }
    assert!(audio::resample(&[0.0; 10], 0, 16_000).is_err());
}

#[test]
#[cfg(feature = "wav")] // WAV fixtures
fn bad_inputs_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        audio::decode_file(&empty),
        Err(MediaError::EmptyFile { .. })
    ));

    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, b"this is not a video, just some text\n".repeat(20)).unwrap();
    let e = audio::decode_file(&text).unwrap_err();
    assert!(matches!(e, MediaError::UnsupportedFormat { .. }), "{e:?}");
    assert!(e.to_string().contains("notes.mp4"));

    let good = std::fs::read(fixture("fmt_pcm16_44k_stereo.wav")).unwrap();
    let truncated = dir.path().join("truncated.wav");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let e = audio::decode_file(&truncated).unwrap_err();
    assert!(matches!(e, MediaError::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains("truncated.wav"));

    let header_only = dir.path().join("header.wav");
    std::fs::write(&header_only, &good[..30]).unwrap();
    assert!(audio::decode_file(&header_only).is_err());

    let missing = dir.path().join("missing.flac");
    assert!(matches!(
        audio::decode_file(&missing),
        Err(MediaError::Io { .. })
    ));

    // Garbage after a valid MP3/AAC header must not panic.
    for f in [
        "fmt_mp3_44k_stereo.mp3",
        "fmt_aac_44k_stereo.m4a",
        "fmt_vorbis_44k_stereo.ogg",
        "fmt_flac_44k_stereo.flac",
    ] {
        let mut b = std::fs::read(fixture(f)).unwrap();
        let n = b.len();
        for i in (n / 3..n).step_by(7) {
            b[i] ^= 0x5a;
        }
        let p = dir.path().join(format!("garbled_{f}"));
        std::fs::write(&p, &b).unwrap();
        let _ = audio::decode_file(&p); // any result but a panic
        let p2 = dir.path().join(format!("cut_{f}"));
        std::fs::write(&p2, &std::fs::read(fixture(f)).unwrap()[..n / 2]).unwrap();
        let _ = audio::decode_file(&p2);
    }
}
