//! The tiny-profile fixture the scheduler's integration tests share: one synthetic dataset
//! and one prepared cache per test binary, and the small run configuration they start from.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mmcl_data::prep::{prepare, PrepOptions};
use mmcl_methods::{MethodConfig, MethodKind, OptimConfig};
use mmcl_model::{Fusion, Modality};
use mmcl_scheduler::scenario::{ClassOrder, ScenarioConfig};
use mmcl_scheduler::{DataSection, ExperimentConfig, ModelSection, TrainSection};
use mmcl_synth::Profile;

/// The tiny synthetic dataset's manifest, generated once per test binary.
pub fn synth_manifest() -> &'static Path {
    static SYNTH: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, p) = SYNTH.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let summary =
            mmcl_synth::generate(&dir.path().join("synth"), &Profile::tiny(), 0, false).unwrap();
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
pub fn cache() -> &'static Path {
    static CACHE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, p) = CACHE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        prepare(synth_manifest(), &cache, &prep_options(&Profile::tiny())).unwrap();
        (dir, cache)
    });
    p
}

/// Seq with 3 tasks of 4 classes: 12 training clips per task on the tiny profile.
pub fn small_seq() -> ScenarioConfig {
    ScenarioConfig::Seq {
        tasks: 3,
        classes_per_task: 4,
        class_order: ClassOrder::Reference,
        class_order_seed: 0,
    }
}

/// A width-2 network on the tiny cache, one epoch per task at batch 16, plain SGD at lr
/// 0.05, memory of 20, every evaluation on.
pub fn tiny_config(
    kind: MethodKind,
    modality: Modality,
    scenario: ScenarioConfig,
) -> ExperimentConfig {
    ExperimentConfig {
        seed: 3,
        dataset: "tiny".into(),
        cache: cache().to_owned(),
        device: "cpu".into(),
        model: ModelSection {
            width: 2,
            fusion: Fusion::Film,
            modality,
        },
        data: DataSection {
            frames: 2,
            frame_size: 16,
            crop_seconds: Some(1.0),
        },
        scenario,
        method: MethodConfig::new(kind, 20),
        optim: OptimConfig {
            lr: 0.05,
            ..OptimConfig::default()
        },
        train: TrainSection {
            epochs: 1,
            joint_epochs: None,
            batch_size: 16,
            eval_batch_size: 64,
            eval_random_init: true,
            eval_future: true,
        },
    }
}
