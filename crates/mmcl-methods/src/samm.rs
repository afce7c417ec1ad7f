//! SAMM (docs/method.md): two forward passes per step (current batch, memory minibatch),
//! `L_cur + L_buf` from [`mmcl_losses::samm_loss`] (weights 0.01 / 25 / 1, dynamic logit
//! selection, RKD on head logits or encoder features), a replay memory ([`crate::memory`],
//! an mmcl-buffer reservoir by default) that stores the three heads' logits from the
//! training pass at insertion, per-head temperature
//! calibration on the memory at each task end ([`Calibration`]: by default in eval mode
//! with the exact solver; `reference` reproduces the reference's training-mode LBFGS fit,
//! which also updates BatchNorm statistics), and four inference modes: audio, visual,
//! fused, calibrated dynamic weighted ensemble.

use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use mmcl_buffer::{labels_tensor, logits_tensors, SelectionPolicy};
use mmcl_losses::{
    calibrated_ensemble, fit_head_temperatures, samm_loss, HeadLogits, HeadTemperatures, SammBatch,
    SammLoss,
};
use mmcl_model::{AvNet, AvOutput, Modality};

use crate::config::{AlignOn, Calibration, SammConfig};
use crate::memory::{load_memory, new_memory, remember, save_memory, Memory};
use crate::method::{compact_tensors, Method, Net, StepEnv, TrainBatch};
use crate::mode::InferenceMode;
use crate::{write_atomic, MethodError, MethodKind, Result};

const TEMPERATURES_FILE: &str = "temperatures.json";

/// The SAMM method.
pub struct Samm {
    cfg: SammConfig,
    memory: Memory,
    minibatch: usize,
    temperatures: HeadTemperatures,
}

impl Samm {
    /// SAMM needs the audio and visual heads, so only the audio-visual network.
    pub fn new(
        cfg: SammConfig,
        buffer_size: usize,
        policy: SelectionPolicy,
        minibatch: usize,
        modality: Modality,
    ) -> Result<Self> {
        if modality != Modality::AudioVisual {
            return Err(MethodError::Config(format!(
                "SAMM aligns the audio and visual heads and needs the audio-visual network, got modality {modality:?}"
            )));
        }
        Ok(Samm {
            cfg,
            memory: new_memory(buffer_size, policy)?,
            minibatch,
            temperatures: HeadTemperatures::default(),
        })
    }
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// A memory minibatch (drawn with the memory's generator) as [`samm_step`] consumes it.
    fn replay_batch(&mut self, env: &mut StepEnv, device: &Device) -> Result<ReplayBatch> {
        let items = self.memory.sample(self.minibatch);
        let (audio, video) = compact_tensors(env.loader, &items, device)?;
        let targets = labels_tensor(&items, device)?;
        let [a, v, f] = logits_tensors(&items, device)?;
        Ok(ReplayBatch {
            audio,
            video,
            targets,
            stored: HeadLogits::new(a, v, f)?,
        })
    }
}

/// A memory minibatch as one SAMM step consumes it.
#[derive(Debug, Clone)]
pub struct ReplayBatch {
    /// `[B, 1, F, T]` (un-augmented) spectrograms.
    pub audio: Tensor,
    /// `[B, 3, T, S, S]` frames.
    pub video: Tensor,
    /// `u32` targets `[B]`.
    pub targets: Tensor,
    /// The three heads' logits stored when the samples entered the memory (`[B, C]` each).
    pub stored: HeadLogits,
}

/// What one [`samm_step`] computed. Every tensor is detached (no graph outlives the step).
pub struct SammStep {
    /// The loss value the step backpropagated (`loss.total`).
    pub value: f32,
    /// The loss and its parts, and the head dynamic logit selection chose per memory sample.
    pub loss: SammLoss,
    /// The current batch's training-pass outputs, before the update (what the memory stores).
    pub outputs: AvOutput,
    /// The gradients of the trainable variables the optimiser stepped with.
    pub grads: GradStore,
}

fn align_of<'a>(cfg: &SammConfig, out: &'a AvOutput) -> Result<Option<(&'a Tensor, &'a Tensor)>> {
    Ok(match cfg.align_on {
        AlignOn::Logits => None,
        AlignOn::Features => Some((out.audio_features()?, out.visual_features()?)),
    })
}

/// One SAMM training step on explicit tensors: a training-mode forward pass of the current
/// batch (`audio`, `video`, `u32` `targets`), then, with a `replay` batch, one of the memory
/// minibatch (two passes, so BatchNorm statistics update twice, as the reference); the SAMM
/// objective ([`samm_loss`]) with `cfg`'s weights; backward and one optimiser step.
/// [`Samm::observe`] is this plus drawing the minibatch and updating the memory.
pub fn samm_step(
    cfg: &SammConfig,
    net: &mut Net,
    audio: &Tensor,
    video: &Tensor,
    targets: &Tensor,
    replay: Option<&ReplayBatch>,
) -> Result<SammStep> {
    let loss_cfg = cfg.loss_config();
    let out = net.model.forward_t(audio, video, true)?;
    let logits = head_logits(&out)?;
    let current = SammBatch {
        logits: &logits,
        labels: targets,
        align: align_of(cfg, &out)?,
    };
    let loss = match replay {
        None => samm_loss(&loss_cfg, &current, None)?,
        Some(r) => {
            let out_b = net.model.forward_t(&r.audio, &r.video, true)?;
            let logits_b = head_logits(&out_b)?;
            let buffer = SammBatch {
                logits: &logits_b,
                labels: &r.targets,
                align: align_of(cfg, &out_b)?,
            };
            samm_loss(&loss_cfg, &current, Some((&buffer, &r.stored)))?
        }
    };
    let (value, grads) = net.step_with_grads(&loss.total)?;
    Ok(SammStep {
        value,
        loss: SammLoss {
            total: loss.total.detach(),
            current: loss.current.detach(),
            buffer: loss.buffer.as_ref().map(Tensor::detach),
            selected: loss.selected,
        },
        outputs: out.detach(),
        grads,
    })
}

