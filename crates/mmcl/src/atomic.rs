//! Every file the runner writes goes through [`write_atomic`] (mmcl-io's one durable
//! writer): readers (and a run killed mid-write) see the old file or the new one, never half
//! of one, and a written file survives a power loss.
use std::path::Path;

use anyhow::Context;

/// Writes `bytes` to a temporary file in `path`'s folder, fsyncs it, renames it onto
/// `path` and fsyncs the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    mmcl_io::write_atomic(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The writing itself is mmcl-io's, tested there; this wrapper adds the file to the error.
    #[test]
    fn a_missing_folder_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope/out.json");
        let e = format!("{:#}", write_atomic(&p, b"x").unwrap_err());
        assert!(e.contains("nope"), "{e}");
    }
}
