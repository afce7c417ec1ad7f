//! The accuracy matrix and the continual-learning metrics computed from it.
//!
//! Indices are 0-based here; the crate documentation states the definitions with the
//! last task written `L = T - 1`.

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};

/// Accuracies in percent: `rows[t][i]` is the accuracy on task `i`'s test set after
/// training task `t`.
///
/// Row `t` holds at least the `t + 1` seen tasks. It may hold more entries (accuracy on
/// tasks not trained yet, evaluated before training them); only
/// [`AccuracyMatrix::forward_transfer`] reads those.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Vec<f64>>", into = "Vec<Vec<f64>>")]
pub struct AccuracyMatrix {
    rows: Vec<Vec<f64>>,
}

impl TryFrom<Vec<Vec<f64>>> for AccuracyMatrix {
    type Error = MetricsError;
    fn try_from(rows: Vec<Vec<f64>>) -> Result<Self> {
        AccuracyMatrix::new(rows)
    }
}

impl From<AccuracyMatrix> for Vec<Vec<f64>> {
    fn from(m: AccuracyMatrix) -> Self {
        m.rows
    }
}

impl AccuracyMatrix {
    /// Checks the shape (at least one row, row `t` has at least `t + 1` entries) and that
    /// every entry is a finite percentage in `[0, 100]`.
    pub fn new(rows: Vec<Vec<f64>>) -> Result<Self> {
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
                .find(|(_, v)| !v.is_finite() || **v < 0.0 || **v > 100.0)
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
    pub fn rows(&self) -> &[Vec<f64>] {
        &self.rows
    }

    /// `A[t][i]` if stored.
    pub fn get(&self, t: usize, i: usize) -> Option<f64> {
        self.rows.get(t).and_then(|r| r.get(i)).copied()
    }

    /// Accuracies on the tasks seen so far after training task `t` (`A[t][0..=t]`).
    pub fn seen(&self, t: usize) -> &[f64] {
        &self.rows[t][..=t]
    }

    /// Final mean accuracy (class-IL headline): `mean_{i<=L} A[L][i]`.
    pub fn final_mean_accuracy(&self) -> f64 {
        mean(self.seen(self.num_tasks() - 1))
    }

    /// Mean accuracy over the seen tasks after each task: `mean_{i<=t} A[t][i]` for every `t`.
    pub fn mean_accuracy_curve(&self) -> Vec<f64> {
        (0..self.num_tasks()).map(|t| mean(self.seen(t))).collect()
    }

    /// Backward transfer `mean_{i<L} (A[L][i] - A[i][i])`; `None` with a single task.
    pub fn backward_transfer(&self) -> Option<f64> {
        let last = self.num_tasks() - 1;
        (last > 0).then(|| mean_of((0..last).map(|i| self.rows[last][i] - self.rows[i][i])))
    }

    /// Forgetting `mean_{i<L} (max_{i<=t<L} A[t][i] - A[L][i])`; `None` with a single task.
    pub fn forgetting(&self) -> Option<f64> {
        let last = self.num_tasks() - 1;
        (last > 0).then(|| {
            mean_of((0..last).map(|i| {
                let best = (i..last)
                    .map(|t| self.rows[t][i])
                    .fold(f64::NEG_INFINITY, f64::max);
                best - self.rows[last][i]
            }))
        })
    }

    /// Forward transfer (Lopez-Paz & Ranzato 2017): `mean_{1<=i<=L} (A[i-1][i] - b[i])`,
    /// where `b[i]` is a randomly initialised model's accuracy on task `i`.
    ///
    /// Needs row `i - 1` to hold an entry for task `i` (the next task evaluated before it is
    /// trained). Returns `Ok(None)` when those entries were not recorded or there is a
    /// single task, an error when `b` does not have one entry per task.
    pub fn forward_transfer(&self, random_init: &[f64]) -> Result<Option<f64>> {
        let tasks = self.num_tasks();
        if random_init.len() != tasks {
            return Err(MetricsError::InvalidInput(format!(
                "forward transfer needs one random-init accuracy per task ({tasks}), got {}",
                random_init.len()
            )));
        }
        if tasks < 2 || (1..tasks).any(|i| self.rows[i - 1].len() <= i) {
            return Ok(None);
        }
        Ok(Some(mean_of(
            (1..tasks).map(|i| self.rows[i - 1][i] - random_init[i]),
        )))
    }

    /// Stability: mean accuracy on the earlier tasks after each task,
    /// `mean_{1<=t<=L} mean_{i<t} A[t][i]`; `None` with a single task.
    pub fn stability(&self) -> Option<f64> {
        let tasks = self.num_tasks();
        (tasks > 1).then(|| mean_of((1..tasks).map(|t| mean(&self.rows[t][..t]))))
    }

    /// Plasticity: mean accuracy on the task just learned, `mean_{t<=L} A[t][t]`.
    pub fn plasticity(&self) -> f64 {
        mean_of((0..self.num_tasks()).map(|t| self.rows[t][t]))
    }

    /// Element-wise mean over seeds of the seen entries (for heatmaps). All matrices must
    /// have the same number of tasks.
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
                    .map(|i| mean_of(matrices.iter().map(|m| m.rows[t][i])))
                    .collect()
            })
            .collect();
        AccuracyMatrix::new(rows)
    }
}

