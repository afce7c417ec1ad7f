//! `cargo bench -p mmcl-media`: per-clip cost of the preprocessing, single thread.
//!
//! * audio: decode a 10 s 16 kHz PCM16 WAV + random 5 s crop + STFT + log (the reference's
//!   librosa.load + stft + log path).
//! * frames: decode 4 JPEG frames (640x360, quality 75, photo-like synthetic content) +
//!   RandomResizedCrop(224) + hflip + normalise (the reference's PIL + torchvision path),
//!   through the allocation-free `resized_crop_into` + `write_normalized_planes`.
//!
//! Prints the median over repeated runs (after warm-up).
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use mmcl_media::fast::{self, ResizeScratch, TransformScratch};
use mmcl_media::image_ops::{self, IMAGENET_MEAN, IMAGENET_STD};
use mmcl_media::spectrogram::Spectrogram;
use mmcl_media::transform::{AudioTransform, AudioTransformConfig};
use mmcl_media::{audio, frames};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn write_wav_pcm16(path: &Path, samples: &[f32], sr: u32) {
    let data_len = (samples.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + data_len as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&sr.to_le_bytes());
    b.extend_from_slice(&(sr * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

fn median_ms(mut f: impl FnMut(), iters: usize) -> f64 {
    for _ in 0..5 {
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

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);

    // 10 s of a chirp plus noise at 16 kHz.
    let wav = dir.path().join("clip.wav");
    let wave: Vec<f32> = (0..160_000)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            0.3 * (2.0 * std::f32::consts::PI * (200.0 + 300.0 * t) * t).sin()
                + 0.05 * (rng.random::<f32>() - 0.5)
        })
        .collect();
    write_wav_pcm16(&wav, &wave, 16_000);

    // 4 JPEG frames (quality 75) with photo-like content: smooth shading, edges, mild noise.
    let mut frame_paths = Vec::new();
    for k in 0..4u32 {
        let img = image::RgbImage::from_fn(640, 360, |x, y| {
            let (fx, fy) = (x as f32, y as f32);
            let shade = 0.5 + 0.25 * (fx / 53.0 + k as f32).sin() * (fy / 37.0).cos();
            let edge = if (x / 80 + y / 60) % 2 == 0 {
                0.15
            } else {
                -0.15
            };
            let noise = (rng.random::<f32>() - 0.5) * 0.03;
            let v = |c: f32| ((shade + edge * c + noise).clamp(0.0, 1.0) * 255.0) as u8;
            image::Rgb([v(1.0), v(0.6), v(-0.4)])
        });
        let p = dir.path().join(format!("{k:05}.jpg"));
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 75)
            .encode_image(&img)
            .unwrap();
        std::fs::write(&p, bytes).unwrap();
        frame_paths.push(p);
    }

    let tf = AudioTransform::new(AudioTransformConfig::default()).unwrap();
    let mut spec = Spectrogram::default();
    let mut scratch = TransformScratch::default();
    let iters = 101;

    let decode_ms = median_ms(
        || {
            black_box(audio::decode_file(&wav).unwrap());
        },
        iters,
    );
    let stft_ms = median_ms(
        || {
            let off = tf.random_offset(wave.len(), &mut rng);
            tf.apply_into(black_box(&wave), off, &mut spec, &mut scratch)
                .unwrap();
            black_box(&spec);
        },
        iters,
    );
    let audio_ms = median_ms(
        || {
            let w = audio::decode_file(&wav).unwrap().samples;
            let off = tf.random_offset(w.len(), &mut rng);
            tf.apply_into(&w, off, &mut spec, &mut scratch).unwrap();
            black_box(&spec);
        },
        iters,
    );

    // The decoder alone (zune-jpeg, which image uses), RGB into a reused buffer: the floor of
    // JPEG decoding without system libraries.
    let jpeg_bytes: Vec<Vec<u8>> = frame_paths
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let mut rgb = vec![0u8; 640 * 360 * 3];
    let zune_ms = median_ms(
        || {
            for b in &jpeg_bytes {
                let opts = zune_core::options::DecoderOptions::default()
                    .jpeg_set_out_colorspace(zune_core::colorspace::ColorSpace::RGB);
                let mut d = zune_jpeg::JpegDecoder::new_with_options(
                    zune_core::bytestream::ZCursor::new(b.as_slice()),
                    opts,
                );
                d.decode_into(&mut rgb).unwrap();
                black_box(&rgb);
            }
        },
        iters,
    );
    let mut clip = vec![0f32; 3 * 4 * 224 * 224];
    let jpeg_ms = median_ms(
        || {
            for p in &frame_paths {
                black_box(frames::read_frame(p).unwrap());
            }
        },
        iters,
    );
    let mut scratch_resize = ResizeScratch::default();
    let mut crop = vec![0u8; 224 * 224 * 3];
    let frames_ms = median_ms(
        || {
            let hw = 224 * 224;
            for (t, p) in frame_paths.iter().enumerate() {
                let img = frames::read_frame(p).unwrap();
                let (w, h) = (img.width(), img.height());
                let rect =
                    image_ops::random_resized_crop_params(w, h, &Default::default(), &mut rng);
                let flip = rng.random::<bool>();
                fast::resized_crop_into(
                    img.as_raw(),
                    w as usize,
                    h as usize,
                    rect,
                    224,
                    224,
                    &mut scratch_resize,
                    &mut crop,
                )
                .unwrap();
                fast::write_normalized_planes(
                    &crop,
                    224,
                    224,
                    flip,
                    IMAGENET_MEAN,
                    IMAGENET_STD,
                    &mut clip[t * hw..],
                    4 * hw,
                );
            }
            black_box(&clip);
        },
        iters,
    );

    println!("mmcl-media bench, single thread, median of {iters} runs:");
    println!("  audio: decode 10 s 16 kHz WAV        {decode_ms:8.3} ms");
    println!("  audio: crop + STFT + log (129x626)    {stft_ms:8.3} ms");
    println!("  audio transform total per clip        {audio_ms:8.3} ms");
    println!("  frames: decode 4 JPEG 640x360         {jpeg_ms:8.3} ms");
    println!("  frames: zune-jpeg alone, 4 from memory  {zune_ms:8.3} ms");
    println!("  frames: decode + RRC 224 + flip + norm {frames_ms:7.3} ms");
    let img = frames::read_frame(&frame_paths[0]).unwrap();
    let resize_ms = median_ms(
        || {
            black_box(image_ops::random_resized_crop(&img, 224, &mut rng).unwrap());
        },
        iters,
    );
    println!("  frames: one RRC 224 of 640x360         {resize_ms:8.3} ms");
    // The two passes alone: 640x360 -> 224x360 (horizontal), 640x360 -> 640x224 (vertical).
    let full = image_ops::CropRect {
        top: 0,
        left: 0,
        width: 640,
        height: 360,
    };
    let mut big = vec![0u8; 640 * 360 * 3];
    let (mut hpass, mut vpass) = (0.0, 0.0);
    for (ms, (w, h)) in [(&mut hpass, (224, 360)), (&mut vpass, (640, 224))] {
        *ms = median_ms(
            || {
                fast::resized_crop_into(
                    img.as_raw(),
                    640,
                    360,
                    full,
                    w,
                    h,
                    &mut scratch_resize,
                    &mut big,
                )
                .unwrap();
                black_box(&big);
            },
            iters,
        );
    }
    println!("  frames: 640x360 -> 224x360 / 640x224  {hpass:8.3} / {vpass:.3} ms (one pass each)");
    let norm_ms = median_ms(
        || {
            fast::write_normalized_planes(
                &crop,
                224,
                224,
                true,
                IMAGENET_MEAN,
                IMAGENET_STD,
                &mut clip,
                4 * 224 * 224,
            );
            black_box(&clip);
        },
        iters,
    );
    println!("  frames: flip + normalise one 224x224   {norm_ms:8.3} ms");
    println!("  per clip (audio + 4 frames)           {:8.3} ms   (target <= 2 ms; Python reference 23 ms)", audio_ms + frames_ms);
}
