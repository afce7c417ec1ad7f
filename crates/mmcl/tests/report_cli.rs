//! `mmcl report` regenerates every number from the run folders' results.json files.

use std::path::Path;
use std::process::Command;

use serde_json::json;

/// A finished 2-task Seq run (4 outputs, 50 test samples per task) whose fused head ends
/// with accuracies `last` (percent, even numbers) on the two tasks.
fn write_run(runs: &Path, name: &str, method: &str, modality: &str, seed: u64, last: [f64; 2]) {
    write_run_with(runs, name, method, modality, seed, last, json!({}));
}

/// [`write_run`] with the run's echoed configuration.
fn write_run_with(
    runs: &Path,
    name: &str,
    method: &str,
    modality: &str,
    seed: u64,
    last: [f64; 2],
    config: serde_json::Value,
) {
    let c = |a: f64| (a / 2.0).round() as u64;
    let bins = |count: u64, correct: u64| {
        let mut b = json!({"count": vec![0u64; 15], "confidence_sum": vec![0.0; 15], "correct": vec![0u64; 15]});
        b["count"][14] = count.into();
        b["confidence_sum"][14] = (0.9 * count as f64).into();
        b["correct"][14] = correct.into();
        b
    };
    let mode = |m: &str| {
        json!({
            "mode": m,
            "correct": [[40, 0], [c(last[0]), c(last[1])]],
            "task_il_correct": null,
            "predicted": [[50, 0, 0, 0], [20, 20, 30, 30]],
            "calibration": [bins(50, 40), bins(100, c(last[0]) + c(last[1]))],
            "random_init_correct": [0, 0],
        })
    };
    let results = json!({
        "schema_version": 2,
        "run": {"method": method, "scenario": "seq", "modality": modality, "buffer_size": 0,
                "seed": seed, "dataset": "test", "num_outputs": 4, "task_il": true},
        "tasks": [{"classes": [0, 1], "new_targets": [0, 1], "n_train": 4, "n_test": 50},
                  {"classes": [2, 3], "new_targets": [2, 3], "n_train": 4, "n_test": 50}],
        "tasks_done": 2, "trained_tasks": 2, "finished": true,
        "modes": [mode("av")],
        "training": [],
        "temperatures": [],
        "elapsed_s": 1.0,
        "config": config,
    });
    let dir = runs.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
}

fn report(runs: &Path, out: &Path) -> String {
    report_with(runs, out, &[])
}

fn report_with(runs: &Path, out: &Path, extra: &[&std::ffi::OsStr]) -> String {
    let status = Command::new(env!("CARGO_BIN_EXE_mmcl"))
        .args(["report", "--runs"])
        .arg(runs)
        .arg("--out")
        .arg(out)
        .args(extra)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn report_numbers_come_from_the_run_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    write_run(
        &runs,
        "seq-sgd-av-s0",
        "sgd",
        "audio_visual",
        0,
        [10.0, 30.0],
    );
    write_run(
        &runs,
        "seq-sgd-av-s1",
        "sgd",
        "audio_visual",
        1,
        [20.0, 40.0],
    );
    write_run(&runs, "seq-sgd-audio-s0", "sgd", "audio", 0, [12.0, 14.0]);
    let out = tmp.path().join("REPORT.md");
    let text = report(&runs, &out);
    // Seeds 0 and 1: final mean accuracies 20 and 30 -> 25.00 ± 5.00 (population std, numpy's default).
    assert!(text.contains("25.00 ± 5.00 (8.24 ± 0.09)"), "{text}");
    assert!(text.contains("13.00 ± 0.00 (7.60 ± 0.33)"), "{text}");
    assert!(tmp.path().join("REPORT-files/table-seq-dom.csv").is_file());
    assert!(tmp.path().join("REPORT-files/curve-seq.png").is_file());
    // The analyses: stability/plasticity per modality. SGD audio: S = A[1][0] = 12, P =
    // mean(80, 14) = 47; multimodal: S = 10 and 20 -> 15 ± 5, P = 55 and 60 -> 57.5 ± 2.5.
    // Recency after the last task: 60 of 100 predictions on task 1's outputs.
    assert!(
        text.contains("| SGD | – | 12.00 ± 0.00 | 47.00 ± 0.00 | 15.00 ± 5.00 | 57.50 ± 2.50 |"),
        "{text}"
    );
    assert!(tmp
        .path()
        .join("REPORT-files/stability-plasticity-seq.svg")
        .is_file());
    assert!(
        text.contains("puts 60.0% of its predictions on the newest task's classes"),
        "{text}"
    );
    assert!(text.contains("against 50.0% without bias"), "{text}");

    // Changing a results file changes the report.
    write_run(
        &runs,
        "seq-sgd-av-s1",
        "sgd",
        "audio_visual",
        1,
        [40.0, 40.0],
    );
    let text = report(&runs, &out);
    assert!(text.contains("30.00 ± 10.00"), "{text}");
    assert!(!text.contains("25.00 ± 5.00"));
}

