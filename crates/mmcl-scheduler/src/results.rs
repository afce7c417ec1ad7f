//! The results file of one run (`results.json` in the run folder): the raw facts of every
//! evaluation, from which `mmcl-metrics` derives every reported number (the scheduler
//! computes no metric itself).
//!
//! Conventions:
//! - Test set `i` is the test data of task `i`'s classes (Seq, Dom) or of the classes first
//!   seen in task `i` (GCIL), so the union of test sets `0..=t` is the cumulative test set
//!   of task `t`. Its size is `tasks[i].n_test` (0 is possible in GCIL, when a task brings
//!   no new class).
//! - Row `t` of every per-row field = the model after training task `t`. For JOINT
//!   (`trained_tasks == 1`) there is ONE row: the model trained on all data, evaluated on
//!   every test set.
//! - `correct[t][i]` is how many samples of test set `i` the model after task `t` classified
//!   correctly. Every row has `T` cells: columns `i <= t` are always evaluated; column `t + 1`
//!   (the next task, not trained yet) is evaluated when `train.eval_future` is on, for
//!   forward transfer; other cells are `null`.
//! - The "seen" test sets of row `t` are `0..=t` (JOINT: all). `predicted[t][c]` counts the
//!   seen test samples the model after task `t` predicted as output `c` (task-recency bias
//!   reads it with `tasks[t].new_targets`); `calibration[t]` sorts the same predictions
//!   into ECE confidence bins.
//! - `random_init_correct[i]` is how many samples of test set `i` the untrained model (same
//!   seed) classified correctly: the baseline of forward transfer (`null` when
//!   `train.eval_random_init` is off).

use serde::{Deserialize, Serialize};

/// Version of this schema; bumped on incompatible changes.
/// Version 2: raw counts (correct predictions, prediction histograms, calibration bins)
/// replace version 1's percentages, seen-task accuracies, ECE and recency values.
pub const RESULTS_SCHEMA_VERSION: u32 = 2;

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
    /// Wall-clock seconds of the whole run so far, summed over sessions; a killed session
    /// counts up to its last finished epoch (the run folder's `elapsed_s` file is rewritten
    /// after every epoch and a resume starts from it).
    pub elapsed_s: f64,
    /// The resolved configuration as written to `config.toml`, echoed as JSON.
    pub config: serde_json::Value,
    /// What made the numbers (code, config and cache hashes, machine, command line), see
    /// [`crate::provenance`]. Absent in results written before it was recorded, which read
    /// as `None` under the same schema version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<crate::provenance::Provenance>,
}

/// The identity of a run, for grouping runs into tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `sgd`, `joint`, `er` or `samm`.
    pub method: mmcl_methods::MethodKind,
    /// `seq`, `dom`, `gcil-uniform` or `gcil-longtail`.
    pub scenario: String,
    /// The model's input modalities (`audio-visual`, `audio` or `visual`; files written
    /// before the type was shared say `audio_visual`, read the same).
    pub modality: mmcl_model::Modality,
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
    /// The names of `classes`, in the same order (the VGGSound label texts).
    #[serde(default)]
    pub class_names: Vec<String>,
    /// Model outputs first introduced by this task (task-IL mask, recency bias).
    pub new_targets: Vec<u32>,
    /// Training samples of the task.
    pub n_train: usize,
    /// Samples of test set `i` (this task's): the denominator of its accuracies.
    pub n_test: usize,
}

/// The evaluation facts of one inference mode, see the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeResults {
    /// `av` (fused head), `audio`, `visual` or `ensemble` (SAMM's calibrated ensemble).
    pub mode: String,
    /// Class-IL (Dom: domain-IL) correct predictions per row and test set.
    pub correct: Vec<Vec<Option<u64>>>,
    /// Task-IL correct predictions (logits masked to the test set's task's `new_targets`);
    /// Seq only.
    #[serde(default)]
    pub task_il_correct: Option<Vec<Vec<Option<u64>>>>,
    /// Per row: predictions on the seen test sets per model output (`num_outputs` entries).
    pub predicted: Vec<Vec<u64>>,
    /// Per row: the seen test sets' predictions in ECE confidence bins.
    pub calibration: Vec<CalibrationBins>,
    /// Correct predictions of the untrained model per test set.
    pub random_init_correct: Vec<Option<u64>>,
}

/// Predictions sorted by confidence (max softmax probability) into the equal-width bins of
/// [`mmcl_losses::ConfidenceBins`] (15 bins, as the paper's ECE).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBins {
    /// Predictions per bin.
    pub count: Vec<u64>,
    /// Sum of the predictions' confidences per bin.
    pub confidence_sum: Vec<f64>,
    /// Correct predictions per bin.
    pub correct: Vec<u64>,
}

