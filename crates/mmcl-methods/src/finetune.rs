//! SGD (the lower bound) and JOINT (the upper bound): cross-entropy on the fused head. The
//! two differ only in the data the scheduler feeds (JOINT: every task's data as one task).

use std::path::Path;

use candle_core::Tensor;
use mmcl_losses::cross_entropy;
use mmcl_model::AvNet;

use crate::method::{Method, Net, StepEnv, TrainBatch};
use crate::mode::InferenceMode;
use crate::{MethodKind, Result};

/// Fine-tuning with cross-entropy on the fused head.
pub struct FineTune {
    kind: MethodKind,
}

impl FineTune {
    pub fn new(kind: MethodKind) -> Self {
        FineTune { kind }
    }
}

impl Method for FineTune {
    fn kind(&self) -> MethodKind {
        self.kind
    }
    fn modes(&self) -> Vec<InferenceMode> {
        vec![InferenceMode::Av]
    }
    fn observe(&mut self, net: &mut Net, batch: &TrainBatch, _env: &mut StepEnv) -> Result<f32> {
        let y = batch.target_tensor(net.model.device())?;
        let out = net.model.forward_t(&batch.audio, &batch.video, true)?;
        let loss = cross_entropy(&out.av_logits, &y)?;
        net.step(&loss)
    }
    fn predict(&self, model: &AvNet, audio: &Tensor, video: &Tensor) -> Result<Vec<Tensor>> {
        Ok(vec![model.forward_t(audio, video, false)?.av_logits])
    }
    fn save_state(&self, _dir: &Path) -> Result<()> {
        Ok(())
    }
    fn load_state(&mut self, _dir: &Path) -> Result<()> {
        Ok(())
    }
}
