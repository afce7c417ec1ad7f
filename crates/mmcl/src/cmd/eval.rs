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
    for row in &res {
        let accs: Vec<Option<f64>> = row
            .correct
            .iter()
            .zip(&row.n_test)
            .map(|(&c, &n)| mmcl_metrics::accuracy_percent(c, n))
            .collect();
        let mean = mmcl_metrics::final_row_accuracy(&accs).unwrap_or(f64::NAN);
        let cells: Vec<String> = accs
            .iter()
            .map(|a| a.map_or("-".into(), |a| format!("{a:.2}")))
            .collect();
        println!(
            "{}: mean {mean:.2}% per task [{}]",
            row.mode,
            cells.join(", ")
        );
        json.insert(
            row.mode.clone(),
            serde_json::json!({"mean": mean, "per_task": accs, "correct": row.correct, "n_test": row.n_test}),
        );
    }
    if let Some(out) = &args.out {
        crate::atomic::write_atomic(out, serde_json::to_string_pretty(&json)?.as_bytes())?;
    }
    Ok(())
}
