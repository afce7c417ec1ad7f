//! prep -> cache -> loader on a tiny dataset written by the test itself (WAV + PNG files).
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{Rgb, RgbImage};
use mmcl_data::cache::{Cache, CacheHeader, HEADER_FILE, REPORT_FILE, SHARD_DIR, TMP_DIR};
use mmcl_data::error::CacheError;
use mmcl_data::loader::{CompactSample, Loader, LoaderConfig, Mode};
use mmcl_data::manifest::{Manifest, ManifestEntry, Split};
use mmcl_data::prep::{prepare, PrepOptions, PrepReport};
use mmcl_media::image_ops;
use mmcl_media::spectrogram::{SpectrogramConfig, Stft};

const SR: u32 = 8_000;
/// Source clips are 0.3 s long; the cache stores 0.5 s, so every clip is tiled.
const SRC_SAMPLES: usize = 2_400;

fn wave_i16(seed: usize) -> Vec<i16> {
    (0..SRC_SAMPLES)
        .map(|i| {
            let x = ((i * (seed + 3) * 7919) % 65_536) as i32 - 32_768;
            (x / 3) as i16
        })
        .collect()
}

fn write_wav(path: &Path, samples: &[i16]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SR,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

fn frame(seed: usize, t: usize) -> RgbImage {
    RgbImage::from_fn(20, 12, |x, y| {
        Rgb([
            ((x as usize * 11 + seed * 37 + t * 5) % 256) as u8,
            ((y as usize * 19 + seed * 3) % 256) as u8,
            ((x as usize * y as usize + t * 61) % 256) as u8,
        ])
    })
}

fn write_frames(dir: &Path, seed: usize, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for t in 0..n {
        frame(seed, t)
            .save(dir.join(format!("{t:05}.png")))
            .unwrap();
    }
}

/// `n` good clips over 3 classes (train and test); returns the manifest path.
fn dataset(root: &Path, n: usize) -> (PathBuf, Manifest) {
    let mut m = Manifest::new(root);
    for i in 0..n {
        let id = format!("clip{i:02}");
        write_wav(&root.join(format!("audio/{id}.wav")), &wave_i16(i));
        write_frames(&root.join(format!("frames/{id}")), i, 5 + i % 3);
        let split = if i % 4 == 3 {
            Split::Test
        } else {
            Split::Train
        };
        m.entries.push(
            ManifestEntry::new(&id, (i % 3) as u32 * 21, split)
                .with_audio(format!("audio/{id}.wav"))
                .with_frames(format!("frames/{id}")),
        );
    }
    let path = root.join("manifest.csv");
    m.write(&path).unwrap();
    (path, m)
}

fn opts() -> PrepOptions {
    PrepOptions {
        sample_rate: SR,
        clip_seconds: 0.5,
        frame_size: 0,
        min_frames: 4,
        shard_clips: 3,
        jobs: 2,
        ..Default::default()
    }
}

fn loader_cfg() -> LoaderConfig {
    LoaderConfig {
        frames: 4,
        frame_size: 8,
        ..Default::default()
    }
}

#[test]
fn round_trip_stores_exact_media_and_loads_reference_transforms() {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, _) = dataset(dir.path(), 7);
    let out = dir.path().join("cache");
    let report = prepare(&manifest, &out, &opts()).unwrap();
    assert_eq!((report.rows, report.usable, report.skipped), (7, 7, 0));
    assert_eq!(report.shards_written, 3);
    assert!(out.join("CACHE.md").exists() && out.join(REPORT_FILE).exists());

    let cache = Cache::open_for_manifest(&out, &manifest).unwrap();
    assert_eq!(cache.len(), 7);
    for (i, r) in cache.records().iter().enumerate() {
        assert_eq!(r.id, format!("clip{i:02}"));
        assert_eq!(r.label, (i % 3) as u32 * 21);
        // Waveform: the source tiled to 4,000 samples, bit-exact (16-bit PCM at the target rate).
        let mut a = vec![0i16; 4_000];
        cache.audio_i16(i, 0, &mut a).unwrap();
        let src = wave_i16(i);
        assert!(
            a.iter()
                .enumerate()
                .all(|(k, &v)| v == src[k % SRC_SAMPLES]),
            "clip {i} audio"
        );
        // Frames: native size, every frame in order.
        let f = cache.frames(i).unwrap();
        assert_eq!((f.frames, f.height, f.width), (5 + i % 3, 12, 20));
        for t in 0..f.frames {
            assert_eq!(f.frame(t), frame(i, t).as_raw().as_slice());
        }
    }
    assert_eq!(cache.indices_in_split(Split::Test), vec![3]);
    let by_class = cache.indices_by_class(Split::Train);
    assert_eq!(by_class[&0], vec![0, 6]);
    assert_eq!(by_class[&21], vec![1, 4]);

    // Eval batch = the reference transforms applied independently.
    let loader = Loader::new(Arc::new(cache), loader_cfg()).unwrap();
    let idx = [2usize, 0, 5];
    let batch = loader.batch(&idx, Mode::Eval, 1, 0).unwrap();
    let (crop, f_bins, t_spec) = (2_000usize, 129usize, 2_000 / 128 + 1);
    assert_eq!(batch.audio_shape, [3, 1, f_bins, t_spec]);
    assert_eq!(batch.video_shape, [3, 3, 4, 8, 8]);
    assert_eq!(batch.labels, vec![42, 0, 42]);
    let stft = Stft::new(SpectrogramConfig::default()).unwrap();
    for (b, &i) in idx.iter().enumerate() {
        let src = wave_i16(i);
        let centre = (4_000 - crop) / 2;
        let wave: Vec<f32> = (centre..centre + crop)
            .map(|k| src[k % SRC_SAMPLES] as f32 / 32768.0)
            .collect();
        let spec = stft.log_magnitude(&wave).unwrap();
        assert_eq!(
            &batch.audio[b * f_bins * t_spec..(b + 1) * f_bins * t_spec],
            spec.data.as_slice()
        );
        let n = 5 + i % 3;
        for (k, p) in (0..4).map(|k| (k, ((2 * k + 1) * n) / 8)) {
            let img = image_ops::resize(&frame(i, p), 8, 8).unwrap();
            let chw = image_ops::to_normalized_chw(
                &img,
                image_ops::IMAGENET_MEAN,
                image_ops::IMAGENET_STD,
            );
            for c in 0..3 {
                let got = &batch.video[b * 768 + c * 256 + k * 64..][..64];
                assert_eq!(
                    got,
                    &chw[c * 64..(c + 1) * 64],
                    "sample {i} frame {k} channel {c}"
                );
            }
        }
    }
}

