//! The train/eval loop of one run, with its run folder, checkpoints and resume.
//!
//! Run folder layout:
//! - `config.toml`: the resolved [`ExperimentConfig`];
//! - `results.json`: [`RunResults`], rewritten after every task;
//! - `log.txt`: one line per epoch and task;
//! - `checkpoint/task-<t>/`: the state after the last finished task `t` (0-based):
//!   `model.safetensors` (reference state_dict names), `optim.json`, the method's state
//!   (`memory.safetensors`, `temperatures.json`), `results.json`; `checkpoint/LATEST` names
//!   it. A checkpoint folder is written under a temporary name, checksummed (`SHA256SUMS`)
//!   and renamed, then `LATEST` is replaced atomically, every step fsynced, so an
//!   interruption or a power loss at any point leaves a usable checkpoint; see
//!   [`crate::checkpoint`] for how a resume picks and verifies one;
//! - `.lock`: the advisory lock of the process writing the run (`train`, `resume`);
//! - `elapsed_s`: the run's wall time so far, rewritten after every epoch, so a resume
//!   counts the time a killed session spent after its last checkpoint (up to its last
//!   finished epoch) in `elapsed_s` of `results.json`;
//! - `config-history.json`: the overrides each `resume` applied (see [`ResumeOverrides`]);
//! - `metrics.jsonl`: one line per training step (see [`crate::metrics_log`]).
//!
//! `results.json` carries the run's [`crate::provenance`]: recorded when a session starts,
//! its peak memory updated at every results write.
//!
//! Divergence: a non-finite loss, non-finite outputs of a method (SAMM's temperature fit),
//! and a non-finite state found by the guard that runs before every checkpoint (parameters,
//! BatchNorm statistics, optimiser state, temperatures) all stop the run with an error
//! naming the task and step; nothing non-finite is saved, so the last checkpoint is the last
//! finite one. Every error that stops a run is also written to `log.txt`.
//!
//! Determinism: every random draw derives from the run seed — model init from the seed;
//! the epoch shuffle and the augmentation from (seed, task, epoch); the method's draws from
//! a generator seeded by (seed, task, epoch, step), except the replay buffer's selection and
//! sampling, which use the buffer's own generator (seeded from the first step's, and saved
//! with the memory in the checkpoint). No other generator state crosses a task boundary,
//! so resuming from a checkpoint replays exactly what an uninterrupted run does.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use mmcl_data::cache::Cache;
use mmcl_data::loader::{self, splitmix64, Loader, LoaderConfig, Mode};
use mmcl_io::DirLock;
use mmcl_methods::{
    build as build_method, Method, MethodError, MethodKind, Net, Optimizer, StepEnv, TrainBatch,
};
use mmcl_model::{AvNet, AvNetConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{self, Found};
use crate::experiment::ExperimentConfig;
use crate::metrics_log::{MetricsLog, StepRecord};
use crate::prefetch::for_each_prefetched;
use crate::provenance::{Provenance, SessionProvenance};
use crate::results::{
    CalibrationBins, ModeResults, RunInfo, RunResults, TaskInfo, TaskTraining, RESULTS_FILE,
    RESULTS_SCHEMA_VERSION,
};
use crate::scenario::{self, SampleLabels, Scenario};
use crate::{write_atomic, SchedulerError};

pub const CONFIG_FILE: &str = "config.toml";
pub const LOG_FILE: &str = "log.txt";
pub const CHECKPOINT_DIR: &str = "checkpoint";
pub const MODEL_FILE: &str = "model.safetensors";
const OPTIM_FILE: &str = "optim.safetensors";
const ELAPSED_FILE: &str = "elapsed_s";
const HISTORY_FILE: &str = "config-history.json";

/// Options of a run that do not change its results.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Draw progress bars on stderr.
    pub progress: bool,
    /// Stop (with [`SchedulerError::Interrupted`]) after this many training steps of this
    /// session: simulates a kill mid-task for tests.
    pub stop_after_steps: Option<usize>,
    /// Load each training batch on the training thread instead of one batch ahead on a
    /// background thread (results are identical either way; this is for measuring).
    pub sync_loading: bool,
}

/// Refuses a cache whose MMCL class labels are not the class table's (e.g. one prepared
/// from a manifest numbered by an older class table): the class order of Seq and GCIL's
/// long-tail weights follow the labels, so such a cache would silently run another benchmark.
fn check_class_numbering(
    cache: &Path,
    names: &BTreeMap<u32, String>,
) -> Result<(), SchedulerError> {
    let table = mmcl_data::classes::class_table();
    match names
        .iter()
        .find_map(|(&label, name)| Some((label, name, table.misnumbered(label, name)?)))
    {
        Some((label, name, class)) => Err(SchedulerError::Scenario(format!(
            "cache {}: class {name:?} has label {label}, the class table says {} (labels are the names' alphabetical ranks, as in the reference); rebuild the manifest and run `mmcl prep` again",
            cache.display(),
            class.index
        ))),
        None => Ok(()),
    }
}

/// Everything a run needs, opened.
pub struct Setup {
    pub config: ExperimentConfig,
    pub device: Device,
    pub loader: Loader,
    pub train_idx: Vec<usize>,
    pub test_idx: Vec<usize>,
    pub scenario: Scenario,
    /// Class names by label, from the cache.
    pub class_names: BTreeMap<u32, String>,
    /// The training clips that miss a modality (`data.missing`; empty by default).
    pub missing: crate::missing::MissingChoice,
}

