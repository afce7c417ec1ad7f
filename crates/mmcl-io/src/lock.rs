//! An exclusive advisory lock on a folder, held by the one process writing into it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file inside a locked folder; it holds the pid of the last process that took it.
pub const LOCK_FILE: &str = ".lock";

/// Why a folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another writer holds the lock.
    #[error("{} is in use by {}", path.display(), match pid { Some(p) => format!("process {p}"), None => "another process".into() })]
    InUse { path: PathBuf, pid: Option<u32> },
    #[error("{}: cannot lock: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// An exclusive `flock` on `DIR/.lock`, released when dropped (or when the process dies,
/// however it dies: the kernel drops the lock with the file descriptor). Advisory: it keeps
/// out other mmcl writers, not other programs. On non-Unix targets nothing is locked.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Lock the existing folder `dir`, or fail at once with [`LockError::InUse`].
    pub fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut o = OpenOptions::new();
        o.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o666);
        }
        let mut file = o.open(&path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock on a descriptor this function owns; no memory is shared.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    return Err(LockError::InUse {
                        path: dir.to_path_buf(),
                        pid: text.trim().parse().ok(),
                    });
                }
                return Err(io(e));
            }
        }
        // Only the holder writes here, so a refused writer reads the holder's pid.
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_second_writer_is_refused_with_the_holders_pid_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        // A second open file description conflicts even within one process.
        let e = DirLock::acquire(dir.path()).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, LockError::InUse { pid: Some(p), .. } if p == std::process::id()),
            "{text}"
        );
        assert!(
            text.contains(&format!("in use by process {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        drop(held);
        DirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn a_missing_folder_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = DirLock::acquire(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(e, LockError::Io { .. }));
        assert!(e.to_string().contains("nope"), "{e}");
    }
}
