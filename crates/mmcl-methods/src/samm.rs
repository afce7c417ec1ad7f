//! SAMM (SAMM.md section 4): two forward passes per step (current batch, memory minibatch),
//! `L_cur + L_buf` from [`mmcl_losses::samm_loss`] (weights 0.01 / 25 / 1, dynamic logit
//! selection, RKD on head logits or encoder features), a reservoir memory that stores the
//! three heads' logits from the training pass at insertion, per-head temperature
//! calibration on the whole memory at each task end (network in EVAL mode, unlike the
//! reference, which leaves it in training mode and so updates BatchNorm statistics), and
//! four inference modes: audio, visual, fused, calibrated dynamic weighted ensemble.

use std::path::Path;

use candle_core::Tensor;
use mmcl_losses::{
    calibrated_ensemble, fit_head_temperatures, samm_loss, HeadLogits, HeadTemperatures, SammBatch,
};
use mmcl_model::{AvNet, AvOutput, Modality};

use crate::config::{AlignOn, SammConfig};
use crate::er::{remember, MEMORY_FILE};
use crate::memory::Memory;
use crate::method::{compact_tensors, Method, Net, StepEnv, TrainBatch};
use crate::mode::InferenceMode;
use crate::{write_atomic, MethodError, MethodKind, Result};

const TEMPERATURES_FILE: &str = "temperatures.json";
/// Memory samples per forward pass during calibration.
const CALIBRATION_CHUNK: usize = 64;

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
            memory: Memory::new(buffer_size),
            minibatch,
            temperatures: HeadTemperatures::default(),
        })
    }
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    fn align<'a>(&self, out: &'a AvOutput) -> Option<(&'a Tensor, &'a Tensor)> {
        match self.cfg.align_on {
            AlignOn::Logits => None,
            AlignOn::Features => Some((&out.a_feat, &out.v_feat)),
        }
    }
}

fn head_logits(out: &AvOutput) -> Result<HeadLogits> {
    Ok(HeadLogits::new(
        out.a_logits.clone(),
        out.v_logits.clone(),
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
        let loss_cfg = self.cfg.loss_config();
        let y = batch.target_tensor(&device)?;
        let out = net.model.forward_t(&batch.audio, &batch.video, true)?;
        let logits = head_logits(&out)?;
        let current = SammBatch {
            logits: &logits,
            labels: &y,
            align: self.align(&out),
        };
        let loss = if self.memory.is_empty() {
            samm_loss(&loss_cfg, &current, None)?
        } else {
            let items = self.memory.sample(self.minibatch, env.rng);
            let samples: Vec<_> = items.iter().map(|it| &it.sample).collect();
            let (ba, bv) = compact_tensors(env.loader, &samples, &device)?;
            let yb_vec: Vec<u32> = items.iter().map(|it| it.target).collect();
            let yb = Tensor::from_vec(yb_vec, items.len(), &device)?;
            let stored_head = |h: usize| -> Result<Tensor> {
                let flat: Vec<f32> = items
                    .iter()
                    .map(|it| {
                        it.logits
                            .as_ref()
                            .map(|l| l[h].as_slice())
                            .ok_or(MethodError::Config("memory item without logits".into()))
                    })
                    .collect::<Result<Vec<_>>>()?
                    .concat();
                let c = flat.len() / items.len();
                Ok(Tensor::from_vec(flat, (items.len(), c), &device)?)
            };
            let stored = HeadLogits::new(stored_head(0)?, stored_head(1)?, stored_head(2)?)?;
            let out_b = net.model.forward_t(&ba, &bv, true)?;
            let logits_b = head_logits(&out_b)?;
            let buffer = SammBatch {
                logits: &logits_b,
                labels: &yb,
                align: self.align(&out_b),
            };
            samm_loss(&loss_cfg, &current, Some((&buffer, &stored)))?
        };
        let value = net.step(&loss.total)?;
        // The logits of the training pass (before this step's update), as the reference.
        let stored = [
            rows(&out.a_logits)?,
            rows(&out.v_logits)?,
            rows(&out.av_logits)?,
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
        for chunk in self.memory.items().chunks(CALIBRATION_CHUNK) {
            let samples: Vec<_> = chunk.iter().map(|it| &it.sample).collect();
            let (ba, bv) = compact_tensors(env.loader, &samples, &device)?;
            let out = net.model.forward_t(&ba, &bv, false)?;
            a.push(out.a_logits.detach());
            v.push(out.v_logits.detach());
            f.push(out.av_logits.detach());
            y.extend(chunk.iter().map(|it| it.target));
        }
        let logits = HeadLogits::new(
            Tensor::cat(&a, 0)?,
            Tensor::cat(&v, 0)?,
            Tensor::cat(&f, 0)?,
        )?;
        let n = y.len();
        let labels = Tensor::from_vec(y, n, &device)?;
        self.temperatures = fit_head_temperatures(&logits, &labels, self.cfg.calibration.solver())?;
        Ok(())
    }

    fn predict(&self, model: &AvNet, audio: &Tensor, video: &Tensor) -> Result<Vec<Tensor>> {
        let out = model.forward_t(audio, video, false)?;
        let logits = head_logits(&out)?;
        let ensemble = calibrated_ensemble(&logits, self.temperatures)?;
        Ok(vec![out.av_logits, out.a_logits, out.v_logits, ensemble])
    }

    fn save_state(&self, dir: &Path) -> Result<()> {
        self.memory.save(&dir.join(MEMORY_FILE))?;
        let text = serde_json::to_string(&self.temperatures).expect("temperatures serialise");
        write_atomic(&dir.join(TEMPERATURES_FILE), text.as_bytes())
    }

    fn load_state(&mut self, dir: &Path) -> Result<()> {
        self.memory = Memory::load(&dir.join(MEMORY_FILE))?;
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
