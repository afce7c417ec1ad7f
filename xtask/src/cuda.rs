//! `cargo xtask build-cuda`: a scripted, reproducible CUDA build on Debian 12.
//!
//! Debian 12 ships CUDA 11.8 (`nvidia-cuda-toolkit`, in the `non-free` component), whose
//! nvcc needs g++ <= 11 and does not know compute capability 9.0a. So the build compiles
//! candle's kernels to sm_80 PTX (`CUDA_COMPUTE_CAP=80`), which the driver JIT-compiles on
//! Hopper, with `NVCC_CCBIN=g++-11`.
//!
//! By default the binary links Debian's CUDA 11 libraries (libcudart.so.11.0,
//! libcublas.so.11, libcublasLt.so.11, libcurand.so.10, and the driver's libcuda.so.1).
//! With `--cuda-libs DIR` it links instead against the CUDA 13 runtime libraries found
//! under DIR (e.g. the `nvidia/*/lib` folders of PyPI's `nvidia-cublas`,
//! `nvidia-cuda-runtime`, `nvidia-curand`, `nvidia-cuda-nvrtc` wheels, which PyTorch's
//! cu13 wheels also install): cudarc's bindings are then generated for CUDA 13.0
//! (`CUDARC_CUDA_VERSION=13000`) and the binary needs libcudart.so.13, libcublas.so.13,
//! libcublasLt.so.13, libcurand.so.10 and libnvrtc.so.13 on `LD_LIBRARY_PATH` at run time.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

#[derive(clap::Args)]
pub struct BuildCudaArgs {
    /// First install the toolchain with apt: enable `contrib non-free`, install
    /// `nvidia-cuda-toolkit` (nvcc 11.8) and `g++-11`. Needs root.
    #[arg(long)]
    pub install: bool,
    /// Also enable cuDNN (candle's `cudnn` feature; needs `nvidia-cudnn` or a cuDNN install).
    #[arg(long)]
    pub cudnn: bool,
    /// Compute capability the kernels are compiled for (PTX is JIT-compiled on newer GPUs).
    #[arg(long, default_value_t = 80)]
    pub compute_cap: u32,
    /// Link against CUDA 13 runtime libraries found under this folder instead of Debian's CUDA 11.
    #[arg(long)]
    pub cuda_libs: Option<PathBuf>,
    /// Build with `--release` instead of the (optimised) dev profile.
    #[arg(long)]
    pub release: bool,
}

/// Where the CUDA build goes, kept apart from the CPU build so neither invalidates the other.
pub fn target_dir(root: &Path, cuda13: bool) -> PathBuf {
    root.join("target")
        .join(if cuda13 { "cuda13" } else { "cuda" })
}

pub fn build_cuda(root: &Path, args: &BuildCudaArgs) -> Result<PathBuf> {
    if args.install {
        install_toolchain()?;
    }
    if which("nvcc").is_none() {
        bail!("nvcc not found: run `cargo xtask build-cuda --install` (Debian 12, as root) or put CUDA's bin folder on PATH");
    }
    let features = if args.cudnn {
        "mmcl/cuda,mmcl/cudnn"
    } else {
        "mmcl/cuda"
    };
    let target = target_dir(root, args.cuda_libs.is_some());
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root)
        .args([
            "build",
            "-p",
            "mmcl",
            "--features",
            features,
            "--target-dir",
        ])
        .arg(&target)
        .env("CUDA_COMPUTE_CAP", args.compute_cap.to_string());
    if args.release {
        cmd.arg("--release");
    }
    if which("g++-11").is_some() {
        cmd.env("NVCC_CCBIN", "g++-11");
    }
    if let Some(dir) = &args.cuda_libs {
        let links = link_folder(root, dir)?;
        let mut rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
        rustflags.push_str(&format!(" -L {}", links.display()));
        cmd.env("RUSTFLAGS", rustflags.trim())
            .env("CUDARC_CUDA_VERSION", "13000");
    }
    eprintln!("xtask: {cmd:?}");
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("CUDA build failed ({status})");
    }
    let profile = if args.release { "release" } else { "debug" };
    let binary = target.join(profile).join("mmcl");
    eprintln!("xtask: built {}", binary.display());
    Ok(binary)
}

/// The libraries a CUDA-13 link needs, by unversioned name and the versioned file that backs it.
const CUDA13_LIBS: &[(&str, &str)] = &[
    ("libcudart.so", "libcudart.so.13"),
    ("libcublas.so", "libcublas.so.13"),
    ("libcublasLt.so", "libcublasLt.so.13"),
    ("libcurand.so", "libcurand.so.10"),
    ("libnvrtc.so", "libnvrtc.so.13"),
];

