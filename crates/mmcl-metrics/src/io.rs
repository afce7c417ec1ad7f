//! Atomic file output: write a temporary sibling, then rename over the target.

use std::path::{Path, PathBuf};

use crate::error::{MetricsError, Result};

/// A temporary path next to `target`, ending in `.{ext}`.
pub(crate) fn temp_sibling(target: &Path, ext: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.tmp-{}.{ext}", std::process::id()))
}

/// Writes `bytes` to `path` atomically (readers see the old or the new file, never half).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_sibling(path, "tmp");
    std::fs::write(&tmp, bytes).map_err(|e| MetricsError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        MetricsError::io(path, e)
    })
}
