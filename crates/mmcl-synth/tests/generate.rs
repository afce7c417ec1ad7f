//! End-to-end generation: real files, determinism, output-folder safety.
use std::collections::BTreeMap;
use std::path::Path;

use mmcl_data::manifest::{Manifest, Split};
use mmcl_synth::{generate, Profile, SynthError};

/// A very small profile: every class, one clip per split, 4 s at 4 kHz, 16 px frames.
fn micro() -> Profile {
    Profile {
        name: "micro".into(),
        clip_seconds: 4,
        sample_rate: 4_000,
        frame_size: 16,
        train_per_class: 1,
        test_per_class: 1,
        crop_seconds: 2.0,
    }
}

fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn same_seed_same_bytes_different_seed_different_media() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let p = micro();
    let sa = generate(&a, &p, 7, false).unwrap();
    generate(&b, &p, 7, false).unwrap();
    generate(&c, &p, 8, false).unwrap();
    let (ta, tb, tc) = (read_tree(&a), read_tree(&b), read_tree(&c));
    // 200 WAVs + 800 PNGs + manifest + dataset.json + CLASSES.md, no temporary files left.
    assert_eq!(ta.len(), 200 + 800 + 3);
    assert!(ta
        .keys()
        .all(|k| !k.contains(".tmp") && !k.contains("partial")));
    assert!(ta == tb, "same seed must give byte-identical files");
    assert_eq!(
        ta["manifest.csv"], tc["manifest.csv"],
        "the manifest does not depend on the seed"
    );
    let media_differs = ta
        .iter()
        .filter(|(k, v)| {
            !k.ends_with(".csv") && !k.ends_with(".json") && !k.ends_with(".md") && tc[*k] != **v
        })
        .count();
    assert_eq!(
        media_differs, 1000,
        "every media file changes with the seed"
    );
    assert_eq!((sa.clips, sa.train, sa.test), (200, 100, 100));
    let bytes: u64 = ta
        .iter()
        .filter(|(k, _)| k.ends_with(".wav") || k.ends_with(".png"))
        .map(|(_, v)| v.len() as u64)
        .sum();
    assert_eq!(sa.media_bytes, bytes);

    // The files are what the manifest says.
    let m = Manifest::read(&a.join("manifest.csv")).unwrap();
    assert_eq!(m.entries.len(), 200);
    assert!(m.counts().values().all(|c| c.train == 1 && c.test == 1));
    let e = m.split(Split::Test).find(|e| e.label == 14).unwrap();
    assert_eq!(e.class_name, "child singing");
    let wav = hound::WavReader::open(m.audio_path(e).unwrap()).unwrap();
    let spec = wav.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 4_000, 16)
    );
    assert_eq!(wav.len(), 16_000);
    let samples: Vec<i16> = wav.into_samples().map(|s| s.unwrap()).collect();
    let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!(
        (0.29 * 32767.0..=0.91 * 32767.0).contains(&(peak as f32)),
        "peak {peak}"
    );
    let frames = m.frames_path(e).unwrap();
    for i in 0..4 {
        let img = image::open(frames.join(format!("{i:05}.png")))
            .unwrap()
            .to_rgb8();
        assert_eq!(img.dimensions(), (16, 16));
    }
    let report: serde_json::Value = serde_json::from_slice(&ta["dataset.json"]).unwrap();
    assert_eq!(report["classes"].as_array().unwrap().len(), 100);
    assert_eq!(report["design_version"], mmcl_synth::DESIGN_VERSION);
    assert_eq!(
        report["loader_hints"]["spectrogram_shape"],
        serde_json::json!([129, 63])
    );
    assert_eq!(report["classes"][42]["train"], 1);
}

#[test]
fn refuses_a_folder_holding_something_else() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = micro();
    p.train_per_class = 1;
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let err = generate(dir.path(), &p, 1, false).unwrap_err();
    assert!(matches!(err, SynthError::NotEmpty { .. }), "{err}");

    let out = dir.path().join("d");
    generate(&out, &p, 1, false).unwrap();
    // Re-running the same generation is allowed; another seed is not.
    generate(&out, &p, 1, false).unwrap();
    let err = generate(&out, &p, 2, false).unwrap_err().to_string();
    assert!(err.contains("seed 1") && err.contains("seed 2"), "{err}");
}