#[test]
fn frames_are_downscaled_to_the_stored_size() {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, _) = dataset(dir.path(), 1);
    let out = dir.path().join("cache");
    prepare(
        &manifest,
        &out,
        &PrepOptions {
            frame_size: 6,
            ..opts()
        },
    )
    .unwrap();
    let cache = Cache::open(&out).unwrap();
    let f = cache.frames(0).unwrap();
    // 20x12 -> shorter side 6, longer side int(6 * 20 / 12) = 10.
    assert_eq!((f.height, f.width), (6, 10));
    assert_eq!(
        f.frame(2),
        image_ops::resize(&frame(0, 2), 10, 6)
            .unwrap()
            .as_raw()
            .as_slice()
    );
}

#[test]
fn broken_clips_are_reported_and_the_cache_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_, mut m) = dataset(root, 4);
    // Missing audio file.
    write_frames(&root.join("frames/nowav"), 9, 5);
    m.entries.push(
        ManifestEntry::new("nowav", 0, Split::Train)
            .with_audio("audio/nowav.wav")
            .with_frames("frames/nowav"),
    );
    // Corrupt audio file.
    std::fs::write(root.join("audio/bad.wav"), b"RIFF not really a wav").unwrap();
    write_frames(&root.join("frames/bad"), 10, 5);
    m.entries.push(
        ManifestEntry::new("bad", 21, Split::Test)
            .with_audio("audio/bad.wav")
            .with_frames("frames/bad"),
    );
    // Too few frames.
    write_wav(&root.join("audio/short.wav"), &wave_i16(11));
    write_frames(&root.join("frames/short"), 11, 3);
    m.entries.push(
        ManifestEntry::new("short", 0, Split::Train)
            .with_audio("audio/short.wav")
            .with_frames("frames/short"),
    );
    // Corrupt PNG.
    write_wav(&root.join("audio/badpng.wav"), &wave_i16(12));
    write_frames(&root.join("frames/badpng"), 12, 5);
    std::fs::write(root.join("frames/badpng/00002.png"), b"\x89PNG garbage").unwrap();
    m.entries.push(
        ManifestEntry::new("badpng", 42, Split::Train)
            .with_audio("audio/badpng.wav")
            .with_frames("frames/badpng"),
    );
    // Missing frame folder.
    write_wav(&root.join("audio/nodir.wav"), &wave_i16(13));
    m.entries.push(
        ManifestEntry::new("nodir", 42, Split::Train)
            .with_audio("audio/nodir.wav")
            .with_frames("frames/nodir"),
    );
    let manifest = root.join("broken.csv");
    m.write(&manifest).unwrap();

    let out = root.join("cache");
    let report = prepare(&manifest, &out, &opts()).unwrap();
    assert_eq!((report.rows, report.usable, report.skipped), (9, 4, 5));
    let reasons: Vec<(&str, usize)> = report
        .skipped_by_reason
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("audio_missing", 1),
            ("audio_unreadable", 1),
            ("frames_missing", 1),
            ("frames_unreadable", 1),
            ("too_few_frames", 1)
        ]
    );
    assert_eq!(report.classes[&0].skipped, 2);
    assert_eq!(report.classes[&0].skipped_by_reason["too_few_frames"], 1);
    assert_eq!(report.classes[&21].skipped_by_reason["audio_unreadable"], 1);
    let bad = report
        .skipped_clips
        .iter()
        .find(|s| s.id == "badpng")
        .unwrap();
    assert!(bad.detail.contains("00002.png"), "{}", bad.detail);
    // The report on disk says the same.
    let on_disk: PrepReport =
        serde_json::from_str(&std::fs::read_to_string(out.join(REPORT_FILE)).unwrap()).unwrap();
    assert_eq!(on_disk.skipped_clips, report.skipped_clips);

    let cache = Cache::open(&out).unwrap();
    assert_eq!(cache.len(), 4);
    assert_eq!(cache.skipped().len(), 5);
    let loader = Loader::new(Arc::new(cache), loader_cfg()).unwrap();
    let batch = loader.batch(&[0, 1, 2, 3], Mode::Train, 5, 0).unwrap();
    assert!(batch
        .audio
        .iter()
        .chain(&batch.video)
        .all(|x| x.is_finite()));
}