/// GCIL summary of the accuracies on the cumulative test sets (`curve[t]` = accuracy on
/// the test data of every class seen up to task `t`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GcilSummary {
    /// Mean over the cumulative test sets, `mean_t curve[t]` (what the reference
    /// implementation reports, and so the paper's GCIL tables).
    pub mean_over_tasks: f64,
    /// Accuracy on the final all-seen test set, `curve[L]`.
    pub final_all_seen: f64,
}

/// Summarises a GCIL cumulative-accuracy curve; errors on an empty or non-percent curve.
pub fn gcil_summary(curve: &[f64]) -> Result<GcilSummary> {
    let last = *curve
        .last()
        .ok_or_else(|| MetricsError::InvalidInput("empty GCIL accuracy curve".into()))?;
    check_percent(curve, "GCIL accuracy")?;
    Ok(GcilSummary {
        mean_over_tasks: mean(curve),
        final_all_seen: last,
    })
}

/// Task-recency bias after each task: `counts[t][j]` is the number of test predictions
/// (over the test sets of every task seen after training task `t`) that fall on classes of
/// task `j` (`j` may exceed `t` for predictions of classes not seen yet). The bias after
/// task `t` is `counts[t][t] / sum_j counts[t][j]`, in percent.
pub fn task_recency_bias(counts: &[Vec<u64>]) -> Result<Vec<f64>> {
    counts
        .iter()
        .enumerate()
        .map(|(t, row)| {
            let total: u64 = row.iter().sum();
            match row.get(t) {
                Some(&recent) if total > 0 => Ok(100.0 * recent as f64 / total as f64),
                Some(_) => Err(MetricsError::InvalidInput(format!(
                    "prediction counts after task {t} are all zero"
                ))),
                None => Err(MetricsError::InvalidInput(format!(
                    "prediction counts after task {t} have {} entries, need at least {}",
                    row.len(),
                    t + 1
                ))),
            }
        })
        .collect()
}

/// Mean expected calibration error over the given per-task values (as given, usually %).
pub fn mean_ece(per_task: &[f64]) -> Result<f64> {
    if per_task.is_empty() {
        return Err(MetricsError::InvalidInput("no ECE values".into()));
    }
    check_percent(per_task, "ECE")?;
    Ok(mean(per_task))
}

