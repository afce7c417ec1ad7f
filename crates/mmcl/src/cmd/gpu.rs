//! `mmcl gpu-check`: the documented way to validate a GPU build (see
//! [`crate::gpu_check`]); prints the one-screen summary, writes SUMMARY.json and fails
//! when any step failed.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;

use crate::gpu_check::{render, GpuCheckOptions};

#[derive(Args)]
pub struct GpuCheckArgs {
    /// Golden fixtures folder (`*_weights.safetensors`, `*_io.safetensors`); default:
    /// `fixtures` next to the binary, else the repository's crates/mmcl-model/tests/fixtures.
    #[arg(long)]
    pub fixtures: Option<PathBuf>,
    /// Where to write the JSON summary.
    #[arg(long, default_value = "SUMMARY.json")]
    pub out: PathBuf,
    /// PyTorch baseline script (tools/bench/torch_step.py); default: next to the binary,
    /// else the repository's.
    #[arg(long)]
    pub torch_step: Option<PathBuf>,
    /// The GPU to check.
    #[arg(long, default_value = "cuda:0")]
    pub device: String,
    /// Timed steps of the paper-scale step benchmark (each side).
    #[arg(long, default_value_t = 5)]
    pub bench_steps: usize,
    /// Skip the paper-scale benchmark.
    #[arg(long)]
    pub no_bench: bool,
    /// Skip the tiny SAMM training run.
    #[arg(long)]
    pub no_train: bool,
    /// Scratch folder for the tiny run's synthetic data and run folder.
    #[arg(long, default_value = "gpu-check-work")]
    pub work: PathBuf,
}

pub fn run(a: GpuCheckArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let summary = crate::gpu_check::run(&GpuCheckOptions {
        fixtures: a.fixtures,
        torch_step: a.torch_step,
        device: a.device,
        bench_steps: a.bench_steps,
        bench: !a.no_bench,
        train: !a.no_train,
        work: a.work,
    })?;
    mmcl_io::write_atomic(&a.out, &serde_json::to_vec_pretty(&summary)?)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    print!("{}", render(&summary.steps));
    println!(
        "gpu-check: {} in {:.1} s; details in {}",
        if summary.ok { "OK" } else { "FAILED" },
        start.elapsed().as_secs_f64(),
        a.out.display()
    );
    if !summary.ok {
        bail!("gpu-check failed (see {})", a.out.display());
    }
    Ok(())
}
