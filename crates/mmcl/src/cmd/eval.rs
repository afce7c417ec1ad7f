//! `mmcl eval`: evaluate a run's last checkpoint on a cache (its own by default).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use mmcl_scheduler::eval_checkpoint;

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

pub fn run(args: EvalArgs) -> Result<()> {
    crate::process::tune_for_training();
    let res = eval_checkpoint(&args.checkpoint, args.cache.as_deref())?;
    let mut json = serde_json::Map::new();
    for (mode, accs) in &res {
        let v: Vec<f64> = accs.iter().flatten().copied().collect();
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        let cells: Vec<String> = accs
            .iter()
            .map(|a| a.map_or("-".into(), |a| format!("{a:.2}")))
            .collect();
        println!("{mode}: mean {mean:.2}% per task [{}]", cells.join(", "));
        json.insert(
            mode.clone(),
            serde_json::json!({"mean": mean, "per_task": accs}),
        );
    }
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&json)?)?;
    }
    Ok(())
}
