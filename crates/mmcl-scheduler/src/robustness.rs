//! Robustness of a finished run's final model when one or both modalities are corrupted or
//! missing at test time (`mmcl eval --run RUN --corrupt SPEC`).
//!
//! Each corruption cell (see [`mmcl_media::corrupt`]: `audio:white:3`, `visual:missing`,
//! `audio:pink:2+visual:blur:4`, ..., and `clean`, severity 0) re-evaluates the run's last
//! checkpoint on every test set of its scenario, for every inference mode of its method,
//! with the corruption applied to each test clip's signal before feature extraction (the
//! waveform crop before the STFT, the stored frames before resizing and normalisation; see
//! [`mmcl_data::loader::Loader::batch_corrupted`]). A cell records per mode the correct
//! predictions and the test-set sizes (the final row of the accuracy matrix) and the
//! confidence bins its ECE is derived from, and, for a method with a calibrated ensemble,
//! the ensemble's mean weight per head: how much it leans on each modality.
//!
//! Cells go into `robustness.json` in the run folder, written atomically after each cell;
//! a cell already there (for the same checkpoint and seed) is reused, not recomputed. The
//! corruption of a test clip is drawn from (run seed, clip index) alone, so every method and
//! modality of one seed sees the same corrupted test set. The clean cell equals the final
//! row of the run's own `results.json` (tested).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Tensor;
use mmcl_io::DirLock;
use mmcl_losses::{HeadLogits, HeadTemperatures};
use mmcl_media::corrupt::{CorruptSpec, Corruption};
use mmcl_methods::InferenceMode;
use serde::{Deserialize, Serialize};

use crate::results::CalibrationBins;
use crate::run::{evaluate_observed, load_state, RunDir, Setup};
use crate::{write_atomic, SchedulerError};

/// The file in a run folder that holds its robustness cells.
pub const ROBUSTNESS_FILE: &str = "robustness.json";
/// Version of the [`Robustness`] layout; a file of another version is recomputed.
pub const ROBUSTNESS_SCHEMA_VERSION: u32 = 1;

/// A run's evaluations under corruption (`robustness.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Robustness {
    pub schema_version: u32,
    /// The seed the corruptions were drawn from (the run's seed).
    pub seed: u64,
    /// The checkpoint evaluated (its folder name, e.g. `task-4`).
    pub checkpoint: String,
    /// The cells by their corruption's name (`clean`, `audio:white:3`, ...).
    pub cells: BTreeMap<String, CorruptionCell>,
}

/// One corruption's evaluation of the final model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorruptionCell {
    /// Per inference mode (`av`, `audio`, `visual`, `ensemble`), in the method's order.
    pub modes: Vec<CorruptedMode>,
    /// The calibrated ensemble's mean weight per head over all test clips (methods with an
    /// ensemble only).
    #[serde(default)]
    pub ensemble_weights: Option<HeadWeights>,
    /// Wall time of the cell's evaluation.
    pub eval_s: f64,
}

/// One inference mode under one corruption: the final accuracy-matrix row as counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorruptedMode {
    pub mode: String,
    /// Correct predictions per test set (task order).
    pub correct: Vec<u64>,
    /// Test clips per test set.
    pub n_test: Vec<u64>,
    /// All test sets' predictions in ECE confidence bins.
    pub calibration: CalibrationBins,
}

/// Mean ensemble weight (`max softmax(l / T)`) of the audio, visual and fused heads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeadWeights {
    pub audio: f64,
    pub visual: f64,
    pub fused: f64,
}

impl CorruptionCell {
    /// The cell's result for inference mode `mode` (`av`, `audio`, ...).
    pub fn mode(&self, mode: &str) -> Option<&CorruptedMode> {
        self.modes.iter().find(|m| m.mode == mode)
    }
}

