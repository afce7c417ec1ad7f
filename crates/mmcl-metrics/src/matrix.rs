//! The accuracy matrix and the continual-learning metrics computed from it, plus the
//! metrics read from counts (cumulative accuracy, task-recency bias, ECE).
//!
//! Every definition is written once, in the crate documentation; the functions here say
//! which one they implement. Indices are 0-based; the last task is `L = T - 1`.

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};

/// Accuracies in percent: `rows[t][i]` is the accuracy on test set `i` after training
/// task `t`; `None` where test set `i` is empty (GCIL) or was not evaluated.
///
/// Row `t` holds at least the `t + 1` seen tasks. It may hold more entries (accuracy on
/// tasks not trained yet, evaluated before training them); only
/// [`AccuracyMatrix::forward_transfer`] reads those. Every metric skips the `None` entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Vec<Option<f64>>>", into = "Vec<Vec<Option<f64>>>")]
pub struct AccuracyMatrix {
    rows: Vec<Vec<Option<f64>>>,
}

impl TryFrom<Vec<Vec<Option<f64>>>> for AccuracyMatrix {
    type Error = MetricsError;
    fn try_from(rows: Vec<Vec<Option<f64>>>) -> Result<Self> {
        AccuracyMatrix::with_gaps(rows)
    }
}

impl From<AccuracyMatrix> for Vec<Vec<Option<f64>>> {
    fn from(m: AccuracyMatrix) -> Self {
        m.rows
    }
}

impl AccuracyMatrix {
    /// A matrix without gaps; see [`AccuracyMatrix::with_gaps`].
    pub fn new(rows: Vec<Vec<f64>>) -> Result<Self> {
        AccuracyMatrix::with_gaps(
            rows.into_iter()
                .map(|r| r.into_iter().map(Some).collect())
                .collect(),
        )
    }

    /// Checks the shape (at least one row, row `t` has at least `t + 1` entries) and that
    /// every entry is a finite percentage in `[0, 100]` or `None`.
    pub fn with_gaps(rows: Vec<Vec<Option<f64>>>) -> Result<Self> {
        if rows.is_empty() {
            return Err(MetricsError::InvalidMatrix("no rows".into()));
        }
        for (t, row) in rows.iter().enumerate() {
            if row.len() < t + 1 {
                return Err(MetricsError::InvalidMatrix(format!(
                    "row {t} (after task {t}) has {} entries, needs at least {} (one per seen task)",
                    row.len(),
                    t + 1
                )));
            }
            if let Some((i, v)) = row
                .iter()
                .enumerate()
                .find_map(|(i, v)| v.filter(|v| !is_percent(*v)).map(|v| (i, v)))
            {
                return Err(MetricsError::InvalidMatrix(format!(
                    "entry [{t}][{i}] = {v} is not a percentage in [0, 100]"
                )));
            }
        }
        Ok(AccuracyMatrix { rows })
    }

    /// Number of tasks trained (`T`).
    pub fn num_tasks(&self) -> usize {
        self.rows.len()
    }

    /// The raw rows, including any entries for tasks not yet trained.
    pub fn rows(&self) -> &[Vec<Option<f64>>] {
        &self.rows
    }

    /// `A[t][i]` if stored and defined.
    pub fn get(&self, t: usize, i: usize) -> Option<f64> {
        self.rows.get(t).and_then(|r| r.get(i)).copied().flatten()
    }

    /// Accuracies on the tasks seen so far after training task `t` (`A[t][0..=t]`).
    pub fn seen(&self, t: usize) -> &[Option<f64>] {
        &self.rows[t][..=t]
    }

    fn last(&self) -> usize {
        self.num_tasks() - 1
    }

    /// Final mean accuracy: [`final_row_accuracy`] of `A[L][0..=L]`.
    pub fn final_mean_accuracy(&self) -> Option<f64> {
        final_row_accuracy(self.seen(self.last()))
    }

    /// Backward transfer `mean_{i<L} (A[L][i] - A[i][i])`; `None` with a single task.
    pub fn backward_transfer(&self) -> Option<f64> {
        let last = self.last();
        mean_of((0..last).filter_map(|i| Some(self.get(last, i)? - self.get(i, i)?)))
    }

