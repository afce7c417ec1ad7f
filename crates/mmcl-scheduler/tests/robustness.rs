//! The robustness suite on tiny trained runs: the clean cell is the run's own final row,
//! cells are reused, a missing modality sends its unimodal network to a constant guess, and
//! SAMM's ensemble leans away from audio as the audio noise grows.
mod common;

use common::{small_seq, tiny_config};
use mmcl_methods::MethodKind;
use mmcl_model::Modality;
use mmcl_scheduler::missing::{MissingChoice, MISSING_FILE};
use mmcl_scheduler::robustness::{evaluate_corrupted, RobustnessOptions, ROBUSTNESS_FILE};
use mmcl_scheduler::{train, RunOptions, RunResults};

fn trained(kind: MethodKind, modality: Modality, epochs: usize) -> (tempfile::TempDir, RunResults) {
    let mut cfg = tiny_config(kind, modality, small_seq());
    cfg.train.epochs = epochs;
    // SAMM's unimodal heads learn only at a weight that lets them (the λ = 1 study).
    cfg.method.samm.reg_weight = 1.0;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let results = train(&cfg, &run, &RunOptions::default()).unwrap();
    (dir, results)
}

#[test]
fn clean_cell_is_the_final_row_and_missing_audio_leaves_an_audio_network_one_guess() {
    let (dir, results) = trained(MethodKind::Er, Modality::Audio, 1);
    let run = dir.path().join("run");
    let spec = "audio:missing".parse().unwrap();
    let r = evaluate_corrupted(&run, &spec, &RobustnessOptions::default()).unwrap();
    assert_eq!(
        r.cells.len(),
        2,
        "clean comes with every suite: {:?}",
        r.cells.keys()
    );
    for mode in &results.modes {
        let last = mode.correct.last().unwrap();
        let clean = r.cells["clean"].mode(&mode.mode).unwrap();
        let want: Vec<u64> = last.iter().map(|c| c.unwrap()).collect();
        assert_eq!(clean.correct, want, "mode {}", mode.mode);
    }
    // Silence in, one prediction out: at most the largest class's share of each test set
    // (the tiny profile's test sets hold the same number of clips per class).
    let missing = r.cells["audio:missing"].mode("av").unwrap();
    let per_class = (missing.n_test[0] / 4).max(1);
    let total: u64 = missing.correct.iter().sum();
    assert!(total <= per_class, "{missing:?}");

    // A second call reuses the cells; a new cell is added beside them.
    let before = std::fs::read_to_string(run.join(ROBUSTNESS_FILE)).unwrap();
    let again = evaluate_corrupted(&run, &spec, &RobustnessOptions::default()).unwrap();
    assert_eq!(again, r);
    assert_eq!(
        std::fs::read_to_string(run.join(ROBUSTNESS_FILE)).unwrap(),
        before
    );
    let more =
        evaluate_corrupted(&run, &"audio:white:5".parse().unwrap(), &Default::default()).unwrap();
    assert_eq!(more.cells.len(), 3);
    assert_eq!(more.cells["clean"], r.cells["clean"]);
}

#[test]
fn samm_ensemble_leans_away_from_audio_as_the_audio_noise_grows() {
    let (dir, _) = trained(MethodKind::Samm, Modality::AudioVisual, 12);
    let run = dir.path().join("run");
    let spec = "audio:white:1".parse().unwrap();
    evaluate_corrupted(&run, &spec, &RobustnessOptions::default()).unwrap();
    let spec = "audio:white:5".parse().unwrap();
    let r = evaluate_corrupted(&run, &spec, &RobustnessOptions::default()).unwrap();
    let w = |cell: &str| r.cells[cell].ensemble_weights.unwrap();
    let (clean, mild, loud) = (w("clean"), w("audio:white:1"), w("audio:white:5"));
    // (measured: audio weight 0.440 clean, 0.438 at 20 dB SNR, 0.323 at 0 dB)
    assert!(
        clean.audio > loud.audio + 0.05 && mild.audio > loud.audio,
        "audio weight clean {clean:?}, severity 1 {mild:?}, severity 5 {loud:?}"
    );
    // The frames are untouched, so the visual head's weight is too, bit for bit.
    assert_eq!((clean.visual, mild.visual), (loud.visual, loud.visual));
    // Every mode of SAMM is evaluated, the ensemble included.
    let modes: Vec<&str> = r.cells["clean"]
        .modes
        .iter()
        .map(|m| m.mode.as_str())
        .collect();
    assert_eq!(modes, ["av", "audio", "visual", "ensemble"]);
}

#[test]
fn an_unfinished_or_foreign_folder_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let err = evaluate_corrupted(dir.path(), &"clean".parse().unwrap(), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
}

#[test]
fn training_with_missing_audio_is_seeded_recorded_and_starves_an_audio_network() {
    let run = |audio: f64, seed: u64| {
        let mut cfg = tiny_config(MethodKind::Er, Modality::Audio, small_seq());
        cfg.data.missing.audio = audio;
        cfg.seed = seed;
        let dir = tempfile::tempdir().unwrap();
        let results = train(&cfg, &dir.path().join("run"), &RunOptions::default()).unwrap();
        (dir, results)
    };
    let (clean_dir, clean) = run(0.0, 3);
    assert!(!clean_dir.path().join("run").join(MISSING_FILE).exists());
    let (dir, some) = run(0.5, 3);
    let (_, again) = run(0.5, 3);
    assert_eq!(some.modes, again.modes, "the choice is seeded");
    assert_ne!(some.modes, clean.modes);
    let choice: MissingChoice = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("run").join(MISSING_FILE)).unwrap(),
    )
    .unwrap();
    for (t, task) in some.tasks.iter().enumerate() {
        assert_eq!(choice.audio[t].len(), task.n_train.div_ceil(2), "task {t}");
        assert!(choice.visual[t].is_empty());
    }
    // Every clip silent in training: the network sees one input and learns one guess.
    let (_, none) = run(1.0, 3);
    let last = none.modes[0].correct.last().unwrap();
    let n_first = none.tasks[0].n_test as u64;
    assert!(
        last.iter().flatten().sum::<u64>() <= n_first / 4,
        "{last:?} of {:?}",
        none.tasks.iter().map(|t| t.n_test).collect::<Vec<_>>()
    );
    // Shares that cannot be met are refused before training.
    let mut bad = tiny_config(MethodKind::Er, Modality::Audio, small_seq());
    bad.data.missing.audio = 0.8;
    bad.data.missing.visual = 0.4;
    let err = train(&bad, &clean_dir.path().join("bad"), &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("data.missing"), "{err}");
}