/// PyPI's wheels carry only versioned sonames; the linker wants `libX.so`. Make a folder of
/// unversioned symlinks to the versioned files found anywhere under `dir`.
fn link_folder(root: &Path, dir: &Path) -> Result<PathBuf> {
    let out = root.join("target").join("cuda13-libs");
    std::fs::create_dir_all(&out)?;
    let mut missing = Vec::new();
    for (unversioned, versioned) in CUDA13_LIBS {
        match find_file(dir, versioned, 6) {
            Some(found) => {
                let link = out.join(unversioned);
                let _ = std::fs::remove_file(&link);
                std::os::unix::fs::symlink(&found, &link).with_context(|| {
                    format!("linking {} -> {}", link.display(), found.display())
                })?;
            }
            None => missing.push(*versioned),
        }
    }
    if !missing.is_empty() {
        bail!(
            "{} lacks {} (install the PyPI wheels nvidia-cuda-runtime, nvidia-cublas, nvidia-curand, nvidia-cuda-nvrtc for CUDA 13)",
            dir.display(),
            missing.join(", ")
        );
    }
    Ok(out)
}

fn find_file(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name() == name {
            return Some(path);
        }
        if depth > 0 && path.is_dir() {
            subdirs.push(path);
        }
    }
    subdirs.sort();
    subdirs
        .into_iter()
        .find_map(|d| find_file(&d, name, depth - 1))
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|p| p.join(program))
        .find(|p| p.is_file())
}

fn install_toolchain() -> Result<()> {
    if which("nvcc").is_some() && which("g++-11").is_some() {
        eprintln!("xtask: nvcc and g++-11 already installed");
        return Ok(());
    }
    enable_non_free()?;
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "nvidia-cuda-toolkit",
            "g++-11",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Add `contrib non-free` to Debian's apt sources (deb822 `debian.sources` or `sources.list`).
fn enable_non_free() -> Result<()> {
    let deb822 = Path::new("/etc/apt/sources.list.d/debian.sources");
    if deb822.exists() {
        let text = std::fs::read_to_string(deb822)?;
        let patched = add_components_deb822(&text);
        if patched != text {
            std::fs::write(deb822, patched).context("updating debian.sources (needs root)")?;
        }
        return Ok(());
    }
    let list = Path::new("/etc/apt/sources.list");
    let text = std::fs::read_to_string(list).context("no apt sources found")?;
    let patched = add_components_list(&text);
    if patched != text {
        std::fs::write(list, patched).context("updating sources.list (needs root)")?;
    }
    Ok(())
}

fn add_components_deb822(text: &str) -> String {
    text.lines()
        .map(|line| match line.strip_prefix("Components:") {
            Some(rest) => with_components(rest, "Components:"),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn add_components_list(text: &str) -> String {
    text.lines()
        .map(|line| {
            let t = line.trim_start();
            if (t.starts_with("deb ") || t.starts_with("deb-src ")) && line.contains(" main") {
                let (head, rest) = line.split_at(line.find(" main").unwrap());
                with_components(rest, head)
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn with_components(rest: &str, head: &str) -> String {
    let mut comps: Vec<&str> = rest.split_whitespace().collect();
    for c in ["contrib", "non-free"] {
        if !comps.contains(&c) {
            comps.push(c);
        }
    }
    format!("{head} {}", comps.join(" "))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enables_contrib_non_free_in_deb822_sources() {
        let src = "Types: deb\nURIs: http://deb.debian.org/debian\nComponents: main\n";
        let out = add_components_deb822(src);
        assert!(out.contains("Components: main contrib non-free\n"), "{out}");
        assert_eq!(add_components_deb822(&out), out, "idempotent");
    }

    #[test]
    fn enables_contrib_non_free_in_sources_list() {
        let src =
            "deb http://deb.debian.org/debian bookworm main non-free-firmware\n# comment main\n";
        let out = add_components_list(src);
        assert!(
            out.starts_with("deb http://deb.debian.org/debian bookworm main non-free-firmware contrib non-free\n"),
            "{out}"
        );
        assert!(out.contains("# comment main"));
        assert_eq!(add_components_list(&out), out);
    }

    #[test]
    fn cuda13_link_folder_reports_missing_libraries() {
        let root = tempfile::tempdir().unwrap();
        let libs = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(libs.path().join("nvidia/cublas/lib")).unwrap();
        std::fs::write(libs.path().join("nvidia/cublas/lib/libcublas.so.13"), b"").unwrap();
        let err = link_folder(root.path(), libs.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("libcudart.so.13") && !err.contains("libcublas.so.13,"),
            "{err}"
        );
        for (_, v) in CUDA13_LIBS {
            std::fs::write(libs.path().join("nvidia/cublas/lib").join(v), b"").unwrap();
        }
        let out = link_folder(root.path(), libs.path()).unwrap();
        assert!(out.join("libcublasLt.so").exists());
    }
}
