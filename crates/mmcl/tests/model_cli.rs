//! `mmcl model init` / `mmcl model forward` end to end on the model crate's PyTorch fixtures.
use std::path::PathBuf;
use std::process::Command;

use candle_core::{Device, Tensor};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../mmcl-model/tests/fixtures")
        .join(name)
}

fn mmcl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mmcl"))
        .args(args)
        .output()
        .expect("run mmcl")
}

#[test]
fn forward_of_a_pytorch_checkpoint_matches_pytorch_eval_logits() {
    let dir = tempfile::tempdir().unwrap();
    let io = candle_core::safetensors::load(fixture("film_io.safetensors"), &Device::Cpu).unwrap();
    let input = dir.path().join("in.safetensors");
    let inputs = [
        ("audio", io["audio"].clone()),
        ("video", io["video"].clone()),
    ];
    candle_core::safetensors::save(&inputs.into_iter().collect(), &input).unwrap();
    let out = dir.path().join("out.safetensors");
    let weights = fixture("film_weights.safetensors");
    let res = mmcl(&[
        "model",
        "forward",
        "--checkpoint",
        weights.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--batch-size",
        "2",
        "--width",
        "4",
        "--fusion",
        "film",
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let got = candle_core::safetensors::load(&out, &Device::Cpu).unwrap();
    for k in ["a_logits", "v_logits", "av_logits"] {
        let want: &Tensor = &io[&format!("eval.{k}")];
        let err = mmcl_model::golden::rel_err(&got[k], want).unwrap();
        assert!(err < mmcl_model::golden::TOLERANCE, "{k}: {err}");
    }
    // A wrong architecture option is an error naming the checkpoint.
    let res = mmcl(&[
        "model",
        "forward",
        "--checkpoint",
        weights.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--fusion",
        "gated",
    ]);
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("film_weights.safetensors"));
}

#[test]
fn init_writes_a_seeded_checkpoint_that_forward_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    for (name, seed) in [("a", "5"), ("b", "5"), ("c", "6")] {
        let res = mmcl(&[
            "model",
            "init",
            "--seed",
            seed,
            "--out",
            &path(name),
            "--width",
            "2",
            "--classes",
            "3",
            "--fusion",
            "concat",
        ]);
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
    }
    let read = |n: &str| std::fs::read(path(n)).unwrap();
    assert!(read("a") == read("b"), "same seed, same bytes");
    assert!(read("a") != read("c"), "different seed, different weights");
    let input = path("in");
    let audio = Tensor::ones((2, 1, 33, 63), candle_core::DType::F32, &Device::Cpu).unwrap();
    let video = Tensor::ones((2, 3, 2, 16, 16), candle_core::DType::F32, &Device::Cpu).unwrap();
    candle_core::safetensors::save(
        &[("audio", audio), ("video", video)].into_iter().collect(),
        &input,
    )
    .unwrap();
    let res = mmcl(&[
        "model",
        "forward",
        "--checkpoint",
        &path("a"),
        "--input",
        &input,
        "--out",
        &path("out"),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let got = candle_core::safetensors::load(path("out"), &Device::Cpu).unwrap();
    assert_eq!(got["av_logits"].dims(), &[2, 3]);
    // Missing input tensor: clear error naming the file.
    let res = mmcl(&[
        "model",
        "forward",
        "--checkpoint",
        &path("a"),
        "--input",
        &path("a"),
        "--out",
        &path("out"),
    ]);
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("no tensor `audio`"), "{err}");
}
