//! `prep` over a manifest of hostile inputs (generated here), in a child process capped at
//! 1 GiB of address space: it finishes, lists every bad clip in its skip report with its
//! reason and the file, and keeps the bounded long clip.
#[path = "../../mmcl-media/tests/support/hostile.rs"]
mod hostile;

use std::path::Path;

use mmcl_data::cache::Cache;
use mmcl_data::manifest::{Manifest, ManifestEntry, Split};
use mmcl_data::prep::{prepare, PrepOptions};
use mmcl_media::audio::{self, DecodeOptions};

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn good_frames(root: &Path, id: &str) {
    for t in 0..4 {
        write(
            &root.join(format!("frames/{id}/{t:05}.png")),
            &hostile::png_frame(12, 8, t as u8),
        );
    }
}

#[test]
fn prep_skips_every_hostile_clip_with_its_reason() {
    hostile::under_memory_cap("prep_skips_every_hostile_clip_with_its_reason", || {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut m = Manifest::new(root);
        let mut add = |id: &str, audio_rel: String, frames_rel: String| {
            m.entries.push(
                ManifestEntry::new(id, 0, Split::Train)
                    .with_audio(audio_rel)
                    .with_frames(frames_rel),
            );
        };
        // (id, expected skip reason, text the detail must hold); None: usable.
        let mut expect: Vec<(String, Option<&str>, String)> = Vec::new();

        hostile::write_long_wav(&root.join("audio/good.wav"), 16_000, 16, 1);
        good_frames(root, "good");
        add("good", "audio/good.wav".into(), "frames/good".into());
        expect.push(("good".into(), None, String::new()));

        // Ten minutes: only clip_seconds are decoded.
        hostile::write_long_wav(&root.join("audio/long.wav"), 16_000, 16, 600);
        add("long", "audio/long.wav".into(), "frames/good".into());
        expect.push(("long".into(), None, String::new()));

        for rate in [1u32, 2, (1 << 31) - 1, u32::MAX] {
            for bits in [16u16, 24] {
                let id = format!("rate{rate}_{bits}");
                write(
                    &root.join(format!("audio/{id}.wav")),
                    &hostile::lying_rate_wav(rate, bits),
                );
                add(&id, format!("audio/{id}.wav"), "frames/good".into());
                expect.push((
                    id.clone(),
                    Some("audio_over_limit"),
                    format!("{id}.wav: over a decoding limit: sample rate {rate} Hz"),
                ));
            }
        }

        // Truncated audio: inside the kept span, and a bare header.
        let mut w = std::fs::read(root.join("audio/good.wav")).unwrap();
        w.truncate(44 + 2 * 4_000);
        write(&root.join("audio/cut.wav"), &w);
        add("cut", "audio/cut.wav".into(), "frames/good".into());
        expect.push(("cut".into(), Some("audio_unreadable"), "cut.wav".into()));
        w.truncate(30);
        write(&root.join("audio/head.wav"), &w);
        add("head", "audio/head.wav".into(), "frames/good".into());
        expect.push(("head".into(), Some("audio_unreadable"), "head.wav".into()));

        // Frames: huge declared PNG and JPEG, a truncated PNG.
        let png = hostile::png_frame(12, 8, 9);
        for (id, name, bytes, reason, want) in [
            (
                "png_huge",
                "00002.png",
                hostile::png_declaring(20_000, 20_000),
                "frames_over_limit",
                "00002.png: over a decoding limit: frame of 20000x20000",
            ),
            (
                "jpeg_huge",
                "00001.jpg",
                hostile::jpeg_declaring(20_000, 20_000),
                "frames_over_limit",
                "00001.jpg: over a decoding limit: frame of 20000x20000",
            ),
            (
                "png_cut",
                "00003.png",
                png[..png.len() / 2].to_vec(),
                "frames_unreadable",
                "00003.png",
            ),
        ] {
            good_frames(root, id);
            if name.ends_with(".jpg") {
                std::fs::remove_file(root.join(format!("frames/{id}/00001.png"))).unwrap();
            }
            write(&root.join(format!("frames/{id}/{name}")), &bytes);
            add(id, "audio/good.wav".into(), format!("frames/{id}"));
            expect.push((id.into(), Some(reason), want.into()));
        }
        // Twelve 2000 x 2000 frames stored natively are 144 MB, over the 128 MiB per clip:
        // refused at the first frame, before the others are decoded.
        let big = hostile::png_frame(2_000, 2_000, 5);
        for t in 0..12 {
            write(&root.join(format!("frames/big/{t:05}.png")), &big);
        }
        add("big", "audio/good.wav".into(), "frames/big".into());
        expect.push((
            "big".into(),
            Some("frames_over_limit"),
            "12 frames of 2000x2000 stored are 144000000 bytes, over the limit of 128 MiB".into(),
        ));
        let manifest = root.join("manifest.csv");
        m.write(&manifest).unwrap();

        let opts = PrepOptions {
            sample_rate: 16_000,
            clip_seconds: 10.0,
            frame_size: 0,
            min_frames: 4,
            shard_clips: 4,
            jobs: 2,
            ..Default::default()
        };
        // Into an existing empty folder (a fresh one works too).
        let out = root.join("cache");
        std::fs::create_dir(&out).unwrap();
        let report = prepare(&manifest, &out, &opts).unwrap();
        eprintln!("peak RSS {} MiB", hostile::peak_rss() >> 20);
        for (id, reason, want) in &expect {
            let skip = report.skipped_clips.iter().find(|s| &s.id == id);
            match (reason, skip) {
                (None, None) => {}
                (Some(r), Some(s)) => {
                    assert_eq!(&s.reason, r, "{id}: {}", s.detail);
                    assert!(s.detail.contains(want.as_str()), "{id}: {:?}", s.detail);
                }
                _ => panic!("{id}: expected {reason:?}, got {skip:?}"),
            }
        }
        assert_eq!(report.usable, 2);
        assert_eq!(report.skipped, expect.len() - 2);

        // The ten-minute clip holds exactly its first 10 s.
        let cache = Cache::open(&out).unwrap();
        let i = cache.records().iter().position(|r| r.id == "long").unwrap();
        let mut got = vec![0i16; 160_000];
        cache.audio_i16(i, 0, &mut got).unwrap();
        let want = audio::decode_file_with(
            &root.join("audio/long.wav"),
            &DecodeOptions::first_seconds(10.0),
        )
        .unwrap();
        assert!(got
            .iter()
            .zip(&want.samples)
            .all(|(g, w)| *g as f32 == w * 32_768.0));
    });
}
