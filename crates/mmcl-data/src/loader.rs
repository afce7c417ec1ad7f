//! The batch loader: model inputs from the cache, with the reference's train augmentation
//! or the evaluation transform, seeded per sample and parallel across samples.
//!
//! Per sample (index `i` of the cache), in this order:
//! * audio: a crop of `crop_len` samples (default: half the stored clip, the reference's 5 s
//!   of 10 s) at a uniformly random offset in `0..=clip_len - crop_len` (train) or the
//!   centre (eval), as f32 = i16 / 32768, then the log-magnitude STFT of
//!   [`mmcl_media::spectrogram`] -> `[1, F, T_spec]` (129 x 626 at 16 kHz / 5 s);
//! * frames: `T` frame positions, sorted uniformly random without replacement (train) or
//!   evenly spaced (eval: the centres of `T` equal segments); each frame independently
//!   (as the reference transforms frame by frame) RandomResizedCrop to `S x S` (torchvision
//!   defaults) then a horizontal flip with probability 0.5 (train), or a plain resize to
//!   `S x S` (eval); then `/255`, ImageNet normalisation -> `[3, T, S, S]`.
//!
//! Corruptions ([`mmcl_media::corrupt`]): [`Loader::batch_corrupted`] evaluates with a
//! corruption applied to each clip's signal before feature extraction (the audio crop
//! before the STFT, the selected stored frames before the resize and normalisation), drawn
//! from (corruption seed, cache index) alone; [`Loader::with_train_corruptions`] gives
//! chosen training samples a corruption of their own (a modality missing in training),
//! which their compact samples carry into the replay memory too.
//!
//! Randomness: sample `i` in epoch `e` of a run with seed `s` draws from its own
//! `ChaCha8Rng` seeded by a hash of `(s, e, i)` ([`sample_rng`]), so a batch is identical
//! whatever the number of threads and whatever the batch composition.
//!
//! Parallelism: samples are processed on the current rayon pool (wrap calls in
//! `pool.install(..)` to choose the threads). Shards are read through their mmaps.
//!
//! Outputs are plain `Vec<f32>` buffers with shapes (row-major), ready for
//! `candle_core::Tensor::from_vec(batch.audio, batch.audio_shape, &device)`; the data layer
//! stays free of candle.
//!
//! Replay: with [`LoaderConfig::compact`] set, a batch also carries a [`CompactSample`] per
//! sample: the exact audio crop used (i16) and the selected frames with the evaluation
//! resize only (u8 `[T, S, S, 3]`, no crop or flip). It is the one sample type of the
//! pipeline: the replay memory (mmcl-buffer) stores these same values, shared by [`Arc`], so
//! a sample entering the memory is never copied. [`Loader::compact_inputs`] turns compact
//! samples back into model inputs (spectrogram + normalisation), the un-augmented path the
//! reference uses for buffer samples.
use std::sync::Arc;

use std::collections::BTreeMap;

use mmcl_media::corrupt::Corruption;
use mmcl_media::fast::{self, resized_crop_into, ResizeScratch, StftScratch};
use mmcl_media::frames::select_frames;
use mmcl_media::image_ops::{self, CropRect, RandomResizedCropConfig, IMAGENET_MEAN, IMAGENET_STD};
use mmcl_media::spectrogram::{Spectrogram, SpectrogramConfig, Stft};
use mmcl_media::transform::{AudioTransform, AudioTransformConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::cache::{Cache, FramesView};
use crate::error::{CacheError, Result};

/// Train-time augmentation or the deterministic evaluation transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// What the loader produces. The default is the reference's (4 frames of 224 x 224, 5 s of
/// a 10 s clip, n_fft 256 / hop 128, ImageNet normalisation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoaderConfig {
    /// Frames per clip T (must not exceed the cache's `min_frames`).
    pub frames: usize,
    /// Model frame size S (output frames are S x S).
    pub frame_size: u32,
    /// Audio crop length in seconds; `None` = half the stored clip.
    pub crop_seconds: Option<f64>,
    pub spectrogram: SpectrogramConfig,
    pub crop: RandomResizedCropConfig,
    /// Probability of a horizontal flip per frame in training.
    pub flip_probability: f64,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Also return [`CompactSample`]s (costs one extra resize per frame in training).
    pub compact: bool,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            frames: 4,
            frame_size: 224,
            crop_seconds: None,
            spectrogram: SpectrogramConfig::default(),
            crop: RandomResizedCropConfig::default(),
            flip_probability: 0.5,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            compact: false,
        }
    }
}

