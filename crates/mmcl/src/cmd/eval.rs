//! `mmcl eval`: evaluate a run's last checkpoint on a cache (its own by default).
use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct EvalArgs {
    /// The run folder whose last checkpoint to evaluate.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// A prepared cache to evaluate on (default: the run's).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Write the accuracies as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let text = crate::runs::evaluate(&a.checkpoint, a.cache.as_deref(), a.out.as_deref())?;
    print!("{text}");
    Ok(())
}
