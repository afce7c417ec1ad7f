//! The experiment configuration: every hyperparameter of one run, serialised as the run
//! folder's `config.toml` (burn-style: the config is the experiment).

use std::path::PathBuf;

use mmcl_methods::{MethodConfig, MethodKind, OptimConfig};
use mmcl_model::{Fusion, Modality};
use serde::{Deserialize, Serialize};

use crate::missing::MissingModality;
use crate::scenario::ScenarioConfig;

/// One run, completely described.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// The run seed: model init, shuffling, augmentation, replay sampling all derive from it.
    pub seed: u64,
    /// Name of the dataset for reports (`tiny`, `mini`, `vggsound`, ...).
    pub dataset: String,
    /// The prepared cache (`mmcl prep` output).
    pub cache: PathBuf,
    /// `cpu` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    pub model: ModelSection,
    pub data: DataSection,
    pub scenario: ScenarioConfig,
    pub method: MethodConfig,
    #[serde(default)]
    pub optim: OptimConfig,
    pub train: TrainSection,
}

fn default_device() -> String {
    "cpu".into()
}

/// The network (the number of classes comes from the scenario).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// ResNet-18 base width (64 in the paper).
    pub width: usize,
    #[serde(default)]
    pub fusion: Fusion,
    #[serde(default)]
    pub modality: Modality,
}

/// The loader.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Frames per clip T (4 in the paper).
    pub frames: usize,
    /// Model frame size S (224 in the paper).
    pub frame_size: u32,
    /// Audio crop in seconds (`None`: half the stored clip, the reference's 5 s of 10 s).
    #[serde(default)]
    pub crop_seconds: Option<f64>,
    /// Shares of each task's training clips that arrive without their audio or frames
    /// (`data.missing = { audio = 0.3 }`; see [`crate::missing`]). A property of the data
    /// stream, so it applies to every scenario.
    #[serde(default, skip_serializing_if = "MissingModality::is_none")]
    pub missing: MissingModality,
}

/// The training loop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Epochs per task (JOINT: epochs over all data, unless `joint_epochs` is set).
    pub epochs: usize,
    /// JOINT's budget when it differs from `epochs`, in epochs over the whole training set:
    /// JOINT (one task of all the stream's data) runs `ceil(joint_epochs * N / n)` epochs
    /// over its `n` samples when the cache holds `N`, so a stream that uses part of the data
    /// (GCIL's draws) gets as many steps as Seq and Dom. A profile may give the upper bound
    /// the budget it needs to converge (see `mmcl train`'s presets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joint_epochs: Option<usize>,
    /// Current-task batch size (32 in the paper).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Evaluation batch size (no effect on results).
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: usize,
    /// Evaluate the untrained model on every test set, once per run before training (the
    /// forward-transfer baseline the report's FWT subtracts).
    #[serde(default = "yes")]
    pub eval_random_init: bool,
    /// Also evaluate on the next task's test set before training it (forward transfer:
    /// `correct[t][t + 1]`, one extra test set per task); later columns stay `null`.
    #[serde(default = "yes")]
    pub eval_future: bool,
}

fn default_batch() -> usize {
    32
}
fn default_eval_batch() -> usize {
    64
}
fn yes() -> bool {
    true
}

impl TrainSection {
    /// Epochs per task for `method`, whose task has `task_samples` training samples of the
    /// cache's `all_samples` (see `joint_epochs`).
    pub fn epochs_for(
        &self,
        method: mmcl_methods::MethodKind,
        task_samples: usize,
        all_samples: usize,
    ) -> usize {
        match (method, self.joint_epochs) {
            (mmcl_methods::MethodKind::Joint, Some(e)) if task_samples > 0 => {
                (e * all_samples.max(task_samples)).div_ceil(task_samples)
            }
            (mmcl_methods::MethodKind::Joint, Some(e)) => e,
            _ => self.epochs,
        }
    }
}

impl ExperimentConfig {
    /// Check the parts that would otherwise fail deep inside a run.
    pub fn validate(&self) -> Result<(), crate::SchedulerError> {
        let bad = |m: String| Err(crate::SchedulerError::Config(m));
        if self.train.epochs == 0
            || self.train.joint_epochs == Some(0)
            || self.train.batch_size == 0
            || self.train.eval_batch_size == 0
        {
            return bad(
                "train.epochs, train.batch_size and train.eval_batch_size must be positive".into(),
            );
        }
        if self.model.width == 0 || self.data.frames == 0 || self.data.frame_size == 0 {
            return bad("model.width, data.frames and data.frame_size must be positive".into());
        }
        if self.method.kind.uses_buffer() && self.method.buffer_size == 0 {
            return bad(format!(
                "{} needs method.buffer_size > 0",
                self.method.kind.as_str()
            ));
        }
        if self.method.kind == MethodKind::Samm && self.model.modality != Modality::AudioVisual {
            return bad("samm needs model.modality = \"audio-visual\"".into());
        }
        self.data.missing.validate()?;
        if !(self.optim.lr > 0.0 && self.optim.lr.is_finite()) {
            return bad(format!("optim.lr must be positive, got {}", self.optim.lr));
        }
        Ok(())
    }

    /// A stable name for the run folder: `<scenario>-<method>[-<buffer>]-<modality>-s<seed>`.
    pub fn run_name(&self) -> String {
        let buf = if self.method.kind.uses_buffer() {
            format!("-{}", self.method.buffer_size)
        } else {
            String::new()
        };
        format!(
            "{}-{}{}-{}-s{}",
            self.scenario.short_name(),
            self.method.kind.as_str(),
            buf,
            self.model.modality.as_str(),
            self.seed
        )
    }
}