/// Model inputs of `B` samples, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    /// Log-magnitude spectrograms, `audio_shape` = `[B, 1, F, T_spec]`.
    pub audio: Vec<f32>,
    pub audio_shape: [usize; 4],
    /// Normalised frames, `video_shape` = `[B, 3, T, S, S]`.
    pub video: Vec<f32>,
    pub video_shape: [usize; 5],
}

/// The un-augmented, compact copy of one loaded sample: what the replay memory stores.
///
/// Audio is the 16-bit PCM crop (what the prepared cache holds, so lossless): the
/// spectrogram is recomputed at replay, which costs little, and a 5 s waveform (160 kB) is no
/// larger than its f16 129x626 spectrogram (161 kB). Frames are u8 RGB, un-augmented.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactSample {
    /// Cache sample index it came from.
    pub index: usize,
    /// Its class.
    pub label: u32,
    /// Its supercategory (the Domain-IL target).
    pub super_label: u32,
    /// The audio crop the batch's spectrogram was computed from (i16, value * 32768).
    pub audio: Vec<i16>,
    /// Sample rate of `audio`.
    pub sample_rate: u32,
    /// The selected frames resized to S x S (evaluation resize, no crop or flip): u8 RGB,
    /// row-major `[T, H, W, 3]` with `[T, H, W]` = `frame_shape`.
    pub frames: Vec<u8>,
    pub frame_shape: [usize; 3],
}

impl CompactSample {
    /// Checks that `frames` holds exactly `frame_shape` RGB pixels.
    pub fn validate(&self) -> Result<()> {
        let [t, h, w] = self.frame_shape;
        if self.frames.len() != t * h * w * 3 {
            return Err(CacheError::Config(format!(
                "compact sample {}: frames hold {} bytes, shape [{t}, {h}, {w}, 3] needs {}",
                self.index,
                self.frames.len(),
                t * h * w * 3
            )));
        }
        Ok(())
    }

    /// Bytes of audio and frames held (the fixed-size fields excluded).
    pub fn payload_bytes(&self) -> usize {
        self.audio.len() * 2 + self.frames.len()
    }
}

// So that `Loader::compact_inputs` takes plain references, `Arc`s and the memory's items alike.
impl AsRef<CompactSample> for CompactSample {
    fn as_ref(&self) -> &CompactSample {
        self
    }
}

