//! Architecture, initialisation, BatchNorm state and checkpoint behaviour (no Python needed).
use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use mmcl_model::{infer_config, AvNet, AvNetConfig, Fusion, Modality, ModelError};

fn cfg(width: usize, classes: usize, fusion: Fusion, modality: Modality) -> AvNetConfig {
    AvNetConfig {
        width,
        classes,
        fusion,
        modality,
        frames: 2,
    }
}

fn small() -> AvNetConfig {
    cfg(2, 5, Fusion::Film, Modality::AudioVisual)
}

/// Deterministic pseudo-random inputs (no candle RNG).
fn inputs(b: usize) -> (Tensor, Tensor) {
    let wave = |n: usize, k: f32| {
        (0..n)
            .map(|i| ((i as f32 * k).sin() * 1.7).fract())
            .collect::<Vec<f32>>()
    };
    let audio = Tensor::from_vec(wave(b * 33 * 63, 0.37), (b, 1, 33, 63), &Device::Cpu).unwrap();
    let video = Tensor::from_vec(
        wave(b * 3 * 2 * 23 * 29, 0.91),
        (b, 3, 2, 23, 29),
        &Device::Cpu,
    )
    .unwrap();
    (audio, video)
}

fn count(net: &AvNet, prefix: &str) -> usize {
    net.named_trainable_vars()
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v.elem_count())
        .sum()
}

#[test]
fn paper_network_has_the_reference_parameter_count() {
    let net = AvNet::seeded(AvNetConfig::default(), &Device::Cpu, 0).unwrap();
    assert_eq!(net.num_parameters(), 23_025_964);
    assert_eq!(count(&net, "audio_net."), 11_170_240);
    assert_eq!(count(&net, "visual_net."), 11_176_512);
    assert_eq!(count(&net, "fusion_module.fc."), 525_312);
    let heads = count(&net, "fusion_module.fc_out.")
        + count(&net, "fusion_module.x_out.")
        + count(&net, "fusion_module.y_out.");
    assert_eq!(heads, 153_900);
    // Reference names; BN buffers are state, not trainable.
    let names: Vec<&str> = net
        .named_trainable_vars()
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    for k in [
        "audio_net.layer1.0.conv1.weight",
        "visual_net.layer4.0.downsample.1.bias",
        "fusion_module.fc_out.bias",
    ] {
        assert!(names.contains(&k), "{k}");
    }
    assert!(names
        .iter()
        .all(|k| k.ends_with(".weight") || k.ends_with(".bias")));
    assert_eq!(net.trainable_vars().len(), names.len());
    assert_eq!(
        net.running_stats().len(),
        2 * 20,
        "20 BatchNorms per encoder"
    );
}

