//! End-to-end runs on the tiny synthetic profile: every method trains and evaluates, a run
//! killed mid-task and resumed gives the same results as an uninterrupted one, and a
//! diverging run stops with a clear error keeping its last checkpoint.

mod common;

use common::small_seq;
use mmcl_methods::MethodKind;
use mmcl_model::Modality;
use mmcl_scheduler::scenario::{ClassOrder, ScenarioConfig};
use mmcl_scheduler::{resume, train, ExperimentConfig, RunDir, RunOptions, SchedulerError};

fn config(kind: MethodKind, modality: Modality, scenario: ScenarioConfig) -> ExperimentConfig {
    common::tiny_config(kind, modality, scenario)
}

/// Every task's per-epoch training losses.
fn epoch_losses(r: &mmcl_scheduler::RunResults) -> Vec<Vec<f64>> {
    r.training.iter().map(|t| t.epoch_loss.clone()).collect()
}

#[test]
fn every_method_trains_and_fills_the_results() {
    for (kind, modality) in [
        (MethodKind::Sgd, Modality::Audio),
        (MethodKind::Joint, Modality::Visual),
        (MethodKind::Er, Modality::AudioVisual),
        (MethodKind::Samm, Modality::AudioVisual),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(kind, modality, small_seq());
        let r = train(&cfg, dir.path(), &RunOptions::default()).unwrap();
        assert!(r.finished, "{kind:?}");
        let rows = if kind == MethodKind::Joint { 1 } else { 3 };
        assert_eq!(r.tasks.len(), 3);
        assert_eq!(r.trained_tasks, rows);
        let expect_modes = if kind == MethodKind::Samm { 4 } else { 1 };
        assert_eq!(r.modes.len(), expect_modes);
        for m in &r.modes {
            assert_eq!(m.correct.len(), rows, "{kind:?} {}", m.mode);
            for (t, row) in m.correct.iter().enumerate() {
                assert_eq!(row.len(), 3);
                // Seen tasks and the next one are evaluated (JOINT: all), later ones are not.
                let evaluated = if kind == MethodKind::Joint {
                    3
                } else {
                    (t + 2).min(3)
                };
                for (i, v) in row.iter().enumerate() {
                    assert_eq!(v.is_some(), i < evaluated, "{kind:?} row {t} col {i}");
                    assert!(v.is_none_or(|c| c <= r.tasks[i].n_test as u64));
                }
            }
            assert_eq!(m.task_il_correct.as_ref().unwrap().len(), rows);
            assert_eq!(m.predicted.len(), rows);
            assert_eq!(m.calibration.len(), rows);
            assert_eq!(m.random_init_correct.len(), 3);
            // Every seen test sample is predicted once and binned once.
            for t in 0..rows {
                let seen = if kind == MethodKind::Joint { 3 } else { t + 1 };
                let n: usize = r.tasks[..seen].iter().map(|x| x.n_test).sum();
                assert_eq!(m.predicted[t].len(), r.run.num_outputs);
                assert_eq!(m.predicted[t].iter().sum::<u64>(), n as u64);
                assert_eq!(m.calibration[t].count.iter().sum::<u64>(), n as u64);
            }
        }
        // Seq task-IL picks among 4 classes, class-IL among 100: task-IL is never lower.
        let av = &r.modes[0];
        for (row, til) in av.correct.iter().zip(av.task_il_correct.as_ref().unwrap()) {
            for (a, b) in row.iter().zip(til) {
                assert_eq!(a.is_some(), b.is_some());
                assert!(b.unwrap_or(0) >= a.unwrap_or(0));
            }
        }
        if kind == MethodKind::Samm {
            assert_eq!(r.temperatures.len(), 3);
            assert!(r
                .temperatures
                .iter()
                .all(|t| t.iter().all(|v| *v > 0.0 && v.is_finite())));
        }
        let rd = RunDir::new(dir.path());
        assert!(rd.is_finished());
        assert!(rd.latest_checkpoint().is_some());
        assert_eq!(rd.read_config().unwrap(), cfg);
        assert!(std::fs::read_to_string(dir.path().join("log.txt"))
            .unwrap()
            .contains("done"));
    }
}

#[test]
fn dom_uses_supercategory_targets() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = ScenarioConfig::Dom {
        tasks: 2,
        subclasses_per_super: 1,
        class_order: ClassOrder::Reference,
        class_order_seed: 0,
    };
    let r = train(
        &config(MethodKind::Er, Modality::AudioVisual, scenario),
        dir.path(),
        &RunOptions::default(),
    )
    .unwrap();
    assert_eq!(r.run.num_outputs, 5);
    assert_eq!(r.modes[0].correct.len(), 2);
    assert!(r.modes[0].task_il_correct.is_none());
    // Task 1 brings no new output, so it has no recency bias.
    assert!(r.tasks[1].new_targets.is_empty());
    assert_eq!(r.modes[0].predicted[1].len(), 5);
}

