//! Manifests, the VGGSound manifest builder, the safetensors preprocessing cache and the
//! augmenting batch loader: everything between media files on disk and model inputs.
//!
//! | module | what |
//! |---|---|
//! | [`manifest`], [`classes`], [`vggsound`] | the manifest CSV format, the class table, the VGGSound manifest builder |
//! | [`prep`] | decode every clip once, in parallel, into the cache; skipped clips reported with reasons |
//! | [`cache`] | the cache format (safetensors shards, tensor names/dtypes/shapes documented there) and [`cache::Cache`] (mmap reader, index helpers per split/class) |
//! | [`loader`] | seeded, parallel batches: `[B,1,F,T]` log-spectrograms, `[B,3,T,S,S]` frames, labels, compact replay copies |
//! | [`error`] | [`error::CacheError`], the typed error of prep/cache/loader |
//!
//! Model inputs are plain `Vec<f32>` + shape (row-major), so this layer does not depend on
//! candle: `Tensor::from_vec(batch.audio, batch.audio_shape, &device)`.
//!
//! Speed (`cargo bench -p mmcl-data`, paper shapes: 129 x 626 spectrograms from cached 10 s
//! waveforms, 4 frames RandomResizedCrop 224 from stored 455 x 256 u8 frames), one thread:
//! 1.03-1.08 ms per sample with [`loader::Loader::batch_into`] reusing one batch's buffers,
//! 1.26-1.28 ms with [`loader::Loader::batch`], whose fresh 87 MB per batch of 32 is backed
//! by huge pages (2.35-2.47 ms with 4 KB pages); target 1.2 ms, the reference's librosa + PIL
//! path takes ~23 ms. Per
//! sample: audio crop + log-STFT 0.34 ms, 4 x (RRC 0.11 ms + flip/normalise 0.02 ms).
//!
//! # Example
//!
//! ```no_run
//! use std::{path::Path, sync::Arc};
//! use mmcl_data::{cache::Cache, loader::{shuffled, Loader, LoaderConfig, Mode}, manifest::Split};
//! use mmcl_data::prep::{prepare, PrepOptions};
//! # fn main() -> Result<(), mmcl_data::error::CacheError> {
//! let manifest = Path::new("data/manifest.csv");
//! let report = prepare(manifest, Path::new("cache"), &PrepOptions::default())?; // resumable
//! println!("{} usable, {} skipped", report.usable, report.skipped);
//! let cache = Arc::new(Cache::open_for_manifest("cache", manifest)?);
//! let by_class = cache.indices_by_class(Split::Train); // label -> sample indices
//! let loader = Loader::new(cache.clone(), LoaderConfig { compact: true, ..Default::default() })?;
//! let (seed, epoch) = (1992, 0);
//! let order = shuffled(&by_class[&0], seed, epoch);
//! for chunk in order.chunks(32) {
//!     let batch = loader.batch(chunk, Mode::Train, seed, epoch)?; // same seed -> same batch
//!     assert_eq!(batch.audio_shape[..2], [chunk.len(), 1]);
//!     let replay = loader.compact_inputs(&batch.compact)?; // what the replay memory stores
//!     # let _ = replay;
//! }
//! # Ok(()) }
//! ```

pub mod cache;
pub mod classes;
pub mod error;
pub mod loader;
pub mod manifest;
pub mod prep;
pub mod vggsound;
