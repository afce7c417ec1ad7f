//! Every reported number of one run, derived from the raw facts of its `results.json`
//! ([`RunResults`]: correct counts, test counts, prediction histograms, calibration bins).
//! The definitions are in the crate documentation.

use mmcl_scheduler::results::{ModeResults, RunResults};

use crate::error::{MetricsError, Result};
use crate::matrix::{
    accuracy_percent, cumulative_accuracy, ece_from_bins, final_row_accuracy, gcil_summary,
    task_recency_bias, AccuracyMatrix, GcilSummary,
};

/// The metrics of one inference mode of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeMetrics {
    /// `av`, `audio`, `visual` or `ensemble`.
    pub mode: String,
    /// The stored accuracy rows in percent, `accuracy[t][i]`, every evaluated cell (the
    /// next task's too); `None` where not evaluated or the test set is empty.
    pub accuracy: Vec<Vec<Option<f64>>>,
    /// The accuracy matrix of a sequential run; `None` for JOINT (one row).
    pub matrix: Option<AccuracyMatrix>,
    /// Final mean accuracy (Seq/Dom headline).
    pub final_accuracy: Option<f64>,
    /// Task-IL final mean accuracy (Seq).
    pub task_il_accuracy: Option<f64>,
    pub backward_transfer: Option<f64>,
    pub forgetting: Option<f64>,
    pub forward_transfer: Option<f64>,
    /// The mean random-init accuracy FWT subtracts (over the same next tasks).
    pub random_init_next: Option<f64>,
    pub stability: Option<f64>,
    pub plasticity: Option<f64>,
    /// ECE of the final model on every seen test sample.
    pub ece: Option<f64>,
    /// Task-recency bias after each task (`None` after task 0, where the task introduced no
    /// outputs, and for JOINT).
    pub recency: Vec<Option<f64>>,
    /// After each task, the latest task's share of the seen test samples: what an unbiased
    /// model's predictions would put on its classes.
    pub recency_baseline: Vec<Option<f64>>,
    /// After each task `t`, the accuracy of that model on the cumulative test set `t`.
    pub seen_accuracy: Vec<Option<f64>>,
    /// The final model on the cumulative test sets: the GCIL headline and all-seen accuracy.
    pub gcil: GcilSummary,
}

impl ModeMetrics {
    /// The table headline: the reference GCIL headline for GCIL, else final mean accuracy.
    pub fn headline(&self, gcil: bool) -> Option<f64> {
        if gcil {
            Some(self.gcil.reference_headline)
        } else {
            self.final_accuracy
        }
    }
}

/// The metrics of every inference mode of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunMetrics {
    pub modes: Vec<ModeMetrics>,
}

impl RunMetrics {
    /// Derives every metric from a finished run's results; errors say what is inconsistent.
    pub fn derive(r: &RunResults) -> Result<RunMetrics> {
        if !r.finished {
            return Err(bad("the run is not finished".into()));
        }
        let modes = r
            .modes
            .iter()
            .map(|m| {
                derive_mode(r, m).map_err(|e| match e {
                    MetricsError::InvalidInput(s) => bad(format!("mode {}: {s}", m.mode)),
                    e => e,
                })
            })
            .collect::<Result<_>>()?;
        Ok(RunMetrics { modes })
    }

    /// The metrics of one mode (`av`, `audio`, ...).
    pub fn mode(&self, name: &str) -> Option<&ModeMetrics> {
        self.modes.iter().find(|m| m.mode == name)
    }
}

fn bad(reason: String) -> MetricsError {
    MetricsError::InvalidInput(reason)
}

