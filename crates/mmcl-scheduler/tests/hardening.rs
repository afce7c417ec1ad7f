//! Hardening of runs on the tiny synthetic profile: a diverged run keeps only finite
//! checkpoints and says so in its log; a damaged `LATEST` never loses a checkpoint; one
//! writer per run folder; a flipped bit in a checkpoint is found and named; the same run
//! writes the same checkpoint bytes; resume overrides are applied and recorded; a failed
//! setup leaves no run behind; `elapsed_s` counts a killed session.

mod common;

use std::path::{Path, PathBuf};

use common::{small_seq, tiny_config};
use mmcl_data::prep::prepare;
use mmcl_methods::MethodKind;
use mmcl_model::Modality;
use mmcl_scheduler::checkpoint::{INDEX_FILE, LATEST_FILE};
use mmcl_scheduler::{
    resume, resume_with, train, ExperimentConfig, ResumeOverrides, RunDir, RunOptions, RunResults,
    SchedulerError, TrainSection,
};
use mmcl_synth::Profile;
use mmcl_testkit::{prep_options, tiny_cache, tiny_manifest};

/// The shared tiny run (Seq, 3 tasks of 4 classes: one step per epoch at batch 16) with
/// momentum, so the optimiser has state to check, and no extra evaluations.
fn config(kind: MethodKind) -> ExperimentConfig {
    let mut cfg = tiny_config(kind, Modality::AudioVisual, small_seq());
    cfg.optim.momentum = 0.9;
    cfg.train = train_section();
    cfg
}

/// One epoch per task at batch 16, no extra evaluations. Parsed, so settings added to the
/// section later take their defaults here.
fn train_section() -> TrainSection {
    toml::from_str(
        "epochs = 1\nbatch_size = 16\neval_batch_size = 64\neval_random_init = false\neval_future = false\n",
    )
    .unwrap()
}

fn stop_after(steps: usize) -> RunOptions {
    RunOptions {
        stop_after_steps: Some(steps),
        ..RunOptions::default()
    }
}

fn checkpoint_root(dir: &Path) -> PathBuf {
    dir.join("checkpoint")
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("log.txt")).unwrap_or_default()
}

/// Non-finite values in the float tensors of a safetensors file, and all its float values.
fn non_finite_values(path: &Path) -> (usize, usize) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (mut bad, mut all) = (0, 0);
    for (_, view) in st.iter() {
        if view.dtype() == safetensors::Dtype::F32 {
            for c in view.data().chunks_exact(4) {
                let v = f32::from_le_bytes(c.try_into().unwrap());
                all += 1;
                bad += !v.is_finite() as usize;
            }
        }
    }
    (bad, all)
}

fn files_of(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Train `kind` to the end of task 0 (interrupted in task 1), so a checkpoint exists.
fn run_with_task0_checkpoint(kind: MethodKind) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let err = train(&config(kind), dir.path(), &stop_after(1)).unwrap_err();
    assert!(
        matches!(err, SchedulerError::Interrupted { task: 1, .. }),
        "{err}"
    );
    assert_eq!(
        RunDir::new(dir.path()).latest_checkpoint().unwrap(),
        checkpoint_root(dir.path()).join("task-0")
    );
    dir
}

