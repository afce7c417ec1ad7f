//! `cargo xtask gpu-pack --out DIR`: the folder that validates a GPU build on a bare GPU
//! machine (no network, no Rust toolchain): the CUDA `mmcl` binary, the model golden
//! fixtures, torch_step.py (the PyTorch baseline) when present, RUN.txt with the one
//! command to run, and LIBRARIES.txt (the shared libraries the binary needs, from `ldd`).
//!
//! The folder must stay under 60 MB: the binary is stripped of debug info and, if the folder
//! would still be too big, stored gzip-compressed (`mmcl.gz`; RUN.txt then starts with
//! `gunzip`). `--no-build BINARY` packs an existing binary (also how the packaging is tested).
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cuda::{build_cuda, BuildCudaArgs};

/// The size limit of the packed folder (bytes).
pub const MAX_BYTES: u64 = 60 * 1000 * 1000;

#[derive(clap::Args)]
pub struct GpuPackArgs {
    /// The folder to assemble (created; files in it are overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Build against CUDA 13 runtime libraries under this folder (see `build-cuda`).
    #[arg(long)]
    pub cuda_libs: Option<PathBuf>,
    /// Compute capability of the kernels (PTX is JIT-compiled on newer GPUs).
    #[arg(long, default_value_t = 80)]
    pub compute_cap: u32,
    /// Pack this existing binary instead of building (e.g. a previous `build-cuda` output).
    #[arg(long, value_name = "BINARY")]
    pub no_build: Option<PathBuf>,
    /// The PyTorch baseline to include (default: tools/bench/torch_step.py, with the
    /// network it imports, tools/golden/model.py).
    #[arg(long)]
    pub torch_step: Option<PathBuf>,
}

/// What was packed.
#[derive(Debug)]
pub struct Packed {
    pub dir: PathBuf,
    pub total_bytes: u64,
    /// Whether the binary is stored as `mmcl.gz`.
    pub compressed: bool,
    pub libraries: Vec<String>,
}

pub fn gpu_pack(root: &Path, args: &GpuPackArgs) -> Result<()> {
    let binary = match &args.no_build {
        Some(b) => b.clone(),
        None => build_cuda(
            root,
            &BuildCudaArgs {
                install: false,
                cudnn: false,
                compute_cap: args.compute_cap,
                cuda_libs: args.cuda_libs.clone(),
                release: false,
            },
        )?,
    };
    let torch_step = args
        .torch_step
        .clone()
        .unwrap_or_else(|| root.join("tools/bench/torch_step.py"));
    let fixtures = root.join("crates/mmcl-model/tests/fixtures");
    let p = pack(&binary, &fixtures, Some(&torch_step), &args.out, MAX_BYTES)?;
    eprintln!(
        "xtask: packed {} ({:.1} MB{}, {} shared libraries in LIBRARIES.txt); copy it to the GPU machine and run the command in RUN.txt",
        p.dir.display(),
        p.total_bytes as f64 / 1e6,
        if p.compressed { ", binary gzip-compressed" } else { "" },
        p.libraries.len()
    );
    Ok(())
}

