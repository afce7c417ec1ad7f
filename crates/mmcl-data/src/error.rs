//! The typed error of the preprocessing cache, `prep` and the loader.
use std::path::PathBuf;

/// Everything that can go wrong while building, opening or reading a cache.
///
/// Errors always name the file (or directory) involved. Problems with a single clip
/// during `prep` are *not* errors: they are recorded as [`crate::prep::SkipReason`]s in
/// the report and the clip is skipped.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid cache shard: {reason}")]
    Shard { path: PathBuf, reason: String },
    #[error("{path}: invalid cache metadata: {reason}")]
    Metadata { path: PathBuf, reason: String },
    #[error(
        "cache {cache} was built from a different manifest (cache: sha256 {cached}, \
         {manifest}: sha256 {current}); prepare a fresh cache with `mmcl prep --out NEW_DIR` \
         or use the manifest the cache was built from"
    )]
    ManifestMismatch {
        cache: PathBuf,
        manifest: PathBuf,
        cached: String,
        current: String,
    },
    #[error(
        "cache {cache} was built with different options (cache: {cached}; requested: \
         {requested}); use another --out directory or the original options"
    )]
    OptionsMismatch {
        cache: PathBuf,
        cached: String,
        requested: String,
    },
    #[error("cache {path} is incomplete (prep was interrupted); re-run `mmcl prep` with the same manifest and --out to finish it")]
    Incomplete { path: PathBuf },
    #[error("manifest {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("sample index {index} out of range (the cache holds {len} clips)")]
    IndexOutOfRange { index: usize, len: usize },
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Another `prep` is writing the same cache.
    #[error(transparent)]
    Lock(#[from] mmcl_io::LockError),
    #[error("{context}: {source}")]
    Media {
        context: String,
        #[source]
        source: mmcl_media::MediaError,
    },
}

impl CacheError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CacheError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = CacheError> = std::result::Result<T, E>;