fn cache_content(out: &Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let cache = Cache::open(out).unwrap();
    (0..cache.len())
        .map(|i| {
            (
                cache.records()[i].id.clone(),
                cache.audio_le_bytes(i).unwrap().to_vec(),
                cache.frames(i).unwrap().data.to_vec(),
            )
        })
        .collect()
}

#[test]
fn interrupted_prep_resumes_and_skips_finished_shards() {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, _) = dataset(dir.path(), 7);
    let out = dir.path().join("cache");
    prepare(&manifest, &out, &opts()).unwrap();
    let before = cache_content(&out);

    // Simulate a crash during shard 1: the shard is gone, a half-written temp file remains,
    // and the header was never marked complete.
    std::fs::remove_file(out.join(SHARD_DIR).join("shard-00001.safetensors")).unwrap();
    std::fs::create_dir_all(out.join(TMP_DIR)).unwrap();
    std::fs::write(
        out.join(TMP_DIR).join("shard-00001.safetensors"),
        b"half a shard",
    )
    .unwrap();
    let mut header = CacheHeader::read(&out).unwrap();
    header.complete = false;
    std::fs::write(
        out.join(HEADER_FILE),
        serde_json::to_string(&header).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        Cache::open(&out),
        Err(CacheError::Incomplete { .. })
    ));

    let report = prepare(&manifest, &out, &opts()).unwrap();
    assert_eq!((report.shards_written, report.shards_reused), (1, 2));
    assert!(!out.join(TMP_DIR).exists());
    assert_eq!(cache_content(&out), before);

    // A finished cache: nothing left to do.
    let report = prepare(&manifest, &out, &opts()).unwrap();
    assert_eq!((report.shards_written, report.shards_reused), (0, 3));
    assert_eq!(report.usable, 7);
}

