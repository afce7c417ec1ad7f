//! The command line: one module per subcommand group, each translating its arguments into
//! one library call and printing the outcome.
use clap::{Parser, Subcommand};

pub mod bench;
pub mod eval;
pub mod gpu;
pub mod manifest;
pub mod media;
pub mod model;
pub mod prep;
pub mod report;
pub mod synth;
pub mod train;

#[derive(Parser)]
#[command(
    name = "mmcl",
    version,
    about = "Multimodal (audio + visual) continual learning: the MMCL benchmark and SAMM"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tables (Markdown + CSV) and plots from finished run folders.
    Report(report::ReportArgs),
    /// Train one continual-learning run (or resume one) into a run folder.
    Train(train::TrainArgs),
    /// Evaluate a run's last checkpoint on a prepared cache.
    Eval(eval::EvalArgs),
    /// Inspect media preprocessing: spectrograms and frames, for comparison with your own tools.
    #[command(subcommand)]
    Media(media::MediaCommand),
    /// Generate the synthetic MMCL-shaped dataset (real WAV/PNG files + manifest.csv).
    Synth(synth::SynthArgs),
    /// Build benchmark manifests from datasets you bring (VGGSound).
    #[command(subcommand)]
    Manifest(manifest::ManifestCommand),
    /// Decode a manifest's clips once into the preprocessing cache (safetensors shards).
    Prep(prep::PrepArgs),
    /// Speed benchmarks (one JSON line each), e.g. the training step vs PyTorch.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// The audio-visual classifier: write an initialised checkpoint, run a forward pass.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Validate a GPU build: CUDA vs CPU vs PyTorch on the golden fixtures, the paper-scale
    /// step vs torch_step.py, a tiny SAMM run; prints a summary, writes SUMMARY.json.
    GpuCheck(gpu::GpuCheckArgs),
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Report(a) => report::run(a),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Media(c) => media::run(c),
        Command::Synth(a) => synth::run(a),
        Command::Manifest(c) => manifest::run(c),
        Command::Prep(a) => prep::run(a),
        Command::Bench(c) => bench::run(c),
        Command::Model(c) => model::run(c),
        Command::GpuCheck(a) => gpu::run(a),
    }
}
