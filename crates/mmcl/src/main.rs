//! `mmcl`: the thin command-line runner over the mmcl crates.
//!
//! Every subcommand is a small wrapper over a library function; the modules under
//! `cmd/` only parse arguments, call the library and print.

use clap::{Parser, Subcommand};

mod atomic;
mod cmd;
mod config;
mod process;

#[derive(Parser)]
#[command(
    name = "mmcl",
    version,
    about = "Multimodal (audio + visual) continual learning: the MMCL benchmark and SAMM"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tables (Markdown + CSV) and plots from finished run folders.
    Report(cmd::report::ReportArgs),
    /// Train one continual-learning run (or resume one) into a run folder.
    Train(cmd::train::TrainArgs),
    /// Evaluate a run's last checkpoint on a prepared cache.
    Eval(cmd::eval::EvalArgs),
    /// Inspect media preprocessing: spectrograms and frames, for comparison with your own tools.
    #[command(subcommand)]
    Media(cmd::media::MediaCommand),
    /// Generate the synthetic MMCL-shaped dataset (real WAV/PNG files + manifest.csv).
    Synth(cmd::synth::SynthArgs),
    /// Build benchmark manifests from datasets you bring (VGGSound).
    #[command(subcommand)]
    Manifest(cmd::manifest::ManifestCommand),
    /// Decode a manifest's clips once into the preprocessing cache (safetensors shards).
    Prep(cmd::prep::PrepArgs),
    /// Speed benchmarks (one JSON line each), e.g. the training step vs PyTorch.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
    /// The audio-visual classifier: write an initialised checkpoint, run a forward pass.
    #[command(subcommand)]
    Model(cmd::model::ModelCommand),
    /// Validate a GPU build: CUDA vs CPU vs PyTorch on the golden fixtures, the paper-scale
    /// step vs torch_step.py, a tiny SAMM run; prints a summary, writes SUMMARY.json.
    GpuCheck(cmd::gpu::GpuCheckArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Report(a) => cmd::report::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Media(c) => cmd::media::run(c),
        Command::Synth(a) => cmd::synth::run(a),
        Command::Manifest(c) => cmd::manifest::run(c),
        Command::Prep(a) => cmd::prep::run(a),
        Command::Bench(c) => cmd::bench::run(c),
        Command::Model(c) => cmd::model::run(c),
        Command::GpuCheck(a) => cmd::gpu::run(a),
    }
}