#[test]
fn a_diverged_run_keeps_only_finite_checkpoints_and_its_log_says_so() {
    // (method, lr, what stops it, at which task): deterministic runs, so each case always
    // diverges the same way. The first two are the guard's: the loss stays finite but the
    // state after the task does not (the old code saved that state as the checkpoint).
    let cases = [
        (MethodKind::Sgd, 1e4, "state values are not finite", 2),
        (MethodKind::Er, 1e6, "state values are not finite", 2),
        (MethodKind::Samm, 1e6, "temperature fit", 0),
        (MethodKind::Sgd, 1e6, "loss became NaN", 2),
    ];
    for (kind, lr, cause, task) in cases {
        let mut cfg = config(kind);
        cfg.optim.lr = lr;
        let dir = tempfile::tempdir().unwrap();
        let err = train(&cfg, dir.path(), &RunOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(
                err,
                SchedulerError::NonFiniteState { task: t, .. } | SchedulerError::Diverged { task: t, .. }
                    if t == task
            ),
            "{kind:?} {lr}: {text}"
        );
        assert!(
            text.contains(cause) && text.contains(&format!("task {task}")),
            "{text}"
        );
        let root = checkpoint_root(dir.path());
        // Only the tasks before the divergence were saved, and every value of them is finite.
        let kept = RunDir::new(dir.path()).latest_checkpoint();
        let l = log(dir.path());
        assert!(l.contains("stopped") && l.contains("diverged"), "{l}");
        if task == 0 {
            assert!(kept.is_none() && l.contains("no checkpoint"), "{l}");
            continue;
        }
        let kept = kept.unwrap();
        assert_eq!(kept, root.join(format!("task-{}", task - 1)));
        assert!(!root.join(format!("task-{task}")).exists());
        for f in ["model.safetensors", "optim.safetensors"] {
            let (bad, all) = non_finite_values(&kept.join(f));
            assert!(
                all > 0 && bad == 0,
                "{kind:?} {f}: {bad} of {all} non-finite"
            );
        }
        assert!(l.contains(&format!("task-{} is kept", task - 1)), "{l}");
        // Resuming replays the same divergence from the kept checkpoint, and keeps it.
        let again = resume(dir.path(), &RunOptions::default()).unwrap_err();
        assert_eq!(again.to_string(), text);
        assert_eq!(RunDir::new(dir.path()).latest_checkpoint().unwrap(), kept);
        assert!(log(dir.path()).contains(&format!("resume from {}", kept.display())));
    }
}

/// The run of `kind` uninterrupted, for comparisons.
fn full_run(kind: MethodKind) -> RunResults {
    let dir = tempfile::tempdir().unwrap();
    train(&config(kind), dir.path(), &RunOptions::default()).unwrap()
}

#[test]
fn a_dangling_or_garbage_latest_never_loses_a_checkpoint() {
    let full = full_run(MethodKind::Er);
    for latest in [Some("task-6"), Some("\u{1}\u{7f}garbage"), None] {
        let dir = tempfile::tempdir().unwrap();
        // Tasks 0 and 1 done: checkpoint task-1; interrupted in task 2.
        train(&config(MethodKind::Er), dir.path(), &stop_after(2)).unwrap_err();
        let root = checkpoint_root(dir.path());
        match latest {
            Some(t) => std::fs::write(root.join(LATEST_FILE), t).unwrap(),
            None => std::fs::remove_file(root.join(LATEST_FILE)).unwrap(),
        }
        let r = resume(dir.path(), &RunOptions::default()).unwrap();
        // It resumed from task-1 (not from scratch) and ends exactly like the full run.
        assert!(
            log(dir.path()).contains("resuming from task-1, the newest verified checkpoint"),
            "{}",
            log(dir.path())
        );
        assert_eq!(r.modes, full.modes);
        assert_eq!(r.training.len(), 3);
        assert_eq!(files_of(&root), ["LATEST", "task-2"]);
    }

    // Nothing usable and LATEST damaged: an error, and the folder is left as it was.
    let dir = tempfile::tempdir().unwrap();
    train(&config(MethodKind::Sgd), dir.path(), &stop_after(2)).unwrap_err();
    let root = checkpoint_root(dir.path());
    std::fs::write(root.join(LATEST_FILE), "garbage").unwrap();
    std::fs::remove_file(root.join("task-1").join(INDEX_FILE)).unwrap();
    let before = files_of(&root.join("task-1"));
    let err = resume(dir.path(), &RunOptions::default()).unwrap_err();
    assert!(
        matches!(err, SchedulerError::Checkpoint { .. }) && err.to_string().contains("task-1"),
        "{err}"
    );
    assert_eq!(files_of(&root.join("task-1")), before);
}

#[test]
fn a_newer_checkpoint_survives_a_resume_from_an_older_one() {
    // The case: LATEST damaged next to a valid newer checkpoint. Here task-0 is what
    // LATEST names and a task-6 folder (another run's, valid) sits beside it: the resume
    // must neither pick it up wrongly nor delete it.
    let dir = run_with_task0_checkpoint(MethodKind::Sgd);
    let root = checkpoint_root(dir.path());
    let other = run_with_task0_checkpoint(MethodKind::Sgd);
    std::fs::rename(
        checkpoint_root(other.path()).join("task-0"),
        root.join("task-6"),
    )
    .unwrap();
    resume(dir.path(), &RunOptions::default()).unwrap();
    assert_eq!(files_of(&root), ["LATEST", "task-2", "task-6"]);
}

