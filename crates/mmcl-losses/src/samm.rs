//! The combined SAMM training objective (docs/method.md), for the methods crate to call.

use candle_core::Tensor;

use crate::classification::cross_entropy;
use crate::error::{LossError, Result};
use crate::regression::consistency_mse;
use crate::rkd::{rkd_angle, rkd_distance, RkdMean};
use crate::selection::{select_targets, Head, HeadLogits};

/// Weights of the SAMM objective; defaults are the paper's.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SammLossConfig {
    /// lambda: weight of the unimodal terms (0.01).
    pub reg_weight: f64,
    /// beta: weight of the RKD alignment terms (25).
    pub align_weight: f64,
    /// gamma: weight of the buffer consistency terms (1).
    pub consistency_weight: f64,
    /// Mean used in the RKD distance potential ([impl]: inclusive).
    pub rkd_mean: RkdMean,
    /// Weight of the RKD angle loss inside each RKD term (0 = off, as [impl]; 1 = [impl]'s
    /// `eval_angle_loss=True`, which adds the angle loss to the distance loss).
    pub angle_weight: f64,
    /// Which stored logits the consistency terms regress to (an ablation switch; the
    /// paper's is dynamic selection).
    pub consistency_target: ConsistencyTarget,
}

/// The consistency target of each replayed sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsistencyTarget {
    /// The stored logits of the head whose current true-class probability is highest
    /// ([`select_targets`], the paper's dynamic selection).
    #[default]
    Dynamic,
    /// Always the stored fused-head logits (DER-style consistency, the ablation).
    Fused,
}

impl ConsistencyTarget {
    /// Whether this is the paper's choice (configs leave it out then).
    pub fn is_dynamic(&self) -> bool {
        *self == ConsistencyTarget::Dynamic
    }
}

impl Default for SammLossConfig {
    fn default() -> Self {
        Self {
            reg_weight: 0.01,
            align_weight: 25.0,
            consistency_weight: 1.0,
            rkd_mean: RkdMean::Inclusive,
            angle_weight: 0.0,
            consistency_target: ConsistencyTarget::Dynamic,
        }
    }
}

/// One forward pass's outputs for the SAMM objective.
#[derive(Clone, Copy, Debug)]
pub struct SammBatch<'a> {
    /// The three heads' logits `[batch, classes]` (with gradients).
    pub logits: &'a HeadLogits,
    /// `u32` labels `[batch]`.
    pub labels: &'a Tensor,
    /// What RKD aligns, `(audio, visual)`, each `[batch, ...]`. `None` = the audio and visual
    /// head logits ([impl]); pass encoder features for the paper figure's variant.
    pub align: Option<(&'a Tensor, &'a Tensor)>,
}

/// The SAMM loss and its parts (all scalar tensors in the graph).
#[derive(Clone, Debug)]
pub struct SammLoss {
    /// `L_cur + L_buf` (or `L_cur` without a buffer batch): call `backward()` on this.
    pub total: Tensor,
    /// `L_cur`.
    pub current: Tensor,
    /// `L_buf`, when a buffer batch was given.
    pub buffer: Option<Tensor>,
    /// The head chosen per buffer sample by dynamic logit selection.
    pub selected: Vec<Head>,
}

/// `RKD(student, sg(teacher))` with the configured mean and optional angle term.
pub fn rkd_term(cfg: &SammLossConfig, student: &Tensor, teacher: &Tensor) -> Result<Tensor> {
    let dist = rkd_distance(student, teacher, cfg.rkd_mean)?;
    if cfg.angle_weight == 0.0 {
        return Ok(dist);
    }
    Ok((dist + (rkd_angle(student, teacher)? * cfg.angle_weight)?)?)
}

/// `CE(av, y) + lambda * [CE(a, y) + beta*RKD(a, sg(v)) + CE(v, y) + beta*RKD(v, sg(a))]`.
pub fn supervised_terms(cfg: &SammLossConfig, batch: &SammBatch) -> Result<Tensor> {
    let l = batch.logits;
    let (align_a, align_v) = batch.align.unwrap_or((&l.audio, &l.visual));
    if align_a.dim(0)? != l.dims()?.0 || align_v.dim(0)? != l.dims()?.0 {
        return Err(LossError::InvalidArgument {
            what: "samm_loss align",
            reason: "alignment tensors must have one row per sample".into(),
        });
    }
    let ce_av = cross_entropy(&l.fused, batch.labels)?;
    let ce_a = cross_entropy(&l.audio, batch.labels)?;
    let ce_v = cross_entropy(&l.visual, batch.labels)?;
    let rkd_a = rkd_term(cfg, align_a, align_v)?;
    let rkd_v = rkd_term(cfg, align_v, align_a)?;
    let unimodal = ((ce_a + (rkd_a * cfg.align_weight)?)? + (ce_v + (rkd_v * cfg.align_weight)?)?)?;
    Ok((ce_av + (unimodal * cfg.reg_weight)?)?)
}

/// The SAMM objective for one step.
///
/// `current` is the current-task batch; `buffer` is the buffer minibatch's forward pass with
/// the logits stored when those samples entered the buffer. The consistency target `z*` comes
/// from [`select_targets`] and is shared by all three heads:
/// `L_buf = gamma*[MSE(av_b, z*) + lambda*(MSE(a_b, z*) + MSE(v_b, z*))] + supervised(buffer)`.
pub fn samm_loss(
    cfg: &SammLossConfig,
    current: &SammBatch,
    buffer: Option<(&SammBatch, &HeadLogits)>,
) -> Result<SammLoss> {
    let l_cur = supervised_terms(cfg, current)?;
    let Some((buf, stored)) = buffer else {
        return Ok(SammLoss {
            total: l_cur.clone(),
            current: l_cur,
            buffer: None,
            selected: Vec::new(),
        });
    };
    let selection = match cfg.consistency_target {
        ConsistencyTarget::Dynamic => select_targets(buf.logits, stored, buf.labels)?,
        ConsistencyTarget::Fused => crate::selection::Selection {
            heads: vec![Head::Fused; stored.fused.dim(0)?],
            targets: stored.fused.detach(),
        },
    };
    let z = &selection.targets;
    let mse_av = consistency_mse(&buf.logits.fused, z)?;
    let mse_a = consistency_mse(&buf.logits.audio, z)?;
    let mse_v = consistency_mse(&buf.logits.visual, z)?;
    let consistency = (mse_av + ((mse_a + mse_v)? * cfg.reg_weight)?)?;
    let l_buf = ((consistency * cfg.consistency_weight)? + supervised_terms(cfg, buf)?)?;
    Ok(SammLoss {
        total: (&l_cur + &l_buf)?,
        current: l_cur,
        buffer: Some(l_buf),
        selected: selection.heads,
    })
}
