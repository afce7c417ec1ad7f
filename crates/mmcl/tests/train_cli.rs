//! `mmcl train` through the binary: one writer per run folder, and `--resume` refuses the
//! settings it cannot change instead of ignoring them.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn mmcl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mmcl"))
}

fn ok(c: &mut Command) {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A tiny synthetic cache (1 train + 1 test clip per class, 4 kHz, 16 px).
fn tiny_cache(dir: &Path) -> PathBuf {
    let synth = dir.join("synth");
    ok(mmcl()
        .args(["synth", "--profile", "tiny", "--seed", "0", "--quiet"])
        .args(["--train-per-class", "1", "--test-per-class", "1"])
        .args(["--sample-rate", "4000", "--frame-size", "16", "--out"])
        .arg(&synth));
    let cache = dir.join("cache");
    ok(mmcl()
        .args(["prep", "--quiet", "--manifest"])
        .arg(synth.join("manifest.csv"))
        .arg("--out")
        .arg(&cache));
    cache
}

fn train(cache: &Path, out: &Path, epochs: &str) -> Command {
    let mut c = mmcl();
    c.args(["train", "--preset", "tiny", "--quiet", "--epochs", epochs])
        .args([
            "--set",
            "scenario.tasks=2",
            "--set",
            "scenario.classes_per_task=5",
        ])
        .arg("--cache")
        .arg(cache)
        .arg("--out")
        .arg(out);
    c
}

#[test]
fn two_concurrent_trains_into_one_folder_exactly_one_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tiny_cache(dir.path());
    let out = dir.path().join("run");
    let mut first = train(&cache, &out, "40")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = first.id().to_string();
    let lock = out.join(".lock");
    let t0 = Instant::now();
    while std::fs::read_to_string(&lock).unwrap_or_default() != pid {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the first train never locked"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for second in [
        train(&cache, &out, "1").output().unwrap(),
        mmcl()
            .args(["train", "--quiet", "--resume"])
            .arg(&out)
            .output()
            .unwrap(),
    ] {
        let err = String::from_utf8_lossy(&second.stderr);
        assert!(!second.status.success());
        assert!(
            err.contains(&format!("is in use by process {pid}")),
            "{err}"
        );
    }
    let status = first.wait().unwrap();
    assert!(status.success());
    assert!(out.join("results.json").is_file());
}

#[test]
fn resume_refuses_the_flags_it_cannot_apply_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let o = mmcl()
        .args(["train", "--resume"])
        .arg(dir.path())
        .args([
            "--lr", "0.001", "--epochs", "3", "--method", "er", "--set", "seed=1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("--method, --set cannot be changed when resuming") && err.contains("--lr"),
        "{err}"
    );
}
