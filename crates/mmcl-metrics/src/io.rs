//! Atomic file output, through mmcl-io's one durable writer.

use std::path::Path;

use crate::error::{MetricsError, Result};

/// Writes `bytes` to `path` atomically and durably (readers see the old or the new file,
/// never half, even after a power loss).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    mmcl_io::write_atomic(path, bytes).map_err(|e| MetricsError::io(path, e))
}
