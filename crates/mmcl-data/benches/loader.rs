//! `cargo bench -p mmcl-data`: prep throughput and loader throughput, medians.
//!
//! Two datasets are written into a temp folder (WAV + PNG frames, like the reference layout):
//! * `synthetic`: the mini synthetic profile's shapes (4 s at 8 kHz, 4 frames of 32 px),
//!   loaded as 2 s crops -> 129 x 126 spectrograms, frames 32 x 32;
//! * `paper`: the paper's shapes (10 s at 16 kHz, 10 frames of 256 x 455 after prep's
//!   shorter-side-256 resize), loaded as 5 s crops -> 129 x 626, 4 frames RandomResizedCrop to
//!   224 x 224.
//!
//! For each: prep clips/s (all threads), then augmented training batches of 32 on a
//! 1-thread pool (`Loader::batch`, fresh buffers, and `Loader::batch_into`, reused buffers)
//! and on an all-threads pool (reused): median ms per batch, ms per sample per core
//! (target <= 1.2 ms at paper shapes, the reference's librosa + PIL path takes ~23 ms),
//! samples/s. Baseline in the same run: the uncached path (decode the WAV and 4 PNG frames
//! per sample with mmcl-media, then the same transforms), single thread.
//!
//! The process runs under the allocator policy `mmcl train` sets
//! (`mmcl_ops::alloc::keep_freed_memory`: freed batches are reused by malloc instead of
//! being unmapped and page-faulted back in), so `batch` (fresh buffers, what training calls)
//! is measured as training runs it; `MMCL_BENCH_DEFAULT_ALLOCATOR=1` measures glibc's
//! defaults instead. `MMCL_BENCH_QUICK=1` shrinks the repetitions (CI smoke).
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use image::{Rgb, RgbImage};
use mmcl_data::cache::Cache;
use mmcl_data::loader::{sample_rng, Batch, Loader, LoaderConfig, Mode};
use mmcl_data::manifest::{Manifest, ManifestEntry, Split};
use mmcl_data::prep::{prepare, PrepOptions};
use mmcl_media::image_ops::{self, IMAGENET_MEAN, IMAGENET_STD};
use mmcl_media::transform::{AudioTransform, AudioTransformConfig};
use rand::Rng;

struct Shape {
    name: &'static str,
    sample_rate: u32,
    seconds: f64,
    frames: usize,
    frame_w: u32,
    frame_h: u32,
    model_frame: u32,
    clips: usize,
}

fn write_dataset(root: &Path, s: &Shape) -> std::path::PathBuf {
    let mut m = Manifest::new(root);
    let n = (s.sample_rate as f64 * s.seconds) as usize;
    std::fs::create_dir_all(root.join("audio")).unwrap();
    for c in 0..s.clips {
        let id = format!("c{c:04}");
        let wav = root.join(format!("audio/{id}.wav"));
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: s.sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&wav, spec).unwrap();
        let mut rng = sample_rng(99, 0, c);
        for i in 0..n {
            let tone = (i as f32 * (0.01 + c as f32 * 1e-4)).sin() * 0.4;
            let noise: f32 = rng.random::<f32>() * 0.2 - 0.1;
            w.write_sample(((tone + noise) * 32767.0) as i16).unwrap();
        }
        w.finalize().unwrap();
        let fdir = root.join(format!("frames/{id}"));
        std::fs::create_dir_all(&fdir).unwrap();
        for t in 0..s.frames {
            let img = RgbImage::from_fn(s.frame_w, s.frame_h, |x, y| {
                Rgb([
                    ((x * 3 + y + t as u32 * 17 + c as u32) % 256) as u8,
                    ((x ^ y) % 256) as u8,
                    ((y * 5 + c as u32 * 7) % 256) as u8,
                ])
            });
            img.save(fdir.join(format!("{t:05}.png"))).unwrap();
        }
        m.entries.push(
            ManifestEntry::new(&id, (c % 100) as u32, Split::Train)
                .with_audio(format!("audio/{id}.wav"))
                .with_frames(format!("frames/{id}")),
        );
    }
    let path = root.join("manifest.csv");
    m.write(&path).unwrap();
    path
}

