//! Durable atomic replacement of one file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The folder `path` lives in (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A temporary path next to `path` that no other writer uses: hidden, named after the
/// target, this process and a per-process counter, and ending in the target's extension
/// (encoders that pick a format from the extension, e.g. PNG or MP4 writers, still work).
pub fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = parent_of(path).join(format!(".{name}.{}-{n}.tmp{ext}", std::process::id()));
        // Only a leftover of a killed process with a reused pid can be there; skip it.
        if !tmp.exists() {
            return tmp;
        }
    }
}

/// fsync a folder, so a rename or a new entry in it survives a power loss. Filesystems
/// that cannot sync folders (EINVAL) are accepted: there is nothing more to do on them.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir)?.sync_all() {
        Err(e) if e.raw_os_error() == Some(22) => Ok(()),
        r => r,
    }
}

/// Rename `from` onto `to` (a file, or a folder onto a missing name) and fsync the folders
/// involved, so the rename is durable.
pub fn rename_durable(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)?;
    let (a, b) = (parent_of(from), parent_of(to));
    sync_dir(b)?;
    if a != b {
        sync_dir(a)?;
    }
    Ok(())
}

/// Write `bytes` to `path` atomically and durably: a unique temporary sibling is written
/// and fsynced, renamed over `path`, and the folder is fsynced. On error the temporary
/// file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_bytes(path, bytes, true)
}

/// [`write_atomic`] without the fsyncs, for bulk outputs of thousands of files (synthetic
/// media): still atomic (old or new file, never half), and made durable all at once by
/// [`sync_filesystem`], which the writer must call before it writes the file that declares
/// the output complete. An fsync per file would cost minutes on the mini dataset.
pub fn write_atomic_bulk(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_bytes(path, bytes, false)
}

fn write_bytes(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    write_with(
        path,
        |tmp| {
            let mut f = create_new(tmp)?;
            f.write_all(bytes)
        },
        |e| e,
        durable,
    )
}

/// Flush everything written so far on the filesystem holding `dir` to disk (`syncfs` on
/// Linux, `sync` on other Unix systems): the durability step of [`write_atomic_bulk`].
pub fn sync_filesystem(dir: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        let f = File::open(dir)?;
        // SAFETY: syncfs on a descriptor this function owns.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        let _ = File::open(dir)?;
        // SAFETY: sync takes no arguments and cannot fail.
        unsafe { libc::sync() };
    }
    #[cfg(not(unix))]
    {
        let _ = File::open(dir)?;
    }
    Ok(())
}

/// Like [`write_atomic`] for writers that need a path: `write` creates and fills the
/// temporary file it is given (e.g. an encoder writing by path); `io_err` turns the
/// fsync/rename errors into the caller's error type.
pub fn write_atomic_with<E>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
    io_err: impl Fn(io::Error) -> E,
) -> Result<(), E> {
    write_with(path, write, io_err, true)
}

fn write_with<E>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
    io_err: impl Fn(io::Error) -> E,
    durable: bool,
) -> Result<(), E> {
    let tmp = temp_path(path);
    let result = write(&tmp).and_then(|()| {
        (|| {
            if !durable {
                return std::fs::rename(&tmp, path);
            }
            File::open(&tmp)?.sync_all()?;
            rename_durable(&tmp, path)
        })()
        .map_err(&io_err)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Create a file that must not exist yet, with the mode any new file gets (0666 & !umask).
fn create_new(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o666);
    }
    o.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_folder_is_an_error_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomic(&dir.path().join("nope/out.json"), b"x").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn temporary_names_are_unique_and_keep_the_extension() {
        let p = Path::new("/x/plot.png");
        let (a, b) = (temp_path(p), temp_path(p));
        assert_ne!(a, b);
        assert_eq!(a.extension().unwrap(), "png");
        assert_eq!(a.parent(), p.parent());
        assert!(a
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".plot.png."));
    }

    #[test]
    fn a_failing_writer_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        write_atomic(&p, b"old").unwrap();
        let r: Result<(), String> = write_atomic_with(
            &p,
            |tmp| {
                std::fs::write(tmp, b"half").unwrap();
                Err("encoder failed".into())
            },
            |e| e.to_string(),
        );
        assert_eq!(r.unwrap_err(), "encoder failed");
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn new_files_get_the_usual_mode_not_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        write_atomic(&p, b"x").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        // umask can only remove bits; the group/other read bits of 0666 survive umask 022.
        let umask = {
            let probe = dir.path().join("probe");
            std::fs::write(&probe, b"").unwrap();
            0o666 & !(std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777)
        };
        assert_eq!(mode, 0o666 & !umask);
    }
}
