//! Compact replay memory for continual learning (ER, SAMM): a fixed-capacity buffer with
//! reservoir (default), ring or class-balanced selection over the stream, driven by its own
//! seeded ChaCha8 generator, random minibatches without replacement, whole-buffer access for
//! calibration, and exact save/restore (items, counters and generator state).
//!
//! The stored item for ER and SAMM is [`MemoryItem`]: the loader's
//! [`mmcl_data::loader::CompactSample`] (un-augmented inputs kept compactly: 16-bit PCM
//! waveform, u8 RGB frames; shared by `Arc`, so never copied in or out), the training target
//! and, for SAMM, the three heads' logits at insertion.
//! At paper scale (4 frames of 224x224, 5 s of 16 kHz audio, 100 classes) a sample holds
//! 763,312 bytes (923,312 with the full 10 s clip): under 1 MB, 1.5 GB of host memory for a
//! 2000-sample buffer (the reference keeps 360x360 f32 frames on the GPU, ~13 GB).
//!
//! ```
//! use std::sync::Arc;
//! use mmcl_buffer::{MemoryItem, ReplayBuffer, SelectionPolicy};
//! use mmcl_data::loader::CompactSample;
//!
//! let mut buf = ReplayBuffer::new(4, SelectionPolicy::Reservoir, 42)?;
//! for i in 0..10u32 {
//!     let sample = CompactSample {
//!         index: i as usize, label: i % 3, super_label: 0,
//!         audio: vec![0; 8], sample_rate: 16_000,
//!         frames: vec![0; 2 * 2 * 2 * 3], frame_shape: [2, 2, 2],
//!     };
//!     buf.observe(MemoryItem::new(Arc::new(sample), i % 3, None)?);
//! }
//! assert_eq!(buf.len(), 4);
//! let batch = buf.sample(3); // 3 distinct items
//! assert_eq!(batch.len(), 3);
//! let dir = tempfile::tempdir().unwrap();
//! buf.save(dir.path().join("buffer.safetensors"))?;
//! let again = ReplayBuffer::<MemoryItem>::load(dir.path().join("buffer.safetensors"))?;
//! assert_eq!(again.all(), buf.all());
//! # Ok::<(), mmcl_buffer::BufferError>(())
//! ```

pub mod error;
mod persist;
pub mod replay;
pub mod sample;

pub use error::{BufferError, Result};
pub use replay::{BufferMeta, Insertion, Labelled, ReplayBuffer, RngState, SelectionPolicy};
pub use sample::{bytes_per_sample, labels_tensor, logits_tensors, MemoryItem, StoredLogits};