#[test]
fn killed_and_resumed_run_equals_uninterrupted_run() {
    let mut cfg = config(MethodKind::Samm, Modality::AudioVisual, small_seq());
    // Momentum makes the optimiser stateful, so resuming must restore its buffers too.
    cfg.optim.momentum = 0.9;
    let full_dir = tempfile::tempdir().unwrap();
    let full = train(&cfg, full_dir.path(), &RunOptions::default()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    // 12 clips per task at batch 16: one step per task; stop during the third task.
    let err = train(
        &cfg,
        dir.path(),
        &RunOptions {
            stop_after_steps: Some(2),
            ..RunOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, SchedulerError::Interrupted { task: 2, .. }),
        "{err}"
    );
    assert!(!RunDir::new(dir.path()).is_finished());
    let resumed = resume(dir.path(), &RunOptions::default()).unwrap();
    assert!(resumed.finished);
    for (a, b) in full.modes.iter().zip(&resumed.modes) {
        assert_eq!(a.correct, b.correct, "mode {}", a.mode);
        assert_eq!(a.task_il_correct, b.task_il_correct);
        assert_eq!(a.calibration, b.calibration);
        assert_eq!(a.predicted, b.predicted);
    }
    assert_eq!(full.temperatures, resumed.temperatures);
    assert_eq!(epoch_losses(&full), epoch_losses(&resumed));
    // Resuming a finished run is a no-op.
    assert_eq!(
        resume(dir.path(), &RunOptions::default()).unwrap().modes,
        resumed.modes
    );
}

#[test]
fn loading_ahead_on_a_thread_changes_no_result() {
    let mut cfg = config(MethodKind::Samm, Modality::AudioVisual, small_seq());
    // Three steps per epoch, so batches really are loaded ahead.
    cfg.train.batch_size = 4;
    let run = |sync_loading| {
        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            sync_loading,
            ..RunOptions::default()
        };
        train(&cfg, dir.path(), &opts).unwrap()
    };
    let (ahead, inline) = (run(false), run(true));
    assert_eq!(ahead.modes, inline.modes);
    assert_eq!(epoch_losses(&ahead), epoch_losses(&inline));
    assert_eq!(ahead.temperatures, inline.temperatures);
}

#[test]
fn diverging_run_stops_with_a_clear_error_and_keeps_its_checkpoint() {
    let mut cfg = config(MethodKind::Sgd, Modality::AudioVisual, small_seq());
    cfg.optim.lr = 1e30;
    let dir = tempfile::tempdir().unwrap();
    let err = train(&cfg, dir.path(), &RunOptions::default()).unwrap_err();
    match err {
        SchedulerError::Diverged { value, .. } => assert!(!value.is_finite()),
        e => panic!("expected divergence, got {e}"),
    }
    assert!(err_text(&dir).contains("diverged"));
}

fn err_text(dir: &tempfile::TempDir) -> String {
    std::fs::read_to_string(dir.path().join("log.txt")).unwrap()
}

#[test]
fn an_existing_run_folder_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(MethodKind::Sgd, Modality::Audio, small_seq());
    std::fs::write(dir.path().join("config.toml"), "x").unwrap();
    assert!(matches!(
        train(&cfg, dir.path(), &RunOptions::default()),
        Err(SchedulerError::Config(_))
    ));
}

/// The reference's class order: Seq task 0 holds the ten alphabetically first class names
/// (of several supercategories), and results.json records every task's classes by name.
#[test]
fn seq_task_zero_holds_the_alphabetically_first_classes() {
    let dir = tempfile::tempdir().unwrap();
    let seq = ScenarioConfig::Seq {
        tasks: 2,
        classes_per_task: 10,
        class_order: ClassOrder::Reference,
        class_order_seed: 0,
    };
    let cfg = config(MethodKind::Sgd, Modality::Audio, seq);
    train(&cfg, dir.path(), &RunOptions::default()).unwrap();
    let r = mmcl_scheduler::RunResults::read(&RunDir::new(dir.path()).results_path()).unwrap();
    let mut names: Vec<String> = mmcl_data::classes::class_table()
        .classes()
        .iter()
        .map(|c| c.name.clone())
        .collect();
    names.sort();
    assert_eq!(r.tasks[0].class_names, names[..10]);
    assert_eq!(r.tasks[1].class_names, names[10..20]);
    assert_eq!(r.tasks[0].classes, (0..10).collect::<Vec<u32>>());
    let supers: std::collections::HashSet<_> = r.tasks[0]
        .class_names
        .iter()
        .map(|n| {
            mmcl_data::classes::class_table()
                .by_name(n)
                .unwrap()
                .supercategory
        })
        .collect();
    assert!(
        supers.len() >= 3,
        "task 0 mixes supercategories: {supers:?}"
    );
}

