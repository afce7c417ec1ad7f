//! `mmcl eval`: evaluate a run's last checkpoint on a cache (its own by default), clean or
//! under a corruption suite (`--corrupt`, into the run's `robustness.json`).
use std::path::PathBuf;

use clap::Args;
use mmcl_media::corrupt::CorruptSpec;

#[derive(Args)]
pub struct EvalArgs {
    /// The run folder whose last checkpoint to evaluate.
    #[arg(long, alias = "checkpoint")]
    pub run: PathBuf,
    /// A prepared cache to evaluate on (default: the run's).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Write the accuracies as JSON here (clean evaluation).
    #[arg(long, conflicts_with = "corrupt")]
    pub out: Option<PathBuf>,
    /// Evaluate the finished run's final model under corruptions, e.g. `audio:white:3`,
    /// `visual:missing`, `audio:pink:2+visual:blur:4`, `suite:audio`, `suite:visual`,
    /// `suite:missing`, `suite:default`; cells go to RUN/robustness.json (the clean cell,
    /// severity 0, always with them).
    #[arg(long, value_name = "SPEC")]
    pub corrupt: Option<CorruptSpec>,
    /// No per-cell progress lines.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let text = match &a.corrupt {
        Some(spec) => crate::runs::evaluate_corrupted(&a.run, spec, a.cache.as_deref(), !a.quiet)?,
        None => crate::runs::evaluate(&a.run, a.cache.as_deref(), a.out.as_deref())?,
    };
    print!("{text}");
    Ok(())
}
