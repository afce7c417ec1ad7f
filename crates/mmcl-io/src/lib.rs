//! File output every mmcl crate shares, so there is one implementation of each mechanism:
//!
//! - [`write_atomic`] / [`write_atomic_with`]: write a uniquely named temporary sibling,
//!   fsync it, rename it over the target and fsync the folder, so readers (and a run killed
//!   or a machine losing power mid-write) see the old file or the complete new one, never
//!   an empty or half-written one. New files get mode `0666 & !umask` (0644 under the usual
//!   umask), like any other file the user creates. [`write_atomic_bulk`] +
//!   [`sync_filesystem`]: the same for outputs of thousands of files, synced once.
//! - [`safetensors_bytes`]: `safetensors::serialize` with the header's keys in sorted order
//!   (the crate writes its metadata map in hash order), so the same tensors give the same
//!   bytes on every run.
//! - [`DirLock`]: an exclusive advisory lock (`flock`) on a folder, for the one process that
//!   may write into it; a second writer is refused at once with the holder's pid.
//!
//! Errors are plain [`std::io::Error`]s (plus [`LockError`]); each crate maps them into its
//! own typed error with the path it was writing.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let p = dir.path().join("out.json");
//! mmcl_io::write_atomic(&p, b"{}").unwrap();
//! assert_eq!(std::fs::read(&p).unwrap(), b"{}");
//! let lock = mmcl_io::DirLock::acquire(dir.path()).unwrap();
//! assert!(matches!(mmcl_io::DirLock::acquire(dir.path()), Err(mmcl_io::LockError::InUse { .. })));
//! drop(lock);
//! assert!(mmcl_io::DirLock::acquire(dir.path()).is_ok());
//! ```

mod atomic;
mod lock;
mod tensors;

pub use atomic::{
    rename_durable, sync_dir, sync_filesystem, temp_path, write_atomic, write_atomic_bulk,
    write_atomic_with,
};
pub use lock::{DirLock, LockError, LOCK_FILE};
pub use tensors::{canonical_safetensors, safetensors_bytes};