/// The GCIL headline is the reference's: the FINAL model's mean accuracy over the
/// cumulative test sets (union of test sets `0..=t`). Computed here independently from
/// results.json's raw counts, it must equal what mmcl-metrics derives; and re-evaluating
/// the final checkpoint must reproduce the final row's counts.
#[test]
fn gcil_headline_is_the_final_models_mean_over_the_cumulative_test_sets() {
    use mmcl_scheduler::gcil::{GcilConfig, GcilWeights};
    let dir = tempfile::tempdir().unwrap();
    let gcil = GcilConfig {
        tasks: 4,
        samples_per_task: Some(12),
        ..GcilConfig::paper(GcilWeights::Longtail)
    };
    let cfg = config(
        MethodKind::Er,
        Modality::AudioVisual,
        ScenarioConfig::Gcil(gcil),
    );
    train(&cfg, dir.path(), &RunOptions::default()).unwrap();
    let r = mmcl_scheduler::RunResults::read(&RunDir::new(dir.path()).results_path()).unwrap();
    assert_eq!(r.tasks.len(), 4);
    let last = r.modes[0].correct.last().unwrap();
    let (mut correct, mut n, mut accs) = (0u64, 0u64, Vec::new());
    for (i, task) in r.tasks.iter().enumerate() {
        correct += last[i].unwrap();
        n += task.n_test as u64;
        if n > 0 {
            accs.push(100.0 * correct as f64 / n as f64);
        }
    }
    let expected = accs.iter().sum::<f64>() / accs.len() as f64;
    let metrics = mmcl_metrics::RunMetrics::derive(&r).unwrap();
    let av = metrics.mode("av").unwrap();
    assert!(
        (av.gcil.reference_headline - expected).abs() < 1e-9,
        "{} vs {expected}",
        av.gcil.reference_headline
    );
    assert!((av.gcil.final_all_seen - accs.last().unwrap()).abs() < 1e-9);
    assert_eq!(av.headline(true), Some(av.gcil.reference_headline));

    let rows = mmcl_scheduler::eval_checkpoint(dir.path(), None).unwrap();
    assert_eq!(rows[0].mode, "av");
    assert_eq!(
        rows[0].correct,
        last.iter().map(|c| c.unwrap()).collect::<Vec<_>>()
    );
    assert_eq!(
        rows[0].n_test,
        r.tasks.iter().map(|t| t.n_test as u64).collect::<Vec<_>>()
    );
}

/// `calibration = "reference"` fits the temperatures the reference's way (LBFGS from 1.5)
/// with the network in training mode, so its BatchNorm statistics move and the next tasks
/// train from another model; `eval` leaves the model alone (temperatures never affect
/// training), so only the reference option changes the final weights.
#[test]
fn reference_calibration_runs_in_training_mode_with_lbfgs() {
    let run = |cal: mmcl_methods::Calibration| {
        let dir = tempfile::tempdir().unwrap();
        // 36 clips per task and a memory of 40: the reference's fit takes 32 of them.
        let seq = ScenarioConfig::Seq {
            tasks: 2,
            classes_per_task: 12,
            class_order: ClassOrder::Reference,
            class_order_seed: 0,
        };
        let mut cfg = config(MethodKind::Samm, Modality::AudioVisual, seq);
        cfg.method.buffer_size = 40;
        cfg.method.samm.calibration = cal;
        let r = train(&cfg, dir.path(), &RunOptions::default()).unwrap();
        let ckpt = RunDir::new(dir.path()).latest_checkpoint().unwrap();
        let model = std::fs::read(ckpt.join("model.safetensors")).unwrap();
        (r.temperatures, model)
    };
    let (t_eval, m_eval) = run(mmcl_methods::Calibration::Eval);
    let (t_ref, m_ref) = run(mmcl_methods::Calibration::Reference);
    assert_eq!((t_eval.len(), t_ref.len()), (2, 2));
    assert_ne!(t_eval, t_ref, "another solver gives other temperatures");
    assert!(t_ref.iter().flatten().all(|t| t.is_finite() && *t > 0.0));
    assert_ne!(
        m_eval, m_ref,
        "training-mode calibration moves BatchNorm statistics"
    );
    // The same option twice gives the same run.
    let (t_ref2, m_ref2) = run(mmcl_methods::Calibration::Reference);
    assert_eq!((t_ref, m_ref), (t_ref2, m_ref2));
}