/// Seed of the data stream (shuffle, augmentation) of `task`.
fn task_seed(seed: u64, task: usize) -> u64 {
    splitmix64(splitmix64(seed ^ 0xda7a) ^ task as u64)
}

/// The method's generator for one step.
fn step_rng(seed: u64, task: usize, epoch: usize, step: usize) -> ChaCha8Rng {
    let h = splitmix64(
        splitmix64(splitmix64(splitmix64(seed ^ 0x57e9) ^ task as u64) ^ epoch as u64)
            ^ step as u64,
    );
    ChaCha8Rng::seed_from_u64(h)
}

impl Setup {
    /// Open the cache, build the loader and the scenario.
    pub fn open(config: &ExperimentConfig) -> Result<Setup, SchedulerError> {
        config.validate()?;
        let device = crate::device::open_device(&config.device)?;
        let cache = Arc::new(Cache::open(&config.cache)?);
        let loader = Loader::new(
            cache.clone(),
            LoaderConfig {
                frames: config.data.frames,
                frame_size: config.data.frame_size,
                crop_seconds: config.data.crop_seconds,
                compact: config.method.kind.uses_buffer(),
                ..LoaderConfig::default()
            },
        )?;
        let records = cache.records();
        let pick = |split: &str| -> Vec<usize> {
            (0..records.len())
                .filter(|&i| records[i].split == split)
                .collect()
        };
        let train_idx = pick("train");
        let test_idx = pick("test");
        let labels = |idx: &[usize]| -> Vec<SampleLabels> {
            idx.iter()
                .map(|&i| SampleLabels {
                    label: records[i].label,
                    super_label: records[i].super_label,
                })
                .collect()
        };
        let class_names = cache.class_names();
        check_class_numbering(&config.cache, &class_names)?;
        let scenario = scenario::build(&config.scenario, &labels(&train_idx), &labels(&test_idx))?;
        let missing = if config.data.missing.is_none() {
            crate::missing::MissingChoice::default()
        } else {
            crate::missing::choose(
                &config.data.missing,
                &scenario.tasks,
                &train_idx,
                config.seed,
            )
        };
        let loader = loader.with_train_corruptions(missing.corruptions());
        Ok(Setup {
            missing,
            config: config.clone(),
            device,
            loader,
            train_idx,
            test_idx,
            scenario,
            class_names,
        })
    }

    /// The network configuration for this run.
    pub fn model_config(&self) -> AvNetConfig {
        AvNetConfig {
            width: self.config.model.width,
            classes: self.scenario.num_outputs,
            fusion: self.config.model.fusion,
            modality: self.config.model.modality,
            frames: self.config.data.frames,
        }
    }

    fn target(&self, cache_index: usize) -> u32 {
        let r = &self.loader.cache().records()[cache_index];
        self.scenario.target(SampleLabels {
            label: r.label,
            super_label: r.super_label,
        })
    }
}

/// The accumulated evaluation of one test set under one mode.
#[derive(Default, Clone)]
pub(crate) struct SetEval {
    pub(crate) n: usize,
    pub(crate) correct: usize,
    pub(crate) task_il_correct: usize,
    pub(crate) confidences: Vec<f32>,
    pub(crate) hits: Vec<bool>,
    pub(crate) predictions: Vec<u32>,
}

fn softmax_row(row: &[f32]) -> (usize, f32) {
    let (mut best, mut max) = (0, f32::NEG_INFINITY);
    for (j, &v) in row.iter().enumerate() {
        if v > max {
            best = j;
            max = v;
        }
    }
    let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
    (best, 1.0 / sum)
}

/// Evaluate `method` on the test sets `sets` (each: test indices into the cache and the task
/// mask); returns `[mode][set]`.
fn evaluate(
    setup: &Setup,
    method: &dyn Method,
    model: &AvNet,
    sets: &[(&[usize], &[u32])],
) -> Result<Vec<Vec<SetEval>>, SchedulerError> {
    evaluate_observed(setup, method, model, sets, None, &mut |_| Ok(()))
}

/// [`evaluate`] with the test clips under `corruption` (drawn from the run seed and the
/// clip; `None` = clean), handing every batch's outputs (one tensor per mode) to `observe`.
pub(crate) fn evaluate_observed(
    setup: &Setup,
    method: &dyn Method,
    model: &AvNet,
    sets: &[(&[usize], &[u32])],
    corruption: Option<&mmcl_media::corrupt::Corruption>,
    observe: &mut dyn FnMut(&[Tensor]) -> Result<(), SchedulerError>,
) -> Result<Vec<Vec<SetEval>>, SchedulerError> {
    let modes = method.modes().len();
    let mut out = vec![vec![SetEval::default(); sets.len()]; modes];
    for (s, (indices, mask)) in sets.iter().enumerate() {
        for chunk in indices.chunks(setup.config.train.eval_batch_size) {
            let batch = match corruption {
                Some(c) => setup.loader.batch_corrupted(chunk, c, setup.config.seed)?,
                None => setup.loader.batch(chunk, Mode::Eval, 0, 0)?,
            };
            let audio = Tensor::from_vec(batch.audio, &batch.audio_shape, &setup.device)?;
            let video = Tensor::from_vec(batch.video, &batch.video_shape, &setup.device)?;
            let outputs = method.predict(model, &audio, &video)?;
            observe(&outputs)?;
            let targets: Vec<u32> = chunk.iter().map(|&i| setup.target(i)).collect();
            for (m, logits) in outputs.iter().enumerate() {
                let rows = logits.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
                let e = &mut out[m][s];
                for (row, &y) in rows.iter().zip(&targets) {
                    let (pred, conf) = softmax_row(row);
                    let hit = pred as u32 == y;
                    e.n += 1;
                    e.correct += hit as usize;
                    e.confidences.push(conf);
                    e.hits.push(hit);
                    e.predictions.push(pred as u32);
                    if !mask.is_empty() {
                        let masked = mask.iter().copied().max_by(|&a, &b| {
                            row[a as usize]
                                .partial_cmp(&row[b as usize])
                                .unwrap_or(std::cmp::Ordering::Equal)
                                .then(b.cmp(&a))
                        });
                        e.task_il_correct += (masked == Some(y)) as usize;
                    }
                }
            }
        }
    }
    Ok(out)
}