#[test]
fn initialisation_follows_the_reference_laws_and_is_seeded() {
    let c = cfg(8, 10, Fusion::Film, Modality::AudioVisual);
    let net = AvNet::seeded(c, &Device::Cpu, 42).unwrap();
    let get = |name: &str| -> Vec<f32> {
        let (_, v) = net
            .named_trainable_vars()
            .iter()
            .find(|(k, _)| k == name)
            .unwrap();
        v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()
    };
    let stats = |v: &[f32]| {
        let n = v.len() as f64;
        let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        (
            m,
            (v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n).sqrt(),
        )
    };
    // kaiming normal, fan_out, relu: [64, 64, 3, 3] -> std sqrt(2 / 576)
    let (m, s) = stats(&get("visual_net.layer4.1.conv2.weight"));
    let want = (2.0f64 / 576.0).sqrt();
    assert!(
        m.abs() < 0.01 * want * 10.0 && (s / want - 1.0).abs() < 0.03,
        "conv mean {m} std {s} want {want}"
    );
    // BN weight ~ N(1, 0.02), bias 0.
    let w: Vec<f32> = ["audio_net", "visual_net"]
        .iter()
        .flat_map(|e| {
            (1..=4).flat_map(move |l| (0..2).map(move |b| format!("{e}.layer{l}.{b}.bn1.weight")))
        })
        .flat_map(|k| get(&k))
        .collect();
    let (m, s) = stats(&w);
    assert!(
        (m - 1.0).abs() < 0.005 && (s / 0.02 - 1.0).abs() < 0.15,
        "bn mean {m} std {s}"
    );
    assert!(get("audio_net.bn1.bias").iter().all(|&x| x == 0.0));
    // Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias; fan_in 64.
    let fc = get("fusion_module.fc.weight");
    let bound = 1.0 / 8.0;
    assert!(fc.iter().all(|x| x.abs() <= bound));
    let (m, s) = stats(&fc);
    assert!(
        m.abs() < 0.005 && (s / (bound as f64 / 3f64.sqrt()) - 1.0).abs() < 0.03,
        "linear mean {m} std {s}"
    );
    assert!(get("fusion_module.fc.bias")
        .iter()
        .all(|x| x.abs() <= bound));

    let same = AvNet::seeded(c, &Device::Cpu, 42).unwrap();
    let other = AvNet::seeded(c, &Device::Cpu, 43).unwrap();
    let first = |n: &AvNet| {
        n.named_trainable_vars()[0]
            .1
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(first(&net), first(&same));
    assert_ne!(first(&net), first(&other));
}

#[test]
fn train_mode_updates_running_stats_and_eval_mode_does_not() {
    let net = AvNet::seeded(small(), &Device::Cpu, 1).unwrap();
    let (audio, video) = inputs(2);
    let before = net.running_stats();
    net.forward_t(&audio, &video, false).unwrap();
    let after_eval = net.running_stats();
    for ((_, a), (_, b)) in before.iter().zip(&after_eval) {
        assert_eq!(a.num_batches_tracked, b.num_batches_tracked);
        assert_eq!(
            a.running_mean.to_vec1::<f32>().unwrap(),
            b.running_mean.to_vec1::<f32>().unwrap()
        );
    }
    net.forward_t(&audio, &video, true).unwrap();
    let (name, s) = &net.running_stats()[0];
    assert_eq!(name, "audio_net.bn1");
    assert_eq!(s.num_batches_tracked, 1);
    // Stem BN sees conv outputs of a non-constant input: the mean moved off 0.
    assert!(s
        .running_mean
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .any(|&x| x != 0.0));
}

#[test]
fn eval_forward_is_per_sample() {
    let net = AvNet::seeded(small(), &Device::Cpu, 3).unwrap();
    let (audio, video) = inputs(3);
    let all = net.forward_t(&audio, &video, false).unwrap().av_logits;
    let one = net
        .forward_t(
            &audio.narrow(0, 1, 1).unwrap(),
            &video.narrow(0, 1, 1).unwrap(),
            false,
        )
        .unwrap()
        .av_logits;
    let diff = (all.narrow(0, 1, 1).unwrap() - one)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 1e-5, "{diff}");
    // predict: same values, no autograd graph kept alive.
    let p = net.predict(&audio, &video).unwrap().av_logits;
    assert_eq!(p.to_vec2::<f32>().unwrap(), all.to_vec2::<f32>().unwrap());
    assert!(all.track_op() && !p.track_op());
}

#[test]
fn checkpoint_round_trip_keeps_weights_and_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.safetensors");
    for (fusion, modality) in [
        (Fusion::Film, Modality::AudioVisual),
        (Fusion::Sum, Modality::AudioVisual),
        (Fusion::Concat, Modality::AudioVisual),
        (Fusion::Gated, Modality::AudioVisual),
        (Fusion::Film, Modality::Visual),
    ] {
        let c = cfg(2, 3, fusion, modality);
        let net = AvNet::seeded(c, &Device::Cpu, 9).unwrap();
        let (audio, video) = inputs(2);
        net.forward_t(&audio, &video, true).unwrap(); // non-trivial running statistics
        net.save(&path).unwrap();
        assert_eq!(infer_config(&path).unwrap(), c, "{fusion}/{modality}");
        let back = AvNet::from_checkpoint(&path, &Device::Cpu).unwrap();
        let a = net.forward_t(&audio, &video, false).unwrap();
        let b = back.forward_t(&audio, &video, false).unwrap();
        assert_eq!(a.a_logits.is_some(), b.a_logits.is_some());
        assert_eq!(a.v_logits.is_some(), b.v_logits.is_some());
        let heads = [(&a.a_logits, &b.a_logits), (&a.v_logits, &b.v_logits)];
        let present = heads
            .into_iter()
            .filter_map(|(x, y)| x.as_ref().zip(y.as_ref()));
        for (x, y) in present.chain([(&a.av_logits, &b.av_logits)]) {
            assert_eq!(x.to_vec2::<f32>().unwrap(), y.to_vec2::<f32>().unwrap());
        }
        assert_eq!(back.running_stats()[3].1.num_batches_tracked, 1);
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().count() == 1,
        "no temporary files left behind"
    );
}

