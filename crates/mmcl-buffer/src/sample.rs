//! The stored item of SAMM / ER: the loader's compact un-augmented sample, the training
//! target and the logits the model produced when the sample entered the buffer.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use mmcl_data::loader::CompactSample;

use crate::error::{BufferError, Result};
use crate::replay::Labelled;

/// The three heads' logits at insertion time (never refreshed), each of length `classes`.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredLogits {
    pub audio: Vec<f32>,
    pub visual: Vec<f32>,
    pub fused: Vec<f32>,
}

impl StoredLogits {
    /// Checks the three vectors have the same length; returns it.
    pub fn classes(&self) -> Result<usize> {
        let c = self.audio.len();
        if self.visual.len() != c || self.fused.len() != c {
            return Err(BufferError::BadSample(format!(
                "logit lengths differ: audio {}, visual {}, fused {}",
                c,
                self.visual.len(),
                self.fused.len()
            )));
        }
        Ok(c)
    }
}

/// One memory item: a loader's [`CompactSample`] (shared, never copied on the way in or out),
/// the target it is trained with and, for SAMM, the logits the model produced when it
/// entered the memory.
///
/// Memory per item at paper scale (4 frames at 224x224, 16 kHz audio, 100 classes):
/// frames 4*224*224*3 = 602,112 B; audio 5 s = 160,000 B (10 s = 320,000 B); logits
/// 3*100*4 = 1,200 B; about 0.76 MB with a 5 s crop (0.92 MB with the full 10 s), i.e.
/// 1.5 GB (1.8 GB) of host memory for 2000 samples, against ~13 GB of GPU memory for the
/// reference's 360x360 f32 frames. See [`MemoryItem::payload_bytes`].
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryItem {
    /// The un-augmented inputs, dataset index and labels.
    pub sample: Arc<CompactSample>,
    /// The target the sample is trained with (its class, or its supercategory under
    /// domain-incremental learning): what [`Labelled`] reports, so what class-balanced
    /// selection balances.
    pub target: u32,
    /// Logits at insertion (SAMM); `None` for methods that store targets only (ER).
    pub logits: Option<StoredLogits>,
}

impl Labelled for MemoryItem {
    fn label(&self) -> u32 {
        self.target
    }
}

// Lets the loader turn memory items into model inputs directly (`Loader::compact_inputs`).
impl AsRef<CompactSample> for MemoryItem {
    fn as_ref(&self) -> &CompactSample {
        &self.sample
    }
}

impl MemoryItem {
    /// Builds an item, checking the sample's frames match their shape and the logits agree.
    pub fn new(
        sample: Arc<CompactSample>,
        target: u32,
        logits: Option<StoredLogits>,
    ) -> Result<Self> {
        let s = Self {
            sample,
            target,
            logits,
        };
        s.validate()?;
        Ok(s)
    }

    /// Checks internal consistency.
    pub fn validate(&self) -> Result<()> {
        self.sample
            .validate()
            .map_err(|e| BufferError::BadSample(e.to_string()))?;
        if let Some(l) = &self.logits {
            l.classes()?;
        }
        Ok(())
    }

    /// Bytes of payload held (audio + frames + logits), excluding small fixed overhead
    /// (shape, labels).
    pub fn payload_bytes(&self) -> usize {
        self.sample.payload_bytes()
            + self
                .logits
                .as_ref()
                .map_or(0, |l| 4 * (l.audio.len() + l.visual.len() + l.fused.len()))
    }
}

/// Payload bytes of one sample of `frames` frames at `height x width`, `audio_samples` samples
/// and `classes` logits per head.
pub fn bytes_per_sample(
    frames: usize,
    height: usize,
    width: usize,
    audio_samples: usize,
    classes: usize,
) -> usize {
    frames * height * width * 3 + audio_samples * 2 + 3 * classes * 4
}

/// The stored logits of `samples` as three `[n, classes]` f32 tensors (audio, visual, fused),
/// ready to be the consistency targets' source.
pub fn logits_tensors(samples: &[&MemoryItem], device: &Device) -> Result<[Tensor; 3]> {
    let first = samples
        .first()
        .ok_or_else(|| BufferError::InvalidArgument("no samples".into()))?;
    let classes = first
        .logits
        .as_ref()
        .ok_or_else(|| BufferError::BadSample("sample has no stored logits".into()))?
        .classes()?;
    let mut rows: [Vec<f32>; 3] = Default::default();
    for (i, s) in samples.iter().enumerate() {
        let l = s
            .logits
            .as_ref()
            .ok_or_else(|| BufferError::BadSample(format!("sample {i} has no stored logits")))?;
        if l.classes()? != classes {
            return Err(BufferError::BadSample(format!(
                "sample {i} has {} classes, sample 0 has {classes}",
                l.classes()?
            )));
        }
        rows[0].extend_from_slice(&l.audio);
        rows[1].extend_from_slice(&l.visual);
        rows[2].extend_from_slice(&l.fused);
    }
    let n = samples.len();
    let [a, v, f] = rows;
    Ok([
        Tensor::from_vec(a, (n, classes), device)?,
        Tensor::from_vec(v, (n, classes), device)?,
        Tensor::from_vec(f, (n, classes), device)?,
    ])
}

/// Training targets of `samples` as a `u32` tensor `[n]`.
pub fn labels_tensor(samples: &[&MemoryItem], device: &Device) -> Result<Tensor> {
    let labels: Vec<u32> = samples.iter().map(|s| s.target).collect();
    let n = labels.len();
    Ok(Tensor::from_vec(labels, n, device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(audio: usize, frames: usize, shape: [usize; 3]) -> Arc<CompactSample> {
        Arc::new(CompactSample {
            index: 7,
            label: 3,
            super_label: 1,
            audio: vec![0; audio],
            sample_rate: 16_000,
            frames: vec![0; frames],
            frame_shape: shape,
        })
    }

    #[test]
    fn paper_scale_sample_is_under_one_megabyte() {
        let five_s = bytes_per_sample(4, 224, 224, 5 * 16_000, 100);
        let ten_s = bytes_per_sample(4, 224, 224, 10 * 16_000, 100);
        assert_eq!(five_s, 763_312);
        assert_eq!(ten_s, 923_312);
        assert!(ten_s < 1_000_000);
        let s = MemoryItem::new(
            sample(80_000, 4 * 224 * 224 * 3, [4, 224, 224]),
            3,
            Some(StoredLogits {
                audio: vec![0.0; 100],
                visual: vec![0.0; 100],
                fused: vec![0.0; 100],
            }),
        )
        .unwrap();
        assert_eq!(s.payload_bytes(), five_s);
    }

    #[test]
    fn inconsistent_samples_are_rejected() {
        let err = MemoryItem::new(sample(0, 10, [1, 2, 2]), 0, None).unwrap_err();
        assert!(matches!(err, BufferError::BadSample(_)), "{err}");
        let bad = StoredLogits {
            audio: vec![0.0; 3],
            visual: vec![0.0; 2],
            fused: vec![0.0; 3],
        };
        assert!(MemoryItem::new(sample(0, 12, [1, 2, 2]), 0, Some(bad)).is_err());
    }
}
