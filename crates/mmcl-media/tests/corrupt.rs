//! The corruptions of `mmcl_media::corrupt` measured on their outputs: identity at severity
//! 0, determinism per seed, realised SNR, spectral colour, documented shares, monotone
//! damage with severity, and the intended call site (corrupt, then extract features).
use mmcl_media::corrupt::{
    audio::{CLIP_LEVEL, DROPOUT_FRACTION, SNR_DB},
    visual::{dropped_count, DROP_FRACTION, OCCLUSION_FRACTION},
    AudioCorruption, Corruption, Severity, VisualCorruption,
};
use mmcl_media::image_ops::{self, IMAGENET_MEAN, IMAGENET_STD};
use mmcl_media::transform::{AudioTransform, AudioTransformConfig};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SR: u32 = 16_000;

/// 1 s of speech-like test signal: two tones under a slow envelope, never exactly zero.
fn clean_wave() -> Vec<f32> {
    (0..SR as usize)
        .map(|i| {
            let t = i as f32 / SR as f32;
            let env = 0.6 + 0.4 * (2.0 * std::f32::consts::PI * 3.0 * t).sin();
            let x = 0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                + 0.1 * (2.0 * std::f32::consts::PI * 1730.0 * t + 0.3).sin();
            env * x + if x >= 0.0 { 1e-3 } else { -1e-3 }
        })
        .collect()
}

/// `T` frames of `w x h` with smooth shading, edges and no pure black pixel.
fn clean_frames(t: usize, w: usize, h: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(t * w * h * 3);
    for k in 0..t {
        for y in 0..h {
            for x in 0..w {
                let shade =
                    0.5 + 0.2 * ((x as f32 / 5.0 + k as f32).sin() * (y as f32 / 7.0).cos());
                let edge = if (x / 8 + y / 6) % 2 == 0 {
                    0.15
                } else {
                    -0.15
                };
                for c in [1.0, 0.5, -0.6f32] {
                    let v = (shade + edge * c).clamp(0.0, 1.0);
                    out.push((20.0 + v * 215.0).round() as u8);
                }
            }
        }
    }
    out
}

fn sev(s: u8) -> Severity {
    Severity::new(s).unwrap()
}

fn audio_kinds() -> [fn(Severity) -> AudioCorruption; 5] {
    [
        AudioCorruption::White,
        AudioCorruption::Pink,
        AudioCorruption::Brown,
        AudioCorruption::Clip,
        AudioCorruption::Dropout,
    ]
}

fn visual_kinds() -> [fn(Severity) -> VisualCorruption; 6] {
    [
        VisualCorruption::Noise,
        VisualCorruption::Blur,
        VisualCorruption::Jpeg,
        VisualCorruption::Occlusion,
        VisualCorruption::Night,
        VisualCorruption::Drop,
    ]
}

fn mse(a: &[u8], b: &[u8]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64
}

fn snr_db(clean: &[f32], out: &[f32]) -> f64 {
    let p = |it: &mut dyn Iterator<Item = f64>| it.map(|v| v * v).sum::<f64>();
    let ps = p(&mut clean.iter().map(|&x| x as f64));
    let pn = p(&mut clean.iter().zip(out).map(|(&c, &o)| o as f64 - c as f64));
    10.0 * (ps / pn).log10()
}

