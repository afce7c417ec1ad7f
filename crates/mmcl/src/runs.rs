//! Reading a run's outcome: the one-line-per-mode summary `mmcl train` prints, and
//! `mmcl eval`'s evaluation of a run's last checkpoint.
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use mmcl_scheduler::{eval_checkpoint, RunResults};

/// One line per inference mode: the run's identity, its final mean and all-seen accuracy.
pub fn summary(r: &RunResults) -> Result<String> {
    let metrics = mmcl_metrics::RunMetrics::derive(r)?;
    let fmt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}%"));
    let mut s = String::new();
    for m in &metrics.modes {
        writeln!(
            s,
            "{} {} {} buf {} seed {} mode {}: final mean accuracy {}, final all-seen accuracy {:.2}%",
            r.run.scenario,
            r.run.method,
            r.run.modality,
            r.run.buffer_size,
            r.run.seed,
            m.mode,
            fmt(m.final_accuracy),
            m.gcil.final_all_seen
        )?;
    }
    Ok(s)
}

/// Evaluate the last checkpoint of `run_dir` on `cache` (default: the run's); writes the
/// accuracies as JSON to `out` (atomically) when given and returns one line per mode.
pub fn evaluate(run_dir: &Path, cache: Option<&Path>, out: Option<&Path>) -> Result<String> {
    mmcl_ops::process::tune_for_training();
    let res = eval_checkpoint(run_dir, cache)?;
    let mut json = serde_json::Map::new();
    let mut text = String::new();
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
        writeln!(
            text,
            "{}: mean {mean:.2}% per task [{}]",
            row.mode,
            cells.join(", ")
        )?;
        json.insert(
            row.mode.clone(),
            serde_json::json!({"mean": mean, "per_task": accs, "correct": row.correct, "n_test": row.n_test}),
        );
    }
    if let Some(out) = out {
        let bytes = serde_json::to_string_pretty(&json)?;
        mmcl_io::write_atomic(out, bytes.as_bytes())
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(text)
}