    /// Forgetting (mammoth's): `mean_{i<L} (max_{i<=t<=L} A[t][i] - A[L][i])`, never
    /// negative; `None` with a single task.
    pub fn forgetting(&self) -> Option<f64> {
        let last = self.last();
        mean_of((0..last).filter_map(|i| {
            let final_acc = self.get(last, i)?;
            // The max runs over every row that has seen task i, the last included.
            let best = (i..=last)
                .filter_map(|t| self.get(t, i))
                .fold(f64::NEG_INFINITY, f64::max);
            Some(best - final_acc)
        }))
    }

    /// Forward transfer `mean_{1<=i<=L} (A[i-1][i] - b[i])`, `b[i]` = a randomly
    /// initialised model's accuracy on test set `i`; over the tasks where both are
    /// recorded, `None` where none is (the next task was never evaluated before training
    /// it). Errors when `b` does not have one entry per task.
    pub fn forward_transfer(&self, random_init: &[Option<f64>]) -> Result<Option<f64>> {
        let tasks = self.num_tasks();
        if random_init.len() != tasks {
            return Err(MetricsError::InvalidInput(format!(
                "forward transfer needs one random-init accuracy per task ({tasks}), got {}",
                random_init.len()
            )));
        }
        Ok(mean_of((1..tasks).filter_map(|i| {
            Some(self.get(i - 1, i)? - random_init[i]?)
        })))
    }

    /// Stability: the final model's mean accuracy on the earlier tasks,
    /// `mean_{i<L} A[L][i]`; `None` with a single task.
    pub fn stability(&self) -> Option<f64> {
        let last = self.last();
        mean_of((0..last).filter_map(|i| self.get(last, i)))
    }

    /// Plasticity: mean accuracy on the task just learned, `mean_{t<=L} A[t][t]`.
    pub fn plasticity(&self) -> Option<f64> {
        mean_of((0..self.num_tasks()).filter_map(|t| self.get(t, t)))
    }

    /// Element-wise mean over seeds of the seen entries (for heatmaps), over the seeds
    /// where the entry is defined. All matrices must have the same number of tasks.
    pub fn mean_of_matrices(matrices: &[&AccuracyMatrix]) -> Result<AccuracyMatrix> {
        let first = matrices
            .first()
            .ok_or_else(|| MetricsError::InvalidInput("no matrices to average".into()))?;
        let tasks = first.num_tasks();
        if let Some(m) = matrices.iter().find(|m| m.num_tasks() != tasks) {
            return Err(MetricsError::InconsistentRuns(format!(
                "cannot average matrices with {tasks} and {} tasks",
                m.num_tasks()
            )));
        }
        let rows = (0..tasks)
            .map(|t| {
                (0..=t)
                    .map(|i| mean_of(matrices.iter().filter_map(|m| m.get(t, i))))
                    .collect()
            })
            .collect();
        AccuracyMatrix::with_gaps(rows)
    }
}

/// Accuracy in percent of `correct` out of `n`; `None` for an empty set.
pub fn accuracy_percent(correct: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| 100.0 * correct as f64 / n as f64)
}

/// Final mean accuracy of one row (the final model's accuracies per test set): the
/// unweighted mean over the test sets with data; `None` if none has any.
pub fn final_row_accuracy(row: &[Option<f64>]) -> Option<f64> {
    mean_of(row.iter().flatten().copied())
}

/// Accuracies of one model on the cumulative test sets: entry `t` is the accuracy on the
/// union of test sets `0..=t`, `sum_{i<=t} correct[i] / sum_{i<=t} n[i]`, `None` while that
/// union is empty. `correct` and `n` are per test set.
pub fn cumulative_accuracy(correct: &[u64], n: &[u64]) -> Result<Vec<Option<f64>>> {
    if correct.len() != n.len() {
        return Err(MetricsError::InvalidInput(format!(
            "{} correct counts for {} test sets",
            correct.len(),
            n.len()
        )));
    }
    let (mut c, mut total) = (0u64, 0u64);
    correct
        .iter()
        .zip(n)
        .enumerate()
        .map(|(i, (&ci, &ni))| {
            if ci > ni {
                return Err(MetricsError::InvalidInput(format!(
                    "test set {i}: {ci} correct of {ni} samples"
                )));
            }
            c += ci;
            total += ni;
            Ok(accuracy_percent(c, total))
        })
        .collect()
}

