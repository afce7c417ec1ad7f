//! The `mmcl` command line end to end, through the built binary: the tiny pipeline
//! (synth -> prep -> train -> report), `--help` of every command, and the errors a user
//! meets first (exit code 2 and a message naming the file or flag).
use std::path::{Path, PathBuf};
use std::process::Output;

use mmcl_tests::mmcl;

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "status {}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a usage error: exit code 2 and every `needle` in stderr.
fn usage_error(out: Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
}

/// A tiny synthetic dataset (1 train + 1 test clip per class, 4 kHz, 16 px) and its cache.
fn tiny_cache(dir: &Path) -> PathBuf {
    let synth = dir.join("synth");
    ok(mmcl()
        .args(["synth", "--profile", "tiny", "--seed", "0", "--quiet"])
        .args(["--train-per-class", "1", "--test-per-class", "1"])
        .args(["--sample-rate", "4000", "--frame-size", "16", "--out"])
        .arg(&synth)
        .output()
        .unwrap());
    let cache = dir.join("cache");
    ok(mmcl()
        .args(["prep", "--quiet", "--manifest"])
        .arg(synth.join("manifest.csv"))
        .arg("--out")
        .arg(&cache)
        .output()
        .unwrap());
    cache
}

#[test]
fn synth_prep_train_report_on_the_tiny_profile() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tiny_cache(dir.path());
    let runs = dir.path().join("runs");
    for (method, extra) in [("er", &["--buffer", "20"][..]), ("sgd", &[][..])] {
        ok(mmcl()
            .args(["train", "--preset", "tiny", "--quiet", "--epochs", "1"])
            .args(["--scenario", "seq", "--method", method])
            .args(extra)
            .args([
                "--set",
                "scenario.tasks=2",
                "--set",
                "scenario.classes_per_task=5",
            ])
            .arg("--cache")
            .arg(&cache)
            .arg("--out")
            .arg(runs.join(method))
            .output()
            .unwrap());
        let results: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(runs.join(method).join("results.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(results["run"]["method"], method, "{results}");
    }
    // The robustness suite's smallest cell on the trained ER run.
    let out = ok(mmcl()
        .args(["eval", "--quiet", "--corrupt", "audio:missing", "--run"])
        .arg(runs.join("er"))
        .output()
        .unwrap());
    assert!(
        out.contains("audio:missing: av ") && out.contains("clean: av "),
        "{out}"
    );
    assert!(runs.join("er").join("robustness.json").is_file());
    let report = dir.path().join("REPORT.md");
    ok(mmcl()
        .args(["report", "--runs"])
        .arg(&runs)
        .arg("--out")
        .arg(&report)
        .output()
        .unwrap());
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("ER") && md.contains("SGD"), "{md}");
    // The robustness cells of the ER run make the report's Robustness section.
    assert!(
        md.contains("## Robustness") && md.contains("| seq | ER multimodal (buffer 20) |"),
        "{md}"
    );
}

/// The subcommands listed under "Commands:" in a `--help` text (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_command_has_a_help_page() {
    let top = ok(mmcl().arg("--help").output().unwrap());
    let mut pending: Vec<Vec<String>> = subcommands(&top).into_iter().map(|c| vec![c]).collect();
    assert!(pending.len() >= 8, "too few commands in:\n{top}");
    let mut seen = 0;
    while let Some(path) = pending.pop() {
        let help = ok(mmcl().args(&path).arg("--help").output().unwrap());
        assert!(help.contains("Usage: mmcl"), "{path:?}:\n{help}");
        seen += 1;
        for sub in subcommands(&help) {
            let mut p = path.clone();
            p.push(sub);
            pending.push(p);
        }
    }
    assert!(seen > 10, "only {seen} help pages");
}

#[test]
fn a_missing_manifest_is_a_usage_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-manifest.csv");
    let out = mmcl()
        .args(["prep", "--quiet", "--manifest"])
        .arg(&missing)
        .arg("--out")
        .arg(dir.path().join("cache"))
        .output()
        .unwrap();
    usage_error(out, &["no-such-manifest.csv"]);
}

#[test]
fn a_malformed_config_is_a_usage_error_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.toml");
    std::fs::write(&config, "[train]\nepochs = = 3\n").unwrap();
    let out = mmcl()
        .args(["train", "--dry-run", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    usage_error(out, &["broken.toml", "line 2"]);
}

#[test]
fn resume_of_a_folder_that_is_not_a_run_is_a_usage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_run = dir.path().join("holiday-photos");
    std::fs::create_dir_all(&not_a_run).unwrap();
    let out = mmcl()
        .args(["train", "--quiet", "--resume"])
        .arg(&not_a_run)
        .output()
        .unwrap();
    usage_error(out, &["holiday-photos"]);
}

#[test]
fn an_unknown_flag_names_the_flag() {
    let out = mmcl().args(["train", "--epochz", "3"]).output().unwrap();
    usage_error(out, &["--epochz"]);
}

#[test]
fn a_malformed_corruption_spec_names_the_bad_part_before_any_work() {
    // The run folder does not exist: a spec checked after starting would complain about it.
    let out = mmcl()
        .args([
            "eval",
            "--run",
            "no-such-run",
            "--corrupt",
            "audio:pink:2+visual:blurr:4",
        ])
        .output()
        .unwrap();
    usage_error(out, &["visual:blurr:4", "accepted", "suite:"]);
    let err = String::from_utf8_lossy(
        &mmcl()
            .args(["eval", "--run", "no-such-run", "--corrupt", "audio:white:9"])
            .output()
            .unwrap()
            .stderr,
    )
    .into_owned();
    assert!(
        err.contains("audio:white:9") && !err.contains("no-such-run"),
        "{err}"
    );
}