pub(crate) struct RunState {
    pub(crate) net: Net,
    pub(crate) method: Box<dyn Method>,
    pub(crate) results: RunResults,
}

/// The training tasks of a run: the scenario's, or one merged task for JOINT.
fn training_tasks(setup: &Setup) -> Vec<crate::scenario::Task> {
    if setup.config.method.kind == MethodKind::Joint {
        setup.scenario.joint().tasks
    } else {
        setup.scenario.tasks.clone()
    }
}

fn fresh_results(setup: &Setup, config_json: serde_json::Value) -> RunResults {
    let c = &setup.config;
    RunResults {
        schema_version: RESULTS_SCHEMA_VERSION,
        run: RunInfo {
            method: c.method.kind,
            scenario: setup.scenario.name.clone(),
            modality: c.model.modality,
            buffer_size: c.method.effective_buffer_size(),
            seed: c.seed,
            dataset: c.dataset.clone(),
            num_outputs: setup.scenario.num_outputs,
            task_il: setup.scenario.task_il,
        },
        tasks: setup
            .scenario
            .tasks
            .iter()
            .map(|t| TaskInfo {
                classes: t.classes.clone(),
                class_names: t
                    .classes
                    .iter()
                    .map(|c| setup.class_names.get(c).cloned().unwrap_or_default())
                    .collect(),
                new_targets: t.new_targets.clone(),
                n_train: t.train.len(),
                n_test: t.test.len(),
            })
            .collect(),
        tasks_done: 0,
        trained_tasks: training_tasks(setup).len(),
        finished: false,
        modes: Vec::new(),
        training: Vec::new(),
        temperatures: Vec::new(),
        elapsed_s: 0.0,
        config: config_json,
        provenance: None,
    }
}

/// Records this session in the run's provenance: as its first, or as a resume of it.
/// `config_toml`: the bytes of the run's `config.toml` the session trains with.
fn record_session(setup: &Setup, results: &mut RunResults, config_toml: &[u8]) {
    let session = SessionProvenance::capture(
        config_toml,
        &setup.loader.cache().header().manifest_sha256,
        &setup.config.device,
        setup.device.is_cpu(),
        results.tasks_done,
    );
    match &mut results.provenance {
        Some(p) => p.resumes.push(session),
        None => {
            results.provenance = Some(Provenance {
                first: session,
                resumes: Vec::new(),
            })
        }
    }
}

/// A handle on a run folder.
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir { path: path.into() }
    }
    pub fn config_path(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }
    pub fn results_path(&self) -> PathBuf {
        self.path.join(RESULTS_FILE)
    }
    /// The folder of the last finished checkpoint, if there is one that verifies (see
    /// [`checkpoint::find`] for the checkpoint a resume uses, and why).
    pub fn latest_checkpoint(&self) -> Option<PathBuf> {
        checkpoint::find(&self.checkpoint_root()).ok()?.dir
    }
    pub(crate) fn checkpoint_root(&self) -> PathBuf {
        self.path.join(CHECKPOINT_DIR)
    }
    /// The checkpoint a re-evaluation loads (the last verified one); an error naming the
    /// folder when there is none.
    pub(crate) fn checkpoint_to_evaluate(&self) -> Result<PathBuf, SchedulerError> {
        checkpoint::find(&self.checkpoint_root())?
            .dir
            .ok_or_else(|| {
                SchedulerError::Config(format!("{} has no checkpoint", self.path.display()))
            })
    }
    /// Wall time the run has spent so far, as its sessions last recorded it (0 if none).
    fn recorded_elapsed(&self) -> f64 {
        std::fs::read_to_string(self.path.join(ELAPSED_FILE))
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .unwrap_or(0.0)
    }
    fn record_elapsed(&self, seconds: f64) {
        // Bookkeeping only: a failure here must not stop training (a full disk stops the
        // next checkpoint anyway).
        let _ = write_atomic(
            &self.path.join(ELAPSED_FILE),
            format!("{seconds:.3}\n").as_bytes(),
        );
    }
    fn refuse_existing_run(&self) -> Result<(), SchedulerError> {
        if self.config_path().exists() {
            return Err(SchedulerError::Config(format!(
                "{} already holds a run; use resume, or choose another folder",
                self.path.display()
            )));
        }
        Ok(())
    }
    /// Read the resolved config of the run.
    pub fn read_config(&self) -> Result<ExperimentConfig, SchedulerError> {
        let p = self.config_path();
        let text = std::fs::read_to_string(&p).map_err(|e| SchedulerError::Io {
            path: p.clone(),
            source: e,
        })?;
        toml::from_str(&text).map_err(|e| SchedulerError::Format {
            path: p,
            reason: e.to_string(),
        })
    }
    /// Whether the run has finished (its results say so).
    pub fn is_finished(&self) -> bool {
        RunResults::read(&self.results_path())
            .map(|r| r.finished)
            .unwrap_or(false)
    }
    fn log(&self, line: &str) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path.join(LOG_FILE))
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SchedulerError + '_ {
    move |e| SchedulerError::Io {
        path: path.to_owned(),
        source: e,
    }
}