/// GCIL summary of the final model's accuracies on the cumulative test sets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GcilSummary {
    /// The reference headline: the mean over the cumulative test sets of the final
    /// model's accuracy (the paper's GCIL tables).
    pub reference_headline: f64,
    /// The final model's accuracy on the last cumulative test set (every class seen).
    pub final_all_seen: f64,
}

/// Summarises the final model's cumulative accuracies (from [`cumulative_accuracy`] of the
/// final row): the mean over the cumulative sets with data, and the last one. Errors when
/// no cumulative set has data.
pub fn gcil_summary(cumulative: &[Option<f64>]) -> Result<GcilSummary> {
    let final_all_seen = cumulative
        .iter()
        .rev()
        .find_map(|v| *v)
        .ok_or_else(|| MetricsError::InvalidInput("no cumulative test set has data".into()))?;
    Ok(GcilSummary {
        reference_headline: mean_of(cumulative.iter().flatten().copied())
            .expect("one value exists"),
        final_all_seen,
    })
}

/// Task-recency bias of one model: the share (%) of its predictions, `predicted[c]` per
/// output `c`, that fall on `recent` (the outputs the latest task introduced); `None` when
/// the latest task introduced none or nothing was predicted.
pub fn task_recency_bias(predicted: &[u64], recent: &[u32]) -> Result<Option<f64>> {
    if let Some(c) = recent.iter().find(|&&c| c as usize >= predicted.len()) {
        return Err(MetricsError::InvalidInput(format!(
            "output {c} of the latest task is outside the {} counted outputs",
            predicted.len()
        )));
    }
    if recent.is_empty() {
        return Ok(None);
    }
    let on_recent: u64 = recent.iter().map(|&c| predicted[c as usize]).sum();
    Ok(accuracy_percent(on_recent, predicted.iter().sum()))
}

/// Expected calibration error in percent from bin totals (per bin: predictions, sum of
/// confidences, correct predictions): `100 * sum_b |conf_sum_b - correct_b| / sum_b n_b`,
/// which is `sum_b |mean conf_b - acc_b| * n_b / n`. `None` for no predictions.
pub fn ece_from_bins(
    count: &[u64],
    confidence_sum: &[f64],
    correct: &[u64],
) -> Result<Option<f64>> {
    if count.len() != confidence_sum.len() || count.len() != correct.len() {
        return Err(MetricsError::InvalidInput(format!(
            "calibration bins disagree in length: {} counts, {} confidence sums, {} correct",
            count.len(),
            confidence_sum.len(),
            correct.len()
        )));
    }
    for (b, ((&n, &s), &c)) in count.iter().zip(confidence_sum).zip(correct).enumerate() {
        if c > n || !s.is_finite() || s < 0.0 || s > n as f64 * (1.0 + 1e-6) {
            return Err(MetricsError::InvalidInput(format!(
                "calibration bin {b}: {c} correct and confidence sum {s} for {n} predictions"
            )));
        }
    }
    let n: u64 = count.iter().sum();
    if n == 0 {
        return Ok(None);
    }
    let gap: f64 = confidence_sum
        .iter()
        .zip(correct)
        .map(|(&s, &c)| (s - c as f64).abs())
        .sum();
    Ok(Some(100.0 * gap / n as f64))
}

fn is_percent(v: f64) -> bool {
    v.is_finite() && (0.0..=100.0).contains(&v)
}