fn head_logits(out: &AvOutput) -> Result<HeadLogits> {
    Ok(HeadLogits::new(
        out.audio_logits()?.clone(),
        out.visual_logits()?.clone(),
        out.av_logits.clone(),
    )?)
}

fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(t.detach()
        .to_dtype(candle_core::DType::F32)?
        .to_vec2::<f32>()?)
}

impl Method for Samm {
    fn kind(&self) -> MethodKind {
        MethodKind::Samm
    }
    fn modes(&self) -> Vec<InferenceMode> {
        vec![
            InferenceMode::Av,
            InferenceMode::Audio,
            InferenceMode::Visual,
            InferenceMode::Ensemble,
        ]
    }

    fn observe(&mut self, net: &mut Net, batch: &TrainBatch, env: &mut StepEnv) -> Result<f32> {
        let device = net.model.device().clone();
        let y = batch.target_tensor(&device)?;
        let replay = if self.memory.is_empty() {
            None
        } else {
            Some(self.replay_batch(env, &device)?)
        };
        // Keep only what the memory needs; the gradients are freed here.
        let SammStep { value, outputs, .. } = samm_step(
            &self.cfg,
            net,
            &batch.audio,
            &batch.video,
            &y,
            replay.as_ref(),
        )?;
        // The logits of the training pass (before this step's update), as the reference.
        let stored = [
            rows(outputs.audio_logits()?)?,
            rows(outputs.visual_logits()?)?,
            rows(&outputs.av_logits)?,
        ];
        remember(&mut self.memory, batch, Some(stored), env)?;
        Ok(value)
    }

    fn end_task(&mut self, net: &mut Net, env: &mut StepEnv) -> Result<()> {
        if self.memory.is_empty() {
            return Ok(());
        }
        let device = net.model.device().clone();
        let (mut a, mut v, mut f, mut y) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let cal: Calibration = self.cfg.calibration;
        let items = self.memory.all();
        let used = cal.samples(items.len());
        if used == 0 {
            // Fewer samples than one reference batch (the reference would fail on an empty
            // logit list): keep the previous temperatures.
            return Ok(());
        }
        for chunk in items[..used].chunks(cal.chunk()) {
            let (ba, bv) = compact_tensors(env.loader, chunk, &device)?;
            let out = net.model.forward_t(&ba, &bv, cal.train_mode())?;
            a.push(out.audio_logits()?.detach());
            v.push(out.visual_logits()?.detach());
            f.push(out.av_logits.detach());
            y.extend(chunk.iter().map(|it| it.target));
        }
        let (a, v, f) = (
            Tensor::cat(&a, 0)?,
            Tensor::cat(&v, 0)?,
            Tensor::cat(&f, 0)?,
        );
        for (head, t) in [("audio", &a), ("visual", &v), ("fused", &f)] {
            let values = t
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            if !values.iter().all(|v| v.is_finite()) {
                return Err(MethodError::NonFiniteOutput(format!(
                    "the {head} head's logits on the replay memory (for the temperature fit)"
                )));
            }
        }
        let logits = HeadLogits::new(a, v, f)?;
        let n = y.len();
        let labels = Tensor::from_vec(y, n, &device)?;
        self.temperatures = fit_head_temperatures(&logits, &labels, self.cfg.calibration.solver())?;
        Ok(())
    }

    fn predict(&self, model: &AvNet, audio: &Tensor, video: &Tensor) -> Result<Vec<Tensor>> {
        let out = model.forward_t(audio, video, false)?;
        let logits = head_logits(&out)?;
        let ensemble = calibrated_ensemble(&logits, self.temperatures)?;
        let (a, v) = (out.audio_logits()?.clone(), out.visual_logits()?.clone());
        Ok(vec![out.av_logits, a, v, ensemble])
    }

    fn save_state(&self, dir: &Path) -> Result<()> {
        save_memory(&self.memory, dir)?;
        let text = serde_json::to_string(&self.temperatures).expect("temperatures serialise");
        write_atomic(&dir.join(TEMPERATURES_FILE), text.as_bytes())
    }

    fn load_state(&mut self, dir: &Path) -> Result<()> {
        self.memory = load_memory(dir, self.memory.capacity(), self.memory.policy())?;
        let path = dir.join(TEMPERATURES_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| MethodError::Io {
            path: path.clone(),
            source: e,
        })?;
        self.temperatures = serde_json::from_str(&text).map_err(|e| MethodError::State {
            path,
            reason: e.to_string(),
        })?;
        Ok(())
    }

    fn temperatures(&self) -> Option<[f32; 3]> {
        Some(self.temperatures.0)
    }
    fn memory_len(&self) -> usize {
        self.memory.len()
    }
}
