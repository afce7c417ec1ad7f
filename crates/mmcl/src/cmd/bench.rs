//! `mmcl bench …`: speed benchmarks that print one JSON line each.
//!
//! `mmcl bench step --scale tiny|mini|paper` times exactly the training step of
//! `tools/bench/torch_step.py` (see [`mmcl_scheduler::bench`]); compare with
//! `python3 torch_step.py <scale>` run back to back on the same machine.
use clap::{Args, Subcommand, ValueEnum};
use mmcl_model::Modality;
use mmcl_scheduler::bench::{step, StepBench, StepScale};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Time one training step (forward, 3-head cross-entropy, backward, SGD) like torch_step.py.
    Step(StepArgs),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scale {
    Tiny,
    Mini,
    Paper,
}

#[derive(Args)]
pub struct StepArgs {
    /// Model and batch size (tiny and mini are quick; paper is the paper's shapes).
    #[arg(long, value_enum)]
    pub scale: Scale,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Untimed steps first (thread pools, allocator and scratch buffers warm up).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Seed of the weights, inputs and labels.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also report the time per op class (conv forward, conv backward input/weight, BN,
    /// pool, fused elementwise, rest) in ms per step; adds a little overhead.
    #[arg(long)]
    pub profile: bool,
    /// `cpu`, `cuda` or `cuda:N`: where the model, inputs and step run.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// `audio-visual` (torch_step.py's network), or `audio` / `visual`: a one-encoder
    /// unimodal network, its loss the sum of the heads it has.
    #[arg(long, default_value = "audio-visual")]
    pub modality: Modality,
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    let BenchCommand::Step(a) = command;
    let report = step(&StepBench {
        scale: match a.scale {
            Scale::Tiny => StepScale::Tiny,
            Scale::Mini => StepScale::Mini,
            Scale::Paper => StepScale::Paper,
        },
        steps: a.steps,
        warmup: a.warmup,
        seed: a.seed,
        profile: a.profile,
        device: a.device,
        modality: a.modality,
    })?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
