//! The small run configuration the scheduler's integration tests start from, on the tiny
//! synthetic cache of [`mmcl_testkit::tiny_cache`] (built once per test binary).
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use mmcl_methods::{MethodConfig, MethodKind, OptimConfig};
use mmcl_model::{Fusion, Modality};
use mmcl_scheduler::scenario::{ClassOrder, ScenarioConfig};
use mmcl_scheduler::{DataSection, ExperimentConfig, ModelSection, TrainSection};

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
        cache: mmcl_testkit::tiny_cache().to_owned(),
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
            missing: Default::default(),
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