impl Robustness {
    /// Reads `robustness.json`; the error names the file.
    pub fn read(path: &Path) -> Result<Robustness, SchedulerError> {
        let text = std::fs::read_to_string(path).map_err(|e| SchedulerError::Io {
            path: path.to_owned(),
            source: e,
        })?;
        serde_json::from_str(&text).map_err(|e| SchedulerError::Format {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    fn write(&self, path: &Path) -> Result<(), SchedulerError> {
        let text = serde_json::to_string_pretty(self).expect("robustness serialises");
        write_atomic(path, text.as_bytes())
    }
}

/// Options of a robustness evaluation that do not change its numbers.
#[derive(Debug, Clone, Default)]
pub struct RobustnessOptions {
    /// A prepared cache to evaluate on instead of the run's own (the same data moved).
    pub cache: Option<PathBuf>,
    /// One line per cell on stderr.
    pub progress: bool,
}

/// Evaluates the final model of the finished run in `run_dir` under every corruption cell of
/// `spec` (a suite expands to many), reusing the cells `robustness.json` already holds for
/// the same checkpoint and seed, and returns the file's contents. The run folder is locked
/// for the duration (a training run in it is refused).
pub fn evaluate_corrupted(
    run_dir: &Path,
    spec: &CorruptSpec,
    opts: &RobustnessOptions,
) -> Result<Robustness, SchedulerError> {
    let rd = RunDir::new(run_dir);
    let _lock = DirLock::acquire(run_dir)?;
    if !rd.is_finished() {
        return Err(SchedulerError::Config(format!(
            "{}: the run is not finished (no complete results.json); finish it with `mmcl train --resume` first",
            run_dir.display()
        )));
    }
    let mut config = rd.read_config()?;
    if let Some(c) = &opts.cache {
        config.cache = c.clone();
    }
    let ckpt = rd.checkpoint_to_evaluate()?;
    let ckpt_name = ckpt
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = run_dir.join(ROBUSTNESS_FILE);
    let mut out = match Robustness::read(&path) {
        Ok(r)
            if r.schema_version == ROBUSTNESS_SCHEMA_VERSION
                && r.seed == config.seed
                && r.checkpoint == ckpt_name =>
        {
            r
        }
        _ => Robustness {
            schema_version: ROBUSTNESS_SCHEMA_VERSION,
            seed: config.seed,
            checkpoint: ckpt_name,
            cells: BTreeMap::new(),
        },
    };
    // The clean evaluation (severity 0) comes with every suite: curves start from it.
    let todo: Vec<Corruption> = std::iter::once(Corruption::default())
        .chain(spec.expand())
        .filter(|c| !out.cells.contains_key(&c.to_string()))
        .fold(Vec::new(), |mut v, c| {
            if !v.contains(&c) {
                v.push(c);
            }
            v
        });
    if todo.is_empty() {
        return Ok(out);
    }
    let setup = Setup::open(&config)?;
    let state = load_state(&setup, &ckpt)?;
    for (k, corruption) in todo.iter().enumerate() {
        let t0 = Instant::now();
        let cell = evaluate_cell(&setup, &*state.method, &state.net.model, corruption)?;
        let cell = CorruptionCell {
            eval_s: t0.elapsed().as_secs_f64(),
            ..cell
        };
        if opts.progress {
            eprintln!(
                "[{}/{}] {corruption}: {} ({:.1} s)",
                k + 1,
                todo.len(),
                summary(&cell),
                cell.eval_s
            );
        }
        out.cells.insert(corruption.to_string(), cell);
        out.write(&path)?;
    }
    Ok(out)
}

/// "av 41.2%, audio 30.0%, ..." over all test clips.
fn summary(cell: &CorruptionCell) -> String {
    cell.modes
        .iter()
        .map(|m| {
            let (c, n) = (m.correct.iter().sum::<u64>(), m.n_test.iter().sum::<u64>());
            format!("{} {:.1}%", m.mode, 100.0 * c as f64 / n.max(1) as f64)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One cell: every test set under `corruption`, every mode, and the ensemble's weights.
fn evaluate_cell(
    setup: &Setup,
    method: &dyn mmcl_methods::Method,
    model: &mmcl_model::AvNet,
    corruption: &Corruption,
) -> Result<CorruptionCell, SchedulerError> {
    let test_sets: Vec<Vec<usize>> = setup
        .scenario
        .tasks
        .iter()
        .map(|t| t.test.iter().map(|&i| setup.test_idx[i]).collect())
        .collect();
    let sets: Vec<(&[usize], &[u32])> = test_sets.iter().map(|v| (&v[..], &[][..])).collect();
    let modes = method.modes();
    let position = |m: InferenceMode| modes.iter().position(|&x| x == m);
    let heads = match (
        method.temperatures(),
        position(InferenceMode::Ensemble),
        position(InferenceMode::Audio),
        position(InferenceMode::Visual),
        position(InferenceMode::Av),
    ) {
        (Some(t), Some(_), Some(a), Some(v), Some(f)) => Some((HeadTemperatures(t), a, v, f)),
        _ => None,
    };
    let mut weight_sum = [0f64; 3];
    let mut weight_n = 0usize;
    let mut observe = |outputs: &[Tensor]| -> Result<(), SchedulerError> {
        if let Some((temps, a, v, f)) = heads {
            let logits =
                HeadLogits::new(outputs[a].clone(), outputs[v].clone(), outputs[f].clone())?;
            let w = mmcl_losses::ensemble_weights(&logits, temps)?
                .to_dtype(candle_core::DType::F32)?
                .to_vec2::<f32>()?;
            for row in &w {
                for (s, &x) in weight_sum.iter_mut().zip(row) {
                    *s += x as f64;
                }
            }
            weight_n += w.len();
        }
        Ok(())
    };
    let per_mode = evaluate_observed(setup, method, model, &sets, Some(corruption), &mut observe)?;
    let rule = mmcl_losses::ConfidenceBins::new(mmcl_losses::ECE_BINS)?;
    let modes = modes
        .iter()
        .zip(per_mode)
        .map(|(m, per_set)| {
            let mut calibration = CalibrationBins::new(rule.len());
            for e in &per_set {
                for (&conf, &hit) in e.confidences.iter().zip(&e.hits) {
                    calibration.record(&rule, conf, hit);
                }
            }
            CorruptedMode {
                mode: m.as_str().to_string(),
                correct: per_set.iter().map(|e| e.correct as u64).collect(),
                n_test: per_set.iter().map(|e| e.n as u64).collect(),
                calibration,
            }
        })
        .collect();
    let n = weight_n.max(1) as f64;
    Ok(CorruptionCell {
        modes,
        ensemble_weights: heads.map(|_| HeadWeights {
            audio: weight_sum[0] / n,
            visual: weight_sum[1] / n,
            fused: weight_sum[2] / n,
        }),
        eval_s: 0.0,
    })
}
