//! SAMM's ablation switches on tiny runs: the uncalibrated ensemble changes nothing but the
//! ensemble, and the fused consistency target changes training.
mod common;

use common::{small_seq, tiny_config};
use mmcl_losses::ConsistencyTarget;
use mmcl_methods::{Calibration, MethodKind};
use mmcl_model::Modality;
use mmcl_scheduler::{train, ExperimentConfig, RunOptions, RunResults};

fn run(edit: impl Fn(&mut ExperimentConfig)) -> RunResults {
    let mut cfg = tiny_config(MethodKind::Samm, Modality::AudioVisual, small_seq());
    edit(&mut cfg);
    let dir = tempfile::tempdir().unwrap();
    train(&cfg, &dir.path().join("run"), &RunOptions::default()).unwrap()
}

#[test]
fn uncalibrated_ensemble_keeps_unit_temperatures_and_the_same_training() {
    let calibrated = run(|_| {});
    let plain = run(|c| c.method.samm.calibration = Calibration::None);
    assert!(
        plain.temperatures.iter().all(|t| *t == [1.0; 3]),
        "{:?}",
        plain.temperatures
    );
    assert!(calibrated.temperatures.iter().any(|t| *t != [1.0; 3]));
    // The heads are trained identically; only the ensemble differs.
    for head in ["av", "audio", "visual"] {
        assert_eq!(
            plain.mode(head).unwrap().correct,
            calibrated.mode(head).unwrap().correct,
            "{head}"
        );
    }
    assert_eq!(plain.training, {
        let mut t = calibrated.training.clone();
        for (a, b) in t.iter_mut().zip(&plain.training) {
            a.train_s = b.train_s;
            a.eval_s = b.eval_s;
        }
        t
    });
}

#[test]
fn fused_consistency_target_is_a_different_training() {
    let dynamic = run(|_| {});
    let fused = run(|c| c.method.samm.consistency_target = ConsistencyTarget::Fused);
    let losses = |r: &RunResults| -> Vec<Vec<f64>> {
        r.training.iter().map(|t| t.epoch_loss.clone()).collect()
    };
    // Task 0 has no memory yet, so it trains the same; later tasks replay and differ.
    assert_eq!(losses(&dynamic)[0], losses(&fused)[0]);
    assert_ne!(losses(&dynamic)[1..], losses(&fused)[1..]);
}