/// Assemble the folder `out` from `binary`, the `*.safetensors` in `fixtures` and the
/// optional `torch_step` script (skipped if it does not exist); fail above `max_bytes`.
pub fn pack(
    binary: &Path,
    fixtures: &Path,
    torch_step: Option<&Path>,
    out: &Path,
    max_bytes: u64,
) -> Result<Packed> {
    anyhow::ensure!(
        binary.is_file(),
        "binary {} does not exist",
        binary.display()
    );
    std::fs::create_dir_all(out.join("fixtures"))
        .with_context(|| format!("creating {}", out.display()))?;
    let bin_out = out.join("mmcl");
    let _ = std::fs::remove_file(out.join("mmcl.gz"));
    std::fs::copy(binary, &bin_out)
        .with_context(|| format!("copying {} to {}", binary.display(), bin_out.display()))?;
    // Debug info is most of a dev-profile binary; a failed strip (e.g. not an ELF file)
    // only leaves it bigger, which the size check below still catches.
    let _ = Command::new("strip")
        .arg("--strip-debug")
        .arg(&bin_out)
        .stderr(std::process::Stdio::null())
        .status();

    let mut fixture_files: Vec<PathBuf> = std::fs::read_dir(fixtures)
        .with_context(|| format!("reading fixtures {}", fixtures.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    fixture_files.sort();
    anyhow::ensure!(
        !fixture_files.is_empty(),
        "no *.safetensors fixtures in {}",
        fixtures.display()
    );
    for f in &fixture_files {
        let dest = out.join("fixtures").join(f.file_name().unwrap_or_default());
        std::fs::copy(f, &dest).with_context(|| format!("copying {}", f.display()))?;
    }
    let torch = torch_step.filter(|p| p.is_file());
    if let Some(t) = torch {
        std::fs::copy(t, out.join("torch_step.py"))
            .with_context(|| format!("copying {}", t.display()))?;
        // The project's baseline imports its network from tools/golden/model.py; the pack
        // carries it beside the script, where the script looks first.
        let dir = t.parent().unwrap_or(Path::new("."));
        if let Some(model) = [dir.join("model.py"), dir.join("../golden/model.py")]
            .into_iter()
            .find(|p| p.is_file())
        {
            std::fs::copy(&model, out.join("model.py"))
                .with_context(|| format!("copying {}", model.display()))?;
        }
    }

    let ldd = Command::new("ldd").arg(&bin_out).output();
    let libraries = match &ldd {
        Ok(o) if o.status.success() => parse_ldd(&String::from_utf8_lossy(&o.stdout)),
        _ => vec![],
    };
    mmcl_io::write_atomic(
        &out.join("LIBRARIES.txt"),
        libraries_text(&libraries).as_bytes(),
    )?;

    let mut compressed = false;
    if dir_bytes(out)? > max_bytes {
        let status = Command::new("gzip")
            .args(["-6", "-f"])
            .arg(&bin_out)
            .status()
            .context("running gzip")?;
        if !status.success() {
            bail!("gzip {} failed ({status})", bin_out.display());
        }
        compressed = true;
    }
    mmcl_io::write_atomic(
        &out.join("RUN.txt"),
        run_text(compressed, torch.is_some()).as_bytes(),
    )?;
    let total_bytes = dir_bytes(out)?;
    if total_bytes > max_bytes {
        bail!(
            "{} is {:.1} MB, over the {:.0} MB limit even with the binary compressed",
            out.display(),
            total_bytes as f64 / 1e6,
            max_bytes as f64 / 1e6
        );
    }
    Ok(Packed {
        dir: out.to_path_buf(),
        total_bytes,
        compressed,
        libraries,
    })
}

/// The libraries from `ldd` output: `name => path` or `name => not found` lines, minus the
/// kernel's vdso and the loader.
pub fn parse_ldd(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (name, rest) = l.split_once(" => ")?;
            if name.starts_with("linux-vdso") {
                return None;
            }
            let where_ = rest.split(" (0x").next().unwrap_or(rest).trim();
            Some(format!("{name} ({where_} on the build machine)"))
        })
        .collect()
}

fn libraries_text(libs: &[String]) -> String {
    let mut s = String::from(
        "# Shared libraries the packed mmcl binary needs (ldd on the build machine).\n\
         # The CUDA ones (libcuda from the driver; libcudart/libcublas/libcublasLt/libcurand\n\
         # from a CUDA runtime) must be found on the GPU machine: put their folder on\n\
         # LD_LIBRARY_PATH, e.g. the nvidia/*/lib folders of a PyTorch install.\n",
    );
    if libs.is_empty() {
        s.push_str("# (ldd could not read the binary: not a dynamic executable?)\n");
    }
    for l in libs {
        s.push_str(l);
        s.push('\n');
    }
    s
}

fn run_text(compressed: bool, torch: bool) -> String {
    let mut s = String::from(
        "# Validate the mmcl GPU build on this machine (no network, no Rust needed; ~minutes).\n\
         # Needs the libraries in LIBRARIES.txt; prints a summary and writes SUMMARY.json;\n\
         # exits non-zero if a comparison fails.\n",
    );
    if compressed {
        s.push_str("gunzip -k mmcl.gz && chmod +x mmcl\n");
    }
    s.push_str("./mmcl gpu-check --fixtures fixtures --out SUMMARY.json");
    if torch {
        s.push_str(" --torch-step torch_step.py");
    }
    s.push('\n');
    s
}

fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let m = e.metadata()?;
        total += if m.is_dir() {
            dir_bytes(&e.path())?
        } else {
            m.len()
        };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/mmcl-model/tests/fixtures")
    }

    #[test]
    fn packs_the_projects_baseline_with_the_network_it_imports() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("mmcl-dummy");
        std::fs::write(&bin, b"x").unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let script = root.join("tools/bench/torch_step.py");
        let out = tmp.path().join("pack");
        pack(&bin, &fixtures(), Some(&script), &out, MAX_BYTES).unwrap();
        assert_eq!(
            std::fs::read(out.join("model.py")).unwrap(),
            std::fs::read(root.join("tools/golden/model.py")).unwrap()
        );
        let text = std::fs::read_to_string(out.join("torch_step.py")).unwrap();
        assert!(text.contains("from model import AVNet"));
    }

    #[test]
    fn packs_a_dummy_binary_with_fixtures_script_and_run_instructions() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("mmcl-dummy");
        std::fs::write(&bin, b"not really an ELF file").unwrap();
        let script = tmp.path().join("torch_step.py");
        std::fs::write(&script, "print('baseline')\n").unwrap();
        let out = tmp.path().join("pack");
        let p = pack(&bin, &fixtures(), Some(&script), &out, MAX_BYTES).unwrap();
        assert!(!p.compressed);
        assert_eq!(
            std::fs::read(out.join("mmcl")).unwrap(),
            b"not really an ELF file"
        );
        assert!(out.join("fixtures/film_io.safetensors").is_file());
        assert!(out.join("fixtures/film_weights.safetensors").is_file());
        assert!(out.join("torch_step.py").is_file());
        // No model.py beside the dummy script: none is packed.
        assert!(!out.join("model.py").exists());
        let run = std::fs::read_to_string(out.join("RUN.txt")).unwrap();
        assert!(run.contains(
            "./mmcl gpu-check --fixtures fixtures --out SUMMARY.json --torch-step torch_step.py"
        ));
        assert!(!run.contains("gunzip"));
        let libs = std::fs::read_to_string(out.join("LIBRARIES.txt")).unwrap();
        assert!(libs.contains("not a dynamic executable"), "{libs}");
        assert_eq!(p.total_bytes, dir_bytes(&out).unwrap());
        assert!(p.total_bytes > 2_000_000, "fixtures are ~2 MB");
    }

    #[test]
    fn compresses_the_binary_when_the_folder_is_too_big_and_fails_when_still_too_big() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("mmcl-dummy");
        // 3 MB of a compressible pattern: over a 4 MB limit with the ~2 MB of fixtures.
        std::fs::write(&bin, b"PTX kernels ".repeat(250_000)).unwrap();
        let out = tmp.path().join("pack");
        let p = pack(&bin, &fixtures(), None, &out, 4_000_000).unwrap();
        assert!(p.compressed);
        assert!(out.join("mmcl.gz").is_file() && !out.join("mmcl").exists());
        assert!(!out.join("torch_step.py").exists());
        let run = std::fs::read_to_string(out.join("RUN.txt")).unwrap();
        assert!(run.starts_with('#') && run.contains("gunzip -k mmcl.gz"));
        assert!(!run.contains("--torch-step"));
        // A limit below the fixtures alone cannot be met: a clear error, not a silent pack.
        let e = pack(&bin, &fixtures(), None, &tmp.path().join("p2"), 1_000_000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("over the 1 MB limit"), "{e}");
    }

    #[test]
    fn a_missing_binary_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let e = pack(
            &tmp.path().join("nope"),
            &fixtures(),
            None,
            &tmp.path().join("out"),
            MAX_BYTES,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("nope") && e.contains("does not exist"), "{e}");
    }

    #[test]
    fn parses_ldd_output() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibcuda.so.1 => /lib/x86_64-linux-gnu/libcuda.so.1 (0x00007f47)\n\
                    \tlibcublas.so.13 => not found\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f47)\n";
        assert_eq!(
            parse_ldd(text),
            vec![
                "libcuda.so.1 (/lib/x86_64-linux-gnu/libcuda.so.1 on the build machine)",
                "libcublas.so.13 (not found on the build machine)",
            ]
        );
    }
}