/// SAMM twins at another λ join the headline table as rows of their own.
#[test]
fn lambda_twins_are_rows_beside_the_headline() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let twins = tmp.path().join("twins");
    let samm = |reg: f64| json!({"method": {"samm": {"reg_weight": reg}}});
    write_run_with(
        &runs,
        "seq-samm",
        "samm",
        "audio_visual",
        0,
        [10.0, 30.0],
        samm(0.01),
    );
    write_run_with(
        &twins,
        "seq-samm-l1-s0",
        "samm",
        "audio_visual",
        0,
        [30.0, 50.0],
        samm(1.0),
    );
    write_run_with(
        &twins,
        "seq-samm-l1-s1",
        "samm",
        "audio_visual",
        1,
        [50.0, 50.0],
        samm(1.0),
    );
    let out = tmp.path().join("REPORT.md");
    let text = report_with(&runs, &out, &["--lambda-runs".as_ref(), twins.as_os_str()]);
    assert!(
        text.contains("| SAMM | – | — | — | 20.00 ± 0.00 |"),
        "{text}"
    );
    // seeds 0 and 1: 40 and 50
    assert!(
        text.contains("| SAMM λ=1 | – | — | — | 45.00 ± 5.00 |"),
        "{text}"
    );
}

/// A results file of an older schema stops the report with an error naming the file.
#[test]
fn an_old_results_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    write_run(
        &runs,
        "seq-sgd-av-s0",
        "sgd",
        "audio_visual",
        0,
        [10.0, 30.0],
    );
    let path = runs.join("seq-sgd-av-s0/results.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"schema_version\":2", "\"schema_version\":1");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mmcl"))
        .args(["report", "--runs"])
        .arg(&runs)
        .arg("--out")
        .arg(tmp.path().join("R.md"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&path.display().to_string()) && err.contains("schema version 1"),
        "{err}"
    );
}

#[test]
fn report_without_finished_runs_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("runs")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mmcl"))
        .args(["report", "--runs"])
        .arg(tmp.path().join("runs"))
        .arg("--out")
        .arg(tmp.path().join("R.md"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no finished runs"));
}

/// Sets the provenance of a written run: its first session with `commit` and `cache`.
fn set_provenance(runs: &Path, name: &str, commit: &str, cache: &str) {
    let path = runs.join(name).join("results.json");
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    r["provenance"] = json!({
        "mmcl_version": "0.1.0", "commit": commit, "dirty": false,
        "config_sha256": "c".repeat(64), "cache_manifest_sha256": cache, "device": "cpu",
        "threads": 2, "kernels": "fast", "host": "node7", "command_line": ["mmcl", "train"],
        "started": "2026-01-01T00:00:00Z", "from_task": 0, "peak_rss_bytes": 104857600u64,
        "resumes": [],
    });
    std::fs::write(&path, r.to_string()).unwrap();
}

/// Two seeds of one cell from different caches are refused, naming both hashes, unless
/// --allow-mixed; the run list shows each run's provenance.
#[test]
fn runs_from_different_caches_are_not_averaged_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    for (name, seed) in [("seq-sgd-av-s0", 0), ("seq-sgd-av-s1", 1)] {
        write_run(&runs, name, "sgd", "audio_visual", seed, [10.0, 30.0]);
    }
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let (h0, h1) = ("5d3e".repeat(16), "77f0".repeat(16));
    set_provenance(&runs, "seq-sgd-av-s0", commit, &h0);
    set_provenance(&runs, "seq-sgd-av-s1", commit, &h1);
    let out = tmp.path().join("R.md");
    let refused = Command::new(env!("CARGO_BIN_EXE_mmcl"))
        .args(["report", "--runs"])
        .arg(&runs)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains(&h0) && err.contains(&h1), "{err}");
    assert!(!out.exists());

    let text = report_with(&runs, &out, &["--allow-mixed".as_ref()]);
    assert!(
        text.contains("mmcl 0.1.0 0123456, cache 5d3e5d3e…, cpu x2 fast, host node7, peak 100 MiB"),
        "{text}"
    );
    // The same cache is one experiment: no flag needed.
    set_provenance(&runs, "seq-sgd-av-s1", commit, &h0);
    report(&runs, &out);
}