#[test]
fn severity_zero_is_the_identity_bit_for_bit() {
    let wave = clean_wave();
    let frames = clean_frames(3, 20, 12);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let untouched = ChaCha8Rng::seed_from_u64(5).next_u64();
    for kind in audio_kinds() {
        let mut w = wave.clone();
        kind(Severity::CLEAN).apply(&mut w, SR, &mut rng).unwrap();
        assert!(w.iter().zip(&wave).all(|(a, b)| a.to_bits() == b.to_bits()));
        Corruption::audio(kind(Severity::CLEAN))
            .apply_audio(&mut w, SR, 1, 2)
            .unwrap();
        assert!(w.iter().zip(&wave).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    for kind in visual_kinds() {
        let mut f = frames.clone();
        kind(Severity::CLEAN)
            .apply(&mut f, 20, 12, &mut rng)
            .unwrap();
        assert_eq!(f, frames);
        Corruption::visual(kind(Severity::CLEAN))
            .apply_frames(&mut f, 20, 12, 1, 2)
            .unwrap();
        assert_eq!(f, frames);
    }
    // No draw was taken at severity 0.
    assert_eq!(rng.next_u64(), untouched);
    let clean = Corruption::CLEAN;
    let (mut w, mut f) = (wave.clone(), frames.clone());
    clean.apply_audio(&mut w, SR, 3, 4).unwrap();
    clean.apply_frames(&mut f, 20, 12, 3, 4).unwrap();
    assert!(clean.is_identity() && w == wave && f == frames);
}

#[test]
fn deterministic_for_a_seed_and_different_across_seeds() {
    let wave = clean_wave();
    // 112 px: blur severity 1 (sigma 0.5 px) still changes pixels.
    let (w, h) = (112, 112);
    let frames = clean_frames(8, w, h);
    let random_audio = ["white", "pink", "brown", "dropout"];
    let random_visual = ["noise", "occlusion", "drop"];
    for s in Severity::all() {
        for kind in audio_kinds() {
            let c = Corruption::audio(kind(s));
            let run = |seed, index| {
                let mut w = wave.clone();
                c.apply_audio(&mut w, SR, seed, index).unwrap();
                w
            };
            let a = run(11, 3);
            assert_ne!(a, wave, "{c} changes the waveform");
            assert_eq!(a, run(11, 3), "{c} is deterministic");
            if random_audio.contains(&kind(s).name()) {
                assert_ne!(a, run(12, 3), "{c}: another seed, another draw");
                assert_ne!(a, run(11, 4), "{c}: another sample, another draw");
            }
        }
        for kind in visual_kinds() {
            let c = Corruption::visual(kind(s));
            let run = |seed, index| {
                let mut f = frames.clone();
                c.apply_frames(&mut f, w, h, seed, index).unwrap();
                f
            };
            let a = run(11, 3);
            assert_ne!(a, frames, "{c} changes the frames");
            assert_eq!(a, run(11, 3), "{c} is deterministic");
            if random_visual.contains(&kind(s).name()) {
                // A few seeds: two drop patterns may coincide by chance.
                assert!(
                    (12..16).any(|seed| run(seed, 3) != a),
                    "{c}: other seeds, other draws"
                );
                assert!(
                    (4..8).any(|i| run(11, i) != a),
                    "{c}: other samples, other draws"
                );
            }
        }
    }
}

#[test]
fn a_bimodal_cell_corrupts_each_modality_as_its_unimodal_parts_do() {
    let wave = clean_wave();
    let frames = clean_frames(4, 16, 16);
    let a = AudioCorruption::Pink(sev(2));
    let v = VisualCorruption::Occlusion(sev(4));
    let both: Corruption = "audio:pink:2+visual:occlusion:4".parse().unwrap();
    assert_eq!(both, Corruption::both(a, v));
    let (mut w1, mut w2) = (wave.clone(), wave.clone());
    both.apply_audio(&mut w1, SR, 9, 17).unwrap();
    Corruption::audio(a)
        .apply_audio(&mut w2, SR, 9, 17)
        .unwrap();
    assert_eq!(w1, w2);
    let (mut f1, mut f2, mut f3) = (frames.clone(), frames.clone(), frames.clone());
    both.apply_frames(&mut f1, 16, 16, 9, 17).unwrap();
    Corruption::visual(v)
        .apply_frames(&mut f2, 16, 16, 9, 17)
        .unwrap();
    assert_eq!(f1, f2);
    // An audio-only cell leaves the frames alone, and the reverse.
    Corruption::audio(a)
        .apply_frames(&mut f3, 16, 16, 9, 17)
        .unwrap();
    assert_eq!(f3, frames);
    let mut w3 = wave.clone();
    Corruption::visual(v)
        .apply_audio(&mut w3, SR, 9, 17)
        .unwrap();
    assert_eq!(w3, wave);
}

#[test]
fn additive_noise_reaches_its_snr_within_half_a_db() {
    let wave = clean_wave();
    for kind in [
        AudioCorruption::White,
        AudioCorruption::Pink,
        AudioCorruption::Brown,
    ] {
        for (s, target) in Severity::all().zip(SNR_DB) {
            for index in 0..3 {
                let mut out = wave.clone();
                Corruption::audio(kind(s))
                    .apply_audio(&mut out, SR, 1, index)
                    .unwrap();
                let got = snr_db(&wave, &out);
                assert!(
                    (got - target as f64).abs() < 0.5,
                    "{}: {got:.3} dB, target {target}",
                    kind(s)
                );
            }
        }
    }
}

#[test]
fn silence_and_black_frames_are_all_zero() {
    let mut w = clean_wave();
    Corruption::audio(AudioCorruption::Missing)
        .apply_audio(&mut w, SR, 0, 0)
        .unwrap();
    assert!(w.iter().all(|&x| x == 0.0));
    let mut f = clean_frames(4, 10, 6);
    Corruption::visual(VisualCorruption::Missing)
        .apply_frames(&mut f, 10, 6, 0, 0)
        .unwrap();
    assert!(f.iter().all(|&x| x == 0));
    let mut imgs = vec![image::RgbImage::from_pixel(7, 5, image::Rgb([9, 200, 31])); 2];
    VisualCorruption::Missing
        .apply_images(&mut imgs, &mut ChaCha8Rng::seed_from_u64(0))
        .unwrap();
    assert!(imgs.iter().all(|i| i.as_raw().iter().all(|&x| x == 0)));
}

#[test]
fn dropout_zeroes_the_documented_share_and_clipping_keeps_the_peak() {
    let wave = clean_wave();
    let peak = wave.iter().fold(0f32, |m, x| m.max(x.abs()));
    let mut clipped_share = 0.0;
    for (s, (share, level)) in Severity::all().zip(DROPOUT_FRACTION.into_iter().zip(CLIP_LEVEL)) {
        let mut w = wave.clone();
        AudioCorruption::Dropout(s)
            .apply(&mut w, SR, &mut ChaCha8Rng::seed_from_u64(2))
            .unwrap();
        let zeros = w.iter().filter(|&&x| x == 0.0).count();
        assert_eq!(
            zeros,
            (share as f64 * wave.len() as f64).round() as usize,
            "{s}"
        );
        // Kept samples are untouched.
        assert!(w.iter().zip(&wave).all(|(&o, &c)| o == 0.0 || o == c));

        let mut w = wave.clone();
        AudioCorruption::Clip(s)
            .apply(&mut w, SR, &mut ChaCha8Rng::seed_from_u64(2))
            .unwrap();
        let out_peak = w.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert_eq!(out_peak, peak);
        for (&o, &c) in w.iter().zip(&wave) {
            if c.abs() < level * peak * 0.999 {
                assert!((o - c / level).abs() <= 1e-6, "{o} vs {c} / {level}");
            }
        }
        let share_clipped = w.iter().filter(|x| x.abs() == peak).count() as f64 / w.len() as f64;
        assert!(share_clipped > clipped_share, "{s}: {share_clipped}");
        clipped_share = share_clipped;
    }
}

#[test]
fn visual_damage_grows_with_severity() {
    // 168 px short side: blur sigmas 0.75-4.5 px.
    let (t, w, h) = (2, 224, 168);
    let frames = clean_frames(t, w, h);
    for kind in [
        VisualCorruption::Noise,
        VisualCorruption::Blur,
        VisualCorruption::Jpeg,
    ] {
        let mut last = 0.0;
        for s in Severity::all() {
            let mut f = frames.clone();
            Corruption::visual(kind(s))
                .apply_frames(&mut f, w, h, 4, 0)
                .unwrap();
            let e = mse(&f, &frames);
            assert!(e > last, "{}: MSE {e:.2} after {last:.2}", kind(s));
            last = e;
        }
    }
    // Night: darker at every step.
    let mean = |f: &[u8]| f.iter().map(|&x| x as f64).sum::<f64>() / f.len() as f64;
    let mut last = mean(&frames);
    for s in Severity::all() {
        let mut f = frames.clone();
        VisualCorruption::Night(s)
            .apply(&mut f, w, h, &mut ChaCha8Rng::seed_from_u64(0))
            .unwrap();
        let m = mean(&f);
        assert!(m < last, "night {s}: mean {m:.1} after {last:.1}");
        last = m;
    }
}

#[test]
fn occlusion_covers_its_share_in_every_frame_alike() {
    let (t, w, h) = (3, 60, 40);
    let frames = clean_frames(t, w, h);
    for (s, share) in Severity::all().zip(OCCLUSION_FRACTION) {
        for index in 0..4 {
            let mut f = frames.clone();
            Corruption::visual(VisualCorruption::Occlusion(s))
                .apply_frames(&mut f, w, h, 8, index)
                .unwrap();
            let plane = w * h * 3;
            let black: Vec<Vec<bool>> = f
                .chunks(plane)
                .map(|fr| fr.chunks(3).map(|p| p == [0, 0, 0]).collect())
                .collect();
            assert!(
                black.iter().all(|b| b == &black[0]),
                "same rectangle in every frame"
            );
            let got = black[0].iter().filter(|&&b| b).count() as f64 / (w * h) as f64;
            // Sides are whole pixels: within 5 % of the share (relative) at these sizes.
            assert!(
                (got - share as f64).abs() < 0.05 * share as f64 + 0.01,
                "{s}: {got:.3} vs {share}"
            );
        }
    }
}

#[test]
fn dropped_frames_repeat_kept_ones() {
    let (w, h) = (8, 6);
    let plane = w * h * 3;
    for t in [1usize, 2, 4, 8] {
        let frames = clean_frames(t, w, h);
        for (s, share) in Severity::all().zip(DROP_FRACTION) {
            let mut f = frames.clone();
            Corruption::visual(VisualCorruption::Drop(s))
                .apply_frames(&mut f, w, h, 1, t as u64)
                .unwrap();
            let src: Vec<&[u8]> = frames.chunks(plane).collect();
            let mut dropped = 0;
            let mut last_kept: Option<usize> = None;
            for (i, fr) in f.chunks(plane).enumerate() {
                if fr == src[i] {
                    last_kept = Some(i);
                    continue;
                }
                dropped += 1;
                let j = src
                    .iter()
                    .position(|s| *s == fr)
                    .expect("a dropped frame is a clean one");
                match last_kept {
                    Some(k) => assert_eq!(j, k, "the nearest earlier kept frame"),
                    None => assert!(j > i, "leading drops take the first kept frame"),
                }
            }
            assert_eq!(dropped, dropped_count(share, t), "T {t} {s}");
        }
    }
}

#[test]
fn bad_inputs_are_errors_and_leave_the_input_alone() {
    let mut w = vec![0.1f32, f32::NAN, 0.2];
    let e = AudioCorruption::White(sev(1)).apply(&mut w, SR, &mut ChaCha8Rng::seed_from_u64(0));
    assert!(e.unwrap_err().to_string().contains("sample 1 is NaN"));
    assert!(w[1].is_nan() && w[0] == 0.1);
    let e = AudioCorruption::Missing.apply(&mut w, 0, &mut ChaCha8Rng::seed_from_u64(0));
    assert!(e.unwrap_err().to_string().contains("sample rate"));
    let mut f = vec![1u8; 100];
    let e = VisualCorruption::Blur(sev(2)).apply(&mut f, 5, 5, &mut ChaCha8Rng::seed_from_u64(0));
    assert!(e
        .unwrap_err()
        .to_string()
        .contains("100 bytes are not whole 5x5 RGB frames"));
    assert!(f.iter().all(|&x| x == 1));
    let mut imgs = vec![image::RgbImage::new(4, 4), image::RgbImage::new(4, 5)];
    let e =
        VisualCorruption::Jpeg(sev(1)).apply_images(&mut imgs, &mut ChaCha8Rng::seed_from_u64(0));
    assert!(e.unwrap_err().to_string().contains("different sizes"));
    // A silent waveform stays silent under additive noise (no level to refer the SNR to).
    let mut silent = vec![0f32; 100];
    AudioCorruption::Brown(sev(5))
        .apply(&mut silent, SR, &mut ChaCha8Rng::seed_from_u64(0))
        .unwrap();
    assert!(silent.iter().all(|&x| x == 0.0));
}

/// The intended call site: corrupt the decoded signal, then extract features with the
/// crate's own transforms, as a loader would.
#[test]
fn corrupted_signals_flow_into_the_feature_extractors() {
    let tf = AudioTransform::new(AudioTransformConfig::default()).unwrap();
    // 5 s, the transform's crop, of the test signal.
    let wave: Vec<f32> = clean_wave()
        .into_iter()
        .cycle()
        .take(tf.crop_len())
        .collect();
    let clean = tf.apply(&wave, 0).unwrap();
    let mean_log = |s: &mmcl_media::spectrogram::Spectrogram, lo: usize| {
        let rows = lo..s.freq;
        rows.clone()
            .flat_map(|f| (0..s.time).map(move |t| (f, t)))
            .map(|(f, t)| s.at(f, t) as f64)
            .sum::<f64>()
            / (rows.len() * s.time) as f64
    };
    let mut noisy = wave.clone();
    Corruption::audio(AudioCorruption::White(sev(5)))
        .apply_audio(&mut noisy, SR, 0, 0)
        .unwrap();
    let noisy = tf.apply(&noisy, 0).unwrap();
    assert_eq!((noisy.freq, noisy.time), (clean.freq, clean.time));
    // Above 4 kHz (bin 64) the clean signal holds almost nothing; 0 dB white noise fills it.
    assert!(mean_log(&noisy, 64) > mean_log(&clean, 64) + 3.0);
    let mut silent = wave.clone();
    Corruption::audio(AudioCorruption::Missing)
        .apply_audio(&mut silent, SR, 0, 0)
        .unwrap();
    let silent = tf.apply(&silent, 0).unwrap();
    let floor = 1e-7f32.ln();
    assert!(silent.data.iter().all(|&x| (x - floor).abs() < 1e-5));

    // Frames: corrupt at the stored size, then resize to the network's input and normalise.
    let (t, w, h) = (4, 40, 30);
    let mut frames = clean_frames(t, w, h);
    Corruption::visual(VisualCorruption::Missing)
        .apply_frames(&mut frames, w, h, 0, 0)
        .unwrap();
    for fr in frames.chunks(w * h * 3) {
        let img = image::RgbImage::from_raw(w as u32, h as u32, fr.to_vec()).unwrap();
        let small = image_ops::resize(&img, 16, 16).unwrap();
        let chw = image_ops::to_normalized_chw(&small, IMAGENET_MEAN, IMAGENET_STD);
        // Black normalises to -mean / std per channel.
        for (c, plane) in chw.chunks(16 * 16).enumerate() {
            let want = -IMAGENET_MEAN[c] / IMAGENET_STD[c];
            assert!(plane.iter().all(|&x| (x - want).abs() < 1e-6));
        }
    }
}
