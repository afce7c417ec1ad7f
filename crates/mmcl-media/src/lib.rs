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
//! # Resource limits
//!
//! No input can make a decoder allocate without bound: every limit is checked from the
//! header, before the buffers it would size exist, and is a [`MediaError::Limit`] naming the
//! file and the reason.
//!
//! | what | limit | where |
//! |---|---|---|
//! | declared sample rate | [`audio::MIN_SAMPLE_RATE`]..=[`audio::MAX_SAMPLE_RATE`] (1 kHz - 768 kHz) | direct WAV path, symphonia (header and every packet), FFmpeg (every frame) |
//! | channels | [`audio::MAX_CHANNELS`] (32) | the same |
//! | resampler FFT block | [`audio::MAX_RESAMPLE_BLOCK`] (65536 frames) | [`audio::resample`], and [`audio::load_mono_with`] before decoding |
//! | decoded span | [`audio::DecodeOptions::max_seconds`]: decoding stops once it is covered | all audio decoders |
//! | frame size | [`frames::MAX_FRAME_SIDE`] (8192 px) per side; [`frames::MAX_FRAME_BYTES`] (128 MiB) decoded, and again as RGB u8 | `image::Limits` + header check (JPEG, PNG), FFmpeg video frames |
//! | frame file | [`frames::MAX_FRAME_FILE_BYTES`] (64 MiB) | [`frames::read_frame`] |
//!
//! From these, the memory of decoding an audio span of `S` seconds resampled to `t` Hz is at
//! most 4 B x (`S` x 768k + 460k look-ahead frames) of native-rate mono samples + 4 B x `S`
//! x `t` of output + about 20 MB of read block, packet and resampler buffers: for `S` = 10 s
//! and `t` = 16 kHz, under 60 MB whatever the file declares. One frame needs at most the file
//! (64 MiB) + the decoded image (128 MiB) + its RGB copy (128 MiB) = 320 MiB, and only while it
//! is decoded. (`mmcl-data`'s `prep` builds its per-clip ceiling on these.) Tested by
//! `tests/hostile.rs`: lying-rate WAVs (1 Hz, 2 Hz, 2^31-1, 2^32-1), PNG/JPEG headers declaring
//! 20000 x 20000, 10-minute clips and truncated files, each in a child process capped at
//! 1 GiB of address space.
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
pub mod corrupt;
pub mod error;
#[cfg(feature = "ffmpeg")]
pub mod ffmpeg;
pub mod frames;
pub mod image_ops;
mod mp4_edit;
pub mod resize;
pub mod spectrogram;
pub mod transform;

pub use audio::{
    decode_file, decode_file_with, load_mono, load_mono_with, resample, DecodeOptions, DecodedAudio,
};
pub use error::{MediaError, Result};
pub use frames::{read_frame_dir, select_frames, RgbFrame};
pub use spectrogram::{PadMode, Spectrogram, SpectrogramConfig, Stft};
pub use transform::{AudioTransform, AudioTransformConfig};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
