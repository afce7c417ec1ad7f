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

/// Per-test-set accuracies of a final row of counts and their mean (NaN for none).
fn final_row(correct: &[u64], n_test: &[u64]) -> (Vec<Option<f64>>, f64) {
    let accs: Vec<Option<f64>> = correct
        .iter()
        .zip(n_test)
        .map(|(&c, &n)| mmcl_metrics::accuracy_percent(c, n))
        .collect();
    let mean = mmcl_metrics::final_row_accuracy(&accs).unwrap_or(f64::NAN);
    (accs, mean)
}

/// Evaluate the last checkpoint of `run_dir` on `cache` (default: the run's); writes the
/// accuracies as JSON to `out` (atomically) when given and returns one line per mode.
pub fn evaluate(run_dir: &Path, cache: Option<&Path>, out: Option<&Path>) -> Result<String> {
    mmcl_ops::process::tune_for_training();
    let res = eval_checkpoint(run_dir, cache)?;
    let mut json = serde_json::Map::new();
    let mut text = String::new();
    for row in &res {
        let (accs, mean) = final_row(&row.correct, &row.n_test);
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

/// `mmcl eval --corrupt`: the final model of the finished run in `run_dir` under every cell
/// of `spec` (cells already in its `robustness.json` are reused); returns one line per cell
/// with each mode's accuracy (mean over the test sets) and the ensemble's head weights.
pub fn evaluate_corrupted(
    run_dir: &Path,
    spec: &mmcl_media::corrupt::CorruptSpec,
    cache: Option<&Path>,
    progress: bool,
) -> Result<String> {
    mmcl_ops::process::tune_for_training();
    let opts = mmcl_scheduler::robustness::RobustnessOptions {
        cache: cache.map(Path::to_path_buf),
        progress,
    };
    let r = mmcl_scheduler::robustness::evaluate_corrupted(run_dir, spec, &opts)?;
    let mut text = String::new();
    for (name, cell) in &r.cells {
        let modes: Vec<String> = cell
            .modes
            .iter()
            .map(|m| format!("{} {:.2}%", m.mode, final_row(&m.correct, &m.n_test).1))
            .collect();
        let weights = cell.ensemble_weights.map_or(String::new(), |w| {
            format!(
                "; ensemble weights audio {:.3} visual {:.3} fused {:.3}",
                w.audio, w.visual, w.fused
            )
        });
        writeln!(text, "{name}: {}{weights}", modes.join(", "))?;
    }
    writeln!(
        text,
        "{} cells in {}",
        r.cells.len(),
        run_dir
            .join(mmcl_scheduler::robustness::ROBUSTNESS_FILE)
            .display()
    )?;
    Ok(text)
}