/// Mean of the values; `None` for none.
pub(crate) fn mean_of(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    /// 3 tasks, hand-computed values below.
    fn example() -> AccuracyMatrix {
        AccuracyMatrix::new(vec![vec![90.0], vec![60.0, 80.0], vec![30.0, 50.0, 70.0]]).unwrap()
    }

    #[test]
    fn final_accuracy() {
        close(example().final_mean_accuracy().unwrap(), 50.0);
        assert_eq!(
            final_row_accuracy(&[Some(10.0), None, Some(30.0)]),
            Some(20.0)
        );
        assert_eq!(final_row_accuracy(&[None]), None);
    }

    #[test]
    fn backward_transfer_and_forgetting() {
        let m = example();
        // BWT = ((30-90) + (50-80)) / 2 = -45
        close(m.backward_transfer().unwrap(), -45.0);
        // forgetting: task0 max(90,60,30)-30 = 60; task1 max(80,50)-50 = 30 -> 45
        close(m.forgetting().unwrap(), 45.0);
        // forgetting uses the best accuracy, not the first one
        let rising =
            AccuracyMatrix::new(vec![vec![40.0], vec![60.0, 80.0], vec![50.0, 80.0, 70.0]])
                .unwrap();
        close(rising.forgetting().unwrap(), (10.0 + 0.0) / 2.0);
        close(rising.backward_transfer().unwrap(), (10.0 + 0.0) / 2.0);
    }

    /// The last row holds the best accuracy on a task: the max includes it, so that task
    /// forgot nothing (0, not negative as a max over the earlier rows alone would give).
    #[test]
    fn forgetting_max_includes_the_last_row() {
        let m = AccuracyMatrix::new(vec![vec![40.0], vec![30.0, 80.0], vec![70.0, 60.0, 50.0]])
            .unwrap();
        // task0: max(40,30,70) - 70 = 0 (excluding the last row: 40 - 70 = -30);
        // task1: max(80,60) - 60 = 20 -> mean 10
        close(m.forgetting().unwrap(), 10.0);
        // BWT does go positive for task 0: ((70-40) + (60-80)) / 2 = 5
        close(m.backward_transfer().unwrap(), 5.0);
    }

    #[test]
    fn stability_and_plasticity() {
        let m = example();
        // final row, earlier tasks: mean(30, 50) = 40
        close(m.stability().unwrap(), 40.0);
        close(m.plasticity().unwrap(), (90.0 + 80.0 + 70.0) / 3.0);
        // final accuracy = (L * stability + A[L][L]) / T
        close(m.final_mean_accuracy().unwrap(), (2.0 * 40.0 + 70.0) / 3.0);
    }

    #[test]
    fn single_task_has_no_transfer_metrics() {
        let m = AccuracyMatrix::new(vec![vec![42.0]]).unwrap();
        assert!(m.backward_transfer().is_none());
        assert!(m.forgetting().is_none());
        assert!(m.stability().is_none());
        assert_eq!(m.plasticity(), Some(42.0));
        close(m.final_mean_accuracy().unwrap(), 42.0);
    }

    #[test]
    fn gaps_are_skipped() {
        // test set 1 is empty (a GCIL task without new classes)
        let m = AccuracyMatrix::with_gaps(vec![
            vec![Some(90.0)],
            vec![Some(60.0), None],
            vec![Some(30.0), None, Some(70.0)],
        ])
        .unwrap();
        close(m.final_mean_accuracy().unwrap(), 50.0);
        close(m.backward_transfer().unwrap(), -60.0);
        close(m.forgetting().unwrap(), 60.0);
        close(m.stability().unwrap(), 30.0);
        close(m.plasticity().unwrap(), 80.0);
    }

    #[test]
    fn forward_transfer_needs_next_task_entries() {
        let with_future = AccuracyMatrix::new(vec![
            vec![90.0, 25.0, 22.0],
            vec![60.0, 80.0, 30.0],
            vec![30.0, 50.0, 70.0],
        ])
        .unwrap();
        // (A[0][1] - b1 + A[1][2] - b2)/2 = ((25-20) + (30-20))/2 = 7.5
        let b = [Some(20.0), Some(20.0), Some(20.0)];
        close(with_future.forward_transfer(&b).unwrap().unwrap(), 7.5);
        assert_eq!(example().forward_transfer(&b).unwrap(), None);
        assert_eq!(with_future.forward_transfer(&[None; 3]).unwrap(), None);
        assert!(example().forward_transfer(&[Some(1.0)]).is_err());
    }

    #[test]
    fn rejects_bad_shapes_and_values() {
        assert!(AccuracyMatrix::new(vec![]).is_err());
        assert!(AccuracyMatrix::new(vec![vec![1.0], vec![2.0]]).is_err());
        assert!(AccuracyMatrix::new(vec![vec![f64::NAN]]).is_err());
        assert!(AccuracyMatrix::new(vec![vec![101.0]]).is_err());
        let parsed: std::result::Result<AccuracyMatrix, _> = serde_json::from_str("[[1.0],[2.0]]");
        assert!(parsed.is_err());
        let ok: AccuracyMatrix = serde_json::from_str("[[1.0],[2.0,null]]").unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), "[[1.0],[2.0,null]]");
    }

    #[test]
    fn mean_of_matrices_is_elementwise() {
        let a = example();
        let b = AccuracyMatrix::new(vec![vec![70.0], vec![40.0, 60.0], vec![10.0, 30.0, 50.0]])
            .unwrap();
        let m = AccuracyMatrix::mean_of_matrices(&[&a, &b]).unwrap();
        assert_eq!(m.rows()[2], vec![Some(20.0), Some(40.0), Some(60.0)]);
        let short = AccuracyMatrix::new(vec![vec![1.0]]).unwrap();
        assert!(AccuracyMatrix::mean_of_matrices(&[&a, &short]).is_err());
    }

    /// Cumulative accuracy weights the test sets by their sizes; an empty test set adds
    /// nothing, and the GCIL headline is the mean over the cumulative sets.
    #[test]
    fn gcil_headline_weights_by_test_counts_with_an_empty_set() {
        // test sets of 10, 0 (a task without new classes) and 30 samples
        let c = cumulative_accuracy(&[8, 0, 6], &[10, 0, 30]).unwrap();
        assert_eq!(c, vec![Some(80.0), Some(80.0), Some(100.0 * 14.0 / 40.0)]);
        let g = gcil_summary(&c).unwrap();
        close(g.reference_headline, (80.0 + 80.0 + 35.0) / 3.0);
        close(g.final_all_seen, 35.0);
        // unweighted, per-set accuracies would give mean(80, 20) = 50 for the last set
        assert_ne!(g.final_all_seen, 50.0);
        // an empty first set: no cumulative accuracy until data arrives
        let c = cumulative_accuracy(&[0, 3], &[0, 4]).unwrap();
        assert_eq!(c, vec![None, Some(75.0)]);
        close(gcil_summary(&c).unwrap().reference_headline, 75.0);
        assert!(gcil_summary(&[None]).is_err());
        assert!(cumulative_accuracy(&[5], &[4]).is_err());
        assert!(cumulative_accuracy(&[1, 2], &[4]).is_err());
    }

    #[test]
    fn recency_is_the_share_on_the_latest_outputs() {
        // 6 outputs; the latest task introduced outputs 4 and 5
        let predicted = [10, 0, 5, 5, 12, 8];
        close(
            task_recency_bias(&predicted, &[4, 5]).unwrap().unwrap(),
            100.0 * 20.0 / 40.0,
        );
        assert_eq!(task_recency_bias(&predicted, &[]).unwrap(), None);
        assert_eq!(task_recency_bias(&[0, 0], &[1]).unwrap(), None);
        assert!(task_recency_bias(&predicted, &[6]).is_err());
    }

    #[test]
    fn ece_from_hand_made_bins() {
        // bin A: 4 predictions, confidence sum 3.6, 2 correct -> |3.6 - 2| = 1.6
        // bin B: 6 predictions, confidence sum 3.0, 3 correct -> 0
        let e = ece_from_bins(&[4, 6], &[3.6, 3.0], &[2, 3])
            .unwrap()
            .unwrap();
        close(e, 100.0 * 1.6 / 10.0);
        assert_eq!(ece_from_bins(&[0, 0], &[0.0, 0.0], &[0, 0]).unwrap(), None);
        assert!(ece_from_bins(&[1], &[0.5, 0.1], &[0]).is_err());
        assert!(ece_from_bins(&[1], &[0.5], &[2]).is_err());
        assert!(ece_from_bins(&[1], &[3.0], &[1]).is_err());
    }
}
