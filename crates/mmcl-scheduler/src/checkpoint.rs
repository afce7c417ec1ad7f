//! Checkpoint folders: written complete or not at all, checksummed, verified on load, and
//! found even when `LATEST` is damaged; plus the finite-state guard that keeps a diverged
//! state out of them.
//!
//! `checkpoint/task-<t>/` holds the files of the state after task `t` and `SHA256SUMS`
//! (`sha256sum` format: `<hex>  <file>` per file, sorted; `sha256sum -c SHA256SUMS` checks
//! it too). The folder is filled under a unique hidden temporary name, the index is written
//! last, the folder is renamed into place and only then `LATEST` names it; every step is
//! fsynced. A folder without a matching index is never loaded.
//!
//! Which checkpoint a resume uses: the one `LATEST` names, verified (a file that does not
//! match its checksum is an error naming it: it is never silently skipped). If `LATEST` is
//! missing, unreadable or names no checkpoint folder, the newest `task-<t>` that verifies
//! is used, and the run says so in `log.txt`; if none verifies, the resume stops with an
//! error. A new checkpoint deletes only the checkpoints it supersedes (older tasks).

use std::path::{Path, PathBuf};

use mmcl_methods::{Method, Net};

use crate::SchedulerError;

/// The file in `checkpoint/` naming the newest checkpoint folder.
pub const LATEST_FILE: &str = "LATEST";
/// The checksum index inside each checkpoint folder.
pub const INDEX_FILE: &str = "SHA256SUMS";

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SchedulerError + '_ {
    move |e| SchedulerError::Io {
        path: path.to_owned(),
        source: e,
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> SchedulerError {
    SchedulerError::Checkpoint {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// `task-<t>` -> `t`; anything else (temporaries, `LATEST`, stray files) -> `None`.
fn task_of(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("task-")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The name of the checkpoint folder of task `t`.
pub fn folder_name(task: usize) -> String {
    format!("task-{task}")
}

fn sha256_hex(path: &Path) -> Result<String, SchedulerError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    Ok(crate::sha256_hex(&bytes))
}

/// Write `SHA256SUMS` for every file of `dir`.
fn write_index(dir: &Path) -> Result<(), SchedulerError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(io_err(&entry.path()))?;
        if !kind.is_file() {
            return Err(bad(&entry.path(), "a checkpoint holds only files"));
        }
        if name != INDEX_FILE {
            names.push(name);
        }
    }
    names.sort();
    let mut text = String::new();
    for name in &names {
        text += &format!("{}  {name}\n", sha256_hex(&dir.join(name))?);
    }
    let index = dir.join(INDEX_FILE);
    mmcl_io::write_atomic(&index, text.as_bytes()).map_err(io_err(&index))
}

/// Check every file of the checkpoint folder `dir` against its `SHA256SUMS`; the error
/// names the first file that is missing or does not match.
pub fn verify(dir: &Path) -> Result<(), SchedulerError> {
    let index = dir.join(INDEX_FILE);
    let text = match std::fs::read_to_string(&index) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad(
                dir,
                format!("no {INDEX_FILE}: the checkpoint is incomplete (or was written by an mmcl without checksums)"),
            ))
        }
        Err(e) => return Err(io_err(&index)(e)),
    };
    let mut listed = 0;
    for (i, line) in text.lines().enumerate() {
        let Some((hex, name)) = line.split_once("  ") else {
            return Err(bad(
                &index,
                format!("line {}: not `<sha256>  <file>`", i + 1),
            ));
        };
        if hex.len() != 64 || name.is_empty() || name.contains('/') {
            return Err(bad(
                &index,
                format!("line {}: not `<sha256>  <file>`", i + 1),
            ));
        }
        let file = dir.join(name);
        if !file.is_file() {
            return Err(bad(&file, format!("listed in {INDEX_FILE} but missing")));
        }
        let found = sha256_hex(&file)?;
        if found != hex {
            return Err(bad(
                &file,
                format!("does not match its checksum in {INDEX_FILE} (sha256 {found}, expected {hex}): the file is corrupt"),
            ));
        }
        listed += 1;
    }
    if listed == 0 {
        return Err(bad(&index, "lists no file"));
    }
    Ok(())
}

/// What [`find`] found.
#[derive(Debug, Default)]
pub struct Found {
    /// The verified checkpoint folder to load; `None`: there is none, and nothing to lose
    /// by starting over.
    pub dir: Option<PathBuf>,
    /// Why this is not simply the folder `LATEST` names, for the run's log.
    pub note: Option<String>,
}

