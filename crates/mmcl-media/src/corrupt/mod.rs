//! Signal corruptions for robustness evaluation: noisy and missing modalities, each at
//! severities 1..=5, applied to the signal before feature extraction (the mono waveform
//! before the STFT, decoded RGB u8 frames before resizing and normalisation), seeded.
//!
//! A [`Corruption`] is one evaluation cell (an optional audio part, an optional visual part;
//! both = bimodal), written and parsed as `audio:white:3`, `visual:missing`,
//! `audio:pink:2+visual:blur:4` or `clean`; a [`CorruptSpec`] is a cell or a named
//! [`Suite`] (`suite:audio`, `suite:visual`, `suite:missing`, `suite:default`). Both
//! (de)serialise as that string; a malformed one is a [`CorruptSpecError`] naming the bad
//! part and the accepted forms. Severity 0 is the identity: the input is left bit-for-bit
//! unchanged and no random number is drawn.
//!
//! | corruption | spec | parameter | 1 | 2 | 3 | 4 | 5 | source |
//! |---|---|---|---|---|---|---|---|---|
//! | white noise | `audio:white` | SNR (dB) | 20 | 15 | 10 | 5 | 0 | issue 12's SNRs |
//! | pink noise (1/f) | `audio:pink` | SNR (dB) | 20 | 15 | 10 | 5 | 0 | issue 12's SNRs |
//! | brown noise (1/f²) | `audio:brown` | SNR (dB) | 20 | 15 | 10 | 5 | 0 | issue 12's SNRs |
//! | clipping | `audio:clip` | clip level / peak (gain) | 0.5 (+6 dB) | 0.3 (+10.5) | 0.2 (+14) | 0.1 (+20) | 0.05 (+26) | ours |
//! | dropouts | `audio:dropout` | share of duration zeroed (100 ms segments) | 0.1 | 0.2 | 0.3 | 0.4 | 0.5 | ours |
//! | silence | `audio:missing` | every sample 0 | – | – | – | – | – | – |
//! | Gaussian noise | `visual:noise` | sigma on [0, 1] | 0.08 | 0.12 | 0.18 | 0.26 | 0.38 | ImageNet-C `gaussian_noise` |
//! | Gaussian blur | `visual:blur` | sigma (px at 224 px; x min side / 224) | 1 | 2 | 3 | 4 | 6 | ImageNet-C `gaussian_blur` |
//! | JPEG | `visual:jpeg` | quality | 25 | 18 | 15 | 10 | 7 | ImageNet-C `jpeg_compression` |
//! | occlusion | `visual:occlusion` | share of frame area (one black rectangle) | 0.1 | 0.2 | 0.3 | 0.4 | 0.5 | ours |
//! | night | `visual:night` | contrast c, then HSV value - b | c 0.4, b 0.1 | 0.3, 0.2 | 0.2, 0.3 | 0.1, 0.4 | 0.05, 0.5 | ImageNet-C `contrast`, `brightness` (negated) |
//! | dropped frames | `visual:drop` | share of frames (frames of T = 4) | 0.2 (1) | 0.35 (1) | 0.5 (2) | 0.65 (3) | 0.8 (3) | ours |
//! | black frames | `visual:missing` | every pixel 0 | – | – | – | – | – | – |
//!
//! (Hendrycks & Dietterich 2019, "Benchmarking Neural Network Robustness to Common
//! Corruptions and Perturbations", ImageNet-C.) Details:
//! * Additive noise is scaled on the waveform it is added to, so the realised SNR
//!   `10 log10(P_clean / P(out - clean))` is the target up to rounding (tested within
//!   0.5 dB); a silent waveform stays silent. Pink and brown noise are shaped in the
//!   frequency domain, flat below 20 Hz ([`noise`]). Apply it to the crop the STFT sees: the
//!   SNR then refers to that crop (the transform's later clip to [-1, 1] can only lower the
//!   noise of a loud waveform).
//! * Clipping amplifies by `1 / level` and clips at the waveform's own peak, so loudness
//!   stays put and the share of flattened samples grows with severity.
//! * Dropouts zero exactly `round(share x length)` samples in non-overlapping 100 ms
//!   segments at random positions.
//! * Visual Gaussian noise draws its normals at 16-bit resolution (inverse-CDF quantiles,
//!   |z| <= 4.33, [`noise::fill_gaussian_u16`]): 7x cheaper than exact draws for the
//!   1.4 M values of a paper clip, and the same once rounded to u8.
//! * Blur: ImageNet-C's sigmas are for 224 x 224 images; a frame is blurred with
//!   `sigma x min(width, height) / 224`, so the blur covers the same share of the scene at
//!   any stored size (the paper's 256-pixel stored frames: x 1.14; the tiny profile's 16 px
//!   frames: x 0.07, where severities 1-2 change little).
//! * Occlusion draws one rectangle per clip (aspect ratio log-uniform in [1/2, 2]) and
//!   blacks it out in every frame, as an object in front of the camera would.
//! * Dropped frames: [`visual::dropped_count`] frames of the clip, chosen uniformly, each
//!   replaced by the nearest earlier kept frame (a frozen stream; the first kept frame for
//!   leading drops). At least one frame is kept; a one-frame clip is unchanged.
//!
//! # Cost
//!
//! `cargo bench -p mmcl-media --bench corrupt` (one thread, medians; the 2-core dev machine
//! under other builds' load): on the 5 s crop at 16 kHz, white noise 0.52 ms, pink or brown
//! 1.0 ms, clipping 0.05 ms, dropouts 0.02 ms, silence 0.005 ms, beside 0.6 ms for the
//! crop + STFT + log it precedes; on the paper's 4 frames at the stored 455 x 256, Gaussian
//! noise 1.9 ms, blur 4.1 ms (severity 1) to 9.9 ms (severity 5), JPEG 8.4-8.7 ms (the
//! `image` crate's encoder, then decoding), night 2.4 ms, occlusion, dropped and black
//! frames <= 0.04 ms, beside 0.55 ms to resize them to 224 x 224 and normalise.
//!
//! # Seeding
//!
//! [`Corruption::apply_audio`] / [`Corruption::apply_frames`] take the run's corruption
//! seed and the sample's index and draw from ChaCha8 keyed by the seed, on stream
//! `2 x index` (audio) or `2 x index + 1` (visual): a sample's realisation depends only on
//! (seed, index, corruption), not on the order of evaluation, the model, or whether the
//! other modality is corrupted too. The `apply` methods of [`AudioCorruption`] and
//! [`VisualCorruption`] take any `Rng` instead.
//!
//! # Example
//!
//! ```
//! use mmcl_media::corrupt::{CorruptSpec, Corruption};
//! use mmcl_media::transform::{AudioTransform, AudioTransformConfig};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let spec: CorruptSpec = "audio:pink:2+visual:blur:4".parse()?;
//! let cell: Corruption = spec.expand()[0];
//! let mut wave: Vec<f32> = (0..80_000).map(|i| (i as f32 * 0.05).sin()).collect();
//! cell.apply_audio(&mut wave, 16_000, 7, 123)?; // run seed 7, sample 123
//! let tf = AudioTransform::new(AudioTransformConfig::default())?;
//! let spec = tf.apply(&wave, tf.center_offset(wave.len()))?;
//! let mut frames = vec![128u8; 4 * 32 * 32 * 3]; // T = 4 frames of 32 x 32 RGB
//! cell.apply_frames(&mut frames, 32, 32, 7, 123)?;
//! # assert_eq!((spec.freq, spec.time), (129, 626));
//! # Ok(()) }
//! ```
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub mod audio;
pub mod noise;
mod spec;
pub mod visual;

