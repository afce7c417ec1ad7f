//! The results file of one run (`results.json` in the run folder): the schema the metrics
//! and report code read.
//!
//! Conventions:
//! - Accuracies are percentages in `[0, 100]`.
//! - `accuracy[t][i]` is the accuracy on test set `i` after training task `t` (row = after
//!   training task t, column = evaluated test set). Every row has `T` cells: columns
//!   `i <= t` are always evaluated; column `t + 1` (the next task, not trained yet) is
//!   evaluated when `train.eval_future` is on (default), for forward transfer; other cells
//!   are `null`. A cell is also `null` when test set `i` is empty (possible in GCIL when a
//!   task brings no new class).
//! - For JOINT (`trained_tasks == 1`), the matrix has ONE row: accuracy on every task's
//!   test set after training on all data.
//! - Test set `i` is the test data of task `i`'s classes (Seq, Dom) or of the classes first
//!   seen in task `i` (GCIL), so the union of test sets `0..=t` is the cumulative test set.
//! - `seen_accuracy[t]` is the accuracy on the union of test sets `0..=t` (sample-weighted)
//!   after training task t: GCIL's headline (mean over t and final), and defined for all.
//! - `random_init[i]` is the accuracy of the untrained model (same seed) on test set `i`,
//!   the baseline of forward transfer.

use serde::{Deserialize, Serialize};

/// Version of this schema; bumped on incompatible changes.
pub const RESULTS_SCHEMA_VERSION: u32 = 1;

/// File name of the results in a run folder.
pub const RESULTS_FILE: &str = "results.json";

/// Everything one run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    pub schema_version: u32,
    /// What was run (typed; the full resolved configuration is in `config`).
    pub run: RunInfo,
    /// The tasks of the scenario, in training order.
    pub tasks: Vec<TaskInfo>,
    /// Number of training tasks finished so far (== `trained_tasks` when complete).
    pub tasks_done: usize,
    /// Number of training tasks the run has in total (1 for JOINT, else `tasks.len()`).
    pub trained_tasks: usize,
    /// True once every task is trained and evaluated.
    pub finished: bool,
    /// One entry per inference mode of the method (`av` first; SAMM adds `audio`, `visual`,
    /// `ensemble`).
    pub modes: Vec<ModeResults>,
    /// Training statistics per finished task.
    pub training: Vec<TaskTraining>,
    /// Fitted temperatures per finished task (SAMM): `[audio, visual, av]`; empty otherwise.
    #[serde(default)]
    pub temperatures: Vec<[f64; 3]>,
    /// Wall-clock seconds of the whole run so far (sum over sessions when resumed).
    pub elapsed_s: f64,
    /// The resolved configuration as written to `config.toml`, echoed as JSON.
    pub config: serde_json::Value,
}

/// The identity of a run, for grouping runs into tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `sgd`, `joint`, `er` or `samm`.
    pub method: String,
    /// `seq`, `dom`, `gcil-uniform` or `gcil-longtail`.
    pub scenario: String,
    /// `audio_visual`, `audio` or `visual` (the model's input modalities).
    pub modality: String,
    /// Replay buffer size (0 for methods without a buffer).
    pub buffer_size: usize,
    /// The run seed.
    pub seed: u64,
    /// Dataset profile or name (e.g. `tiny`, `mini`, `vggsound`).
    pub dataset: String,
    /// Number of model outputs (classes, or supercategories for Dom).
    pub num_outputs: usize,
    /// Whether the task-IL matrix is present (Seq).
    pub task_il: bool,
}

/// One task of the scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Fine classes with training data in this task.
    pub classes: Vec<u32>,
    /// Model outputs first introduced by this task (task-IL mask, recency bias).
    pub new_targets: Vec<u32>,
    pub n_train: usize,
    pub n_test: usize,
}

/// The evaluation results of one inference mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeResults {
    /// `av` (fused head), `audio`, `visual` or `ensemble` (SAMM's calibrated ensemble).
    pub mode: String,
    /// Class-IL (or domain-IL) accuracy matrix, see the module docs.
    pub accuracy: Vec<Vec<Option<f64>>>,
    /// Task-IL accuracy matrix (logits masked to the task's `new_targets`); Seq only.
    #[serde(default)]
    pub task_il_accuracy: Option<Vec<Vec<Option<f64>>>>,
    /// Accuracy on the cumulative test set after each task.
    pub seen_accuracy: Vec<f64>,
    /// Expected calibration error (15 equal-width bins, in percent) on the cumulative test
    /// set after each task.
    pub ece: Vec<f64>,
    /// Task-recency share after each task: the percentage of predictions on the cumulative
    /// test set that fall on the targets introduced by the task just trained. `null` where
    /// the task introduced no targets (Dom after task 0).
    pub recency: Vec<Option<f64>>,
    /// Accuracy of the untrained model on each test set.
    pub random_init: Vec<Option<f64>>,
}

/// How training of one task went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTraining {
    /// Mean training loss per epoch.
    pub epoch_loss: Vec<f64>,
    pub steps: usize,
    pub train_s: f64,
    pub eval_s: f64,
}

impl RunResults {
    /// Read a results file; the error names the file.
    pub fn read(path: &std::path::Path) -> Result<RunResults, crate::SchedulerError> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::SchedulerError::Io {
            path: path.to_owned(),
            source: e,
        })?;
        serde_json::from_str(&text).map_err(|e| crate::SchedulerError::Format {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Write atomically (temporary file + rename).
    pub fn write(&self, path: &std::path::Path) -> Result<(), crate::SchedulerError> {
        let text = serde_json::to_string_pretty(self).expect("results serialise");
        crate::write_atomic(path, text.as_bytes())
    }

    /// The results of one inference mode.
    pub fn mode(&self, name: &str) -> Option<&ModeResults> {
        self.modes.iter().find(|m| m.mode == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json_with_nulls() {
        let r = RunResults {
            schema_version: RESULTS_SCHEMA_VERSION,
            run: RunInfo {
                method: "er".into(),
                scenario: "gcil-uniform".into(),
                modality: "audio_visual".into(),
                buffer_size: 500,
                seed: 1,
                dataset: "tiny".into(),
                num_outputs: 100,
                task_il: false,
            },
            tasks: vec![TaskInfo {
                classes: vec![1, 2],
                new_targets: vec![1, 2],
                n_train: 10,
                n_test: 4,
            }],
            tasks_done: 1,
            trained_tasks: 1,
            finished: true,
            modes: vec![ModeResults {
                mode: "av".into(),
                accuracy: vec![vec![Some(50.0), None]],
                task_il_accuracy: None,
                seen_accuracy: vec![50.0],
                ece: vec![3.0],
                recency: vec![None],
                random_init: vec![Some(1.0), None],
            }],
            training: vec![TaskTraining {
                epoch_loss: vec![2.0],
                steps: 3,
                train_s: 0.1,
                eval_s: 0.1,
            }],
            temperatures: vec![],
            elapsed_s: 1.0,
            config: serde_json::json!({"seed": 1}),
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(RESULTS_FILE);
        r.write(&p).unwrap();
        assert_eq!(RunResults::read(&p).unwrap(), r);
        assert!(std::fs::read_to_string(&p).unwrap().contains("null"));
    }
}