/// Runs `generate(out, micro(), 3)` in a child of this test binary whose file-size limit is
/// 64 bytes (`RLIMIT_FSIZE`, `SIGXFSZ` ignored): its first write of more fails with EFBIG,
/// as one on a full disk fails with ENOSPC (root passes permission checks, not this).
#[cfg(target_os = "linux")]
fn generate_on_a_full_disk(out: &Path) {
    const CHILD: &str = "MMCL_SYNTH_FULL_DISK_OUT";
    if let Some(out) = std::env::var_os(CHILD) {
        let lim = libc::rlimit {
            rlim_cur: 64,
            rlim_max: 64,
        };
        // SAFETY: plain system calls on valid arguments.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
        }
        let err = generate(Path::new(&out), &micro(), 3, false).unwrap_err();
        assert!(matches!(err, SynthError::Io { .. }), "{err}");
        assert!(err.to_string().contains(".synth-partial.json"), "{err}");
        return;
    }
    // The child's output goes to pipes: the file-size limit would also stop its writes to
    // a log file the test's own output is redirected to.
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["a_start_that_failed_on_its_marker_can_be_rerun", "--exact"])
        .env(CHILD, out)
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "the full-disk child failed: {:?}\n{}",
        child.status,
        String::from_utf8_lossy(&child.stderr)
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_start_that_failed_on_its_marker_can_be_rerun() {
    if std::env::var_os("MMCL_SYNTH_FULL_DISK_OUT").is_some() {
        return generate_on_a_full_disk(Path::new(""));
    }
    let dir = tempfile::tempdir().unwrap();
    let p = micro();
    let fresh = dir.path().join("fresh");
    generate(&fresh, &p, 3, false).unwrap();

    // The disk is full when the marker is written: the error names it and nothing is left
    // (before, the media folders were already made, and every re-run was refused).
    let out = dir.path().join("out");
    generate_on_a_full_disk(&out);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    // Once there is space again, the same command runs and writes what a fresh run writes.
    generate(&out, &p, 3, false).unwrap();
    assert_eq!(read_tree(&out), read_tree(&fresh));

    // What older versions (or a killed writer) left before the marker is accepted too:
    // empty media folders and an unfinished marker temporary (which is removed).
    let old = dir.path().join("old");
    for d in ["audio", "frames"] {
        std::fs::create_dir_all(old.join(d)).unwrap();
    }
    std::fs::write(old.join("..synth-partial.json.77-0.tmp.json"), b"{\"trunc").unwrap();
    generate(&old, &p, 3, false).unwrap();
    assert_eq!(read_tree(&old), read_tree(&fresh));
    // Anything else still makes the folder someone else's.
    let other = dir.path().join("other");
    std::fs::create_dir_all(other.join("audio")).unwrap();
    std::fs::write(other.join("audio/mine.wav"), b"x").unwrap();
    let err = generate(&other, &p, 3, false).unwrap_err();
    assert!(matches!(err, SynthError::NotEmpty { .. }), "{err}");
}

#[cfg(feature = "ffmpeg")]
#[test]
fn mp4_output_is_deterministic_and_listed() {
    use mmcl_synth::{generate_with, SynthOptions};
    let dir = tempfile::tempdir().unwrap();
    let mut p = micro();
    p.frame_size = 32;
    let opts = SynthOptions {
        progress: false,
        mp4: true,
    };
    // AAC has no 4 kHz mode: a clear error, not a panic.
    let err = generate_with(&dir.path().join("x"), &p, 5, opts).unwrap_err();
    assert!(
        err.to_string().contains("AAC does not support 4000 Hz"),
        "{err}"
    );
    p.sample_rate = 8_000;
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    generate_with(&a, &p, 5, opts).unwrap();
    generate_with(&b, &p, 5, opts).unwrap();
    let m = Manifest::read(&a.join("manifest.csv")).unwrap();
    let v = m.video_path(&m.entries[0]).unwrap();
    let bytes = std::fs::read(&v).unwrap();
    assert_eq!(&bytes[4..8], b"ftyp");
    assert_eq!(
        bytes,
        std::fs::read(b.join(m.entries[0].video.as_ref().unwrap())).unwrap()
    );
    let (ta, tb) = (read_tree(&a), read_tree(&b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    let differ: Vec<&String> = ta.keys().filter(|k| ta[*k] != tb[*k]).collect();
    assert!(differ.is_empty(), "same seed, different bytes: {differ:?}");
    assert_eq!(ta.keys().filter(|k| k.ends_with(".mp4")).count(), 200);
}

#[cfg(not(feature = "ffmpeg"))]
#[test]
fn mp4_without_ffmpeg_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let opts = mmcl_synth::SynthOptions {
        progress: false,
        mp4: true,
    };
    let err = mmcl_synth::generate_with(dir.path(), &micro(), 1, opts).unwrap_err();
    assert!(matches!(err, SynthError::NoFfmpeg), "{err}");
}