#[test]
fn two_concurrent_trains_into_one_folder_exactly_one_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let mut long = config(MethodKind::Sgd);
    long.train.epochs = 40; // long enough that the second writer comes while it runs
    let first = std::thread::spawn(move || train(&long, &path, &RunOptions::default()));
    let lock = dir.path().join(mmcl_io::LOCK_FILE);
    let pid = std::process::id().to_string();
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&lock).unwrap_or_default() != pid {
        assert!(t0.elapsed().as_secs() < 60, "the first train never locked");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // The second writer is refused at once, naming the holder, whatever it wants to do.
    let started = std::time::Instant::now();
    let second = train(&config(MethodKind::Sgd), dir.path(), &RunOptions::default());
    let resumed = resume(dir.path(), &RunOptions::default());
    assert!(
        started.elapsed().as_secs_f64() < 1.0,
        "refusing took {:?}",
        started.elapsed()
    );
    for r in [second, resumed] {
        let e = r.unwrap_err();
        assert!(
            matches!(e, SchedulerError::Lock(mmcl_io::LockError::InUse { .. })),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains(&format!("is in use by process {pid}")),
            "{e}"
        );
    }
    let r = first.join().unwrap().unwrap();
    assert!(r.finished);
    assert_eq!(r.training[0].epoch_loss.len(), 40);
    // Once the first has finished, the folder can be resumed (a no-op) again.
    assert!(resume(dir.path(), &RunOptions::default()).unwrap().finished);
}

#[test]
fn a_flipped_bit_in_any_checkpoint_file_is_found_on_resume_and_named() {
    let dir = run_with_task0_checkpoint(MethodKind::Samm);
    let ckpt = checkpoint_root(dir.path()).join("task-0");
    let files: Vec<String> = files_of(&ckpt)
        .into_iter()
        .filter(|f| f != INDEX_FILE)
        .collect();
    assert!(files.len() >= 4, "{files:?}");
    for f in &files {
        let p = ckpt.join(f);
        let good = std::fs::read(&p).unwrap();
        let mut bad = good.clone();
        let at = bad.len() / 2;
        bad[at] ^= 0x10;
        std::fs::write(&p, &bad).unwrap();
        let e = resume(dir.path(), &RunOptions::default()).unwrap_err();
        assert!(
            matches!(e, SchedulerError::Checkpoint { .. })
                && e.to_string().contains(&p.display().to_string())
                && e.to_string().contains("does not match its checksum"),
            "{f}: {e}"
        );
        std::fs::write(&p, &good).unwrap();
    }
    // Restored: it resumes.
    assert!(resume(dir.path(), &RunOptions::default()).unwrap().finished);
}

#[test]
fn two_identical_runs_write_byte_identical_checkpoints() {
    let run = || {
        let dir = tempfile::tempdir().unwrap();
        train(
            &config(MethodKind::Samm),
            dir.path(),
            &RunOptions::default(),
        )
        .unwrap();
        dir
    };
    let (a, b) = (run(), run());
    let (ca, cb) = (
        checkpoint_root(a.path()).join("task-2"),
        checkpoint_root(b.path()).join("task-2"),
    );
    let files = files_of(&ca);
    assert_eq!(files, files_of(&cb));
    for f in &files {
        // results.json holds wall times (so SHA256SUMS differs on its line only).
        if f == "results.json" {
            continue;
        }
        let (x, y) = (
            std::fs::read(ca.join(f)).unwrap(),
            std::fs::read(cb.join(f)).unwrap(),
        );
        if f == INDEX_FILE {
            let keep = |s: &[u8]| -> Vec<String> {
                String::from_utf8_lossy(s)
                    .lines()
                    .filter(|l| !l.ends_with("results.json"))
                    .map(String::from)
                    .collect()
            };
            assert_eq!(keep(&x), keep(&y));
        } else {
            assert!(x == y, "{f} differs between two identical runs");
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ca.join("model.safetensors"))
            .unwrap()
            .permissions()
            .mode();
        let cfg_mode = std::fs::metadata(a.path().join("config.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, cfg_mode & 0o777, "model.safetensors mode");
        assert_ne!(mode & 0o044, 0, "model.safetensors is not 0600");
    }
}

#[test]
fn two_identical_preps_write_byte_identical_caches() {
    let profile = Profile::tiny();
    let dir = tempfile::tempdir().unwrap();
    let prep = |name: &str| {
        let out = dir.path().join(name);
        prepare(tiny_manifest(), &out, &prep_options(&profile)).unwrap();
        out
    };
    let (a, b) = (prep("a"), prep("b"));
    let shards = files_of(&a.join("shards"));
    assert!(!shards.is_empty());
    assert_eq!(shards, files_of(&b.join("shards")));
    for s in &shards {
        assert!(
            std::fs::read(a.join("shards").join(s)).unwrap()
                == std::fs::read(b.join("shards").join(s)).unwrap(),
            "{s} differs between two identical preps"
        );
    }
}

#[test]
fn a_second_prep_into_a_cache_in_use_is_refused_naming_the_holder() {
    let profile = Profile::tiny();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cache");
    std::fs::create_dir_all(&out).unwrap();
    let held = mmcl_io::DirLock::acquire(&out).unwrap();
    let e = prepare(tiny_manifest(), &out, &prep_options(&profile)).unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("is in use by process {}", std::process::id())),
        "{e}"
    );
    drop(held);
}