impl CalibrationBins {
    /// Empty totals for `n_bins` bins.
    pub fn new(n_bins: usize) -> CalibrationBins {
        CalibrationBins {
            count: vec![0; n_bins],
            confidence_sum: vec![0.0; n_bins],
            correct: vec![0; n_bins],
        }
    }

    /// Adds one prediction with its confidence and whether it was right; a confidence
    /// outside every bin (not in `(0, 1]`) is not counted, as in the ECE of the samples.
    pub fn record(&mut self, rule: &mmcl_losses::ConfidenceBins, confidence: f32, hit: bool) {
        if let Some(b) = rule.bin(confidence) {
            self.count[b] += 1;
            self.confidence_sum[b] += confidence as f64;
            self.correct[b] += hit as u64;
        }
    }
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
    /// Read a results file; the error names the file, and says so when the file was
    /// written under another schema version (an older mmcl).
    pub fn read(path: &std::path::Path) -> Result<RunResults, crate::SchedulerError> {
        let format = |reason: String| crate::SchedulerError::Format {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| crate::SchedulerError::Io {
            path: path.to_owned(),
            source: e,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;
        let version = value.get("schema_version").and_then(|v| v.as_u64());
        if version != Some(RESULTS_SCHEMA_VERSION as u64) {
            let found = version.map_or("no schema version".to_string(), |v| {
                format!("results schema version {v}")
            });
            return Err(format(format!(
                "{found}, but this mmcl reads version {RESULTS_SCHEMA_VERSION}: the run was \
                 made by another mmcl version; train it again (`cargo xtask reproduce` \
                 retrains outdated runs)"
            )));
        }
        serde_json::from_value(value).map_err(|e| format(e.to_string()))
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
                method: mmcl_methods::MethodKind::Er,
                scenario: "gcil-uniform".into(),
                modality: mmcl_model::Modality::AudioVisual,
                buffer_size: 500,
                seed: 1,
                dataset: "tiny".into(),
                num_outputs: 100,
                task_il: false,
            },
            tasks: vec![TaskInfo {
                classes: vec![1, 2],
                class_names: vec!["a".into(), "b".into()],
                new_targets: vec![1, 2],
                n_train: 10,
                n_test: 4,
            }],
            tasks_done: 1,
            trained_tasks: 1,
            finished: true,
            modes: vec![ModeResults {
                mode: "av".into(),
                correct: vec![vec![Some(2), None]],
                task_il_correct: None,
                predicted: vec![vec![0, 3, 1]],
                calibration: vec![CalibrationBins::new(15)],
                random_init_correct: vec![Some(0), None],
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
            provenance: Some(crate::provenance::Provenance {
                first: crate::provenance::SessionProvenance::capture(
                    b"seed = 1\n",
                    "5d3e",
                    "cpu",
                    true,
                    0,
                ),
                resumes: Vec::new(),
            }),
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(RESULTS_FILE);
        r.write(&p).unwrap();
        assert_eq!(RunResults::read(&p).unwrap(), r);
        assert!(std::fs::read_to_string(&p).unwrap().contains("null"));
        // Results written before provenance existed read under the same schema version.
        let mut old = r.clone();
        old.provenance = None;
        old.write(&p).unwrap();
        assert!(!std::fs::read_to_string(&p).unwrap().contains("provenance"));
        assert_eq!(RunResults::read(&p).unwrap(), old);
    }

    #[test]
    fn another_schema_version_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(RESULTS_FILE);
        std::fs::write(&p, r#"{"schema_version": 1, "finished": true}"#).unwrap();
        let e = RunResults::read(&p).unwrap_err().to_string();
        assert!(e.contains(&p.display().to_string()), "{e}");
        assert!(
            e.contains("schema version 1") && e.contains("reads version 2"),
            "{e}"
        );
        std::fs::write(&p, "{}").unwrap();
        assert!(RunResults::read(&p)
            .unwrap_err()
            .to_string()
            .contains("no schema version"));
    }

    #[test]
    fn calibration_bins_use_the_ece_rule() {
        let rule = mmcl_losses::ConfidenceBins::new(15).unwrap();
        let mut b = CalibrationBins::new(15);
        b.record(&rule, 1.0, true);
        b.record(&rule, 0.99, false);
        b.record(&rule, 0.05, true);
        b.record(&rule, 0.0, true); // outside every bin
        assert_eq!(b.count.iter().sum::<u64>(), 3);
        assert_eq!((b.count[14], b.correct[14]), (2, 1));
        assert_eq!((b.count[0], b.correct[0]), (1, 1));
        assert!((b.confidence_sum[14] - (1.0 + 0.99f32 as f64)).abs() < 1e-12);
    }
}