/// The finite-state guard, then the checkpoint of `task`. `last`: the task's last (epoch,
/// step), for the error.
fn save_checkpoint(
    dir: &RunDir,
    task: usize,
    state: &RunState,
    last: (usize, usize),
) -> Result<(), SchedulerError> {
    // A diverged state is never saved: the checkpoint on disk stays the last finite one.
    if let Some(what) = checkpoint::non_finite_state(&state.net, state.method.as_ref())? {
        return Err(SchedulerError::NonFiniteState {
            task,
            epoch: last.0,
            step: last.1,
            what,
        });
    }
    checkpoint::write(&dir.checkpoint_root(), task, |tmp| {
        state.net.model.save(tmp.join(MODEL_FILE))?;
        state.net.opt.save(&tmp.join(OPTIM_FILE))?;
        state.method.save_state(tmp)?;
        state.results.write(&tmp.join(RESULTS_FILE))
    })
}

/// `err` stopped task `task` after (epoch, step) `last`; if the state has gone non-finite,
/// that is what the run reports (the cause of the failure), through the same guard.
fn diverged_or(
    err: SchedulerError,
    state: &RunState,
    task: usize,
    last: (usize, usize),
) -> SchedulerError {
    match err {
        SchedulerError::Method(MethodError::NonFinite(value)) => SchedulerError::Diverged {
            task,
            epoch: last.0,
            step: last.1,
            value,
        },
        SchedulerError::Method(MethodError::NonFiniteOutput(what)) => {
            SchedulerError::NonFiniteState {
                task,
                epoch: last.0,
                step: last.1,
                what,
            }
        }
        e @ (SchedulerError::Diverged { .. }
        | SchedulerError::NonFiniteState { .. }
        | SchedulerError::Interrupted { .. }) => e,
        e => match checkpoint::non_finite_state(&state.net, state.method.as_ref()) {
            Ok(Some(what)) => SchedulerError::NonFiniteState {
                task,
                epoch: last.0,
                step: last.1,
                what: format!("{what} (which made it fail: {e})"),
            },
            _ => e,
        },
    }
}

/// Every error that stops a run goes into its log.txt too, with the checkpoint it keeps.
fn logged(
    rd: &RunDir,
    r: Result<RunResults, SchedulerError>,
) -> Result<RunResults, SchedulerError> {
    if let Err(e) = &r {
        let kept = match rd.latest_checkpoint() {
            Some(d) => format!("; {} is kept", d.display()),
            None => "; there is no checkpoint yet".into(),
        };
        rd.log(&format!("stopped: {e}{kept}"));
    }
    r
}

fn new_state(setup: &Setup) -> Result<RunState, SchedulerError> {
    let model = AvNet::seeded(setup.model_config(), &setup.device, setup.config.seed)?;
    let opt = Optimizer::new(model.named_trainable_vars().to_vec(), setup.config.optim)?;
    let method = build_method(&setup.config.method, setup.config.model.modality)?;
    let config_json = serde_json::to_value(&setup.config).expect("config serialises");
    Ok(RunState {
        net: Net { model, opt },
        method,
        results: fresh_results(setup, config_json),
    })
}

pub(crate) fn load_state(setup: &Setup, ckpt: &Path) -> Result<RunState, SchedulerError> {
    let mut state = new_state(setup)?;
    state.net.model.load(ckpt.join(MODEL_FILE))?;
    state.net.opt.load(&ckpt.join(OPTIM_FILE))?;
    state.method.load_state(ckpt)?;
    state.results = RunResults::read(&ckpt.join(RESULTS_FILE))?;
    Ok(state)
}

/// Start a new run in `dir` (created; must not hold a run already) and train it to the end.
/// The folder is locked for the whole run (a second writer gets [`SchedulerError::Lock`]
/// at once), and nothing is written into it before the setup (config, cache, device,
/// model) has succeeded, so a failed setup can simply be re-run.
pub fn train(
    config: &ExperimentConfig,
    dir: &Path,
    opts: &RunOptions,
) -> Result<RunResults, SchedulerError> {
    let rd = RunDir::new(dir);
    // A folder that exists may be another writer's: lock it before looking inside.
    let early = if dir.is_dir() {
        Some(DirLock::acquire(dir)?)
    } else {
        None
    };
    rd.refuse_existing_run()?;
    let setup = Setup::open(config)?;
    let mut state = new_state(&setup)?;
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let _lock = match early {
        Some(l) => l,
        None => DirLock::acquire(dir)?,
    };
    rd.refuse_existing_run()?;
    let text = toml::to_string_pretty(config)
        .map_err(|e| SchedulerError::Config(format!("config does not serialise: {e}")))?;
    write_atomic(&rd.config_path(), text.as_bytes())?;
    record_session(&setup, &mut state.results, text.as_bytes());
    if !config.data.missing.is_none() {
        // The choice is a function of the config; recorded so a reader need not redo it.
        let choice = serde_json::to_string(&setup.missing).expect("missing choice serialises");
        write_atomic(&dir.join(crate::missing::MISSING_FILE), choice.as_bytes())?;
    }
    rd.log(&format!(
        "run {} on {} ({} train / {} test clips)",
        config.run_name(),
        config.dataset,
        setup.train_idx.len(),
        setup.test_idx.len()
    ));
    logged(&rd, drive(&setup, &rd, state, opts))
}

