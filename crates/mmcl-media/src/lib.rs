//! Media decoding and preprocessing for mmcl, usable on its own: audio decoding and
//! resampling, STFT log-spectrograms matching librosa, video frames, and torchvision-style
//! image transforms, all with one typed error ([`MediaError`]) that names the failing file.
//!
//! | module | what |
//! |---|---|
//! | [`audio`] | decode WAV/FLAC/MP3/OGG/AAC-in-MP4 (symphonia) to mono f32, resample (rubato) |
//! | [`spectrogram`] | planned, thread-shareable STFT; `log(|S| + 1e-7)` as `[freq, time]` |
//! | [`transform`] | the reference audio transform: tile to 10 s, 5 s crop, clip, log-STFT |
//! | [`frames`] | frame folders (JPEG/PNG), video decoding (feature `ffmpeg`), frame choice |
//! | [`image_ops`] | resize, RandomResizedCrop, hflip, ImageNet normalisation |
//! | [`resize`] | the resize kernel: PIL's fixed-point bilinear, exact, AVX2 when available |
//!
//! Speed (`cargo bench -p mmcl-media`, one thread): decode a 10 s 16 kHz WAV + 5 s crop +
//! log-STFT 0.43 ms; 4 JPEG frames 640 x 360 decoded + RandomResizedCrop 224 + flip +
//! normalise 2.8 ms, of which JPEG decoding (zune-jpeg, through `image`) is 1.9-2.0 ms and one
//! RandomResizedCrop 0.15 ms; 3.25 ms per clip in all (the reference's Python path: 23 ms).
//!
//! Cargo feature `ffmpeg` (needs FFmpeg's development libraries) adds video decoding and
//! audio extraction from containers symphonia cannot read.
//!
//! # Example
//!
//! ```
//! use mmcl_media::{audio, image_ops, frames, transform::{AudioTransform, AudioTransformConfig}};
//! use rand::SeedableRng;
//! # fn main() -> Result<(), mmcl_media::MediaError> {
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
//! // let wave = audio::load_mono(Path::new("clip.wav"), 16_000)?;  // decode + mono + resample
//! let wave: Vec<f32> = (0..48_000).map(|i| (i as f32 * 0.05).sin()).collect(); // 3 s tone
//! let audio_tf = AudioTransform::new(AudioTransformConfig::default())?; // build once, share
//! let offset = audio_tf.random_offset(wave.len(), &mut rng); // eval: center_offset(len)
//! let spec = audio_tf.apply(&wave, offset)?;
//! assert_eq!((spec.freq, spec.time), (129, 626));
//! // let frames = frames::read_frame_dir(Path::new("clip_frames/"))?;
//! let frame = image::RgbImage::from_pixel(640, 360, image::Rgb([90, 120, 200]));
//! let crop = image_ops::random_resized_crop(&frame, 224, &mut rng)?;
//! let chw = image_ops::to_normalized_chw(&crop, image_ops::IMAGENET_MEAN, image_ops::IMAGENET_STD);
//! assert_eq!(chw.len(), 3 * 224 * 224);
//! # let _ = (audio::resample(&wave, 16_000, 8_000)?, frames::select_frames(10, 4, true, &mut rng));
//! # Ok(()) }
//! ```

pub mod audio;
pub mod error;
#[cfg(feature = "ffmpeg")]
pub mod ffmpeg;
pub mod frames;
pub mod image_ops;
mod mp4_edit;
pub mod resize;
pub mod spectrogram;
pub mod transform;

pub use audio::{decode_file, load_mono, resample, DecodedAudio};
pub use error::{MediaError, Result};
pub use frames::{read_frame_dir, select_frames, RgbFrame};
pub use spectrogram::{PadMode, Spectrogram, SpectrogramConfig, Stft};
pub use transform::{AudioTransform, AudioTransformConfig};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
