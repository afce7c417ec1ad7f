//! The one error type of the media crate.
use std::path::PathBuf;

/// Everything that can go wrong while reading or transforming media.
///
/// Variants that concern a file carry its path so a failing clip in a 50,000-clip crawl can be
/// found and skipped by the caller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The file or folder could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file exists but holds no bytes.
    #[error("{path}: empty file (0 bytes)")]
    EmptyFile { path: PathBuf },
    /// No demuxer recognises the container (or it is not a media file at all).
    #[error("{path}: unsupported or unrecognised container: {reason}")]
    UnsupportedFormat { path: PathBuf, reason: String },
    /// The container was recognised but its codec cannot be decoded.
    #[error("{path}: unsupported codec: {reason}")]
    UnsupportedCodec { path: PathBuf, reason: String },
    /// The container holds no audio track.
    #[error("{path}: no audio track")]
    NoAudioTrack { path: PathBuf },
    /// The stream ends early or holds malformed data.
    #[error("{path}: truncated or corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// Decoding succeeded but produced no samples.
    #[error("{path}: decoded zero audio samples")]
    NoSamples { path: PathBuf },
    /// A frame folder with no JPEG/PNG files, or a video that yields no frames.
    #[error("{path}: no frames found ({reason})")]
    NoFrames { path: PathBuf, reason: String },
    /// An image file that cannot be decoded.
    #[error("{path}: unreadable image: {reason}")]
    Image { path: PathBuf, reason: String },
    /// Video decoding (or audio extraction through FFmpeg) was asked for, but the crate was
    /// built without the `ffmpeg` feature.
    #[error("{path}: decoding this needs FFmpeg; rebuild with `--features ffmpeg`")]
    FfmpegDisabled { path: PathBuf },
    /// FFmpeg failed on the file.
    #[error("{path}: ffmpeg: {reason}")]
    Ffmpeg { path: PathBuf, reason: String },
    /// The file declares or holds more than the decoders' resource limits allow (a sample rate
    /// outside [`crate::audio::MIN_SAMPLE_RATE`]..=[`crate::audio::MAX_SAMPLE_RATE`], more than
    /// [`crate::audio::MAX_CHANNELS`] channels, an image beyond [`crate::frames::MAX_FRAME_SIDE`]
    /// or [`crate::frames::MAX_FRAME_BYTES`], ...): refused before anything that large is
    /// allocated, so one hostile header cannot exhaust memory.
    #[error("{path}: over a decoding limit: {reason}")]
    Limit { path: PathBuf, reason: String },
    /// Resampling failed (in-memory data; no file involved).
    #[error("resampling {from} Hz -> {to} Hz failed: {reason}")]
    Resample { from: u32, to: u32, reason: String },
    /// A caller-supplied argument is out of range (in-memory data; no file involved).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Result alias of the media crate.
pub type Result<T, E = MediaError> = std::result::Result<T, E>;
