//! `mmcl synth` and `mmcl manifest vggsound` end to end through the binary.
use std::path::Path;
use std::process::Command;

use mmcl_data::manifest::{Manifest, Split};

fn mmcl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mmcl"))
}

#[test]
fn synth_writes_a_readable_dataset_and_refuses_a_foreign_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    let run = |seed: &str| {
        mmcl()
            .args(["synth", "--profile", "tiny", "--seed", seed, "--quiet"])
            .args([
                "--train-per-class",
                "1",
                "--test-per-class",
                "1",
                "--sample-rate",
                "4000",
                "--frame-size",
                "16",
            ])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let o = run("3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("200 clips (100 train, 100 test)"),
        "{stdout}"
    );
    assert!(stdout.contains("spectrogram 129x63"), "{stdout}");
    let m = Manifest::read(&out.join("manifest.csv")).unwrap();
    assert_eq!(m.split(Split::Train).count(), 100);
    assert!(m.audio_path(&m.entries[0]).unwrap().is_file());
    let o = run("4");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("seed 3"));
}

#[test]
fn manifest_vggsound_reports_missing_clips_and_short_classes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("audio")).unwrap();
    std::fs::create_dir_all(root.join("video")).unwrap();
    let csv = root.join("vggsound.csv");
    std::fs::write(
        &csv,
        "a,1,dog barking,test\nb,2,dog barking,train\nc,3,\"pigeon, dove cooing\",train\n",
    )
    .unwrap();
    std::fs::write(
        root.join("video/a_000001.mp4"),
        b"\x00\x00\x00\x20ftypisom\x00\x00\x00\x00",
    )
    .unwrap();
    std::fs::write(
        root.join("video/c_000003.mp4"),
        b"\x00\x00\x00\x20ftypisom\x00\x00\x00\x00",
    )
    .unwrap();
    let out = root.join("manifest.csv");
    let o = mmcl()
        .args(["manifest", "vggsound", "--csv"])
        .arg(&csv)
        .arg("--root")
        .arg(root)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("skipped b_000002: audio/b_000002.wav: missing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("short class 18 \"dog barking\": 1 test (want 50), 0 train (want 500)"),
        "{stderr}"
    );
    let m = Manifest::read(&out).unwrap();
    let ids: Vec<&str> = m.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["a_000001", "c_000003"]);
    assert_eq!(m.entries[1].class_name, "pigeon, dove cooing");
    assert_eq!(m.entries[1].split, Split::Test);
    assert!(m.video_path(&m.entries[0]).unwrap().is_file());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("manifest.report.json")).unwrap()).unwrap();
    assert_eq!(report["classes"][18]["test"], 1);
    assert!(Path::new(&root.join("manifest.report.json")).is_file());
}