/// A batch of model inputs with labels (and compact copies when configured).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Cache sample indices, in batch order.
    pub indices: Vec<usize>,
    pub labels: Vec<u32>,
    /// Supercategory labels (the Domain-IL targets).
    pub super_labels: Vec<u32>,
    /// `[B, 1, F, T_spec]` log-magnitude spectrograms.
    pub audio: Vec<f32>,
    pub audio_shape: [usize; 4],
    /// `[B, 3, T, S, S]` normalised frames.
    pub video: Vec<f32>,
    pub video_shape: [usize; 5],
    /// One per sample when [`LoaderConfig::compact`] is set, else empty. Shared, so the
    /// replay memory keeps them without a copy.
    pub compact: Vec<Arc<CompactSample>>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.indices.len()
    }
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// Asks Linux to back the 2 MB-aligned interior of `buf` with transparent huge pages (only
/// a hint: it changes no values, and is a no-op elsewhere or when THP is off). A fresh 77 MB
/// paper video batch then costs ~44 page faults instead of ~19,000 (measured: writing it takes
/// 25 ms instead of 63 ms on this machine).
fn advise_huge_pages(buf: &mut [f32]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = buf.as_mut_ptr() as usize;
        let end = start + std::mem::size_of_val(buf);
        let (a, e) = (start.next_multiple_of(HUGE), end & !(HUGE - 1));
        if e > a {
            // SAFETY: [a, e) lies inside `buf`, which we borrow mutably; MADV_HUGEPAGE only
            // changes how the kernel backs those pages, never their contents. A failure
            // (e.g. EINVAL without THP) just leaves normal pages.
            unsafe {
                libc::madvise(a as *mut libc::c_void, e - a, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

/// The per-sample RNG of sample `index` in `epoch` of a run seeded with `seed`.
pub fn sample_rng(seed: u64, epoch: u64, index: usize) -> ChaCha8Rng {
    let h = splitmix64(splitmix64(splitmix64(seed) ^ epoch) ^ index as u64);
    ChaCha8Rng::seed_from_u64(h)
}

/// `indices` in the order of a seeded shuffle for `epoch` (Fisher-Yates on the run seed).
pub fn shuffled(indices: &[usize], seed: u64, epoch: u64) -> Vec<usize> {
    use rand::seq::SliceRandom;
    let mut v = indices.to_vec();
    let mut rng =
        ChaCha8Rng::seed_from_u64(splitmix64(splitmix64(seed ^ 0x5eed_0f5a_11e5) ^ epoch));
    v.shuffle(&mut rng);
    v
}

/// SplitMix64's output function (Steele, Lea & Flood 2014): a bijective 64-bit mixer, used
/// to derive independent seeds from `(seed, epoch, index, ...)` tuples. The one copy of the
/// workspace (the scheduler derives its task and step seeds with it too).
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Default)]
struct Scratch {
    crop: Vec<f32>,
    frame: Vec<u8>,
    /// The selected stored frames of a clip being corrupted.
    clip: Vec<u8>,
    resize: ResizeScratch,
    spec: Spectrogram,
    stft: StftScratch,
}

/// Loads batches from an opened [`Cache`]. Cheap to share (`Sync`).
pub struct Loader {
    cache: Arc<Cache>,
    config: LoaderConfig,
    audio: AudioTransform,
    spec_shape: (usize, usize),
    /// Per cache index: the corruption a training sample always arrives with.
    train_corruptions: Arc<BTreeMap<usize, Corruption>>,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("cache", &self.cache)
            .field("config", &self.config)
            .finish()
    }
}

impl Loader {
    /// Plans the STFT and checks `config` against the cache.
    pub fn new(cache: Arc<Cache>, config: LoaderConfig) -> Result<Self> {
        let opts = *cache.options();
        if config.frames == 0 || config.frames > opts.min_frames {
            return Err(CacheError::Config(format!(
                "loader wants {} frames per clip but the cache guarantees only {} (prep --min-frames)",
                config.frames, opts.min_frames
            )));
        }
        if config.frame_size == 0 {
            return Err(CacheError::Config("frame_size must be positive".into()));
        }
        let sr = opts.sample_rate as f64;
        let clip_s = opts.clip_samples as f64 / sr;
        let crop_s = config.crop_seconds.unwrap_or(clip_s / 2.0);
        if !(crop_s > 0.0 && crop_s <= clip_s) {
            return Err(CacheError::Config(format!(
                "audio crop of {crop_s} s does not fit the stored {clip_s} s clips"
            )));
        }
        let audio = AudioTransform::new(AudioTransformConfig {
            sample_rate: opts.sample_rate,
            min_len_s: clip_s as f32,
            crop_s: crop_s as f32,
            max_offset_s: (clip_s - crop_s) as f32,
            spectrogram: config.spectrogram,
        })
        .map_err(|source| CacheError::Media {
            context: "audio transform".into(),
            source,
        })?;
        if audio.crop_len() > opts.clip_samples {
            return Err(CacheError::Config(format!(
                "audio crop of {} samples exceeds the stored {}",
                audio.crop_len(),
                opts.clip_samples
            )));
        }
        let spec_shape = audio.output_shape();
        Ok(Loader {
            cache,
            config,
            audio,
            spec_shape,
            train_corruptions: Arc::default(),
        })
    }

    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }
    /// Audio crop length in samples.
    pub fn crop_len(&self) -> usize {
        self.audio.crop_len()
    }
    /// Spectrogram shape `(F, T_spec)`.
    pub fn spectrogram_shape(&self) -> (usize, usize) {
        self.spec_shape
    }

    /// Loads `indices` as one batch. `seed` and `epoch` determine the augmentation (ignored
    /// in [`Mode::Eval`]). Runs on the current rayon pool. Allocates the batch's buffers;
    /// [`Loader::batch_into`] reuses them.
    pub fn batch(&self, indices: &[usize], mode: Mode, seed: u64, epoch: u64) -> Result<Batch> {
        let b = indices.len();
        let (f, ts) = self.spec_shape;
        let s = self.config.frame_size as usize;
        // Zeroed fresh memory (calloc: untouched pages), backed by huge pages where the kernel
        // allows, before batch_into writes it: 2 MB page faults instead of 4 KB ones.
        let mut batch = Batch {
            audio: vec![0.0; b * f * ts],
            video: vec![0.0; b * 3 * self.config.frames * s * s],
            ..Default::default()
        };
        advise_huge_pages(&mut batch.audio);
        advise_huge_pages(&mut batch.video);
        self.batch_into(indices, mode, seed, epoch, &mut batch)?;
        Ok(batch)
    }

    /// As [`Loader::batch`], writing into `out` and reusing its buffers (a paper-shape batch
    /// of 32 is 87 MB of f32; writing it into fresh memory costs the page faults of 21,000
    /// pages, about a third of the loading time). Every element of `out` is overwritten, so
    /// the result equals [`Loader::batch`]'s whatever `out` held before.
    pub fn batch_into(
        &self,
        indices: &[usize],
        mode: Mode,
        seed: u64,
        epoch: u64,
        out: &mut Batch,
    ) -> Result<()> {
        self.batch_into_with(indices, mode, seed, epoch, None, out)
    }

    /// Sets the corruption each listed training sample (cache index) always arrives with,
    /// e.g. [`mmcl_media::corrupt::AudioCorruption::Missing`] for a clip whose audio is
    /// missing in training. It applies in every mode and to the sample's compact form.
    pub fn with_train_corruptions(mut self, corruptions: BTreeMap<usize, Corruption>) -> Self {
        self.train_corruptions = Arc::new(corruptions);
        self
    }

    /// An evaluation batch ([`Mode::Eval`]) with `corruption` applied to every clip's
    /// signal before feature extraction, drawn from (`corruption_seed`, cache index); the
    /// clean corruption gives exactly [`Loader::batch`]'s evaluation batch.
    pub fn batch_corrupted(
        &self,
        indices: &[usize],
        corruption: &Corruption,
        corruption_seed: u64,
    ) -> Result<Batch> {
        let mut batch = Batch::default();
        let cell = (!corruption.is_identity()).then_some((*corruption, corruption_seed));
        self.batch_into_with(indices, Mode::Eval, 0, 0, cell, &mut batch)?;
        Ok(batch)
    }

    fn batch_into_with(
        &self,
        indices: &[usize],
        mode: Mode,
        seed: u64,
        epoch: u64,
        corruption: Option<(Corruption, u64)>,
        out: &mut Batch,
    ) -> Result<()> {
        let b = indices.len();
        let (f, ts) = self.spec_shape;
        let t = self.config.frames;
        let s = self.config.frame_size as usize;
        let a_stride = f * ts;
        let v_stride = 3 * t * s * s;
        out.labels.clear();
        out.super_labels.clear();
        for &i in indices {
            let r = self.cache.record(i)?;
            out.labels.push(r.label);
            out.super_labels.push(r.super_label);
        }
        out.indices.clear();
        out.indices.extend_from_slice(indices);
        // Resizing keeps the old contents; load_sample overwrites every element.
        out.audio.resize(b * a_stride, 0.0);
        out.video.resize(b * v_stride, 0.0);
        out.audio_shape = [b, 1, f, ts];
        out.video_shape = [b, 3, t, s, s];
        let compact: Vec<Option<Arc<CompactSample>>> = indices
            .par_iter()
            .zip(out.audio.par_chunks_mut(a_stride.max(1)))
            .zip(out.video.par_chunks_mut(v_stride.max(1)))
            .map_init(Scratch::default, |scratch, ((&i, a), v)| {
                let mut rng = sample_rng(seed, epoch, i);
                // A sample's own (training) corruption; missing modalities draw nothing.
                let c = corruption.or_else(|| self.train_corruptions.get(&i).map(|&c| (c, seed)));
                self.load_sample(i, mode, c, &mut rng, scratch, a, v)
            })
            .collect::<Result<_>>()?;
        out.compact.clear();
        out.compact.extend(compact.into_iter().flatten());
        Ok(())
    }

    /// Sample `index` into `audio_out` and `video_out` (audio first, then frames: the order
    /// of `rng`'s draws); returns its compact copy when the loader keeps them.
    #[allow(clippy::too_many_arguments)]
    fn load_sample(
        &self,
        index: usize,
        mode: Mode,
        corruption: Option<(Corruption, u64)>,
        rng: &mut ChaCha8Rng,
        scratch: &mut Scratch,
        audio_out: &mut [f32],
        video_out: &mut [f32],
    ) -> Result<Option<Arc<CompactSample>>> {
        let offset = self.load_audio(index, mode, corruption, rng, scratch, audio_out)?;
        let compact_frames = self.load_frames(index, mode, corruption, rng, scratch, video_out)?;
        if !self.config.compact {
            return Ok(None);
        }
        let sample =
            self.compact_sample(index, offset, corruption, &scratch.crop, compact_frames)?;
        Ok(Some(Arc::new(sample)))
    }

    /// The audio crop of sample `index` (random offset in training, centred in evaluation;
    /// corrupted if asked) into `scratch.crop`, its log spectrogram into `audio_out`; returns
    /// the crop's offset.
    fn load_audio(
        &self,
        index: usize,
        mode: Mode,
        corruption: Option<(Corruption, u64)>,
        rng: &mut ChaCha8Rng,
        scratch: &mut Scratch,
        audio_out: &mut [f32],
    ) -> Result<usize> {
        let clip_len = self.cache.options().clip_samples;
        let offset = match mode {
            Mode::Train => self.audio.random_offset(clip_len, rng),
            Mode::Eval => self.audio.center_offset(clip_len),
        };
        scratch.crop.resize(self.audio.crop_len(), 0.0);
        self.cache.audio_f32(index, offset, &mut scratch.crop)?;
        if let Some((c, c_seed)) = corruption {
            let sr = self.cache.options().sample_rate;
            c.apply_audio(&mut scratch.crop, sr, c_seed, index as u64)
                .map_err(corrupt_err("audio", index))?;
        }
        self.spectrogram_into(
            &scratch.crop,
            &mut scratch.spec,
            &mut scratch.stft,
            audio_out,
        )?;
        Ok(offset)
    }

    /// The `T` selected frames of sample `index`, each augmented (training: random resized
    /// crop and flip) or resized (evaluation) and normalised into `video_out`; returns their
    /// compact copies (the evaluation resize, u8 `[T, S, S, 3]`) when the loader keeps them.
    fn load_frames(
        &self,
        index: usize,
        mode: Mode,
        corruption: Option<(Corruption, u64)>,
        rng: &mut ChaCha8Rng,
        scratch: &mut Scratch,
        video_out: &mut [f32],
    ) -> Result<Vec<u8>> {
        let frames = self.cache.frames(index)?;
        let t = self.config.frames;
        let size = self.config.frame_size as usize;
        let plane = size * size;
        let positions = select_frames(frames.frames, t, mode == Mode::Train, rng);
        let mut compact_frames = if self.config.compact {
            Vec::with_capacity(t * plane * 3)
        } else {
            Vec::new()
        };
        let full = CropRect {
            top: 0,
            left: 0,
            height: frames.height as u32,
            width: frames.width as u32,
        };
        scratch.frame.resize(plane * 3, 0);
        let frame_bytes = frames.height * frames.width * 3;
        let corrupt_frames = corruption.filter(|(c, _)| c.visual.is_some());
        if let Some(c) = corrupt_frames {
            corrupted_clip(&frames, &positions, c, index, &mut scratch.clip)?;
        }
        for (k, &p) in positions.iter().enumerate() {
            let src = match corrupt_frames {
                Some(_) => &scratch.clip[k * frame_bytes..(k + 1) * frame_bytes],
                None => frames.frame(p),
            };
            let at = (index, p);
            let flip = match mode {
                Mode::Train => {
                    let rect = image_ops::random_resized_crop_params(
                        full.width,
                        full.height,
                        &self.config.crop,
                        rng,
                    );
                    let flip = rng.random::<f64>() < self.config.flip_probability;
                    let (r, out) = (&mut scratch.resize, &mut scratch.frame);
                    resize_frame(src, &frames, rect, size, r, out, at)?;
                    flip
                }
                Mode::Eval => {
                    let (r, out) = (&mut scratch.resize, &mut scratch.frame);
                    resize_frame(src, &frames, full, size, r, out, at)?;
                    false
                }
            };
            fast::write_normalized_planes(
                &scratch.frame,
                size,
                size,
                flip,
                self.config.mean,
                self.config.std,
                &mut video_out[k * plane..],
                t * plane,
            );
            if self.config.compact {
                // The compact copy is the evaluation resize, done again after a training crop.
                if mode == Mode::Train {
                    let (r, out) = (&mut scratch.resize, &mut scratch.frame);
                    resize_frame(src, &frames, full, size, r, out, at)?;
                }
                compact_frames.extend_from_slice(&scratch.frame);
            }
        }
        Ok(compact_frames)
    }

    /// The compact copy of sample `index`: the audio crop at `offset` as the sample arrived
    /// (`crop`, the corrupted one, under an audio corruption) and the compact frames.
    fn compact_sample(
        &self,
        index: usize,
        offset: usize,
        corruption: Option<(Corruption, u64)>,
        crop: &[f32],
        frames: Vec<u8>,
    ) -> Result<CompactSample> {
        let rec = self.cache.record(index)?;
        let audio = match corruption {
            // The stored crop is what the sample arrived as (f32 = i16 / 32768 both ways).
            Some((c, _)) if c.audio.is_some() => {
                crop.iter().map(|&x| crate::prep::f32_to_i16(x)).collect()
            }
            _ => {
                let mut audio = vec![0i16; self.audio.crop_len()];
                self.cache.audio_i16(index, offset, &mut audio)?;
                audio
            }
        };
        let s = self.config.frame_size as usize;
        Ok(CompactSample {
            index,
            label: rec.label,
            super_label: rec.super_label,
            audio,
            sample_rate: self.cache.options().sample_rate,
            frames,
            frame_shape: [self.config.frames, s, s],
        })
    }

    fn spectrogram_into(
        &self,
        crop: &[f32],
        spec: &mut Spectrogram,
        stft: &mut StftScratch,
        out: &mut [f32],
    ) -> Result<()> {
        self.stft()
            .log_magnitude_into(crop, spec, stft)
            .map_err(|source| CacheError::Media {
                context: "spectrogram".into(),
                source,
            })?;
        out.copy_from_slice(&spec.data);
        Ok(())
    }

    fn stft(&self) -> &Stft {
        self.audio.stft()
    }

    /// Model inputs from stored compact samples (replay): the spectrogram of the stored
    /// crop and the normalised stored frames, no augmentation, written straight into the
    /// batch buffers. Runs on the current rayon pool.
    pub fn compact_inputs<S: AsRef<CompactSample> + Sync>(&self, samples: &[S]) -> Result<Inputs> {
        let b = samples.len();
        let (f, ts) = self.spec_shape;
        let t = self.config.frames;
        let s = self.config.frame_size as usize;
        let a_stride = f * ts;
        let v_stride = 3 * t * s * s;
        for c in samples {
            let c = c.as_ref();
            if c.audio.len() != self.crop_len()
                || c.frame_shape != [t, s, s]
                || c.frames.len() != t * s * s * 3
            {
                return Err(CacheError::Config(format!(
                    "compact sample {} has audio {} / frames {:?}, this loader needs audio {} / frames {:?}",
                    c.index,
                    c.audio.len(),
                    c.frame_shape,
                    self.crop_len(),
                    [t, s, s]
                )));
            }
        }
        let mut audio = vec![0f32; b * a_stride];
        let mut video = vec![0f32; b * v_stride];
        advise_huge_pages(&mut audio);
        advise_huge_pages(&mut video);
        samples
            .par_iter()
            .zip(audio.par_chunks_mut(a_stride.max(1)))
            .zip(video.par_chunks_mut(v_stride.max(1)))
            .try_for_each_init(Scratch::default, |scratch, ((c, a), v)| -> Result<()> {
                let c = c.as_ref();
                scratch.crop.clear();
                scratch
                    .crop
                    .extend(c.audio.iter().map(|&x| x as f32 * (1.0 / 32768.0)));
                let crop = std::mem::take(&mut scratch.crop);
                let r = self.spectrogram_into(&crop, &mut scratch.spec, &mut scratch.stft, a);
                scratch.crop = crop;
                r?;
                let plane = s * s;
                for k in 0..t {
                    let img = &c.frames[k * plane * 3..(k + 1) * plane * 3];
                    fast::write_normalized_planes(
                        img,
                        s,
                        s,
                        false,
                        self.config.mean,
                        self.config.std,
                        &mut v[k * plane..],
                        t * plane,
                    );
                }
                Ok(())
            })?;
        Ok(Inputs {
            audio,
            audio_shape: [b, 1, f, ts],
            video,
            video_shape: [b, 3, t, s, s],
        })
    }
}

