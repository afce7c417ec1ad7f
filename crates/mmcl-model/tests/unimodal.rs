//! Unimodal networks hold one encoder. The fixtures `unimodal_<m>_before.safetensors` were
//! written by the two-encoder network these replaced (same seed, same fixed batch): its
//! whole state_dict and its logits. `unimodal_<m>_two_encoder_ckpt.safetensors` is that
//! network's checkpoint after one training-mode forward (BatchNorm statistics moved), as
//! the unimodal run folders written before this change hold.
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use mmcl_model::{infer_config, AvNet, AvNetConfig, Fusion, Modality};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(name), &Device::Cpu)
        .unwrap()
        .into_iter()
        .collect()
}

/// The fixed batch the fixtures were computed on.
fn input(shape: &[usize], phase: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37 + phase).sin()).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn batch() -> (Tensor, Tensor) {
    (input(&[3, 1, 33, 63], 0.1), input(&[3, 3, 2, 23, 29], 0.7))
}

fn cfg(modality: Modality) -> AvNetConfig {
    AvNetConfig {
        width: 2,
        classes: 5,
        fusion: Fusion::Film,
        modality,
        frames: 2,
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(candle_core::DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn assert_same(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    assert_eq!(values(got), values(want), "{what}: values");
}

const CASES: [(&str, Modality, &str, &str); 2] = [
    (
        "audio",
        Modality::Audio,
        "visual_net.",
        "fusion_module.y_out.",
    ),
    (
        "visual",
        Modality::Visual,
        "audio_net.",
        "fusion_module.x_out.",
    ),
];

#[test]
fn one_encoder_with_todays_initial_values_and_logits() {
    let (audio, video) = batch();
    for (name, modality, other, other_head) in CASES {
        let before = load(&format!("unimodal_{name}_before.safetensors"));
        let net = AvNet::seeded(cfg(modality), &Device::Cpu, 11).unwrap();
        let state: HashMap<String, Tensor> = net.state_tensors().unwrap().into_iter().collect();
        let kept: BTreeSet<&String> = before
            .keys()
            .filter(|k| !k.starts_with("out."))
            .filter(|k| !k.starts_with(other) && !k.starts_with(other_head))
            .collect();
        assert_eq!(
            state.keys().collect::<BTreeSet<_>>(),
            kept,
            "{name}: state_dict names"
        );
        assert!(
            kept.len() < before.len() / 2 + 10,
            "{name}: the other encoder is gone"
        );
        for (k, t) in &state {
            assert_same(t, &before[k], &format!("{name}: {k}"));
        }
        assert!(net
            .running_stats()
            .iter()
            .all(|(k, _)| !k.starts_with(other)));
        let n: usize = state
            .iter()
            .filter(|(k, _)| !k.contains("running_") && !k.ends_with("num_batches_tracked"))
            .map(|(_, t)| t.elem_count())
            .sum();
        assert_eq!(
            net.num_parameters(),
            n,
            "{name}: only held parameters are trainable"
        );

        let eval = net.forward_t(&audio, &video, false).unwrap();
        assert_same(&eval.av_logits, &before["out.eval.av_logits"], name);
        let (own, absent) = match modality {
            Modality::Audio => (&eval.a_logits, &eval.v_logits),
            _ => (&eval.v_logits, &eval.a_logits),
        };
        let own_key = if modality == Modality::Audio {
            "a_logits"
        } else {
            "v_logits"
        };
        assert_same(
            own.as_ref().unwrap(),
            &before[&format!("out.eval.{own_key}")],
            name,
        );
        assert!(absent.is_none());
        let train = net.forward_t(&audio, &video, true).unwrap();
        assert_same(&train.av_logits, &before["out.train.av_logits"], name);
        let eval2 = net.forward_t(&audio, &video, false).unwrap();
        assert_same(&eval2.av_logits, &before["out.eval2.av_logits"], name);
    }
}

#[test]
fn two_encoder_checkpoints_still_load_and_give_the_same_logits() {
    let (audio, video) = batch();
    for (name, modality, other, _) in CASES {
        let path = fixture(&format!("unimodal_{name}_two_encoder_ckpt.safetensors"));
        let before = load(&format!("unimodal_{name}_before.safetensors"));
        // From the metadata, as `mmcl eval` opens a run folder's checkpoint.
        assert_eq!(infer_config(&path).unwrap().modality, modality);
        let net = AvNet::from_checkpoint(&path, &Device::Cpu).unwrap();
        assert!(net
            .named_trainable_vars()
            .iter()
            .all(|(k, _)| !k.starts_with(other)));
        let out = net.forward_t(&audio, &video, false).unwrap();
        assert_same(&out.av_logits, &before["out.eval2.av_logits"], name);
        // Into a freshly built network too, as a resumed run does.
        let fresh = AvNet::seeded(cfg(modality), &Device::Cpu, 3).unwrap();
        fresh.load(&path).unwrap();
        let again = fresh.forward_t(&audio, &video, false).unwrap();
        assert_same(&again.av_logits, &before["out.eval2.av_logits"], name);
    }
}

#[test]
fn one_encoder_checkpoints_round_trip_and_name_their_modality() {
    let (audio, video) = batch();
    let dir = tempfile::tempdir().unwrap();
    for (name, modality, other, other_head) in CASES {
        let net = AvNet::seeded(cfg(modality), &Device::Cpu, 5).unwrap();
        let path = dir.path().join(format!("{name}.safetensors"));
        net.save(&path).unwrap();
        let names: Vec<String> = load_names(&path);
        assert!(names
            .iter()
            .all(|k| !k.starts_with(other) && !k.starts_with(other_head)));
        assert!(names.iter().any(|k| k == "fusion_module.fc_out.weight"));
        assert_eq!(infer_config(&path).unwrap(), cfg(modality));
        let back = AvNet::from_checkpoint(&path, &Device::Cpu).unwrap();
        let (x, y) = (
            net.forward_t(&audio, &video, false).unwrap(),
            back.forward_t(&audio, &video, false).unwrap(),
        );
        assert_same(&x.av_logits, &y.av_logits, name);
        // A missing tensor of the held encoder is still an error naming it.
        let mut state: HashMap<String, Tensor> = net.state_tensors().unwrap().into_iter().collect();
        let held = if modality == Modality::Audio {
            "audio_net.conv1.weight"
        } else {
            "visual_net.conv1.weight"
        };
        state.remove(held);
        let err = back
            .load_state_tensors(&state, &path)
            .unwrap_err()
            .to_string();
        assert!(err.contains(held), "{err}");
    }
}

#[test]
fn absent_outputs_are_errors_not_panics() {
    let (audio, video) = batch();
    let net = AvNet::seeded(cfg(Modality::Audio), &Device::Cpu, 0).unwrap();
    let out = net.predict(&audio, &video).unwrap();
    assert!(out.audio_logits().is_ok() && out.audio_features().is_ok());
    let err = out.visual_logits().unwrap_err().to_string();
    assert!(err.contains("visual head"), "{err}");
    assert!(out.visual_features().is_err());
    let net = AvNet::seeded(cfg(Modality::Visual), &Device::Cpu, 0).unwrap();
    let out = net.predict(&audio, &video).unwrap();
    assert!(out.audio_logits().is_err() && out.visual_logits().is_ok());
}

fn load_names(path: &std::path::Path) -> Vec<String> {
    candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap()
        .into_keys()
        .collect()
}