fn check_percent(values: &[f64], what: &str) -> Result<()> {
    match values
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite() || **v < 0.0 || **v > 100.0)
    {
        Some((i, v)) => Err(MetricsError::InvalidInput(format!(
            "{what} entry {i} = {v} is not a percentage in [0, 100]"
        ))),
        None => Ok(()),
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn mean_of(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n as f64
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
    fn final_accuracy_and_curve() {
        let m = example();
        close(m.final_mean_accuracy(), 50.0);
        assert_eq!(m.mean_accuracy_curve(), vec![90.0, 70.0, 50.0]);
    }

    #[test]
    fn backward_transfer_and_forgetting() {
        let m = example();
        // BWT = ((30-90) + (50-80)) / 2 = -45
        close(m.backward_transfer().unwrap(), -45.0);
        // forgetting: task0 max(90,60)-30 = 60; task1 max(80)-50 = 30 -> 45
        close(m.forgetting().unwrap(), 45.0);
        // forgetting uses the best earlier accuracy, not the first one
        let rising =
            AccuracyMatrix::new(vec![vec![40.0], vec![60.0, 80.0], vec![50.0, 80.0, 70.0]])
                .unwrap();
        close(rising.forgetting().unwrap(), (10.0 + 0.0) / 2.0);
        close(rising.backward_transfer().unwrap(), (10.0 + 0.0) / 2.0);
    }

    #[test]
    fn stability_and_plasticity() {
        let m = example();
        // after task1: mean(60) = 60; after task2: mean(30,50) = 40 -> 50
        close(m.stability().unwrap(), 50.0);
        close(m.plasticity(), (90.0 + 80.0 + 70.0) / 3.0);
    }

    #[test]
    fn single_task_has_no_transfer_metrics() {
        let m = AccuracyMatrix::new(vec![vec![42.0]]).unwrap();
        assert!(m.backward_transfer().is_none());
        assert!(m.forgetting().is_none());
        assert!(m.stability().is_none());
        close(m.final_mean_accuracy(), 42.0);
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
        close(
            with_future
                .forward_transfer(&[20.0, 20.0, 20.0])
                .unwrap()
                .unwrap(),
            7.5,
        );
        assert_eq!(example().forward_transfer(&[1.0, 2.0, 3.0]).unwrap(), None);
        assert!(example().forward_transfer(&[1.0]).is_err());
    }

    #[test]
    fn rejects_bad_shapes_and_values() {
        assert!(AccuracyMatrix::new(vec![]).is_err());
        assert!(AccuracyMatrix::new(vec![vec![1.0], vec![2.0]]).is_err());
        assert!(AccuracyMatrix::new(vec![vec![f64::NAN]]).is_err());
        assert!(AccuracyMatrix::new(vec![vec![101.0]]).is_err());
        let parsed: std::result::Result<AccuracyMatrix, _> = serde_json::from_str("[[1.0],[2.0]]");
        assert!(parsed.is_err());
        let ok: AccuracyMatrix = serde_json::from_str("[[1.0],[2.0,3.0]]").unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), "[[1.0],[2.0,3.0]]");
    }

    #[test]
    fn mean_of_matrices_is_elementwise() {
        let a = example();
        let b = AccuracyMatrix::new(vec![vec![70.0], vec![40.0, 60.0], vec![10.0, 30.0, 50.0]])
            .unwrap();
        let m = AccuracyMatrix::mean_of_matrices(&[&a, &b]).unwrap();
        assert_eq!(m.rows()[2], vec![20.0, 40.0, 60.0]);
        let short = AccuracyMatrix::new(vec![vec![1.0]]).unwrap();
        assert!(AccuracyMatrix::mean_of_matrices(&[&a, &short]).is_err());
    }

    #[test]
    fn gcil_recency_and_ece() {
        let g = gcil_summary(&[60.0, 40.0, 20.0]).unwrap();
        close(g.mean_over_tasks, 40.0);
        close(g.final_all_seen, 20.0);
        assert!(gcil_summary(&[]).is_err());
        // after task0 all predictions on task0; after task1 30 of 40 on task1;
        // after task2 10 of 50 on task2 (some predictions on a future task 3)
        let bias = task_recency_bias(&[vec![50], vec![10, 30], vec![20, 15, 10, 5]]).unwrap();
        assert_eq!(bias, vec![100.0, 75.0, 20.0]);
        assert!(task_recency_bias(&[vec![0]]).is_err());
        assert!(task_recency_bias(&[vec![1], vec![1]]).is_err());
        close(mean_ece(&[2.0, 4.0]).unwrap(), 3.0);
        assert!(mean_ece(&[]).is_err());
    }
}
