//! `mmcl report` regenerates every number from the run folders' results.json files.

use std::path::Path;
use std::process::Command;

use serde_json::json;

/// A finished 2-task Seq run whose fused head ends with accuracies `last` on the two tasks.
fn write_run(runs: &Path, name: &str, method: &str, modality: &str, seed: u64, last: [f64; 2]) {
    let mode = |m: &str| {
        json!({
            "mode": m,
            "accuracy": [[80.0, 0.0], last],
            "task_il_accuracy": null,
            "seen_accuracy": [80.0, (last[0] + last[1]) / 2.0],
            "ece": [5.0, 7.5],
            "recency": [100.0, 60.0],
            "random_init": [1.0, 1.0],
        })
    };
    let results = json!({
        "schema_version": 1,
        "run": {"method": method, "scenario": "seq", "modality": modality, "buffer_size": 0,
                "seed": seed, "dataset": "test", "num_outputs": 4, "task_il": true},
        "tasks": [{"classes": [0, 1], "new_targets": [0, 1], "n_train": 4, "n_test": 2},
                  {"classes": [2, 3], "new_targets": [2, 3], "n_train": 4, "n_test": 2}],
        "tasks_done": 2, "trained_tasks": 2, "finished": true,
        "modes": [mode("av")],
        "training": [],
        "temperatures": [],
        "elapsed_s": 1.0,
        "config": {},
    });
    let dir = runs.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
}

fn report(runs: &Path, out: &Path) -> String {
    let status = Command::new(env!("CARGO_BIN_EXE_mmcl"))
        .args(["report", "--runs"])
        .arg(runs)
        .arg("--out")
        .arg(out)
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