/// The checkpoint a resume should load from the checkpoint root `root` (see the module doc).
pub fn find(root: &Path) -> Result<Found, SchedulerError> {
    let mut tasks: Vec<usize> = match std::fs::read_dir(root) {
        Ok(rd) => rd
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| task_of(&e.file_name().to_string_lossy()))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::default()),
        Err(e) => return Err(io_err(root)(e)),
    };
    tasks.sort_unstable_by(|a, b| b.cmp(a));
    let latest = root.join(LATEST_FILE);
    let why = match std::fs::read_to_string(&latest) {
        Ok(text) => {
            let name = text.trim();
            match task_of(name) {
                Some(_) if root.join(name).is_dir() => {
                    let dir = root.join(name);
                    verify(&dir)?;
                    return Ok(Found {
                        dir: Some(dir),
                        note: None,
                    });
                }
                Some(_) => format!("{} names {name}, which does not exist", latest.display()),
                None => format!(
                    "{} does not name a checkpoint ({:?})",
                    latest.display(),
                    truncate(name)
                ),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if tasks.is_empty() {
                return Ok(Found::default());
            }
            format!("{} is missing", latest.display())
        }
        Err(e) => format!("{} is unreadable ({e})", latest.display()),
    };
    if tasks.is_empty() {
        // Nothing was ever checkpointed: starting over loses nothing.
        return Ok(Found {
            dir: None,
            note: Some(format!(
                "{why}; there is no checkpoint folder, so the run starts over"
            )),
        });
    }
    let mut rejected = Vec::new();
    for t in tasks {
        let dir = root.join(folder_name(t));
        match verify(&dir) {
            Ok(()) => {
                let mut note = format!(
                    "{why}; resuming from {}, the newest verified checkpoint",
                    folder_name(t)
                );
                if !rejected.is_empty() {
                    note += &format!(" (rejected: {})", rejected.join("; "));
                }
                return Ok(Found {
                    dir: Some(dir),
                    note: Some(note),
                });
            }
            Err(e) => rejected.push(e.to_string()),
        }
    }
    Err(bad(
        root,
        format!(
            "{why}, and no checkpoint folder verifies ({}); nothing was deleted. Remove {} to start the run over",
            rejected.join("; "),
            root.display()
        ),
    ))
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Write the checkpoint of task `task` under `root`: `fill` writes the state's files into
/// the (temporary) folder it is given; then the index, the rename, `LATEST`, and the removal
/// of the checkpoints this one supersedes (older tasks) and of stale temporaries.
pub fn write(
    root: &Path,
    task: usize,
    fill: impl FnOnce(&Path) -> Result<(), SchedulerError>,
) -> Result<(), SchedulerError> {
    std::fs::create_dir_all(root).map_err(io_err(root))?;
    let name = folder_name(task);
    let fin = root.join(&name);
    let tmp = mmcl_io::temp_path(&fin);
    std::fs::create_dir(&tmp).map_err(io_err(&tmp))?;
    let filled = fill(&tmp).and_then(|()| write_index(&tmp));
    if let Err(e) = filled {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    // A folder cannot be renamed onto a non-empty one: move an older copy of the same
    // task aside first (it is superseded by this one).
    let aside = fin.is_dir().then(|| mmcl_io::temp_path(&fin));
    if let Some(a) = &aside {
        mmcl_io::rename_durable(&fin, a).map_err(io_err(&fin))?;
    }
    mmcl_io::rename_durable(&tmp, &fin).map_err(io_err(&fin))?;
    let latest = root.join(LATEST_FILE);
    mmcl_io::write_atomic(&latest, name.as_bytes()).map_err(io_err(&latest))?;
    for entry in std::fs::read_dir(root).map_err(io_err(root))?.flatten() {
        let n = entry.file_name().to_string_lossy().into_owned();
        // Superseded: older tasks. Stale: temporaries of killed sessions (the caller holds
        // the run's lock, so no other writer owns one). Newer tasks are left alone.
        let superseded = task_of(&n).is_some_and(|t| t < task);
        let stale = n.starts_with('.') && n.contains(".tmp") || n.ends_with(".tmp");
        if superseded || stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// Where the state holds values that are not finite, if anywhere: parameters, BatchNorm
/// running statistics, the optimiser's momentum buffers and the method's temperatures.
/// `None`: all finite.
pub fn non_finite_state(net: &Net, method: &dyn Method) -> Result<Option<String>, SchedulerError> {
    let mut tensors = net.model.state_tensors()?;
    tensors.extend(
        net.opt
            .state_tensors()
            .into_iter()
            .map(|(n, t)| (format!("optimiser {n}"), t)),
    );
    let (mut bad_values, mut total, mut where_) = (0usize, 0usize, Vec::new());
    for (name, t) in tensors {
        if !t.dtype().is_float() {
            continue; // num_batches_tracked
        }
        let v = t
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let n = v.iter().filter(|x| !x.is_finite()).count();
        total += v.len();
        if n > 0 {
            bad_values += n;
            where_.push(format!("{name}: {n} of {}", v.len()));
        }
    }
    if let Some(temps) = method.temperatures() {
        total += temps.len();
        let n = temps.iter().filter(|x| !(x.is_finite())).count();
        if n > 0 {
            bad_values += n;
            where_.push(format!("temperatures {temps:?}"));
        }
    }
    if bad_values == 0 {
        return Ok(None);
    }
    let shown: Vec<&str> = where_.iter().take(3).map(|s| s.as_str()).collect();
    let more = where_.len().saturating_sub(shown.len());
    Ok(Some(format!(
        "{bad_values} of {total} state values are not finite ({}{})",
        shown.join(", "),
        if more > 0 {
            format!(", and {more} more tensors")
        } else {
            String::new()
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(root: &Path, task: usize, body: &str) {
        write(root, task, |dir| {
            std::fs::write(dir.join("a.json"), body).unwrap();
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_checkpoint_verifies_and_a_flipped_bit_is_named() {
        let d = tempfile::tempdir().unwrap();
        checkpoint(d.path(), 0, "hello");
        let dir = d.path().join("task-0");
        verify(&dir).unwrap();
        let mut bytes = std::fs::read(dir.join("a.json")).unwrap();
        bytes[1] ^= 0x04;
        std::fs::write(dir.join("a.json"), bytes).unwrap();
        let e = verify(&dir).unwrap_err().to_string();
        assert!(e.contains("a.json") && e.contains("does not match"), "{e}");
        // LATEST names it: the corruption is an error, not a silent fallback or restart.
        assert!(find(d.path()).unwrap_err().to_string().contains("a.json"));
    }

    #[test]
    fn a_new_checkpoint_removes_only_older_ones_and_temporaries() {
        let d = tempfile::tempdir().unwrap();
        checkpoint(d.path(), 6, "six");
        std::fs::create_dir(d.path().join(".task-2.99-0.tmp")).unwrap();
        checkpoint(d.path(), 1, "one");
        checkpoint(d.path(), 2, "two");
        let mut names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["LATEST", "task-2", "task-6"]);
        // Rewriting the same task replaces it.
        checkpoint(d.path(), 2, "two again");
        assert_eq!(
            std::fs::read_to_string(d.path().join("task-2/a.json")).unwrap(),
            "two again"
        );
    }

    #[test]
    fn a_bad_latest_falls_back_to_the_newest_verified_checkpoint() {
        let d = tempfile::tempdir().unwrap();
        // (A newer checkpoint survives an older one being written.)
        checkpoint(d.path(), 6, "six");
        checkpoint(d.path(), 5, "five");
        // task-6 is left incomplete (no index), as after a crash of an older writer.
        std::fs::remove_file(d.path().join("task-6").join(INDEX_FILE)).unwrap();
        for latest in [Some("task-9"), Some("\u{0}garbage\u{ff}"), None] {
            match latest {
                Some(t) => std::fs::write(d.path().join(LATEST_FILE), t).unwrap(),
                None => std::fs::remove_file(d.path().join(LATEST_FILE)).unwrap(),
            }
            let found = find(d.path()).unwrap();
            assert_eq!(found.dir.unwrap(), d.path().join("task-5"));
            let note = found.note.unwrap();
            assert!(note.contains("task-5") && note.contains("task-6"), "{note}");
        }
        // Nothing verifies: an error, and nothing is deleted.
        std::fs::remove_file(d.path().join("task-5").join(INDEX_FILE)).unwrap();
        assert!(find(d.path())
            .unwrap_err()
            .to_string()
            .contains("no checkpoint folder verifies"));
        assert!(d.path().join("task-5/a.json").exists() && d.path().join("task-6/a.json").exists());
    }

    #[test]
    fn no_checkpoint_at_all_means_start_over() {
        let d = tempfile::tempdir().unwrap();
        assert!(find(&d.path().join("checkpoint")).unwrap().dir.is_none());
        std::fs::write(d.path().join(LATEST_FILE), "garbage").unwrap();
        let found = find(d.path()).unwrap();
        assert!(found.dir.is_none());
        assert!(found.note.unwrap().contains("starts over"));
    }
}
