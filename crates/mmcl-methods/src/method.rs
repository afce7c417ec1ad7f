//! The [`Method`] trait every continual-learning method implements, and what it is given.

use std::path::Path;
use std::sync::Arc;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use mmcl_data::loader::{CompactSample, Inputs, Loader};
use mmcl_model::AvNet;
use rand_chacha::ChaCha8Rng;

use crate::mode::InferenceMode;
use crate::optim::Optimizer;
use crate::{MethodError, MethodKind, Result};

/// The network and its optimiser, shared by every method.
pub struct Net {
    pub model: AvNet,
    pub opt: Optimizer,
}

impl Net {
    /// Backpropagate `loss` and take one optimiser step, unless the loss is not finite, in
    /// which case nothing is updated and [`MethodError::NonFinite`] is returned.
    pub fn step(&mut self, loss: &Tensor) -> Result<f32> {
        Ok(self.step_with_grads(loss)?.0)
    }

    /// [`Net::step`], also returning the gradients of the trainable variables it stepped with
    /// (for callers that inspect them, e.g. the golden tests).
    pub fn step_with_grads(&mut self, loss: &Tensor) -> Result<(f32, GradStore)> {
        let value = loss.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
        if !value.is_finite() {
            return Err(MethodError::NonFinite(value));
        }
        let grads = self.opt.backward_step(loss)?;
        Ok((value, grads))
    }
}

/// One augmented training batch.
#[derive(Debug, Clone)]
pub struct TrainBatch {
    /// `[B, 1, F, T]` log spectrograms.
    pub audio: Tensor,
    /// `[B, 3, T, S, S]` normalised frames.
    pub video: Tensor,
    /// Training targets under the scenario.
    pub targets: Vec<u32>,
    /// Un-augmented compact copies for the replay memory (one per sample; may be empty for
    /// methods without a memory), shared with the memory rather than copied into it.
    pub compact: Vec<Arc<CompactSample>>,
}

impl TrainBatch {
    pub fn len(&self) -> usize {
        self.targets.len()
    }
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
    /// Targets as a `u32` tensor on `device`.
    pub fn target_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_vec(
            self.targets.clone(),
            self.targets.len(),
            device,
        )?)
    }
}

/// What a step may use besides the network: the loader (to turn stored compact samples back
/// into model inputs) and the step's random generator (derived by the scheduler from the run
/// seed, task, epoch and step, so a resumed run draws the same numbers).
pub struct StepEnv<'a> {
    pub loader: &'a Loader,
    pub rng: &'a mut ChaCha8Rng,
}

/// Model inputs of compact samples (plain, shared, or memory items) as tensors on `device`.
pub fn compact_tensors<S: AsRef<CompactSample> + Sync>(
    loader: &Loader,
    samples: &[S],
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let Inputs {
        audio,
        audio_shape,
        video,
        video_shape,
    } = loader.compact_inputs(samples)?;
    Ok((
        Tensor::from_vec(audio, &audio_shape, device)?,
        Tensor::from_vec(video, &video_shape, device)?,
    ))
}

/// A continual-learning method. The scheduler calls, per task: [`Method::begin_task`], then
/// [`Method::observe`] per batch, then [`Method::end_task`]; [`Method::predict`] any time.
pub trait Method: Send {
    fn kind(&self) -> MethodKind;
    /// The inference modes [`Method::predict`] returns, in order.
    fn modes(&self) -> Vec<InferenceMode>;
    fn begin_task(&mut self, _task: usize) -> Result<()> {
        Ok(())
    }
    /// One optimisation step on `batch`; returns the loss value.
    fn observe(&mut self, net: &mut Net, batch: &TrainBatch, env: &mut StepEnv) -> Result<f32>;
    fn end_task(&mut self, _net: &mut Net, _env: &mut StepEnv) -> Result<()> {
        Ok(())
    }
    /// Eval-mode outputs `[B, C]` per inference mode (logits or logit-like scores).
    fn predict(&self, model: &AvNet, audio: &Tensor, video: &Tensor) -> Result<Vec<Tensor>>;
    /// Persist the method's own state (memory, temperatures) into `dir`.
    fn save_state(&self, dir: &Path) -> Result<()>;
    /// Restore what [`Method::save_state`] wrote.
    fn load_state(&mut self, dir: &Path) -> Result<()>;
    /// Fitted temperatures `[audio, visual, fused]`, for methods that calibrate.
    fn temperatures(&self) -> Option<[f32; 3]> {
        None
    }
    /// Items in the replay memory.
    fn memory_len(&self) -> usize {
        0
    }
}