/// Settings a resume may change, for the tasks it has still to train: the documented
/// resumable overrides (`mmcl train --resume RUN --lr LR --epochs N`). Everything else
/// would make the run a different experiment and is not resumable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResumeOverrides {
    /// `optim.lr` from the next step on (the optimiser's momentum is kept).
    pub lr: Option<f64>,
    /// `train.epochs` for every task still to train.
    pub epochs: Option<usize>,
}

impl ResumeOverrides {
    /// Apply to `config`; returns `(key, old, new)` for each value that changes.
    fn apply(
        &self,
        config: &mut ExperimentConfig,
    ) -> Vec<(&'static str, serde_json::Value, serde_json::Value)> {
        let mut changes = Vec::new();
        if let Some(lr) = self.lr.filter(|&lr| lr != config.optim.lr) {
            changes.push(("optim.lr", config.optim.lr.into(), lr.into()));
            config.optim.lr = lr;
        }
        if let Some(e) = self.epochs.filter(|&e| e != config.train.epochs) {
            changes.push(("train.epochs", config.train.epochs.into(), e.into()));
            config.train.epochs = e;
        }
        changes
    }
}

/// Continue the run in `dir` from its last checkpoint (or from the start if it has none).
pub fn resume(dir: &Path, opts: &RunOptions) -> Result<RunResults, SchedulerError> {
    resume_with(dir, &ResumeOverrides::default(), opts)
}

/// [`resume`], applying `overrides` to the tasks still to train: `config.toml` gets the new
/// values, and `config-history.json` and `log.txt` record what changed at which task.
/// A resume never deletes a checkpoint it does not supersede, and never starts over while a
/// checkpoint folder exists that it cannot use (see [`crate::checkpoint`]).
pub fn resume_with(
    dir: &Path,
    overrides: &ResumeOverrides,
    opts: &RunOptions,
) -> Result<RunResults, SchedulerError> {
    let rd = RunDir::new(dir);
    if !dir.is_dir() {
        return Err(SchedulerError::Config(format!(
            "{} is not a run folder (it does not exist)",
            dir.display()
        )));
    }
    let _lock = DirLock::acquire(dir)?;
    let mut config = rd.read_config()?;
    let changes = overrides.apply(&mut config);
    let setup = Setup::open(&config)?;
    let Found { dir: ckpt, note } = checkpoint::find(&rd.checkpoint_root())?;
    if let Some(note) = &note {
        rd.log(note);
        if opts.progress {
            eprintln!("warning: {note}");
        }
    }
    let mut state = match ckpt {
        Some(ckpt) => {
            rd.log(&format!("resume from {}", ckpt.display()));
            load_state(&setup, &ckpt)?
        }
        None => new_state(&setup)?,
    };
    if state.results.finished {
        if !changes.is_empty() {
            let keys: Vec<&str> = changes.iter().map(|c| c.0).collect();
            return Err(SchedulerError::Config(format!(
                "the run in {} is finished: there is no task left for {} to apply to",
                dir.display(),
                keys.join(" and ")
            )));
        }
        return Ok(state.results);
    }
    if !changes.is_empty() {
        record_overrides(&rd, &config, &changes, state.results.tasks_done)?;
        state.results.config = serde_json::to_value(&config).expect("config serialises");
    }
    let config_path = rd.config_path();
    let config_toml = std::fs::read(&config_path).map_err(io_err(&config_path))?;
    record_session(&setup, &mut state.results, &config_toml);
    logged(&rd, drive(&setup, &rd, state, opts))
}

/// Write the overridden config and append the change to the run's config history.
fn record_overrides(
    rd: &RunDir,
    config: &ExperimentConfig,
    changes: &[(&'static str, serde_json::Value, serde_json::Value)],
    from_task: usize,
) -> Result<(), SchedulerError> {
    let path = rd.path.join(HISTORY_FILE);
    let mut history: Vec<serde_json::Value> = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| SchedulerError::Format {
            path: path.clone(),
            reason: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(&path)(e)),
    };
    for (key, from, to) in changes {
        history.push(serde_json::json!({
            "from_task": from_task, "key": key, "from": from, "to": to,
        }));
        rd.log(&format!(
            "resume override from task {from_task}: {key} {from} -> {to}"
        ));
    }
    let json = serde_json::to_string_pretty(&history).expect("history serialises");
    write_atomic(&path, json.as_bytes())?;
    let text = toml::to_string_pretty(config)
        .map_err(|e| SchedulerError::Config(format!("config does not serialise: {e}")))?;
    write_atomic(&rd.config_path(), text.as_bytes())
}

fn progress_bar(opts: &RunOptions, len: u64) -> ProgressBar {
    if !opts.progress {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} steps  ETA {eta}  {msg}",
        )
        .expect("valid template"),
    );
    pb
}

