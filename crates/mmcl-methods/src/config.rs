//! Method and optimiser configuration (part of the experiment config).

use mmcl_buffer::SelectionPolicy;
use mmcl_losses::{ConsistencyTarget, RkdMean, SammLossConfig, TemperatureSolver};
use serde::{Deserialize, Serialize};

/// Which continual-learning method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodKind {
    /// Lower bound: fine-tuning with cross-entropy on the fused head.
    Sgd,
    /// Upper bound: all tasks' data at once (the scheduler merges the tasks).
    Joint,
    /// Experience replay with a reservoir buffer.
    Er,
    /// SAMM (the paper's method).
    Samm,
}

impl MethodKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Sgd => "sgd",
            MethodKind::Joint => "joint",
            MethodKind::Er => "er",
            MethodKind::Samm => "samm",
        }
    }
    /// Whether the method keeps a replay buffer.
    pub fn uses_buffer(self) -> bool {
        matches!(self, MethodKind::Er | MethodKind::Samm)
    }
}

impl std::fmt::Display for MethodKind {
    /// The config and results.json spelling (`sgd`, `joint`, `er`, `samm`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What SAMM's RKD alignment term compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlignOn {
    /// The audio and visual head logits ([impl], default).
    #[default]
    Logits,
    /// The pooled encoder features (the paper's figure).
    Features,
}

/// How SAMM fits its per-head temperatures at the end of each task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// Ours, the default: the network in eval mode (BatchNorm running statistics, untouched),
    /// every memory sample, the exact NLL minimiser: what temperature scaling is meant to do.
    #[default]
    #[serde(alias = "exact")]
    Eval,
    /// What the reference does: the network in training mode (each batch of 32 is
    /// normalised by its own statistics and updates the BatchNorm running statistics, so
    /// calibration changes the model evaluated afterwards), `floor(n / 32) * 32` memory
    /// samples in memory order, temperatures from 1.5 fitted by LBFGS (lr 0.01, 50
    /// iterations), which stops far from the NLL minimum.
    Reference,
    /// No fit: every temperature stays 1, so the ensemble is the uncalibrated dynamic
    /// ensemble (the ablation of calibration; training is unchanged).
    None,
}

impl Calibration {
    /// The temperature solver.
    pub fn solver(self) -> TemperatureSolver {
        match self {
            Calibration::Eval | Calibration::None => TemperatureSolver::default(),
            Calibration::Reference => TemperatureSolver::reference(),
        }
    }
    /// Whether the calibration forward passes run the network in training mode.
    pub fn train_mode(self) -> bool {
        self == Calibration::Reference
    }
    /// Memory samples per forward pass (in training mode this sets the BatchNorm batch).
    pub fn chunk(self) -> usize {
        match self {
            Calibration::Eval | Calibration::None => 64,
            Calibration::Reference => 32,
        }
    }
    /// How many of `n` memory samples (taken in memory order) the fit uses.
    pub fn samples(self, n: usize) -> usize {
        match self {
            Calibration::Eval => n,
            Calibration::Reference => n / 32 * 32,
            Calibration::None => 0,
        }
    }
}

/// SAMM's hyperparameters (defaults: the paper's).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SammConfig {
    /// lambda, weight of the unimodal terms.
    pub reg_weight: f64,
    /// beta, weight of RKD alignment.
    pub align_weight: f64,
    /// gamma, weight of the buffer consistency terms.
    pub consistency_weight: f64,
    pub rkd_mean: RkdMean,
    /// RKD angle loss weight (0 = off, as the reference).
    pub angle_weight: f64,
    pub align_on: AlignOn,
    pub calibration: Calibration,
    /// What the consistency terms regress to: `dynamic` (the paper's selection, default,
    /// left out of config.toml) or `fused` (always the stored fused logits, an ablation).
    #[serde(skip_serializing_if = "ConsistencyTarget::is_dynamic")]
    pub consistency_target: ConsistencyTarget,
}

impl Default for SammConfig {
    fn default() -> Self {
        let l = SammLossConfig::default();
        SammConfig {
            reg_weight: l.reg_weight,
            align_weight: l.align_weight,
            consistency_weight: l.consistency_weight,
            rkd_mean: l.rkd_mean,
            angle_weight: l.angle_weight,
            align_on: AlignOn::Logits,
            calibration: Calibration::Eval,
            consistency_target: ConsistencyTarget::Dynamic,
        }
    }
}

impl SammConfig {
    pub fn loss_config(&self) -> SammLossConfig {
        SammLossConfig {
            reg_weight: self.reg_weight,
            align_weight: self.align_weight,
            consistency_weight: self.consistency_weight,
            rkd_mean: self.rkd_mean,
            angle_weight: self.angle_weight,
            consistency_target: self.consistency_target,
        }
    }
}

/// The method section of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodConfig {
    pub kind: MethodKind,
    /// Replay buffer capacity (ER, SAMM); ignored otherwise.
    #[serde(default)]
    pub buffer_size: usize,
    /// Which samples the buffer keeps (ER, SAMM): `reservoir` (default, the paper's),
    /// `ring` or `class_balanced`.
    #[serde(default)]
    pub buffer_policy: SelectionPolicy,
    /// Buffer samples per step (32 in the paper).
    #[serde(default = "default_minibatch")]
    pub minibatch: usize,
    #[serde(default)]
    pub samm: SammConfig,
}

fn default_minibatch() -> usize {
    32
}

impl MethodConfig {
    pub fn new(kind: MethodKind, buffer_size: usize) -> Self {
        MethodConfig {
            kind,
            buffer_size,
            buffer_policy: SelectionPolicy::Reservoir,
            minibatch: 32,
            samm: SammConfig::default(),
        }
    }
    /// The buffer size that applies (0 without a buffer).
    pub fn effective_buffer_size(&self) -> usize {
        if self.kind.uses_buffer() {
            self.buffer_size
        } else {
            0
        }
    }
}

/// The optimiser: SGD on all parameters, never reset between tasks (plain SGD by default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            lr: 0.01,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}
