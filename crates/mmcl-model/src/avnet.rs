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

/// Outputs of one forward pass. A unimodal network holds one encoder and the heads on it,
/// so the other modality's features and head are `None` (an audio network has `a_logits`,
/// `a_feat` and the fused `av_logits`; a visual one `v_logits`, `v_feat`, `av_logits`).
#[derive(Debug, Clone)]
pub struct AvOutput {
    /// Audio head (`fusion_module.x_out`) [B, C].
    pub a_logits: Option<Tensor>,
    /// Visual head (`fusion_module.y_out`) [B, C].
    pub v_logits: Option<Tensor>,
    /// Fused head [B, C] (for a unimodal network: `fc_out` on its one modality).
    pub av_logits: Tensor,
    /// Pooled audio features [B, d].
    pub a_feat: Option<Tensor>,
    /// Pooled visual features (mean over T, h, w) [B, d].
    pub v_feat: Option<Tensor>,
}

impl AvOutput {
    /// The audio head's logits, or an error for a visual-only network.
    pub fn audio_logits(&self) -> Result<&Tensor> {
        present(&self.a_logits, "audio head")
    }

    /// The visual head's logits, or an error for an audio-only network.
    pub fn visual_logits(&self) -> Result<&Tensor> {
        present(&self.v_logits, "visual head")
    }

    /// The pooled audio features, or an error for a visual-only network.
    pub fn audio_features(&self) -> Result<&Tensor> {
        present(&self.a_feat, "audio features")
    }

    /// The pooled visual features, or an error for an audio-only network.
    pub fn visual_features(&self) -> Result<&Tensor> {
        present(&self.v_feat, "visual features")
    }

    /// Every output detached from the autograd graph.
    pub fn detach(&self) -> Self {
        let d = |t: &Option<Tensor>| t.as_ref().map(Tensor::detach);
        Self {
            a_logits: d(&self.a_logits),
            v_logits: d(&self.v_logits),
            av_logits: self.av_logits.detach(),
            a_feat: d(&self.a_feat),
            v_feat: d(&self.v_feat),
        }
    }
}

fn present<'a>(t: &'a Option<Tensor>, what: &str) -> Result<&'a Tensor> {
    t.as_ref().ok_or_else(|| {
        ModelError::Config(format!(
            "a unimodal network holds one encoder and has no {what}; this needs the audio-visual network"
        ))
    })
}

/// The audio-visual classifier. Cheap to clone (layers share their variables). A unimodal
/// network ([`Modality::Audio`] / [`Modality::Visual`]) holds, runs and saves only its own
/// encoder, the head on it and the fused head.
#[derive(Clone)]
pub struct AvNet {
    cfg: AvNetConfig,
    device: Device,
    audio_net: Option<ResNet18>,
    visual_net: Option<ResNet18>,
    fusion_module: FusionModule,
    params: Vec<(String, Var)>,
    buffers: Vec<(String, Arc<Mutex<RunningStats>>)>,
}

impl AvNet {
    /// Builds the network with the reference initialisation drawn from `rng`, in
    /// state_dict order (audio_net, visual_net, fusion_module). A unimodal network still
    /// draws (and discards) the values of the encoder and head it does not hold, so what it
    /// holds gets the same values as in the full-layout network built from the same RNG.
    pub fn new<R: Rng>(cfg: AvNetConfig, device: &Device, rng: &mut R) -> Result<Self> {
        cfg.validate()?;
        let mut registry = Registry::default();
        let mut b = Builder::new(device, rng, &mut registry);
        let audio_net = encoder(&mut b, "audio_net", 1, cfg, Modality::Audio)?;
        let visual_net = encoder(&mut b, "visual_net", 3, cfg, Modality::Visual)?;
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
        Ok(self.forward_t(audio, video, false)?.detach())
    }

    /// Forward pass. `audio` f32 [B, 1, F, T]; `video` f32 [B, 3, T, H, W].
    /// `train = true` uses batch statistics in BatchNorm and updates the running statistics
    /// (like `model.train()` in PyTorch); `false` is eval mode.
    ///
    /// Only the encoders the network holds run: a unimodal network checks both inputs (so
    /// every caller keeps one data path) but never reads the other modality's.
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
        let a_feat = match &self.audio_net {
            Some(net) => Some(net.forward_t(audio, train)?.mean((2, 3))?),
            None => None,
        };
        let v_feat = match &self.visual_net {
            Some(net) => {
                let frames =
                    video
                        .permute((0, 2, 1, 3, 4))?
                        .contiguous()?
                        .reshape((b * t, 3, h, w))?;
                let v_map = net.forward_t(&frames, train)?;
                let (_, _, vh, vw) = v_map.dims4()?;
                Some(v_map.reshape((b, t, d, vh, vw))?.mean((1, 3, 4))?)
            }
            None => None,
        };
        let heads = self
            .fusion_module
            .forward(a_feat.as_ref(), v_feat.as_ref())?;
        Ok(AvOutput {
            a_logits: heads.a_logits,
            v_logits: heads.v_logits,
            av_logits: heads.av_logits,
            a_feat,
            v_feat,
        })
    }
}

/// Builds the encoder `name` (on `in_channels`) when a `cfg.modality` network holds it;
/// otherwise draws its values and discards them.
fn encoder<R: Rng>(
    b: &mut Builder<'_, R>,
    name: &str,
    in_channels: usize,
    cfg: AvNetConfig,
    own: Modality,
) -> Result<Option<ResNet18>> {
    let build = |b: &mut Builder<'_, R>| ResNet18::new(b, in_channels, cfg.width);
    if cfg.modality.holds(own) {
        Ok(Some(b.pp(name, build)?))
    } else {
        b.discarding(|b| b.pp(name, build))?;
        Ok(None)
    }
}

fn bad(name: &'static str, reason: String) -> ModelError {
    ModelError::BadInput { name, reason }
}

pub(crate) fn lock(s: &Mutex<RunningStats>) -> std::sync::MutexGuard<'_, RunningStats> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}