/// The context of a corruption error: which modality of which sample.
fn corrupt_err(what: &str, index: usize) -> impl FnOnce(mmcl_media::MediaError) -> CacheError {
    let context = format!("corrupting the {what} of sample {index}");
    move |source| CacheError::Media { context, source }
}

/// The selected stored frames (`positions`) of sample `index` corrupted as one clip
/// (occlusion and dropped frames act across frames), before the resize, into `clip`.
fn corrupted_clip(
    frames: &FramesView<'_>,
    positions: &[usize],
    (c, c_seed): (Corruption, u64),
    index: usize,
    clip: &mut Vec<u8>,
) -> Result<()> {
    clip.clear();
    for &p in positions {
        clip.extend_from_slice(frames.frame(p));
    }
    c.apply_frames(clip, frames.width, frames.height, c_seed, index as u64)
        .map_err(corrupt_err("frames", index))
}

/// The `rect` of the stored frame `src` (of `frames`' size) resized to `size x size` into
/// `out`; `at` = (sample index, frame position), for the error.
fn resize_frame(
    src: &[u8],
    frames: &FramesView<'_>,
    rect: CropRect,
    size: usize,
    resize: &mut ResizeScratch,
    out: &mut [u8],
    (index, p): (usize, usize),
) -> Result<()> {
    resized_crop_into(
        src,
        frames.width,
        frames.height,
        rect,
        size,
        size,
        resize,
        out,
    )
    .map_err(|source| CacheError::Media {
        context: format!("resizing frame {p} of sample {index}"),
        source,
    })
}
