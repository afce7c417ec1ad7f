//! Records the git commit this crate is built from, for the provenance of every run
//! (`MMCL_GIT_COMMIT`: the full hash or `unknown`; `MMCL_GIT_DIRTY`: `true`, `false` or
//! `unknown`). A copy without git (a packaged crate, an unpacked tarball) builds the same,
//! with `unknown`; so does a copy nested inside some other repository (the repository's
//! top level must be this workspace's root).
//!
//! Cargo reruns this script when the checkout's HEAD, the branch it names, the packed refs
//! or the index change (a checkout, a commit, a `git add`). Editing a file without staging
//! it does not rerun it, so `dirty` is the state at the last of those events.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        // `git status` would otherwise refresh and rewrite the index, which would rerun this
        // script at the next build, and so on.
        .arg("--no-optional-locks")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let (commit, dirty) = match git_state(&manifest) {
        Some((commit, dirty)) => (commit, dirty.to_string()),
        None => ("unknown".to_string(), "unknown".to_string()),
    };
    println!("cargo:rustc-env=MMCL_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=MMCL_GIT_DIRTY={dirty}");
}

/// The commit and dirty flag of the workspace's checkout, with the rerun triggers; `None`
/// without git or outside this workspace's own repository.
fn git_state(manifest: &Path) -> Option<(String, bool)> {
    let workspace = manifest.parent()?.parent()?.canonicalize().ok()?;
    let top = PathBuf::from(git(manifest, &["rev-parse", "--show-toplevel"])?);
    if top.canonicalize().ok()? != workspace {
        return None;
    }
    let git_dir = PathBuf::from(git(manifest, &["rev-parse", "--absolute-git-dir"])?);
    let head = git_dir.join("HEAD");
    let mut watch = vec![
        head.clone(),
        git_dir.join("index"),
        git_dir.join("packed-refs"),
    ];
    if let Some(branch) = std::fs::read_to_string(&head)
        .ok()
        .and_then(|h| h.trim().strip_prefix("ref: ").map(str::to_string))
    {
        watch.push(git_dir.join(branch));
    }
    for path in watch.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let commit = git(manifest, &["rev-parse", "HEAD"])?;
    let status = git(manifest, &["status", "--porcelain", "--untracked-files=no"])?;
    Some((commit, !status.is_empty()))
}