#[test]
fn a_cache_is_tied_to_its_manifest_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, mut m) = dataset(dir.path(), 3);
    let out = dir.path().join("cache");
    prepare(&manifest, &out, &opts()).unwrap();

    m.entries.pop();
    let other = dir.path().join("other.csv");
    m.write(&other).unwrap();
    let err = prepare(&other, &out, &opts()).unwrap_err();
    assert!(matches!(err, CacheError::ManifestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("other.csv"));
    let err = Cache::open_for_manifest(&out, &other).unwrap_err();
    assert!(matches!(err, CacheError::ManifestMismatch { .. }), "{err}");

    let err = prepare(
        &manifest,
        &out,
        &PrepOptions {
            min_frames: 5,
            ..opts()
        },
    )
    .unwrap_err();
    assert!(matches!(err, CacheError::OptionsMismatch { .. }), "{err}");
    // The failed attempts left the cache intact.
    assert_eq!(Cache::open_for_manifest(&out, &manifest).unwrap().len(), 3);
}

#[test]
fn batches_are_seeded_and_independent_of_threads_and_batch_composition() {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, _) = dataset(dir.path(), 6);
    let out = dir.path().join("cache");
    prepare(&manifest, &out, &opts()).unwrap();
    let loader = Loader::new(
        Arc::new(Cache::open(&out).unwrap()),
        LoaderConfig {
            compact: true,
            ..loader_cfg()
        },
    )
    .unwrap();
    let idx = [4usize, 1, 5, 0, 2];
    let in_pool = |threads: usize, seed: u64, epoch: u64| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| loader.batch(&idx, Mode::Train, seed, epoch).unwrap())
    };
    let one = in_pool(1, 7, 3);
    assert_eq!(one, in_pool(4, 7, 3));
    assert_ne!(one.video, in_pool(1, 8, 3).video);
    assert_ne!(one.video, in_pool(1, 7, 4).video);
    // Sample 5 alone gets the same augmentation as inside the larger batch.
    let alone = loader.batch(&[5], Mode::Train, 7, 3).unwrap();
    let (a, v) = (one.audio.len() / 5, one.video.len() / 5);
    assert_eq!(alone.audio, one.audio[2 * a..3 * a]);
    assert_eq!(alone.video, one.video[2 * v..3 * v]);
    // Training differs from evaluation, and is finite.
    let eval = loader.batch(&idx, Mode::Eval, 7, 3).unwrap();
    assert_ne!(eval.video, one.video);
    assert!(one.video.iter().all(|x| x.is_finite()));
    // batch_into over a buffer that held other batches (larger, then eval, with compact
    // copies) gives exactly batch()'s result.
    let mut reused = in_pool(1, 9, 9);
    loader
        .batch_into(&[3, 2], Mode::Eval, 1, 1, &mut reused)
        .unwrap();
    assert_eq!(reused, loader.batch(&[3, 2], Mode::Eval, 1, 1).unwrap());
    loader
        .batch_into(&idx, Mode::Train, 7, 3, &mut reused)
        .unwrap();
    assert_eq!(reused, one);
}