fn median(mut f: impl FnMut(), warmup: usize, iters: usize) -> f64 {
    for _ in 0..warmup {
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

fn run(s: &Shape, quick: bool) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_dataset(&dir.path().join("data"), s);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let opts = PrepOptions {
        sample_rate: s.sample_rate,
        clip_seconds: s.seconds,
        frame_size: 256,
        min_frames: 4,
        shard_clips: 64,
        jobs: 0,
        ..Default::default()
    };
    let out = dir.path().join("cache");
    let report = prepare(&manifest, &out, &opts).unwrap();
    println!(
        "[{}] prep: {} clips in {:.2} s = {:.1} clips/s on {cores} threads ({:.2} clips/s per core), {:.1} MB",
        s.name,
        report.usable,
        report.seconds,
        report.clips_per_second,
        report.clips_per_second / cores as f64,
        report.bytes as f64 / 1e6
    );

    let cache = Arc::new(Cache::open(&out).unwrap());
    let cfg = LoaderConfig {
        frame_size: s.model_frame,
        ..Default::default()
    };
    let loader = Loader::new(cache.clone(), cfg).unwrap();
    let (f, t) = loader.spectrogram_shape();
    let b = 32;
    let indices: Vec<usize> = (0..b).map(|i| i % cache.len()).collect();
    let iters = if quick { 3 } else { 11 };
    let mut epoch = 0u64;
    let mut reused = Batch::default();
    // `reuse`: Loader::batch_into over one Batch (no fresh pages); else Loader::batch.
    let mut batch_ms = |threads: usize, reuse: bool| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            median(
                || {
                    epoch += 1;
                    if reuse {
                        loader
                            .batch_into(&indices, Mode::Train, 1, epoch, &mut reused)
                            .unwrap();
                        black_box(&reused);
                    } else {
                        black_box(loader.batch(&indices, Mode::Train, 1, epoch).unwrap());
                    }
                },
                1,
                iters,
            )
        })
    };
    let fresh = batch_ms(1, false);
    let one = batch_ms(1, true);
    let all = batch_ms(cores, true);
    let fresh_per_sample = fresh / b as f64;
    let one_per_sample = one / b as f64;
    let all_per_sample_core = all * cores as f64 / b as f64;

    // Where a sample's time goes (this thread): the audio crop + log-STFT, one frame's
    // RandomResizedCrop from the stored frame, one frame's flip + normalisation.
    let crop_len = loader.crop_len();
    let mut crop = vec![0f32; crop_len];
    let mut spec = mmcl_media::spectrogram::Spectrogram::default();
    let mut stft_scratch = mmcl_media::fast::StftScratch::default();
    let stft = mmcl_media::spectrogram::Stft::new(loader.config().spectrogram).unwrap();
    let stft_ms = median(
        || {
            cache.audio_f32(0, 0, &mut crop).unwrap();
            stft.log_magnitude_into(&crop, &mut spec, &mut stft_scratch)
                .unwrap();
            black_box(&spec);
        },
        2,
        iters * 4,
    );
    let fv = cache.frames(0).unwrap();
    let size = s.model_frame as usize;
    let mut resized = vec![0u8; size * size * 3];
    let mut resize_scratch = mmcl_media::fast::ResizeScratch::default();
    let mut rng = sample_rng(3, 0, 0);
    let rrc_ms = median(
        || {
            let rect = image_ops::random_resized_crop_params(
                fv.width as u32,
                fv.height as u32,
                &Default::default(),
                &mut rng,
            );
            mmcl_media::fast::resized_crop_into(
                fv.frame(0),
                fv.width,
                fv.height,
                rect,
                size,
                size,
                &mut resize_scratch,
                &mut resized,
            )
            .unwrap();
            black_box(&resized);
        },
        2,
        iters * 8,
    );
    let mut planes = vec![0f32; 3 * size * size];
    let norm_ms = median(
        || {
            mmcl_media::fast::write_normalized_planes(
                &resized,
                size,
                size,
                true,
                IMAGENET_MEAN,
                IMAGENET_STD,
                &mut planes,
                size * size,
            );
            black_box(&planes);
        },
        2,
        iters * 8,
    );
    println!(
        "[{}] per sample, 1 thread: audio crop + log-STFT {stft_ms:.3} ms, RRC of a stored {}x{} frame {rrc_ms:.3} ms (x4), flip + normalise {norm_ms:.3} ms (x4)",
        s.name, fv.width, fv.height
    );

    // Baseline: the uncached path (decode media for every sample), single thread.
    let m = Manifest::read(&manifest).unwrap();
    let clip_s = s.seconds as f32;
    let audio_tf = AudioTransform::new(AudioTransformConfig {
        sample_rate: s.sample_rate,
        min_len_s: clip_s,
        crop_s: clip_s / 2.0,
        max_offset_s: clip_s / 2.0,
        spectrogram: Default::default(),
    })
    .unwrap();
    let base_n = if quick { 2 } else { 8 };
    let mut k = 0usize;
    let base = median(
        || {
            k += 1;
            let e = &m.entries[k % m.entries.len()];
            let mut rng = sample_rng(5, 0, k);
            let wave =
                mmcl_media::audio::load_mono(&m.audio_path(e).unwrap(), s.sample_rate).unwrap();
            let off = audio_tf.random_offset(wave.len(), &mut rng);
            black_box(audio_tf.apply(&wave, off).unwrap());
            let files = mmcl_media::frames::list_frame_files(&m.frames_path(e).unwrap()).unwrap();
            let pos = mmcl_media::frames::select_frames(files.len(), 4, true, &mut rng);
            for p in pos {
                let img = mmcl_media::frames::read_frame(&files[p]).unwrap();
                let mut c = image_ops::random_resized_crop(&img, s.model_frame, &mut rng).unwrap();
                if rng.random::<bool>() {
                    c = image_ops::hflip(&c);
                }
                black_box(image_ops::to_normalized_chw(
                    &c,
                    IMAGENET_MEAN,
                    IMAGENET_STD,
                ));
            }
        },
        1,
        base_n,
    );
    println!(
        "[{}] loader, train batches of {b} ({f}x{t} spectrograms, 4x{m}x{m} frames):\n  \
         1 thread, batch (fresh buffers): {fresh:.2} ms/batch = {fresh_per_sample:.3} ms/sample/core\n  \
         1 thread, batch_into (reused)  : {one:.2} ms/batch = {one_per_sample:.3} ms/sample/core ({:.0} samples/s)\n  \
         {cores} threads, batch_into (reused): {all:.2} ms/batch = {all_per_sample_core:.3} ms/sample/core ({:.0} samples/s)\n  \
         baseline (decode per sample, 1 thread): {base:.3} ms/sample -> cache is {:.1}x faster per core; \
         target <= 1.2 ms/sample/core (reference librosa+PIL ~23 ms)",
        s.name,
        1e3 / one_per_sample,
        b as f64 * 1e3 / all,
        base / one_per_sample,
        m = s.model_frame,
    );
}

fn main() {
    let quick = std::env::var_os("MMCL_BENCH_QUICK").is_some();
    let policy = if std::env::var_os("MMCL_BENCH_DEFAULT_ALLOCATOR").is_some() {
        "glibc defaults (MMCL_BENCH_DEFAULT_ALLOCATOR)"
    } else if mmcl_ops::alloc::keep_freed_memory() {
        "keeps freed memory, as `mmcl train`"
    } else {
        "platform default (keep_freed_memory unavailable)"
    };
    println!("allocator: {policy}");
    run(
        &Shape {
            name: "synthetic mini",
            sample_rate: 8_000,
            seconds: 4.0,
            frames: 4,
            frame_w: 32,
            frame_h: 32,
            model_frame: 32,
            clips: if quick { 64 } else { 256 },
        },
        quick,
    );
    run(
        &Shape {
            name: "paper",
            sample_rate: 16_000,
            seconds: 10.0,
            frames: 10,
            frame_w: 455,
            frame_h: 256,
            model_frame: 224,
            clips: if quick { 8 } else { 32 },
        },
        quick,
    );
}
