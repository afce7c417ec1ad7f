//! `cargo xtask …`: project automation in Rust instead of shell scripts.
use clap::{Parser, Subcommand};

mod cuda;
mod gpu;
mod reproduce;

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the `mmcl` binary with CUDA (Debian 12: nvcc 11.8, g++-11, sm_80 PTX).
    BuildCuda(cuda::BuildCudaArgs),
    /// Build with CUDA and assemble the GPU-check folder (binary, fixtures, RUN.txt; < 60 MB).
    GpuPack(gpu::GpuPackArgs),
    /// The paper's tables end to end: data, cache, the run grid (resumable), REPORT.md.
    Reproduce(Box<reproduce::ReproduceArgs>),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.command {
        Command::BuildCuda(args) => cuda::build_cuda(&root, &args).map(|_| ()),
        Command::GpuPack(args) => gpu::gpu_pack(&root, &args),
        Command::Reproduce(args) => reproduce::reproduce(&root, &args),
    }
}

/// The workspace root: xtask lives one folder below it.
fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}