#[test]
fn compact_copies_replay_through_the_evaluation_path() {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, _) = dataset(dir.path(), 4);
    let out = dir.path().join("cache");
    prepare(&manifest, &out, &opts()).unwrap();
    let loader = Loader::new(
        Arc::new(Cache::open(&out).unwrap()),
        LoaderConfig {
            compact: true,
            ..loader_cfg()
        },
    )
    .unwrap();

    // Eval batch: the compact copies reproduce it exactly.
    let eval = loader.batch(&[3, 1], Mode::Eval, 0, 0).unwrap();
    assert_eq!(eval.compact.len(), 2);
    assert_eq!(eval.compact[0].frame_shape, [4, 8, 8]);
    assert_eq!(eval.compact[0].sample_rate, SR);
    eval.compact[0].validate().unwrap();
    let back = loader.compact_inputs(&eval.compact).unwrap();
    assert_eq!(
        (back.audio_shape, back.video_shape),
        (eval.audio_shape, eval.video_shape)
    );
    assert_eq!(
        (back.audio, back.video),
        (eval.audio.clone(), eval.video.clone())
    );

    // Train batch: the compact audio is the crop that was used; frames are un-augmented.
    let train = loader.batch(&[3, 1], Mode::Train, 9, 2).unwrap();
    // Plain references work as well as the batch's shared samples.
    let refs: Vec<&CompactSample> = train.compact.iter().map(|c| &**c).collect();
    let back = loader.compact_inputs(&refs).unwrap();
    assert_eq!(back.audio, train.audio);
    assert_eq!(train.compact[0].label, 0);
    assert_eq!(train.compact[1].label, 21);
}

#[test]
fn corrupted_batches_are_seeded_per_clip_and_clean_is_the_plain_evaluation() {
    use mmcl_media::corrupt::{AudioCorruption, Corruption, VisualCorruption};
    let dir = tempfile::tempdir().unwrap();
    let (manifest, _) = dataset(dir.path(), 5);
    let out = dir.path().join("cache");
    prepare(&manifest, &out, &opts()).unwrap();
    let cache = Arc::new(Cache::open(&out).unwrap());
    let cfg = LoaderConfig {
        compact: true,
        ..loader_cfg()
    };
    let loader = Loader::new(cache.clone(), cfg).unwrap();
    let idx = [4usize, 1, 3];
    let eval = loader.batch(&idx, Mode::Eval, 0, 0).unwrap();
    // Severity 0 (clean) is the plain evaluation, bit for bit.
    let clean = loader
        .batch_corrupted(&idx, &Corruption::default(), 7)
        .unwrap();
    assert_eq!((&clean.audio, &clean.video), (&eval.audio, &eval.video));

    let noise: Corruption = "audio:white:3+visual:noise:2".parse().unwrap();
    let a = loader.batch_corrupted(&idx, &noise, 7).unwrap();
    assert_ne!(a.audio, eval.audio);
    assert_ne!(a.video, eval.video);
    // Seeded: same seed same batch; another seed another one; a clip's corruption does
    // not depend on the batch it is in.
    assert_eq!(a, loader.batch_corrupted(&idx, &noise, 7).unwrap());
    assert_ne!(
        a.audio,
        loader.batch_corrupted(&idx, &noise, 8).unwrap().audio
    );
    let alone = loader.batch_corrupted(&[1], &noise, 7).unwrap();
    let (na, nv) = (a.audio.len() / 3, a.video.len() / 3);
    assert_eq!(alone.audio, a.audio[na..2 * na]);
    assert_eq!(alone.video, a.video[nv..2 * nv]);

    // Missing audio: the spectrogram of silence; missing frames: normalised black; the
    // other modality untouched.
    let silent = loader
        .batch_corrupted(&idx, &Corruption::audio(AudioCorruption::Missing), 7)
        .unwrap();
    assert!(
        silent.audio.windows(2).all(|w| w[0] == w[1]),
        "one value: silence"
    );
    assert_eq!(silent.video, eval.video);
    let black = loader
        .batch_corrupted(&idx, &Corruption::visual(VisualCorruption::Missing), 7)
        .unwrap();
    assert_eq!(black.audio, eval.audio);
    let black_r = -image_ops::IMAGENET_MEAN[0] / image_ops::IMAGENET_STD[0];
    assert!(
        (black.video[0] - black_r).abs() < 1e-6,
        "{}",
        black.video[0]
    );

    // A training corruption follows its sample in every mode and into its compact form.
    let missing_audio = Corruption::audio(AudioCorruption::Missing);
    let withheld = Loader::new(cache, cfg)
        .unwrap()
        .with_train_corruptions([(1usize, missing_audio)].into_iter().collect());
    let train = withheld.batch(&[4, 1], Mode::Train, 3, 0).unwrap();
    let plain = loader.batch(&[4, 1], Mode::Train, 3, 0).unwrap();
    let n = train.audio.len() / 2;
    assert_eq!(
        train.audio[..n],
        plain.audio[..n],
        "sample 4 keeps its audio"
    );
    assert_eq!(
        train.audio[n..],
        silent.audio[na..2 * na],
        "sample 1 is silent"
    );
    assert_eq!(train.video, plain.video);
    assert!(train.compact[1].audio.iter().all(|&x| x == 0));
    assert_eq!(train.compact[0].audio, plain.compact[0].audio);
}