#[test]
fn resume_overrides_apply_to_the_remaining_tasks_and_are_recorded() {
    let dir = run_with_task0_checkpoint(MethodKind::Er);
    let over = ResumeOverrides {
        lr: Some(0.01),
        epochs: Some(2),
    };
    let r = resume_with(dir.path(), &over, &RunOptions::default()).unwrap();
    let epochs: Vec<usize> = r.training.iter().map(|t| t.epoch_loss.len()).collect();
    assert_eq!(epochs, [1, 2, 2]);
    let cfg = RunDir::new(dir.path()).read_config().unwrap();
    assert_eq!((cfg.optim.lr, cfg.train.epochs), (0.01, 2));
    let history: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("config-history.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        history,
        serde_json::json!([
            {"from_task": 1, "key": "optim.lr", "from": 0.05, "to": 0.01},
            {"from_task": 1, "key": "train.epochs", "from": 1, "to": 2},
        ])
    );
    assert!(log(dir.path()).contains("optim.lr 0.05 -> 0.01"));
    // The run is finished: the same values change nothing (a no-op), others are refused.
    assert!(
        resume_with(dir.path(), &over, &RunOptions::default())
            .unwrap()
            .finished
    );
    let later = ResumeOverrides {
        lr: Some(0.5),
        epochs: None,
    };
    assert!(matches!(
        resume_with(dir.path(), &later, &RunOptions::default()),
        Err(SchedulerError::Config(_))
    ));
}

#[test]
fn a_failed_setup_leaves_nothing_so_the_same_command_can_be_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut bad = config(MethodKind::Sgd);
    bad.cache = dir.path().join("no-such-cache");
    assert!(train(&bad, &out, &RunOptions::default()).is_err());
    assert!(!out.exists());
    bad.cache = tiny_cache().to_owned();
    bad.device = "cuda:99".into();
    assert!(train(&bad, &out, &RunOptions::default()).is_err());
    assert!(!out.join("config.toml").exists());
    assert!(
        train(&config(MethodKind::Sgd), &out, &RunOptions::default())
            .unwrap()
            .finished
    );
    // Resuming a folder that does not exist says so (and creates nothing).
    let nowhere = dir.path().join("nowhere");
    let e = resume(&nowhere, &RunOptions::default()).unwrap_err();
    assert!(e.to_string().contains("not a run folder"), "{e}");
    assert!(!nowhere.exists());
}

#[test]
fn elapsed_time_counts_the_epochs_of_a_killed_session() {
    let mut cfg = config(MethodKind::Sgd);
    cfg.train.batch_size = 4; // 3 steps per epoch
    cfg.train.epochs = 2;
    let dir = tempfile::tempdir().unwrap();
    // Tasks 0 and 1 (12 steps), then one epoch of task 2 and one step: killed.
    train(&cfg, dir.path(), &stop_after(16)).unwrap_err();
    let at_checkpoint = RunResults::read(
        &checkpoint_root(dir.path())
            .join("task-1")
            .join("results.json"),
    )
    .unwrap()
    .elapsed_s;
    let recorded: f64 = std::fs::read_to_string(dir.path().join("elapsed_s"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(recorded > at_checkpoint, "{recorded} vs {at_checkpoint}");
    let r = resume(dir.path(), &RunOptions::default()).unwrap();
    assert!(r.elapsed_s >= recorded, "{} vs {recorded}", r.elapsed_s);
}