/// This session of a run: its options, its clock and its training steps so far.
struct Session<'a> {
    opts: &'a RunOptions,
    /// The run's wall time recorded by earlier sessions (a killed session's time after its
    /// last checkpoint included).
    elapsed_before: f64,
    start: Instant,
    /// Training steps of this session (all tasks), for `stop_after_steps`.
    steps: usize,
    /// Training steps of the run (all sessions): the next step's number in `metrics`.
    run_steps: usize,
    metrics: MetricsLog,
}

impl<'a> Session<'a> {
    fn start(
        opts: &'a RunOptions,
        results: &RunResults,
        rd: &RunDir,
    ) -> Result<Self, SchedulerError> {
        // The steps the results (the checkpoint resumed from) cover; the log keeps those.
        let run_steps = results.training.iter().map(|t| t.steps).sum();
        Ok(Session {
            opts,
            elapsed_before: results.elapsed_s.max(rd.recorded_elapsed()),
            start: Instant::now(),
            steps: 0,
            run_steps,
            metrics: MetricsLog::open(&rd.path, run_steps)?,
        })
    }
    /// The run's wall time so far.
    fn elapsed(&self) -> f64 {
        self.elapsed_before + self.start.elapsed().as_secs_f64()
    }
}

/// The cache indices of every evaluation task's test set, in task order.
fn test_set_indices(setup: &Setup) -> Vec<Vec<usize>> {
    setup
        .scenario
        .tasks
        .iter()
        .map(|t| t.test.iter().map(|&i| setup.test_idx[i]).collect())
        .collect()
}

/// The evaluation tasks' test sets with their Task-IL masks (empty without Task-IL).
struct TestSets {
    indices: Vec<Vec<usize>>,
    masks: Vec<Vec<u32>>,
}

impl TestSets {
    fn new(setup: &Setup) -> Self {
        let masks = setup
            .scenario
            .tasks
            .iter()
            .map(|t| {
                if setup.scenario.task_il {
                    t.new_targets.clone()
                } else {
                    Vec::new()
                }
            })
            .collect();
        TestSets {
            indices: test_set_indices(setup),
            masks,
        }
    }
    fn len(&self) -> usize {
        self.indices.len()
    }
    /// The first `n` sets as [`evaluate`] takes them.
    fn first(&self, n: usize) -> Vec<(&[usize], &[u32])> {
        (0..n)
            .map(|i| (&self.indices[i][..], &self.masks[i][..]))
            .collect()
    }
}

/// The empty per-mode results of a run about to train its first task, with the accuracy
/// of the untrained network on every test set when `eval_random_init` asks for it.
fn initial_mode_results(
    setup: &Setup,
    state: &RunState,
) -> Result<Vec<ModeResults>, SchedulerError> {
    let modes = state.method.modes();
    let n_eval = setup.scenario.tasks.len();
    let random_init = if setup.config.train.eval_random_init {
        let owned = test_set_indices(setup);
        let sets: Vec<(&[usize], &[u32])> = owned.iter().map(|v| (&v[..], &[][..])).collect();
        let ev = evaluate(setup, state.method.as_ref(), &state.net.model, &sets)?;
        ev.iter()
            .map(|per_set| per_set.iter().map(|e| Some(e.correct as u64)).collect())
            .collect()
    } else {
        vec![vec![None; n_eval]; modes.len()]
    };
    Ok(modes
        .iter()
        .zip(random_init)
        .map(|(m, ri)| ModeResults {
            mode: m.as_str().into(),
            correct: Vec::new(),
            task_il_correct: setup.scenario.task_il.then(Vec::new),
            predicted: Vec::new(),
            calibration: Vec::new(),
            random_init_correct: ri,
        })
        .collect())
}

/// Where training is, for progress, interruption and error reports.
struct TrainCursor<'a, 's> {
    session: &'a mut Session<'s>,
    pb: ProgressBar,
    task: usize,
    epochs: usize,
    /// The last (epoch, step) started.
    last: (usize, usize),
}

/// What training one task produced.
struct TaskTrained {
    epoch_loss: Vec<f64>,
    steps: usize,
    last: (usize, usize),
}

/// Trains task `t` of `tasks` epoch by epoch, logging each epoch's mean loss.
fn train_task(
    setup: &Setup,
    rd: &RunDir,
    state: &mut RunState,
    session: &mut Session,
    tasks: &[crate::scenario::Task],
    t: usize,
) -> Result<TaskTrained, SchedulerError> {
    let cfg = &setup.config;
    let task = &tasks[t];
    let indices: Vec<usize> = task.train.iter().map(|&i| setup.train_idx[i]).collect();
    let steps_per_epoch = indices.len().div_ceil(cfg.train.batch_size);
    let epochs = cfg
        .train
        .epochs_for(cfg.method.kind, indices.len(), setup.train_idx.len());
    let pb = progress_bar(session.opts, (steps_per_epoch * epochs) as u64);
    pb.set_prefix(format!("task {}/{}", t + 1, tasks.len()));
    state.method.begin_task(t)?;
    let mut cursor = TrainCursor {
        session,
        pb,
        task: t,
        epochs,
        last: (0, 0),
    };
    let mut trained = TaskTrained {
        epoch_loss: Vec::with_capacity(epochs),
        steps: 0,
        last: (0, 0),
    };
    for epoch in 0..epochs {
        let sum = train_epoch(
            setup,
            state,
            &mut cursor,
            &indices,
            epoch,
            &mut trained.steps,
        )?;
        let mean = sum / steps_per_epoch.max(1) as f64;
        trained.epoch_loss.push(mean);
        rd.log(&format!("task {t} epoch {epoch} loss {mean:.5}"));
        rd.record_elapsed(cursor.session.elapsed());
        cursor.session.metrics.flush()?;
    }
    cursor.pb.finish_and_clear();
    trained.last = cursor.last;
    Ok(trained)
}

