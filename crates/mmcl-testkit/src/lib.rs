//! Test fixtures shared by more than one crate's tests; a dev-dependency only, never
//! published.
//!
//! - [`tiny_manifest`] and [`tiny_cache`]: the tiny synthetic dataset (`mmcl_synth`'s
//!   `tiny` profile, seed 0) and its prepared cache, each built once per test binary in a
//!   temporary folder that lives as long as the process;
//! - [`prep_options`]: the prep options that keep a synthetic profile's native sample rate,
//!   clip length and frame size;
//! - [`compact_sample`]: a deterministic [`CompactSample`] (distinct audio and frames per
//!   index) for replay-memory tests that need no cache.
//!
//! ```no_run
//! let cache = mmcl_data::cache::Cache::open(mmcl_testkit::tiny_cache()).unwrap();
//! assert!(cache.len() > 0);
//! ```

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mmcl_data::loader::CompactSample;
use mmcl_data::prep::{prepare, PrepOptions};
use mmcl_synth::Profile;

/// The tiny synthetic dataset's manifest, generated once per test binary.
pub fn tiny_manifest() -> &'static Path {
    static SYNTH: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, p) = SYNTH.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary folder for the tiny dataset");
        let summary = mmcl_synth::generate(&dir.path().join("synth"), &Profile::tiny(), 0, false)
            .expect("the tiny synthetic dataset generates");
        (dir, summary.manifest)
    });
    p
}

/// Prep options matching a synthetic profile's native rate, clip length and frame size.
pub fn prep_options(profile: &Profile) -> PrepOptions {
    PrepOptions {
        sample_rate: profile.sample_rate,
        clip_seconds: profile.clip_seconds as f64,
        frame_size: profile.frame_size,
        ..PrepOptions::default()
    }
}

/// The tiny dataset's prepared cache, built once per test binary.
pub fn tiny_cache() -> &'static Path {
    static CACHE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, p) = CACHE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary folder for the tiny cache");
        let cache = dir.path().join("cache");
        prepare(tiny_manifest(), &cache, &prep_options(&Profile::tiny()))
            .expect("the tiny dataset prepares");
        (dir, cache)
    });
    p
}

/// A compact sample whose every field depends on `index` (so two indices never compare
/// equal): dataset index `index`, class `index % 9`, supercategory `index % 2`,
/// `audio_len` samples at 16 kHz covering the i16 extremes, and `frame_shape` RGB frames.
pub fn compact_sample(index: usize, frame_shape: [usize; 3], audio_len: usize) -> CompactSample {
    let [t, h, w] = frame_shape;
    let audio = (0..audio_len)
        .map(|k| match k {
            0 => i16::MIN,
            1 => i16::MAX,
            _ => (k as i64 * 1000 - index as i64) as i16,
        })
        .collect();
    let frames = (0..t * h * w * 3).map(|k| (k * 7 + index) as u8).collect();
    CompactSample {
        index,
        label: (index % 9) as u32,
        super_label: (index % 2) as u32,
        audio,
        sample_rate: 16_000,
        frames,
        frame_shape,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn compact_samples_are_valid_and_distinct() {
        let a = super::compact_sample(3, [2, 3, 4], 6);
        a.validate().unwrap();
        assert_eq!(a.frames.len(), 2 * 3 * 4 * 3);
        assert_eq!(a.audio.len(), 6);
        assert_ne!(a, super::compact_sample(4, [2, 3, 4], 6));
        assert_eq!(a, super::compact_sample(3, [2, 3, 4], 6));
    }
}