#[test]
fn loader_rejects_configs_the_cache_cannot_serve() {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, _) = dataset(dir.path(), 1);
    let out = dir.path().join("cache");
    prepare(&manifest, &out, &opts()).unwrap();
    let cache = Arc::new(Cache::open(&out).unwrap());
    assert!(Loader::new(
        cache.clone(),
        LoaderConfig {
            frames: 5,
            ..loader_cfg()
        }
    )
    .is_err());
    assert!(Loader::new(
        cache.clone(),
        LoaderConfig {
            crop_seconds: Some(0.6),
            ..loader_cfg()
        }
    )
    .is_err());
    let loader = Loader::new(cache, loader_cfg()).unwrap();
    assert!(matches!(
        loader.batch(&[1], Mode::Eval, 0, 0),
        Err(CacheError::IndexOutOfRange { .. })
    ));
}

/// A manifest that names only an MP4 per clip (H.264 + AAC, as raw VGGSound downloads):
/// with the `ffmpeg` feature prep decodes the frames from the video and the audio from its
/// track; without it every such clip is skipped and reported, naming the file and the
/// feature, and the run still finishes.
#[test]
fn mp4_only_clips_need_ffmpeg_and_say_so_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_, mut m) = dataset(root, 3);
    let video =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../mmcl-media/tests/fixtures/video_h264.mp4");
    std::fs::create_dir_all(root.join("video")).unwrap();
    std::fs::copy(&video, root.join("video/v.mp4")).unwrap();
    m.entries
        .push(ManifestEntry::new("v", 21, Split::Train).with_video("video/v.mp4"));
    let manifest = root.join("mp4.csv");
    m.write(&manifest).unwrap();
    let opts = PrepOptions {
        min_frames: 3,
        ..opts()
    };
    let report = prepare(&manifest, &root.join("cache"), &opts).unwrap();
    assert_eq!(report.rows, 4);
    if cfg!(feature = "ffmpeg") {
        assert_eq!(
            (report.usable, report.skipped),
            (4, 0),
            "{:?}",
            report.skipped_clips
        );
    } else {
        assert_eq!((report.usable, report.skipped), (3, 1));
        let s = &report.skipped_clips[0];
        assert_eq!(
            (s.id.as_str(), s.reason.as_str()),
            ("v", "frames_unreadable")
        );
        assert!(
            s.detail.contains("v.mp4") && s.detail.contains("--features ffmpeg"),
            "{}",
            s.detail
        );
    }
}