fn derive_mode(r: &RunResults, m: &ModeResults) -> Result<ModeMetrics> {
    let tasks = r.tasks.len();
    let rows = r.trained_tasks;
    let n: Vec<u64> = r.tasks.iter().map(|t| t.n_test as u64).collect();
    if tasks == 0 || rows == 0 {
        return Err(bad("no tasks".into()));
    }
    if rows != 1 && rows != tasks {
        return Err(bad(format!(
            "{rows} trained tasks for {tasks} scenario tasks"
        )));
    }
    let check_rows = |what: &str, len: usize| -> Result<()> {
        if len != rows {
            return Err(bad(format!("{len} {what} rows for {rows} trained tasks")));
        }
        Ok(())
    };
    check_rows("correct", m.correct.len())?;
    check_rows("prediction histogram", m.predicted.len())?;
    check_rows("calibration", m.calibration.len())?;
    let percent = |counts: &[Vec<Option<u64>>]| -> Result<Vec<Vec<Option<f64>>>> {
        counts
            .iter()
            .enumerate()
            .map(|(t, row)| {
                if row.len() != tasks {
                    return Err(bad(format!(
                        "row {t} has {} cells for {tasks} test sets",
                        row.len()
                    )));
                }
                row.iter()
                    .zip(&n)
                    .enumerate()
                    .map(|(i, (c, &ni))| match c {
                        Some(c) if *c > ni => Err(bad(format!(
                            "cell [{t}][{i}]: {c} correct of {ni} test samples"
                        ))),
                        Some(c) => Ok(accuracy_percent(*c, ni)),
                        None => Ok(None),
                    })
                    .collect()
            })
            .collect()
    };
    let accuracy = percent(&m.correct)?;
    let final_row = accuracy.last().expect("rows checked");
    let task_il_accuracy = match &m.task_il_correct {
        Some(til) => {
            check_rows("task-IL", til.len())?;
            final_row_accuracy(percent(til)?.last().expect("rows checked"))
        }
        None => None,
    };
    let joint = rows == 1 && tasks > 1;
    let matrix = if joint {
        None
    } else {
        Some(AccuracyMatrix::with_gaps(accuracy.clone())?)
    };
    // Row t's seen test sets: 0..=t, or all of them for JOINT's one row.
    let seen_sets = |t: usize| if joint { tasks } else { t + 1 };

    let random_init: Vec<Option<f64>> = if m.random_init_correct.len() == tasks {
        m.random_init_correct
            .iter()
            .zip(&n)
            .map(|(c, &ni)| c.and_then(|c| accuracy_percent(c, ni)))
            .collect()
    } else {
        return Err(bad(format!(
            "{} random-init cells for {tasks} test sets",
            m.random_init_correct.len()
        )));
    };
    let forward_transfer = match &matrix {
        Some(a) => a.forward_transfer(&random_init)?,
        None => None,
    };
    let random_init_next = matrix.as_ref().and_then(|a| {
        crate::matrix::mean_of((1..tasks).filter_map(|i| a.get(i - 1, i).and(random_init[i])))
    });

    let mut recency = Vec::with_capacity(rows);
    let mut recency_baseline = Vec::with_capacity(rows);
    for (t, predicted) in m.predicted.iter().enumerate() {
        if predicted.len() != r.run.num_outputs {
            return Err(bad(format!(
                "row {t}: prediction counts for {} outputs, the model has {}",
                predicted.len(),
                r.run.num_outputs
            )));
        }
        let seen_n: u64 = n[..seen_sets(t)].iter().sum();
        if predicted.iter().sum::<u64>() != seen_n {
            return Err(bad(format!(
                "row {t}: {} predictions counted for {seen_n} seen test samples",
                predicted.iter().sum::<u64>()
            )));
        }
        // After task 0 every prediction is on task 0's outputs by construction.
        if joint || t == 0 {
            recency.push(None);
            recency_baseline.push(None);
        } else {
            let latest = &r.tasks[t].new_targets;
            recency.push(task_recency_bias(predicted, latest)?);
            recency_baseline.push(if latest.is_empty() {
                None
            } else {
                accuracy_percent(n[t], seen_n)
            });
        }
    }

    let final_bins = m.calibration.last().expect("rows checked");
    let ece = ece_from_bins(
        &final_bins.count,
        &final_bins.confidence_sum,
        &final_bins.correct,
    )?;

    // Cumulative accuracies need every seen cell of a row evaluated.
    let counts = |t: usize| -> Result<Vec<u64>> {
        m.correct[t][..seen_sets(t)]
            .iter()
            .enumerate()
            .map(|(i, c)| c.ok_or_else(|| bad(format!("seen cell [{t}][{i}] was not evaluated"))))
            .collect()
    };
    let seen_accuracy = (0..rows)
        .map(|t| {
            let k = seen_sets(t);
            Ok(cumulative_accuracy(&counts(t)?, &n[..k])?[k - 1])
        })
        .collect::<Result<Vec<_>>>()?;
    let final_cumulative = cumulative_accuracy(&counts(rows - 1)?, &n)?;
    let gcil = gcil_summary(&final_cumulative)?;

    Ok(ModeMetrics {
        mode: m.mode.clone(),
        final_accuracy: final_row_accuracy(final_row),
        task_il_accuracy,
        backward_transfer: matrix.as_ref().and_then(AccuracyMatrix::backward_transfer),
        forgetting: matrix.as_ref().and_then(AccuracyMatrix::forgetting),
        forward_transfer,
        random_init_next,
        stability: matrix.as_ref().and_then(AccuracyMatrix::stability),
        plasticity: matrix.as_ref().and_then(AccuracyMatrix::plasticity),
        ece,
        recency,
        recency_baseline,
        seen_accuracy,
        gcil,
        accuracy,
        matrix,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mmcl_scheduler::results::{CalibrationBins, RESULTS_SCHEMA_VERSION};

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    /// A finished 3-task class-IL run with 2 outputs per task; test sets of 10, 0 and 20
    /// samples (task 1 brings no test data, as a GCIL task may). Built from JSON, as
    /// results.json is read.
    pub(crate) fn results(scenario: &str) -> RunResults {
        let bins = |conf: f64, count: u64, correct: u64| {
            let mut b = CalibrationBins::new(15);
            b.count[14] = count;
            b.confidence_sum[14] = conf * count as f64;
            b.correct[14] = correct;
            b
        };
        let task = |t: u32, n_test: usize| {
            serde_json::json!({"classes": [2 * t, 2 * t + 1], "new_targets": [2 * t, 2 * t + 1],
                               "n_train": 8, "n_test": n_test})
        };
        serde_json::from_value(serde_json::json!({
            "schema_version": RESULTS_SCHEMA_VERSION,
            "run": {"method": "er", "scenario": scenario, "modality": "audio_visual",
                    "buffer_size": 20, "seed": 0, "dataset": "test", "num_outputs": 6,
                    "task_il": false},
            "tasks": [task(0, 10), task(1, 0), task(2, 20)],
            "tasks_done": 3, "trained_tasks": 3, "finished": true,
            "modes": [{
                "mode": "av",
                "correct": [[9, 0, null], [6, 0, 0], [4, 0, 15]],
                "task_il_correct": null,
                "predicted": [[10, 0, 0, 0, 0, 0], [7, 0, 3, 0, 0, 0], [5, 0, 0, 0, 20, 5]],
                "calibration": [bins(0.9, 10, 9), bins(0.9, 10, 6), bins(0.95, 30, 19)],
                "random_init_correct": [1, 0, 2],
            }],
            "training": [], "temperatures": [], "elapsed_s": 1.0, "config": {},
        }))
        .unwrap()
    }

    #[test]
    fn derives_every_metric_from_the_counts() {
        let d = RunMetrics::derive(&results("seq")).unwrap();
        let m = d.mode("av").unwrap();
        // A = [[90], [60, -], [40, -, 75]] (test set 1 empty)
        assert_eq!(
            m.accuracy,
            vec![
                vec![Some(90.0), None, None],
                vec![Some(60.0), None, Some(0.0)],
                vec![Some(40.0), None, Some(75.0)]
            ]
        );
        close(m.final_accuracy.unwrap(), (40.0 + 75.0) / 2.0);
        close(m.backward_transfer.unwrap(), 40.0 - 90.0);
        close(m.forgetting.unwrap(), 90.0 - 40.0);
        close(m.stability.unwrap(), 40.0);
        close(m.plasticity.unwrap(), (90.0 + 75.0) / 2.0);
        // FWT: only i = 2 has A[1][2] and b[2] = 10 % -> 0 - 10
        close(m.forward_transfer.unwrap(), -10.0);
        // recency: none after task 0 (100 % by construction); after task 1 3 of 10 on outputs 2,3;
        // after task 2 25 of 30 on outputs 4,5
        assert_eq!(m.recency[0], None);
        close(m.recency[1].unwrap(), 30.0);
        close(m.recency[2].unwrap(), 100.0 * 25.0 / 30.0);
        assert_eq!(m.recency_baseline[1], Some(0.0));
        close(m.recency_baseline[2].unwrap(), 100.0 * 20.0 / 30.0);
        // ECE of the final row: |0.95*30 - 19| / 30
        close(m.ece.unwrap(), 100.0 * (28.5 - 19.0) / 30.0);
        // seen accuracy after each task: 9/10, 6/10, 19/30
        assert_eq!(m.seen_accuracy[0], Some(90.0));
        assert_eq!(m.seen_accuracy[1], Some(60.0));
        close(m.seen_accuracy[2].unwrap(), 100.0 * 19.0 / 30.0);
        // GCIL: the final model on the cumulative sets: 4/10, 4/10, 19/30
        let headline = (40.0 + 40.0 + 100.0 * 19.0 / 30.0) / 3.0;
        close(m.gcil.reference_headline, headline);
        close(m.gcil.final_all_seen, 100.0 * 19.0 / 30.0);
        close(m.headline(true).unwrap(), headline);
        close(m.headline(false).unwrap(), 57.5);
    }

    #[test]
    fn joint_has_one_row_and_no_sequence_metrics() {
        let mut r = results("seq");
        r.trained_tasks = 1;
        r.tasks_done = 1;
        let m = &mut r.modes[0];
        m.correct = vec![vec![Some(8), Some(0), Some(10)]];
        m.predicted = vec![vec![10, 0, 0, 0, 10, 10]];
        m.calibration.truncate(1);
        let d = RunMetrics::derive(&r).unwrap();
        let m = &d.modes[0];
        assert!(m.matrix.is_none() && m.forgetting.is_none() && m.plasticity.is_none());
        assert_eq!(m.recency, vec![None]);
        close(m.final_accuracy.unwrap(), (80.0 + 50.0) / 2.0);
        close(m.gcil.final_all_seen, 100.0 * 18.0 / 30.0);
    }

    #[test]
    fn inconsistent_facts_are_errors() {
        let mut r = results("seq");
        r.modes[0].correct[2][0] = Some(11);
        let e = RunMetrics::derive(&r).unwrap_err().to_string();
        assert!(
            e.contains("mode av") && e.contains("11 correct of 10"),
            "{e}"
        );
        let mut r = results("seq");
        r.modes[0].predicted[1][0] = 0;
        assert!(RunMetrics::derive(&r).is_err());
        let mut r = results("seq");
        r.modes[0].calibration.pop();
        assert!(RunMetrics::derive(&r).is_err());
        let mut r = results("seq");
        r.finished = false;
        assert!(RunMetrics::derive(&r).is_err());
    }

    /// The evaluator's bins (scheduler) give the ECE the losses crate computes from the
    /// samples themselves.
    #[test]
    fn ece_from_bins_equals_ece_from_samples() {
        let rule = mmcl_losses::ConfidenceBins::new(mmcl_losses::ECE_BINS).unwrap();
        // deterministic pseudo-random confidences over (0, 1], about 70 % correct
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as f64 / (1u64 << 31) as f64
        };
        let (mut conf, mut hits) = (Vec::new(), Vec::new());
        for _ in 0..997 {
            conf.push((0.01 + 0.99 * next()) as f32);
            hits.push(next() < 0.7);
        }
        conf.extend([1.0, 1.0 / 15.0, 0.5]); // bin edges
        hits.extend([true, false, true]);
        let mut bins = CalibrationBins::new(rule.len());
        for (&c, &h) in conf.iter().zip(&hits) {
            bins.record(&rule, c, h);
        }
        let from_bins = ece_from_bins(&bins.count, &bins.confidence_sum, &bins.correct)
            .unwrap()
            .unwrap();
        let from_samples =
            100.0 * mmcl_losses::ece_from_confidences(&conf, &hits, mmcl_losses::ECE_BINS).unwrap();
        assert!(
            (from_bins - from_samples).abs() < 1e-9,
            "{from_bins} vs {from_samples}"
        );
        assert!(from_bins > 1.0);
    }
}
