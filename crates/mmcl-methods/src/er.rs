//! Experience replay: a replay memory ([`crate::memory`], an mmcl-buffer reservoir by
//! default) of un-augmented inputs and targets; each step runs
//! the current batch and a memory minibatch through ONE forward pass (so BatchNorm sees them
//! together, as the reference) with cross-entropy on the fused head.

use std::path::Path;

use candle_core::Tensor;
use mmcl_buffer::SelectionPolicy;
use mmcl_losses::cross_entropy;
use mmcl_model::AvNet;

use crate::memory::{load_memory, new_memory, remember, save_memory, Memory};
use crate::method::{compact_tensors, Method, Net, StepEnv, TrainBatch};
use crate::mode::InferenceMode;
use crate::{MethodKind, Result};

/// Experience replay.
pub struct Er {
    memory: Memory,
    minibatch: usize,
}

impl Er {
    /// A memory of `buffer_size` samples selected by `policy`; `minibatch` of them replayed
    /// per step.
    pub fn new(buffer_size: usize, policy: SelectionPolicy, minibatch: usize) -> Result<Self> {
        Ok(Er {
            memory: new_memory(buffer_size, policy)?,
            minibatch,
        })
    }
    pub fn memory(&self) -> &Memory {
        &self.memory
    }
}

impl Method for Er {
    fn kind(&self) -> MethodKind {
        MethodKind::Er
    }
    fn modes(&self) -> Vec<InferenceMode> {
        vec![InferenceMode::Av]
    }
    fn observe(&mut self, net: &mut Net, batch: &TrainBatch, env: &mut StepEnv) -> Result<f32> {
        let device = net.model.device().clone();
        let (audio, video, targets) = if self.memory.is_empty() {
            (
                batch.audio.clone(),
                batch.video.clone(),
                batch.targets.clone(),
            )
        } else {
            let items = self.memory.sample(self.minibatch);
            let mut targets = batch.targets.clone();
            targets.extend(items.iter().map(|it| it.target));
            let (ba, bv) = compact_tensors(env.loader, &items, &device)?;
            (
                Tensor::cat(&[&batch.audio, &ba], 0)?,
                Tensor::cat(&[&batch.video, &bv], 0)?,
                targets,
            )
        };
        let n = targets.len();
        let y = Tensor::from_vec(targets, n, &device)?;
        let out = net.model.forward_t(&audio, &video, true)?;
        let loss = cross_entropy(&out.av_logits, &y)?;
        let value = net.step(&loss)?;
        remember(&mut self.memory, batch, None, env)?;
        Ok(value)
    }
    fn predict(&self, model: &AvNet, audio: &Tensor, video: &Tensor) -> Result<Vec<Tensor>> {
        Ok(vec![model.forward_t(audio, video, false)?.av_logits])
    }
    fn save_state(&self, dir: &Path) -> Result<()> {
        save_memory(&self.memory, dir)
    }
    fn load_state(&mut self, dir: &Path) -> Result<()> {
        self.memory = load_memory(dir, self.memory.capacity(), self.memory.policy())?;
        Ok(())
    }
    fn memory_len(&self) -> usize {
        self.memory.len()
    }
}
