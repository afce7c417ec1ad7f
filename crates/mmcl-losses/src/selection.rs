//! The three heads' logits and SAMM's dynamic logit selection for the consistency target.

use candle_core::{DType, Tensor};

use crate::classification::true_class_probability;
use crate::error::{dims2, same_shape, Result};

/// One of the network's three classification heads, in the reference's selection order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Head {
    /// Audio head (`fusion_module.x_out`).
    Audio,
    /// Visual head (`fusion_module.y_out`).
    Visual,
    /// Multimodal (fused) head (`fusion_module.fc_out`).
    Fused,
}

impl Head {
    /// All heads in selection order: audio, visual, fused.
    pub const ALL: [Head; 3] = [Head::Audio, Head::Visual, Head::Fused];

    /// Position in [`Head::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Logits `[batch, classes]` of the three heads for one batch.
#[derive(Clone, Debug)]
pub struct HeadLogits {
    pub audio: Tensor,
    pub visual: Tensor,
    pub fused: Tensor,
}

impl HeadLogits {
    /// Bundles three same-shaped `[batch, classes]` logit tensors.
    pub fn new(audio: Tensor, visual: Tensor, fused: Tensor) -> Result<Self> {
        dims2(&audio, "HeadLogits audio")?;
        same_shape(&audio, &visual, "HeadLogits visual")?;
        same_shape(&audio, &fused, "HeadLogits fused")?;
        Ok(Self {
            audio,
            visual,
            fused,
        })
    }

    /// The logits of `head`.
    pub fn get(&self, head: Head) -> &Tensor {
        match head {
            Head::Audio => &self.audio,
            Head::Visual => &self.visual,
            Head::Fused => &self.fused,
        }
    }

    /// `(batch, classes)`.
    pub fn dims(&self) -> Result<(usize, usize)> {
        dims2(&self.audio, "HeadLogits")
    }

    /// The same logits, detached from the graph (e.g. to store in the buffer).
    pub fn detach(&self) -> Self {
        Self {
            audio: self.audio.detach(),
            visual: self.visual.detach(),
            fused: self.fused.detach(),
        }
    }
}

/// Result of dynamic logit selection.
#[derive(Clone, Debug)]
pub struct Selection {
    /// `[batch, classes]` targets (detached), row `i` taken from `stored.get(heads[i])`.
    pub targets: Tensor,
    /// The chosen head per sample.
    pub heads: Vec<Head>,
}

/// SAMM's dynamic logit selection: per sample, the current model's softmax probability of the
/// true class under each head (audio, visual, fused); the head with the highest wins (the first
/// on ties), and the target is that head's logits *stored* in the buffer at insertion time.
pub fn select_targets(
    current: &HeadLogits,
    stored: &HeadLogits,
    labels: &Tensor,
) -> Result<Selection> {
    let (batch, classes) = current.dims()?;
    same_shape(
        &current.audio,
        &stored.audio,
        "select_targets stored logits",
    )?;
    let mut probs = Vec::with_capacity(3);
    for head in Head::ALL {
        let p = true_class_probability(current.get(head), labels)?;
        probs.push(p.to_dtype(DType::F64)?.to_vec1::<f64>()?);
    }
    let mut heads = Vec::with_capacity(batch);
    let mut rows = Vec::with_capacity(batch);
    #[allow(clippy::needless_range_loop)] // i indexes three parallel per-head vectors
    for i in 0..batch {
        let mut best = 0;
        for h in 1..3 {
            if probs[h][i] > probs[best][i] {
                best = h;
            }
        }
        heads.push(Head::ALL[best]);
        rows.push((best * batch + i) as u32);
    }
    let stacked = Tensor::cat(&[&stored.audio, &stored.visual, &stored.fused], 0)?.detach();
    let index = Tensor::from_vec(rows, batch, stacked.device())?;
    let targets = stacked.index_select(&index, 0)?;
    debug_assert_eq!(targets.dims(), [batch, classes]);
    Ok(Selection { targets, heads })
}
