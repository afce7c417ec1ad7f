//! The reference audio transform: tile, crop, clip, log-spectrogram.
//!
//! Tiling repeats the waveform (doubling, as the reference does) until it is at least
//! `min_len_s` long; the crop of `crop_s` seconds starts at a sample offset that the caller
//! chooses: [`AudioTransform::random_offset`] draws it uniformly from
//! `0..=min(max_offset_s * sr, tiled_len - crop_len)` with the caller's seeded RNG (training),
//! [`AudioTransform::center_offset`] gives the centre (evaluation; the reference crops randomly
//! at test time too, we use the centre so evaluation is deterministic).
use rand::Rng;

use crate::error::{MediaError, Result};
use crate::fast::TransformScratch;
use crate::spectrogram::{Spectrogram, SpectrogramConfig, Stft};

/// Parameters of the audio transform; the default is the reference's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioTransformConfig {
    /// Sample rate of the waveforms given to the transform (16 kHz).
    pub sample_rate: u32,
    /// Tile until at least this long, in seconds (10).
    pub min_len_s: f32,
    /// Crop length in seconds (5).
    pub crop_s: f32,
    /// Largest random crop offset in seconds (5), further capped by the tiled length.
    pub max_offset_s: f32,
    /// The STFT.
    pub spectrogram: SpectrogramConfig,
}

impl Default for AudioTransformConfig {
    fn default() -> Self {
        Self {
            sample_rate: 16_000,
            min_len_s: 10.0,
            crop_s: 5.0,
            max_offset_s: 5.0,
            spectrogram: SpectrogramConfig::default(),
        }
    }
}

/// Tile + crop + clip + STFT log-magnitude. `Sync`: build once, share across loader threads.
#[derive(Debug, Clone)]
pub struct AudioTransform {
    config: AudioTransformConfig,
    stft: Stft,
    crop_len: usize,
    min_len: usize,
    max_offset: usize,
}

impl AudioTransform {
    /// Plans the STFT for `config`.
    pub fn new(config: AudioTransformConfig) -> Result<Self> {
        let sr = config.sample_rate as f64;
        let crop_len = (config.crop_s as f64 * sr).round() as usize;
        if crop_len == 0 || config.min_len_s < config.crop_s || config.max_offset_s < 0.0 {
            return Err(MediaError::InvalidArgument(format!(
                "audio transform needs crop_s > 0, min_len_s >= crop_s, max_offset_s >= 0 \
                 (got {config:?})"
            )));
        }
        Ok(Self {
            stft: Stft::new(config.spectrogram)?,
            crop_len,
            min_len: (config.min_len_s as f64 * sr).round() as usize,
            max_offset: (config.max_offset_s as f64 * sr).round() as usize,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AudioTransformConfig {
        &self.config
    }

    /// The planned STFT (also usable on its own).
    pub fn stft(&self) -> &Stft {
        &self.stft
    }

    /// Crop length in samples (80,000 by default).
    pub fn crop_len(&self) -> usize {
        self.crop_len
    }

    /// Output shape `(freq, time)`: (129, 626) by default.
    pub fn output_shape(&self) -> (usize, usize) {
        let s = &self.config.spectrogram;
        (s.freq_bins(), s.frames(self.crop_len))
    }

    /// Length after tiling a waveform of `n` samples (n doubled until >= the minimum length).
    pub fn tiled_len(&self, n: usize) -> usize {
        let mut len = n;
        while len > 0 && len < self.min_len {
            len *= 2;
        }
        len
    }

    /// The largest valid crop offset for a waveform of `n` samples.
    pub fn max_offset(&self, n: usize) -> usize {
        self.tiled_len(n)
            .saturating_sub(self.crop_len)
            .min(self.max_offset)
    }

    /// A uniformly random crop offset in `0..=max_offset(n)` (training).
    pub fn random_offset<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> usize {
        rng.random_range(0..=self.max_offset(n))
    }

    /// The centred crop offset (evaluation).
    pub fn center_offset(&self, n: usize) -> usize {
        self.tiled_len(n).saturating_sub(self.crop_len) / 2
    }

    /// Writes the tiled, cropped, clipped waveform (`crop_len` samples) into `out`.
    pub fn crop_into(&self, waveform: &[f32], offset: usize, out: &mut Vec<f32>) -> Result<()> {
        let n = waveform.len();
        if n == 0 {
            return Err(MediaError::InvalidArgument(
                "audio transform of an empty waveform".into(),
            ));
        }
        let tiled = self.tiled_len(n);
        if offset + self.crop_len > tiled {
            return Err(MediaError::InvalidArgument(format!(
                "crop offset {offset} + {} exceeds the tiled length {tiled}",
                self.crop_len
            )));
        }
        out.clear();
        out.reserve(self.crop_len);
        // Tiling by doubling concatenates whole copies, so tiled[i] = waveform[i % n].
        let mut pos = offset % n;
        let mut left = self.crop_len;
        while left > 0 {
            let take = left.min(n - pos);
            out.extend(waveform[pos..pos + take].iter().map(|x| x.clamp(-1.0, 1.0)));
            left -= take;
            pos = 0;
        }
        Ok(())
    }

    /// Tile, crop at `offset`, clip to [-1, 1] and return the log-spectrogram.
    pub fn apply(&self, waveform: &[f32], offset: usize) -> Result<Spectrogram> {
        let mut out = Spectrogram::default();
        self.apply_into(waveform, offset, &mut out, &mut TransformScratch::default())?;
        Ok(out)
    }

    /// As [`AudioTransform::apply`], reusing `out` and `scratch`.
    pub fn apply_into(
        &self,
        waveform: &[f32],
        offset: usize,
        out: &mut Spectrogram,
        scratch: &mut TransformScratch,
    ) -> Result<()> {
        self.crop_into(waveform, offset, &mut scratch.crop)?;
        self.stft
            .log_magnitude_into(&scratch.crop, out, &mut scratch.stft)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn tiles_short_clips_and_crops_five_seconds() {
        let t = AudioTransform::new(AudioTransformConfig::default()).unwrap();
        assert_eq!(t.tiled_len(30_000), 240_000);
        assert_eq!(t.tiled_len(160_000), 160_000);
        assert_eq!(t.max_offset(160_000), 80_000);
        assert_eq!(t.max_offset(30_000), 80_000);
        assert_eq!(t.max_offset(1_000_000), 80_000);
        assert_eq!(t.center_offset(160_000), 40_000);
        let wave: Vec<f32> = (0..30_000).map(|i| (i % 7) as f32 * 0.5 - 1.2).collect();
        let mut crop = Vec::new();
        t.crop_into(&wave, 29_990, &mut crop).unwrap();
        assert_eq!(crop.len(), 80_000);
        assert_eq!(crop[0], wave[29_990].clamp(-1.0, 1.0));
        assert_eq!(crop[10], wave[0].clamp(-1.0, 1.0));
        assert!(crop.iter().all(|x| (-1.0..=1.0).contains(x)));
        assert_eq!(t.apply(&wave, 0).unwrap().data.len(), 129 * 626);
        assert!(t.crop_into(&wave, 240_000 - 79_999, &mut crop).is_err());
        assert!(t.apply(&[], 0).is_err());
    }

    #[test]
    fn random_offsets_are_seeded_and_in_range() {
        let t = AudioTransform::new(AudioTransformConfig::default()).unwrap();
        let draw = |seed| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            (0..100)
                .map(|_| t.random_offset(100_000, &mut rng))
                .collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        assert!(a.iter().all(|&o| o <= 80_000));
        assert!(a.iter().any(|&o| o > 40_000));
    }
}