#[test]
fn strict_load_rejects_other_architectures_with_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("film.safetensors");
    AvNet::seeded(small(), &Device::Cpu, 0)
        .unwrap()
        .save(&path)
        .unwrap();

    // Different fusion: missing and unexpected tensors, named.
    let gated = AvNet::seeded(
        cfg(2, 5, Fusion::Gated, Modality::AudioVisual),
        &Device::Cpu,
        0,
    )
    .unwrap();
    let err = gated.load(&path).unwrap_err().to_string();
    assert!(
        err.contains("film.safetensors")
            && err.contains("fusion_module.fc_x.weight")
            && err.contains("fusion_module.fc.weight"),
        "{err}"
    );
    // Different classes: shape mismatch, named.
    let wide = AvNet::seeded(
        cfg(2, 6, Fusion::Film, Modality::AudioVisual),
        &Device::Cpu,
        0,
    )
    .unwrap();
    let err = wide.load(&path).unwrap_err().to_string();
    assert!(
        err.contains("fusion_module") && err.contains("[6, 16]"),
        "{err}"
    );
    // A failed load leaves the network unchanged.
    let first = |n: &AvNet| {
        n.named_trainable_vars()[0]
            .1
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let before = first(&wide);
    let _ = wide.load(&path);
    assert_eq!(before, first(&wide));
    // Extra tensor.
    let mut tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    tensors.insert(
        "extra.weight".into(),
        Tensor::zeros(1, DType::F32, &Device::Cpu).unwrap(),
    );
    let net = AvNet::seeded(small(), &Device::Cpu, 0).unwrap();
    let err = net
        .load_state_tensors(&tensors, &path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("extra.weight"), "{err}");
    // Not a safetensors file / missing file.
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a checkpoint").unwrap();
    assert!(matches!(
        net.load(&junk),
        Err(ModelError::Checkpoint { .. })
    ));
    assert!(matches!(
        net.load(dir.path().join("absent.safetensors")),
        Err(ModelError::Io { .. })
    ));
}

#[test]
fn bad_inputs_are_typed_errors() {
    let net = AvNet::seeded(small(), &Device::Cpu, 0).unwrap();
    let (audio, video) = inputs(2);
    let three = Tensor::zeros((2, 3, 33, 63), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        net.forward_t(&three, &video, false),
        Err(ModelError::BadInput { name: "audio", .. })
    ));
    assert!(matches!(
        net.forward_t(&audio, &audio, false),
        Err(ModelError::BadInput { name: "video", .. })
    ));
    let half = audio.to_dtype(DType::F16).unwrap();
    assert!(matches!(
        net.forward_t(&half, &video, false),
        Err(ModelError::BadInput { name: "audio", .. })
    ));
    // Non-contiguous inputs are fine.
    let t = audio
        .transpose(2, 3)
        .unwrap()
        .contiguous()
        .unwrap()
        .transpose(2, 3)
        .unwrap();
    assert!(!t.is_contiguous());
    let x = net
        .forward_t(&t, &video, false)
        .unwrap()
        .av_logits
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(
        x,
        net.forward_t(&audio, &video, false)
            .unwrap()
            .av_logits
            .to_vec2::<f32>()
            .unwrap()
    );
    let (a1, _) = inputs(1);
    assert!(matches!(
        net.forward_t(&a1, &video, false),
        Err(ModelError::BadInput { name: "video", .. })
    ));
    assert!(matches!(
        AvNet::seeded(
            cfg(0, 5, Fusion::Film, Modality::AudioVisual),
            &Device::Cpu,
            0
        ),
        Err(ModelError::Config(_))
    ));
}

#[test]
fn duplicate_is_independent_and_clone_shares() {
    let net = AvNet::seeded(small(), &Device::Cpu, 4).unwrap();
    let (audio, video) = inputs(2);
    net.forward_t(&audio, &video, true).unwrap();
    let copy = net.duplicate().unwrap();
    let shared = net.clone();
    let same = |a: &AvNet, b: &AvNet| {
        let x = a
            .forward_t(&audio, &video, false)
            .unwrap()
            .av_logits
            .to_vec2::<f32>()
            .unwrap();
        let y = b
            .forward_t(&audio, &video, false)
            .unwrap()
            .av_logits
            .to_vec2::<f32>()
            .unwrap();
        x == y
    };
    assert!(same(&net, &copy));
    // Change the original's weights and statistics: the clone follows, the duplicate does not.
    let (_, w) = &net.named_trainable_vars()[0];
    w.set(&(w.as_tensor() * 1.5).unwrap()).unwrap();
    net.forward_t(&audio, &video, true).unwrap();
    assert!(same(&net, &shared));
    assert!(!same(&net, &copy));
    assert_eq!(copy.running_stats()[0].1.num_batches_tracked, 1);
    assert_eq!(shared.running_stats()[0].1.num_batches_tracked, 2);
}