pub use spec::{
    accepted_forms, AudioCorruption, CorruptSpec, CorruptSpecError, Corruption, Severity, Suite,
    VisualCorruption,
};

use crate::error::Result;
use crate::frames::RgbFrame;

/// The generator of sample `index`'s audio corruption under `seed` (see the module doc).
pub fn audio_rng(seed: u64, index: u64) -> ChaCha8Rng {
    stream(seed, index, 0)
}

/// The generator of sample `index`'s visual corruption under `seed` (see the module doc).
pub fn visual_rng(seed: u64, index: u64) -> ChaCha8Rng {
    stream(seed, index, 1)
}

fn stream(seed: u64, index: u64, modality: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index.wrapping_shl(1) | modality);
    rng
}

impl Corruption {
    /// Applies the audio part (if any) to sample `index`'s waveform, seeded by
    /// ([`audio_rng`]`(seed, index)`).
    pub fn apply_audio(
        &self,
        wave: &mut [f32],
        sample_rate: u32,
        seed: u64,
        index: u64,
    ) -> Result<()> {
        match &self.audio {
            Some(a) if !a.is_identity() => a.apply(wave, sample_rate, &mut audio_rng(seed, index)),
            _ => Ok(()),
        }
    }

    /// Applies the visual part (if any) to sample `index`'s frames, `T` frames of
    /// `height x width x 3` bytes back to back, seeded by [`visual_rng`]`(seed, index)`.
    pub fn apply_frames(
        &self,
        frames: &mut [u8],
        width: usize,
        height: usize,
        seed: u64,
        index: u64,
    ) -> Result<()> {
        match &self.visual {
            Some(v) => v.apply(frames, width, height, &mut visual_rng(seed, index)),
            None => Ok(()),
        }
    }

    /// [`Corruption::apply_frames`] on decoded frames of one size.
    pub fn apply_images(&self, frames: &mut [RgbFrame], seed: u64, index: u64) -> Result<()> {
        match &self.visual {
            Some(v) => v.apply_images(frames, &mut visual_rng(seed, index)),
            None => Ok(()),
        }
    }
}