/// One epoch of the task at `cursor` over `indices` (shuffled for the epoch), the next batch
/// loading on a background thread while this one trains; returns the sum of the step losses.
fn train_epoch(
    setup: &Setup,
    state: &mut RunState,
    cursor: &mut TrainCursor,
    indices: &[usize],
    epoch: usize,
    task_steps: &mut usize,
) -> Result<f64, SchedulerError> {
    let cfg = &setup.config;
    let t = cursor.task;
    let seed = task_seed(cfg.seed, t);
    let order = loader::shuffled(indices, seed, epoch as u64);
    let mut sum = 0.0f64;
    let chunks: Vec<&[usize]> = order.chunks(cfg.train.batch_size).collect();
    let ahead = if cursor.session.opts.sync_loading {
        0
    } else {
        1
    };
    let load = |chunk: &&[usize]| -> Result<_, SchedulerError> {
        Ok(setup.loader.batch(chunk, Mode::Train, seed, epoch as u64)?)
    };
    let mut step_start = Instant::now();
    for_each_prefetched(&chunks, ahead, load, |step, chunk, b| {
        cursor.last = (epoch, step);
        let session = &mut *cursor.session;
        if session
            .opts
            .stop_after_steps
            .is_some_and(|n| session.steps >= n)
        {
            cursor.pb.abandon();
            return Err(SchedulerError::Interrupted {
                task: t,
                epoch,
                step,
            });
        }
        let loss = match train_step(setup, state, t, (epoch, step), chunk, b) {
            Ok(l) => l,
            Err(e) => {
                cursor.pb.abandon();
                return Err(e);
            }
        };
        sum += loss as f64;
        *task_steps += 1;
        let session = &mut *cursor.session;
        let now = Instant::now();
        let seconds = now.duration_since(step_start).as_secs_f64().max(1e-9);
        step_start = now;
        session.metrics.record(&StepRecord {
            step: session.run_steps,
            task: t,
            epoch,
            batch: step,
            samples: chunk.len(),
            loss: loss as f64,
            lr: state.net.opt.config().lr,
            samples_per_s: chunk.len() as f64 / seconds,
        })?;
        session.run_steps += 1;
        session.steps += 1;
        cursor.pb.inc(1);
        cursor.pb.set_message(format!(
            "epoch {}/{} loss {loss:.4}",
            epoch + 1,
            cursor.epochs
        ));
        Ok(())
    })
    .map_err(|e| diverged_or(e, state, t, cursor.last))?;
    Ok(sum)
}

/// One optimisation step of the method on the loaded batch `b` of cache samples `chunk`.
fn train_step(
    setup: &Setup,
    state: &mut RunState,
    t: usize,
    (epoch, step): (usize, usize),
    chunk: &[usize],
    b: mmcl_data::loader::Batch,
) -> Result<f32, SchedulerError> {
    let targets: Vec<u32> = chunk.iter().map(|&i| setup.target(i)).collect();
    let batch = TrainBatch {
        audio: Tensor::from_vec(b.audio, &b.audio_shape, &setup.device)?,
        video: Tensor::from_vec(b.video, &b.video_shape, &setup.device)?,
        targets,
        compact: b.compact,
    };
    let mut rng = step_rng(setup.config.seed, t, epoch, step);
    let mut env = StepEnv {
        loader: &setup.loader,
        rng: &mut rng,
    };
    Ok(state.method.observe(&mut state.net, &batch, &mut env)?)
}

/// The method's end of task `t` (SAMM's calibration), with its own step generator.
fn end_task(
    setup: &Setup,
    state: &mut RunState,
    t: usize,
    last: (usize, usize),
) -> Result<(), SchedulerError> {
    let mut rng = step_rng(setup.config.seed, t, usize::MAX, 0);
    let mut env = StepEnv {
        loader: &setup.loader,
        rng: &mut rng,
    };
    if let Err(e) = state.method.end_task(&mut state.net, &mut env) {
        return Err(diverged_or(e.into(), state, t, last));
    }
    Ok(())
}

