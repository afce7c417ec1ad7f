//! `cargo xtask …`: project automation in Rust instead of shell scripts.
use clap::{Parser, Subcommand};

mod cuda;

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.command {
        Command::BuildCuda(args) => cuda::build_cuda(&root, &args).map(|_| ()),
    }
}

/// The workspace root: xtask lives one folder below it.
fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}
