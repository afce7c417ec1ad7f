//! Workspace-level tests for mmcl: the `mmcl` command line end to end (`cli.rs`) and the
//! repository's rules (`tidy.rs`, after rust-analyzer's tidy test).
//!
//! This library holds what both need: where the workspace is, the `mmcl` binary built with
//! the same profile and features as the test run, and the rule checks themselves, so that
//! each rule has a unit test showing it fails on a crate that breaks it.
//!
//! ```no_run
//! let root = mmcl_tests::workspace_root();
//! for krate in mmcl_tests::tidy::workspace_crates(&root).unwrap() {
//!     assert!(mmcl_tests::tidy::unused_dependencies(&krate).unwrap().is_empty());
//! }
//! ```

pub mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the workspace")
        .to_path_buf()
}

/// The `mmcl` binary, built once per test process by `cargo build -p mmcl` into the test
/// run's own target folder and profile (a no-op when it is up to date). Cargo only builds
/// a package's binaries for that package's own tests, so a workspace-level test asks for it.
pub fn mmcl_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Test executables live in <target>/<profile-dir>/deps/.
        let exe = std::env::current_exe().expect("the test executable's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("<target>/<profile>/deps/<test>");
        let target_dir = profile_dir.parent().expect("<target>/<profile>");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .current_dir(workspace_root())
            .args([
                "build",
                "--quiet",
                "-p",
                "mmcl",
                "--bin",
                "mmcl",
                "--profile",
            ])
            .arg(profile)
            .arg("--target-dir")
            .arg(target_dir);
        if cfg!(feature = "ffmpeg") {
            build.args(["--features", "mmcl/ffmpeg"]);
        }
        let status = build.status().expect("running cargo build -p mmcl");
        assert!(status.success(), "cargo build -p mmcl failed: {status}");
        let bin = profile_dir.join(format!("mmcl{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.is_file(), "cargo built no {}", bin.display());
        bin
    })
}

/// A `Command` for the `mmcl` binary.
pub fn mmcl() -> Command {
    Command::new(mmcl_binary())
}
