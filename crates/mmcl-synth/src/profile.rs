//! Dataset profiles: how many clips, how long, at what sample rate and frame size.
use serde::{Deserialize, Serialize};

use crate::error::SynthError;

/// The size parameters of a synthetic dataset. Every class gets the same counts.
///
/// Frames are one per second of clip (the reference layout), so `frames_per_clip` is
/// `clip_seconds` rounded; the prep cache requires at least 4 frames per clip by default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Profile name (`tiny`, `mini`, `small`, or `custom`).
    pub name: String,
    /// Clip length in seconds (whole seconds: one frame per second).
    pub clip_seconds: u32,
    /// Audio sample rate of the written WAV files (Hz).
    pub sample_rate: u32,
    /// Width and height of the written frames (px).
    pub frame_size: u32,
    /// Training clips per class.
    pub train_per_class: u32,
    /// Test clips per class.
    pub test_per_class: u32,
    /// Suggested audio crop for the loader (seconds): half the clip, as the reference takes
    /// 5 s of a 10 s clip.
    pub crop_seconds: f64,
}

/// The STFT used by the benchmark: n_fft 256, hop 128, centre padding.
pub const N_FFT: usize = 256;
/// STFT hop length.
pub const HOP: usize = 128;

impl Profile {
    /// Tests: 100 classes x (3 train + 2 test) clips of 4 s at 8 kHz, 32 px frames.
    /// 500 clips, about 42 MB, a few seconds to generate.
    pub fn tiny() -> Self {
        Self::named("tiny", 4, 8_000, 32, 3, 2)
    }

    /// The default of `cargo xtask reproduce`: 100 classes x (40 train + 10 test) clips of
    /// 4 s at 8 kHz with 32 px frames (4 frames per clip). The loader's 2 s crop gives a
    /// 129 x 126 log-spectrogram (reference: 129 x 626).
    pub fn mini() -> Self {
        Self::named("mini", 4, 8_000, 32, 40, 10)
    }

    /// A larger profile: 100 classes x (100 train + 25 test) clips of 6 s at 16 kHz with
    /// 64 px frames (6 frames per clip); 3 s crops give 129 x 376 spectrograms.
    pub fn small() -> Self {
        Self::named("small", 6, 16_000, 64, 100, 25)
    }

    fn named(
        name: &str,
        clip_seconds: u32,
        sample_rate: u32,
        frame_size: u32,
        train: u32,
        test: u32,
    ) -> Self {
        Self {
            name: name.to_string(),
            clip_seconds,
            sample_rate,
            frame_size,
            train_per_class: train,
            test_per_class: test,
            crop_seconds: clip_seconds as f64 / 2.0,
        }
    }

    /// The named profiles, smallest first.
    pub fn presets() -> Vec<Profile> {
        vec![Self::tiny(), Self::mini(), Self::small()]
    }

    /// Looks a preset up by name.
    pub fn by_name(name: &str) -> Result<Self, SynthError> {
        Self::presets()
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                SynthError::Profile(format!(
                    "unknown profile {name:?} (known: tiny, mini, small)"
                ))
            })
    }

    /// Checks that the profile can be generated and used by the prep cache.
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |m: String| Err(SynthError::Profile(format!("profile {}: {m}", self.name)));
        if self.clip_seconds == 0 || self.clip_seconds > 60 {
            return bad(format!(
                "clip_seconds must be 1..=60, got {}",
                self.clip_seconds
            ));
        }
        if !(4_000..=48_000).contains(&self.sample_rate) {
            return bad(format!(
                "sample_rate must be 4000..=48000 Hz, got {}",
                self.sample_rate
            ));
        }
        if !(8..=512).contains(&self.frame_size) {
            return bad(format!(
                "frame_size must be 8..=512 px, got {}",
                self.frame_size
            ));
        }
        if self.train_per_class == 0 || self.test_per_class == 0 {
            return bad("train_per_class and test_per_class must be positive".into());
        }
        if !(self.crop_seconds > 0.0 && self.crop_seconds <= self.clip_seconds as f64) {
            return bad(format!(
                "crop_seconds must be in (0, clip_seconds], got {}",
                self.crop_seconds
            ));
        }
        Ok(())
    }

    /// Frames per clip (one per second).
    pub fn frames_per_clip(&self) -> u32 {
        self.clip_seconds
    }

    /// Audio samples per clip.
    pub fn clip_samples(&self) -> usize {
        self.clip_seconds as usize * self.sample_rate as usize
    }

    /// Shape `[freq, time]` of the log-spectrogram of one loader crop (n_fft 256, hop 128,
    /// centre padding): `[129, 1 + crop_samples / 128]`.
    pub fn spectrogram_shape(&self) -> [usize; 2] {
        let crop = (self.crop_seconds * self.sample_rate as f64).round() as usize;
        [N_FFT / 2 + 1, 1 + crop / HOP]
    }

    /// Total clips (100 classes).
    pub fn total_clips(&self) -> usize {
        crate::NUM_CLASSES * (self.train_per_class + self.test_per_class) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_documented_shapes_hold() {
        for p in Profile::presets() {
            p.validate().unwrap();
            assert!(p.frames_per_clip() >= 4, "prep needs 4 frames: {}", p.name);
        }
        assert_eq!(Profile::mini().spectrogram_shape(), [129, 126]);
        assert_eq!(Profile::small().spectrogram_shape(), [129, 376]);
        assert_eq!(Profile::mini().total_clips(), 5000);
        assert!(Profile::by_name("huge").is_err());
        let mut p = Profile::tiny();
        p.sample_rate = 100;
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("sample_rate"));
    }
}
