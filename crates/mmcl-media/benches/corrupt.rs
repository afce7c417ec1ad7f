//! `cargo bench -p mmcl-media --bench corrupt`: the cost of each corruption at the paper's
//! shapes, single thread, beside the clean feature extraction it precedes.
//!
//! * audio: the 5 s crop at 16 kHz (80,000 samples) the STFT sees, against crop + STFT + log
//!   (129 x 626) of the same waveform;
//! * frames: the paper's T = 4 frames at the stored size (shorter side 256, the prepared
//!   cache's default, of a 16:9 clip: 455 x 256), against resizing them to 224 x 224 and
//!   normalising (the evaluation path).
//!
//! Each corruption works on a fresh copy of the clean input (the copy is inside the timing:
//! 0.3 MB of audio, 1.4 MB of frames) with a new sample index per run, as a loader would.
//! Prints medians over repeated runs (after warm-up).
use std::hint::black_box;
use std::time::Instant;

use mmcl_media::corrupt::{AudioCorruption, Corruption, Severity, VisualCorruption};
use mmcl_media::image_ops::{self, IMAGENET_MEAN, IMAGENET_STD};
use mmcl_media::transform::{AudioTransform, AudioTransformConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type AudioKind = fn(Severity) -> AudioCorruption;
type VisualKind = fn(Severity) -> VisualCorruption;

fn median_ms(mut f: impl FnMut(), iters: usize) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut t: Vec<f64> = (0..iters)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn row(name: &str, cells: &[f64], clean: f64) {
    let ms: Vec<String> = cells.iter().map(|m| format!("{m:8.3}")).collect();
    let worst = cells.iter().copied().fold(0.0, f64::max);
    println!(
        "  {name:<18}{}   (worst {:.2}x clean)",
        ms.join(" "),
        worst / clean
    );
}

fn main() {
    let iters = 21;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let sr = 16_000u32;
    let tf = AudioTransform::new(AudioTransformConfig::default()).unwrap();
    let wave: Vec<f32> = (0..tf.crop_len())
        .map(|i| {
            let t = i as f32 / sr as f32;
            0.3 * (2.0 * std::f32::consts::PI * (200.0 + 300.0 * t) * t).sin()
                + 0.05 * (rng.random::<f32>() - 0.5)
        })
        .collect();
    let clean_audio = median_ms(
        || {
            black_box(tf.apply(black_box(&wave), 0).unwrap());
        },
        iters,
    );

    let (t, w, h) = (4usize, 455usize, 256usize);
    let frames: Vec<u8> = (0..t * h * w * 3)
        .map(|i| {
            let (p, c) = (i / 3, i % 3);
            let (x, y) = ((p % w) as f32, ((p / w) % h) as f32);
            let v = 0.5 + 0.3 * (x / 31.0 + c as f32).sin() * (y / 17.0).cos();
            (v * 255.0 + rng.random_range(-8.0..8.0f32)).clamp(0.0, 255.0) as u8
        })
        .collect();
    let clean_frames = median_ms(
        || {
            for fr in frames.chunks_exact(w * h * 3) {
                let img = image::RgbImage::from_raw(w as u32, h as u32, fr.to_vec()).unwrap();
                let small = image_ops::resize(&img, 224, 224).unwrap();
                black_box(image_ops::to_normalized_chw(
                    &small,
                    IMAGENET_MEAN,
                    IMAGENET_STD,
                ));
            }
        },
        iters,
    );

    println!("mmcl-media corrupt bench, single thread, median of {iters} runs (ms):");
    println!(
        "  audio clean: 5 s crop at 16 kHz -> crop + STFT + log (129x626)   {clean_audio:8.3}"
    );
    println!(
        "  {:<18}{}",
        "audio",
        (1..=5)
            .map(|s| format!("{:>8}", format!("sev {s}")))
            .collect::<String>()
    );
    let mut index = 0u64;
    let audio_kinds: [(&str, AudioKind); 5] = [
        ("white", AudioCorruption::White),
        ("pink", AudioCorruption::Pink),
        ("brown", AudioCorruption::Brown),
        ("clip", AudioCorruption::Clip),
        ("dropout", AudioCorruption::Dropout),
    ];
    let mut time_audio = |c: Corruption| {
        median_ms(
            || {
                let mut x = wave.clone();
                index += 1;
                c.apply_audio(&mut x, sr, 7, index).unwrap();
                black_box(&x);
            },
            iters,
        )
    };
    for (name, kind) in audio_kinds {
        let cells: Vec<f64> = Severity::all()
            .map(|s| time_audio(Corruption::audio(kind(s))))
            .collect();
        row(name, &cells, clean_audio);
    }
    let missing = time_audio(Corruption::audio(AudioCorruption::Missing));
    row("missing", &[missing], clean_audio);

    println!(
        "  frames clean: 4 x {w}x{h} -> resize 224x224 + normalise            {clean_frames:8.3}"
    );
    println!(
        "  {:<18}{}",
        "visual",
        (1..=5)
            .map(|s| format!("{:>8}", format!("sev {s}")))
            .collect::<String>()
    );
    let visual_kinds: [(&str, VisualKind); 6] = [
        ("noise", VisualCorruption::Noise),
        ("blur", VisualCorruption::Blur),
        ("jpeg", VisualCorruption::Jpeg),
        ("occlusion", VisualCorruption::Occlusion),
        ("night", VisualCorruption::Night),
        ("drop", VisualCorruption::Drop),
    ];
    let mut time_frames = |c: Corruption| {
        median_ms(
            || {
                let mut f = frames.clone();
                index += 1;
                c.apply_frames(&mut f, w, h, 7, index).unwrap();
                black_box(&f);
            },
            iters,
        )
    };
    for (name, kind) in visual_kinds {
        let cells: Vec<f64> = Severity::all()
            .map(|s| time_frames(Corruption::visual(kind(s))))
            .collect();
        row(name, &cells, clean_frames);
    }
    let missing = time_frames(Corruption::visual(VisualCorruption::Missing));
    row("missing", &[missing], clean_frames);
}