/// Evaluates after task `t` on the test sets seen so far (all for JOINT), plus the next one
/// if `eval_future` asks (forward transfer needs only the next task's accuracy before
/// training it), and appends the raw facts to every mode's results (mmcl-metrics derives
/// every number from them). Returns the number of seen test sets.
fn record_evaluation(
    setup: &Setup,
    state: &mut RunState,
    sets: &TestSets,
    t: usize,
) -> Result<usize, SchedulerError> {
    let cfg = &setup.config;
    let n_eval = sets.len();
    let seen = if cfg.method.kind == MethodKind::Joint {
        n_eval
    } else {
        t + 1
    };
    let upto = if cfg.train.eval_future {
        (seen + 1).min(n_eval)
    } else {
        seen
    };
    let ev = evaluate(
        setup,
        state.method.as_ref(),
        &state.net.model,
        &sets.first(upto),
    )?;
    let bin_rule = mmcl_losses::ConfidenceBins::new(mmcl_losses::ECE_BINS)?;
    for (m, per_set) in ev.iter().enumerate() {
        let mr = &mut state.results.modes[m];
        let row = |count: fn(&SetEval) -> usize| -> Vec<Option<u64>> {
            let mut r: Vec<Option<u64>> = per_set.iter().map(|e| Some(count(e) as u64)).collect();
            r.resize(n_eval, None);
            r
        };
        mr.correct.push(row(|e| e.correct));
        if let Some(til) = mr.task_il_correct.as_mut() {
            til.push(row(|e| e.task_il_correct));
        }
        let mut predicted = vec![0u64; setup.scenario.num_outputs];
        let mut bins = CalibrationBins::new(bin_rule.len());
        for e in &per_set[..seen] {
            for ((&p, &conf), &hit) in e.predictions.iter().zip(&e.confidences).zip(&e.hits) {
                predicted[p as usize] += 1;
                bins.record(&bin_rule, conf, hit);
            }
        }
        mr.predicted.push(predicted);
        mr.calibration.push(bins);
    }
    if let Some(temps) = state.method.temperatures() {
        state.results.temperatures.push(temps.map(|v| v as f64));
    }
    Ok(seen)
}

/// `"<mode> <correct>/<n>"` per mode on the first `seen` test sets, from the last row.
fn seen_summary(results: &RunResults, sets: &TestSets, seen: usize) -> String {
    let seen_n: usize = sets.indices[..seen].iter().map(Vec::len).sum();
    let summary: Vec<String> = results
        .modes
        .iter()
        .map(|m| {
            let correct: u64 = m
                .correct
                .last()
                .map_or(0, |row| row.iter().take(seen).map(|c| c.unwrap_or(0)).sum());
            format!("{} {correct}/{seen_n}", m.mode)
        })
        .collect();
    summary.join(", ")
}

/// Trains the tasks the run has still to do, each followed by the method's end of task, the
/// evaluation, the log line and the checkpoint (results.json last).
fn drive(
    setup: &Setup,
    rd: &RunDir,
    mut state: RunState,
    opts: &RunOptions,
) -> Result<RunResults, SchedulerError> {
    let tasks = training_tasks(setup);
    let mut session = Session::start(opts, &state.results, rd)?;
    if state.results.modes.is_empty() {
        state.results.modes = initial_mode_results(setup, &state)?;
    }
    let sets = TestSets::new(setup);
    for t in state.results.tasks_done..tasks.len() {
        let train_start = Instant::now();
        let trained = train_task(setup, rd, &mut state, &mut session, &tasks, t)?;
        end_task(setup, &mut state, t, trained.last)?;
        let train_s = train_start.elapsed().as_secs_f64();

        let eval_start = Instant::now();
        let seen = record_evaluation(setup, &mut state, &sets, t)?;
        let eval_s = eval_start.elapsed().as_secs_f64();
        state.results.training.push(TaskTraining {
            epoch_loss: trained.epoch_loss,
            steps: trained.steps,
            train_s,
            eval_s,
        });
        state.results.tasks_done = t + 1;
        state.results.finished = t + 1 == tasks.len();
        state.results.elapsed_s = session.elapsed();
        if let Some(p) = state.results.provenance.as_mut() {
            p.current_mut().peak_rss_bytes = crate::provenance::peak_rss_bytes();
        }
        let summary = seen_summary(&state.results, &sets, seen);
        rd.log(&format!(
            "task {t} done: correct on the seen test sets {summary} ({train_s:.1} s train, {eval_s:.1} s eval)"
        ));
        if opts.progress {
            eprintln!(
                "task {}/{}: correct on the seen test sets {summary}",
                t + 1,
                tasks.len()
            );
        }
        // Every step the checkpoint covers is in the log before the checkpoint exists.
        session.metrics.sync()?;
        save_checkpoint(rd, t, &state, trained.last)?;
        rd.record_elapsed(state.results.elapsed_s);
        state.results.write(&rd.results_path())?;
    }
    Ok(state.results)
}

/// One inference mode's re-evaluation of a checkpoint: per test set, the correct
/// predictions and the test samples.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeRow {
    pub mode: String,
    pub correct: Vec<u64>,
    pub n_test: Vec<u64>,
}

/// Evaluate a saved checkpoint of a run on a cache: the final row of each inference mode's
/// correct-prediction counts, recomputed (`mmcl eval`).
pub fn eval_checkpoint(
    run_dir: &Path,
    cache: Option<&Path>,
) -> Result<Vec<ModeRow>, SchedulerError> {
    let rd = RunDir::new(run_dir);
    let mut config = rd.read_config()?;
    if let Some(c) = cache {
        config.cache = c.to_owned();
    }
    let ckpt = rd.checkpoint_to_evaluate()?;
    let setup = Setup::open(&config)?;
    let state = load_state(&setup, &ckpt)?;
    let test_sets = test_set_indices(&setup);
    let sets: Vec<(&[usize], &[u32])> = test_sets.iter().map(|v| (&v[..], &[][..])).collect();
    let ev = evaluate(&setup, state.method.as_ref(), &state.net.model, &sets)?;
    Ok(state
        .method
        .modes()
        .iter()
        .zip(ev)
        .map(|(m, per_set)| ModeRow {
            mode: m.as_str().to_string(),
            correct: per_set.iter().map(|e| e.correct as u64).collect(),
            n_test: per_set.iter().map(|e| e.n as u64).collect(),
        })
        .collect())
}
