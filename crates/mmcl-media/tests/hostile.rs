//! Hostile inputs, generated here, each decoded in a child process capped at 1 GiB of address
//! space: every one gives a clear error naming the file, or a bounded-memory success.
//! (Before the decoder limits, one 64-byte WAV declaring 2^32-1 Hz made rubato allocate
//! 6.9 GB, and a 389 KB PNG declaring 20000 x 20000 decoded at 3.5 GB.)
#[path = "support/hostile.rs"]
mod hostile;

use std::path::Path;

use hostile::under_memory_cap;
use mmcl_media::audio::{self, DecodeOptions};
use mmcl_media::{frames, MediaError};

fn assert_limit(e: MediaError, path: &Path, want: &str) {
    let msg = e.to_string();
    assert!(matches!(e, MediaError::Limit { .. }), "{path:?}: {e:?}");
    assert!(
        msg.contains(path.to_str().unwrap()) && msg.contains(want),
        "{msg:?} should name the file and say {want:?}"
    );
}

#[test]
#[cfg(feature = "wav")] // WAV inputs only
fn lying_sample_rates_are_refused_under_the_cap() {
    under_memory_cap("lying_sample_rates_are_refused_under_the_cap", || {
        let dir = tempfile::tempdir().unwrap();
        for rate in [1u32, 2, (1 << 31) - 1, u32::MAX] {
            for bits in [16u16, 24] {
                let p = dir.path().join(format!("rate{rate}_{bits}bit.wav"));
                let bytes = hostile::lying_rate_wav(rate, bits);
                assert_eq!(bytes.len(), 64);
                std::fs::write(&p, bytes).unwrap();
                let want = format!("sample rate {rate} Hz");
                assert_limit(audio::decode_file(&p).unwrap_err(), &p, &want);
                assert_limit(audio::load_mono(&p, 16_000).unwrap_err(), &p, &want);
                let ten = DecodeOptions::first_seconds(10.0);
                assert_limit(
                    audio::load_mono_with(&p, 16_000, &ten).unwrap_err(),
                    &p,
                    &want,
                );
            }
        }
        // A channel count no decoder should loop over.
        let p = dir.path().join("channels.wav");
        let mut b = hostile::wav_header(16_000, 64, 16, 128);
        b.extend_from_slice(&[0u8; 128]);
        std::fs::write(&p, b).unwrap();
        assert_limit(audio::decode_file(&p).unwrap_err(), &p, "64 channels");
    });
}

#[test]
fn huge_declared_images_are_refused_under_the_cap() {
    under_memory_cap("huge_declared_images_are_refused_under_the_cap", || {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "png_huge.png",
                hostile::png_declaring(20_000, 20_000),
                "20000x20000",
            ),
            // Within the per-side limit, but 192 MB as RGB.
            (
                "png_8k.png",
                hostile::png_declaring(8_000, 8_000),
                "8000x8000",
            ),
            (
                "jpeg_huge.jpg",
                hostile::jpeg_declaring(20_000, 20_000),
                "20000x20000",
            ),
        ];
        for (name, bytes, want) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, &bytes).unwrap();
            assert_limit(frames::read_frame(&p).unwrap_err(), &p, want);
            assert_limit(
                frames::decode_frame_bytes(&bytes, &p).unwrap_err(),
                &p,
                want,
            );
        }
        // A frame folder holding one of them fails on it, by name.
        let d = dir.path().join("clip");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("00000.png"), hostile::png_frame(8, 8, 1)).unwrap();
        std::fs::write(d.join("00001.png"), hostile::png_declaring(20_000, 20_000)).unwrap();
        assert_limit(
            frames::read_frame_dir(&d).unwrap_err(),
            &d.join("00001.png"),
            "20000x20000",
        );
    });
}

#[test]
#[cfg(feature = "wav")] // WAV inputs only
fn a_ten_minute_clip_decodes_only_the_span_asked_for() {
    under_memory_cap("a_ten_minute_clip_decodes_only_the_span_asked_for", || {
        let dir = tempfile::tempdir().unwrap();
        // The direct 16-bit path and symphonia's (24-bit), each resampled and not.
        let files = [
            (dir.path().join("long16.wav"), 16_000u32, 16u16),
            (dir.path().join("long24.wav"), 8_000, 24),
        ];
        for (p, rate, bits) in &files {
            hostile::write_long_wav(p, *rate, *bits, 600);
        }
        let before = hostile::peak_rss();
        let ten = DecodeOptions::first_seconds(10.0);
        for (p, rate, _) in &files {
            let native = audio::decode_file_with(p, &ten).unwrap();
            assert_eq!(native.samples.len(), 10 * *rate as usize, "{p:?}");
            let wave = audio::load_mono_with(p, 16_000, &ten).unwrap();
            assert_eq!(wave.len(), 160_000, "{p:?}");
        }
        let grew = hostile::peak_rss().saturating_sub(before);
        eprintln!("peak RSS grew by {} KiB", grew >> 10);
        // A whole decode of one file alone is 600 s * 16 kHz * 4 B = 38 MB of samples.
        assert!(grew < 24 << 20, "peak RSS grew by {grew} bytes");
    });
}

#[test]
fn truncated_files_give_errors_naming_them() {
    under_memory_cap("truncated_files_give_errors_naming_them", || {
        let dir = tempfile::tempdir().unwrap();
        if cfg!(feature = "wav") {
            let wav = dir.path().join("cut.wav");
            hostile::write_long_wav(&wav, 16_000, 16, 2);
            let whole = std::fs::read(&wav).unwrap();
            std::fs::write(&wav, &whole[..whole.len() / 2]).unwrap();
            let e = audio::decode_file(&wav).unwrap_err();
            assert!(matches!(e, MediaError::Corrupt { .. }), "{e:?}");
            assert!(e.to_string().contains("cut.wav"), "{e}");
            // The span before the cut is intact, and that is all a short decode needs.
            let first = audio::decode_file_with(&wav, &DecodeOptions::first_seconds(0.5)).unwrap();
            assert_eq!(first.samples.len(), 8_000);
            for n in [0usize, 10, 30, 43] {
                let p = dir.path().join(format!("head{n}.wav"));
                std::fs::write(&p, &whole[..n]).unwrap();
                let e = audio::decode_file(&p).unwrap_err();
                assert!(e.to_string().contains(&format!("head{n}.wav")), "{e}");
            }
        }

        let png = hostile::png_frame(64, 48, 3);
        for n in [8usize, 33, png.len() / 2, png.len() - 12] {
            let p = dir.path().join(format!("cut{n}.png"));
            std::fs::write(&p, &png[..n]).unwrap();
            let e = frames::read_frame(&p).unwrap_err();
            assert!(e.to_string().contains(&format!("cut{n}.png")), "{e}");
        }
    });
}
