//! The audio-visual classifier: two ResNet-18 encoders, a fusion module, three heads.
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::ModuleT;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::batch_norm::RunningStats;
use crate::fusion::{Fusion, FusionModule, Modality};
use crate::init::{Builder, Registry};
use crate::resnet::ResNet18;
use crate::{ModelError, Result};

/// Architecture of the classifier; serialisable as part of an experiment config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvNetConfig {
    /// Base width of both ResNet-18s (64 in the paper); features are `8 * width`-d.
    pub width: usize,
    /// Number of classes of every head.
    pub classes: usize,
    pub fusion: Fusion,
    pub modality: Modality,
    /// Frames per clip the data pipeline feeds. Informational: the network accepts any T
    /// (frames are folded into the batch and averaged), and checkpoints do not depend on it.
    pub frames: usize,
}

impl Default for AvNetConfig {
    /// The paper's network: width 64, 100 classes, FiLM, 4 frames.
    fn default() -> Self {
        Self {
            width: 64,
            classes: 100,
            fusion: Fusion::Film,
            modality: Modality::AudioVisual,
            frames: 4,
        }
    }
}

impl AvNetConfig {
    /// Feature dimension of each encoder (`8 * width`).
    pub fn feature_dim(&self) -> usize {
        8 * self.width
    }

    fn validate(&self) -> Result<()> {
        if self.width == 0 || self.classes == 0 {
            return Err(ModelError::Config(format!(
                "width and classes must be positive, got width {} classes {}",
                self.width, self.classes
            )));
        }
        Ok(())
    }
}

/// Outputs of one forward pass.
#[derive(Debug, Clone)]
pub struct AvOutput {
    /// Audio head (`fusion_module.x_out`) [B, C].
    pub a_logits: Tensor,
    /// Visual head (`fusion_module.y_out`) [B, C].
    pub v_logits: Tensor,
    /// Fused head [B, C].
    pub av_logits: Tensor,
    /// Pooled audio features [B, d].
    pub a_feat: Tensor,
    /// Pooled visual features (mean over T, h, w) [B, d].
    pub v_feat: Tensor,
}

/// The audio-visual classifier. Cheap to clone (layers share their variables).
#[derive(Clone)]
pub struct AvNet {
    cfg: AvNetConfig,
    device: Device,
    audio_net: ResNet18,
    visual_net: ResNet18,
    fusion_module: FusionModule,
    params: Vec<(String, Var)>,
    buffers: Vec<(String, Arc<Mutex<RunningStats>>)>,
}

impl AvNet {
    /// Builds the network with the reference initialisation drawn from `rng`, in
    /// state_dict order (audio_net, visual_net, fusion_module).
    pub fn new<R: Rng>(cfg: AvNetConfig, device: &Device, rng: &mut R) -> Result<Self> {
        cfg.validate()?;
        let mut registry = Registry::default();
        let mut b = Builder::new(device, rng, &mut registry);
        let audio_net = b.pp("audio_net", |b| ResNet18::new(b, 1, cfg.width))?;
        let visual_net = b.pp("visual_net", |b| ResNet18::new(b, 3, cfg.width))?;
        let fusion_module = b.pp("fusion_module", |b| {
            FusionModule::new(b, cfg.feature_dim(), cfg.classes, cfg.fusion, cfg.modality)
        })?;
        Ok(Self {
            cfg,
            device: device.clone(),
            audio_net,
            visual_net,
            fusion_module,
            params: registry.params,
            buffers: registry.buffers,
        })
    }

    /// [`AvNet::new`] with a `ChaCha8Rng` seeded from `seed`.
    pub fn seeded(cfg: AvNetConfig, device: &Device, seed: u64) -> Result<Self> {
        Self::new(cfg, device, &mut ChaCha8Rng::seed_from_u64(seed))
    }

