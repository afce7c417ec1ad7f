//! Experience replay: a reservoir memory of un-augmented inputs and targets; each step runs
//! the current batch and a memory minibatch through ONE forward pass (so BatchNorm sees them
//! together, as the reference) with cross-entropy on the fused head.

use std::path::Path;

use candle_core::Tensor;
use mmcl_losses::cross_entropy;
use mmcl_model::AvNet;

use crate::memory::{Memory, MemoryItem};
use crate::method::{compact_tensors, Method, Net, StepEnv, TrainBatch};
use crate::mode::InferenceMode;
use crate::{MethodError, MethodKind, Result};

pub(crate) const MEMORY_FILE: &str = "memory.safetensors";

/// Experience replay.
pub struct Er {
    memory: Memory,
    minibatch: usize,
}

impl Er {
    pub fn new(buffer_size: usize, minibatch: usize) -> Self {
        Er {
            memory: Memory::new(buffer_size),
            minibatch,
        }
    }
    pub fn memory(&self) -> &Memory {
        &self.memory
    }
}

/// Offer every sample of `batch` to the memory, with optional per-sample logits.
pub(crate) fn remember(
    memory: &mut Memory,
    batch: &TrainBatch,
    logits: Option<[Vec<Vec<f32>>; 3]>,
    env: &mut StepEnv,
) -> Result<()> {
    if batch.compact.len() != batch.len() {
        return Err(MethodError::Config(format!(
            "the batch carries {} compact samples for {} inputs: the loader must run with `compact` on for replay methods",
            batch.compact.len(),
            batch.len()
        )));
    }
    for (i, sample) in batch.compact.iter().enumerate() {
        let item = MemoryItem {
            sample: sample.clone(),
            target: batch.targets[i],
            logits: logits
                .as_ref()
                .map(|l| [l[0][i].clone(), l[1][i].clone(), l[2][i].clone()]),
        };
        memory.add(item, env.rng);
    }
    Ok(())
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
            let items = self.memory.sample(self.minibatch, env.rng);
            let samples: Vec<_> = items.iter().map(|it| &it.sample).collect();
            let (ba, bv) = compact_tensors(env.loader, &samples, &device)?;
            let mut targets = batch.targets.clone();
            targets.extend(items.iter().map(|it| it.target));
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
        self.memory.save(&dir.join(MEMORY_FILE))
    }
    fn load_state(&mut self, dir: &Path) -> Result<()> {
        self.memory = Memory::load(&dir.join(MEMORY_FILE))?;
        Ok(())
    }
    fn memory_len(&self) -> usize {
        self.memory.len()
    }
}
