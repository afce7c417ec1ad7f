//! Errors of the generator.
use std::path::PathBuf;

/// Why generation failed. I/O errors name the file.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("{0}")]
    Profile(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot encode WAV: {source}")]
    Wav {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },
    #[error("{path}: cannot encode PNG: {source}")]
    Png {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("{path}: cannot encode MP4: {reason}")]
    Mp4 { path: PathBuf, reason: String },
    #[error("MP4 output needs mmcl built with the `ffmpeg` feature")]
    NoFfmpeg,
    #[error("{path}: output folder already holds a different dataset ({reason}); choose an empty folder")]
    NotEmpty { path: PathBuf, reason: String },
    #[error(transparent)]
    Manifest(#[from] mmcl_data::manifest::ManifestError),
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}