    pub fn config(&self) -> &AvNetConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The trainable parameters, in state_dict order (what the optimiser updates; the
    /// BatchNorm running statistics are not among them).
    pub fn trainable_vars(&self) -> Vec<Var> {
        self.params.iter().map(|(_, v)| v.clone()).collect()
    }

    /// The trainable parameters with their state_dict names, in state_dict order.
    pub fn named_trainable_vars(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Number of trainable scalars (23,025,964 for the paper's network).
    pub fn num_parameters(&self) -> usize {
        self.params.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// BatchNorm running statistics by module prefix (e.g. `audio_net.bn1`), in order.
    pub fn running_stats(&self) -> Vec<(String, RunningStats)> {
        self.buffers
            .iter()
            .map(|(k, s)| (k.clone(), lock(s).clone()))
            .collect()
    }

    pub(crate) fn buffers(&self) -> &[(String, Arc<Mutex<RunningStats>>)] {
        &self.buffers
    }

    /// Eval-mode forward for inference: like `forward_t(audio, video, false)` but every
    /// output is detached, so no autograd graph (and none of the activations it references)
    /// outlives the call. Use this when only the values are needed.
    pub fn predict(&self, audio: &Tensor, video: &Tensor) -> Result<AvOutput> {
        let out = self.forward_t(audio, video, false)?;
        Ok(AvOutput {
            a_logits: out.a_logits.detach(),
            v_logits: out.v_logits.detach(),
            av_logits: out.av_logits.detach(),
            a_feat: out.a_feat.detach(),
            v_feat: out.v_feat.detach(),
        })
    }

    /// Forward pass. `audio` f32 [B, 1, F, T]; `video` f32 [B, 3, T, H, W].
    /// `train = true` uses batch statistics in BatchNorm and updates the running statistics
    /// (like `model.train()` in PyTorch); `false` is eval mode.
    ///
    /// Both encoders always run, also for unimodal networks (whose fused head reads one of
    /// them), so all three heads' logits are always available.
    pub fn forward_t(&self, audio: &Tensor, video: &Tensor, train: bool) -> Result<AvOutput> {
        let (b, c, _, _) = audio.dims4().map_err(|_| {
            bad(
                "audio",
                format!("expected [B, 1, F, T], got {:?}", audio.dims()),
            )
        })?;
        if c != 1 {
            return Err(bad(
                "audio",
                format!("expected 1 channel, got shape {:?}", audio.dims()),
            ));
        }
        let (bv, cv, t, h, w) = video.dims5().map_err(|_| {
            bad(
                "video",
                format!("expected [B, 3, T, H, W], got {:?}", video.dims()),
            )
        })?;
        if cv != 3 {
            return Err(bad(
                "video",
                format!("expected 3 channels, got shape {:?}", video.dims()),
            ));
        }
        if bv != b {
            return Err(bad(
                "video",
                format!("batch {bv} differs from the audio batch {b}"),
            ));
        }
        for (name, x) in [("audio", audio), ("video", video)] {
            if x.dtype() != DType::F32 {
                return Err(bad(name, format!("expected f32, got {:?}", x.dtype())));
            }
        }
        let audio = &audio.contiguous()?;
        let d = self.cfg.feature_dim();
        let a_feat = self.audio_net.forward_t(audio, train)?.mean((2, 3))?;
        let frames = video
            .permute((0, 2, 1, 3, 4))?
            .contiguous()?
            .reshape((b * t, 3, h, w))?;
        let v_map = self.visual_net.forward_t(&frames, train)?;
        let (_, _, vh, vw) = v_map.dims4()?;
        let v_feat = v_map.reshape((b, t, d, vh, vw))?.mean((1, 3, 4))?;
        let heads = self.fusion_module.forward(&a_feat, &v_feat)?;
        Ok(AvOutput {
            a_logits: heads.a_logits,
            v_logits: heads.v_logits,
            av_logits: heads.av_logits,
            a_feat,
            v_feat,
        })
    }
}

fn bad(name: &'static str, reason: String) -> ModelError {
    ModelError::BadInput { name, reason }
}

pub(crate) fn lock(s: &Mutex<RunningStats>) -> std::sync::MutexGuard<'_, RunningStats> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}
