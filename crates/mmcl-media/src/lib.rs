#![doc = include_str!("../README.md")]
//!
//! # Modules
//!
//! | module | what |
//! |---|---|
//! | [`audio`] | decode to mono f32 ([`audio::load_mono`], [`audio::decode_file`]), resample ([`audio::resample`]) |
//! | [`spectrogram`] | the planned, thread-shareable [`spectrogram::Stft`]; `log(|S| + 1e-7)` as `[freq, time]` |
//! | [`transform`] | the reference audio transform ([`transform::AudioTransform`]): tile to 10 s, 5 s crop, clip, log-STFT |
//! | [`frames`] | frame folders (JPEG/PNG), video decoding (feature `ffmpeg`), frame choice |
//! | [`image_ops`] | resize, RandomResizedCrop, hflip, ImageNet normalisation |
//! | [`fast`] | allocation-free forms of the above, with reusable scratch buffers |
//! | [`corrupt`] | seeded corruptions of the waveform and the frames at severities 1-5 (noise, blur, JPEG, clipping, dropouts, missing), their spec parser (`audio:pink:2+visual:blur:4`) |
//! | `ffmpeg` (feature `ffmpeg`) | audio of any container FFmpeg reads (`ffmpeg::decode_audio`) |
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

pub mod audio;
pub mod corrupt;
mod error;
pub mod fast;
#[cfg(feature = "ffmpeg")]
pub mod ffmpeg;
pub mod frames;
pub mod image_ops;
mod mp4_edit;
mod resize;
pub mod spectrogram;
pub mod transform;

// One path per item: everything lives in its module; only the error type is at the root.
pub use error::{MediaError, Result};
