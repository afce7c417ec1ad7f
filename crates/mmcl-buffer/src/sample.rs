//! The stored item of SAMM / ER: compact un-augmented inputs, label and the logits the model
//! produced when the sample entered the buffer.

use candle_core::{Device, Tensor};

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

/// Where a stored sample came from: its index in the source dataset and its labels there.
/// Kept so a data pipeline's own sample type round-trips losslessly through the buffer (and
/// so one can trace what the memory holds); 16 bytes per sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleOrigin {
    /// Index of the sample in its dataset (e.g. the prepared cache).
    pub index: u64,
    /// Its class.
    pub class: u32,
    /// Its supercategory (the domain-incremental target).
    pub super_class: u32,
}

/// One buffer sample.
///
/// Audio is kept as the 16-bit PCM waveform (what the prepared WAVs hold, so lossless for them):
/// the spectrogram is recomputed at replay, which costs little, keeps any crop choice open, and
/// a 5 s waveform (160 kB) is no larger than its f16 129x626 spectrogram (161 kB). Frames are
/// u8 RGB `[T, H, W, 3]`, un-augmented (the evaluation-style resize).
///
/// Memory per sample at paper scale (4 frames at 224x224, 16 kHz audio, 100 classes):
/// frames 4*224*224*3 = 602,112 B; audio 5 s = 160,000 B (10 s = 320,000 B); logits
/// 3*100*4 = 1,200 B; about 0.76 MB with a 5 s crop (0.92 MB with the full 10 s), i.e.
/// 1.5 GB (1.8 GB) of host memory for 2000 samples, against ~13 GB of GPU memory for the
/// reference's 360x360 f32 frames. See [`StoredSample::payload_bytes`].
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSample {
    /// Mono waveform, `round(x * 32768)` clamped to i16 (see [`quantize_audio`]).
    pub audio: Vec<i16>,
    pub sample_rate: u32,
    /// RGB frames, row-major `[T, H, W, 3]`.
    pub frames: Vec<u8>,
    /// `[T, H, W]` of `frames`.
    pub frame_shape: [usize; 3],
    /// The target the sample is trained with (its class, or its supercategory under
    /// domain-incremental learning): what [`Labelled`] reports, so what class-balanced
    /// selection balances.
    pub label: u32,
    /// Dataset index and labels of the source sample.
    pub origin: SampleOrigin,
    /// Logits at insertion (SAMM); `None` for methods that store labels only (ER).
    pub logits: Option<StoredLogits>,
}

impl Labelled for StoredSample {
    fn label(&self) -> u32 {
        self.label
    }
}

impl StoredSample {
    /// Builds a sample, checking the frame buffer matches its shape and the logits agree.
    pub fn new(
        audio: Vec<i16>,
        sample_rate: u32,
        frames: Vec<u8>,
        frame_shape: [usize; 3],
        label: u32,
        origin: SampleOrigin,
        logits: Option<StoredLogits>,
    ) -> Result<Self> {
        let s = Self {
            audio,
            sample_rate,
            frames,
            frame_shape,
            label,
            origin,
            logits,
        };
        s.validate()?;
        Ok(s)
    }

    /// Checks internal consistency.
    pub fn validate(&self) -> Result<()> {
        let [t, h, w] = self.frame_shape;
        if self.frames.len() != t * h * w * 3 {
            return Err(BufferError::BadSample(format!(
                "frames hold {} bytes, shape [{t}, {h}, {w}, 3] needs {}",
                self.frames.len(),
                t * h * w * 3
            )));
        }
        if let Some(l) = &self.logits {
            l.classes()?;
        }
        Ok(())
    }

    /// Bytes of payload held (audio + frames + logits), excluding small fixed overhead
    /// (shape, labels, origin).
    pub fn payload_bytes(&self) -> usize {
        self.audio.len() * 2
            + self.frames.len()
            + self
                .logits
                .as_ref()
                .map_or(0, |l| 4 * (l.audio.len() + l.visual.len() + l.fused.len()))
    }

    /// The waveform back as f32 in [-1, 1).
    pub fn audio_f32(&self) -> Vec<f32> {
        dequantize_audio(&self.audio)
    }
}

/// f32 samples to i16 as `round(x * 32768)` clamped: exact for 16-bit PCM decoded as `x/32768`.
pub fn quantize_audio(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// i16 samples to f32 as `x / 32768`.
pub fn dequantize_audio(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|&x| x as f32 / 32768.0).collect()
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
pub fn logits_tensors(samples: &[&StoredSample], device: &Device) -> Result<[Tensor; 3]> {
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

/// Labels of `samples` as a `u32` tensor `[n]`.
pub fn labels_tensor(samples: &[&StoredSample], device: &Device) -> Result<Tensor> {
    let labels: Vec<u32> = samples.iter().map(|s| s.label).collect();
    let n = labels.len();
    Ok(Tensor::from_vec(labels, n, device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: SampleOrigin = SampleOrigin {
        index: 7,
        class: 3,
        super_class: 1,
    };

    #[test]
    fn paper_scale_sample_is_under_one_megabyte() {
        let five_s = bytes_per_sample(4, 224, 224, 5 * 16_000, 100);
        let ten_s = bytes_per_sample(4, 224, 224, 10 * 16_000, 100);
        assert_eq!(five_s, 763_312);
        assert_eq!(ten_s, 923_312);
        assert!(ten_s < 1_000_000);
        let s = StoredSample::new(
            vec![0; 80_000],
            16_000,
            vec![0; 4 * 224 * 224 * 3],
            [4, 224, 224],
            3,
            ORIGIN,
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
    fn pcm16_roundtrip_is_exact() {
        let pcm: Vec<i16> = vec![-32768, -1, 0, 1, 12345, 32767];
        assert_eq!(quantize_audio(&dequantize_audio(&pcm)), pcm);
        assert_eq!(quantize_audio(&[2.0, -2.0]), vec![32767, -32768]);
    }

    #[test]
    fn inconsistent_samples_are_rejected() {
        assert!(
            StoredSample::new(vec![], 16_000, vec![0; 10], [1, 2, 2], 0, ORIGIN, None).is_err()
        );
        let bad = StoredLogits {
            audio: vec![0.0; 3],
            visual: vec![0.0; 2],
            fused: vec![0.0; 3],
        };
        assert!(
            StoredSample::new(vec![], 16_000, vec![0; 12], [1, 2, 2], 0, ORIGIN, Some(bad))
                .is_err()
        );
    }
}
