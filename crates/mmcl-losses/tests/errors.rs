//! Bad input gives typed errors, never panics; small behavioural checks.

use candle_core::{Device, Tensor};
use mmcl_losses::*;

fn logits() -> Tensor {
    Tensor::new(&[[1.0f32, 2.0, 0.5], [0.1, -1.0, 3.0]], &Device::Cpu).unwrap()
}

#[test]
fn label_out_of_range_is_reported() {
    let y = Tensor::new(&[0u32, 3], &Device::Cpu).unwrap();
    match cross_entropy(&logits(), &y) {
        Err(LossError::LabelOutOfRange {
            label: 3,
            index: 1,
            classes: 3,
            ..
        }) => {}
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn wrong_label_dtype_and_shape_are_reported() {
    let y = Tensor::new(&[0i64, 1], &Device::Cpu).unwrap();
    assert!(matches!(
        cross_entropy(&logits(), &y),
        Err(LossError::LabelDtype { .. })
    ));
    let y = Tensor::new(&[0u32, 1, 2], &Device::Cpu).unwrap();
    assert!(matches!(
        cross_entropy(&logits(), &y),
        Err(LossError::Shape { .. })
    ));
    let other = Tensor::zeros((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        consistency_mse(&logits(), &other),
        Err(LossError::Shape { .. })
    ));
    assert!(matches!(
        smooth_l1(&logits(), &logits(), 0.0),
        Err(LossError::InvalidArgument { .. })
    ));
}

#[test]
fn rkd_of_one_sample_is_zero_and_empty_is_an_error() {
    let one = Tensor::new(&[[1.0f32, 2.0]], &Device::Cpu).unwrap();
    for mean in [RkdMean::Exclusive, RkdMean::Inclusive] {
        let loss = rkd_distance(&one, &one, mean)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(loss, 0.0, "a single sample has no relations to align");
    }
    let empty = Tensor::zeros((0, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        rkd_distance(&empty, &empty, RkdMean::Inclusive),
        Err(LossError::Empty { .. })
    ));
}

#[test]
fn ece_rejects_mismatched_lengths_and_is_zero_when_calibrated() {
    assert!(ece_from_confidences(&[0.5], &[true, false], 15).is_err());
    assert!(ece_from_confidences(&[], &[], 15).is_err());
    // Confidence 1 and always right, confidence 0.5 and right half the time: perfectly calibrated.
    let e = ece_from_confidences(&[1.0, 1.0, 0.5, 0.5], &[true, true, true, false], 15).unwrap();
    assert!(e.abs() < 1e-12);
    let e = ece_from_confidences(&[0.9, 0.9], &[false, false], 15).unwrap();
    assert!((e - 0.9).abs() < 1e-6);
}

#[test]
fn temperature_hits_bound_when_everything_is_right() {
    let y = Tensor::new(&[1u32, 2], &Device::Cpu).unwrap();
    let t = fit_temperature(&logits(), &y).unwrap();
    assert!(
        (t - 0.01).abs() < 1e-6,
        "separable data: NLL falls as T -> 0, got {t}"
    );
}

#[test]
fn ensemble_rejects_bad_temperature() {
    let h = HeadLogits::new(logits(), logits(), logits()).unwrap();
    assert!(calibrated_ensemble(&h, HeadTemperatures([1.0, 0.0, 1.0])).is_err());
    assert!(calibrated_ensemble(&h, HeadTemperatures([1.0, f32::NAN, 1.0])).is_err());
    // The reference's LBFGS fit can end below zero; the ensemble is still defined.
    assert!(calibrated_ensemble(&h, HeadTemperatures([1.0, -2.0, 1.0])).is_ok());
    let out = calibrated_ensemble(&h, HeadTemperatures::default()).unwrap();
    assert_eq!(out.dims(), &[2, 3]);
}

#[test]
fn ensemble_weights_are_each_heads_top_probability_and_make_the_ensemble() {
    let dev = Device::Cpu;
    let t = |v: &[[f32; 3]; 2]| Tensor::new(v, &dev).unwrap();
    // Audio confident on sample 0, visual confident on sample 1, fused flat.
    let a = t(&[[6.0, 0.0, 0.0], [0.0, 0.1, 0.0]]);
    let v = t(&[[0.0, 0.1, 0.0], [0.0, 0.0, 6.0]]);
    let f = t(&[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]);
    let h = HeadLogits::new(a.clone(), v.clone(), f.clone()).unwrap();
    let temps = HeadTemperatures([2.0, 0.5, 1.0]);
    let w = ensemble_weights(&h, temps)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let top = |l: &Tensor, temp: f32, row: usize| -> f32 {
        let r = (l / temp as f64).unwrap().to_vec2::<f32>().unwrap()[row].clone();
        let m = r.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        1.0 / r.iter().map(|x| (x - m).exp()).sum::<f32>()
    };
    for row in 0..2 {
        for (col, (l, temp)) in [(&a, 2.0), (&v, 0.5), (&f, 1.0)].into_iter().enumerate() {
            assert!((w[row][col] - top(l, temp, row)).abs() < 1e-6, "{w:?}");
        }
    }
    assert!(w[0][0] > w[0][1] && w[1][1] > w[1][0], "{w:?}");
    assert!((w[0][2] - 1.0 / 3.0).abs() < 1e-6);
    // The ensemble is the weight-scaled sum of the temperature-scaled logits.
    let out = calibrated_ensemble(&h, temps)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let sa = (&a / 2.0).unwrap().to_vec2::<f32>().unwrap();
    let sv = (&v / 0.5).unwrap().to_vec2::<f32>().unwrap();
    for row in 0..2 {
        for c in 0..3 {
            let want = w[row][0] * sa[row][c] + w[row][1] * sv[row][c];
            assert!((out[row][c] - want).abs() < 1e-5);
        }
    }
}

#[test]
fn samm_can_align_encoder_features_instead_of_head_logits() {
    // RKD needs >= 3 samples to carry information (two points always have the same relation).
    let dev = Device::Cpu;
    let t = |v: &[[f32; 3]; 3]| Tensor::new(v, &dev).unwrap();
    let h = HeadLogits::new(
        t(&[[1.0, 2.0, 0.5], [0.1, -1.0, 3.0], [2.0, 0.0, 0.0]]),
        t(&[[0.0, 1.0, 0.5], [1.0, 1.0, -3.0], [0.5, 0.2, 0.1]]),
        t(&[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
    )
    .unwrap();
    let y = Tensor::new(&[1u32, 2, 0], &dev).unwrap();
    let fa = candle_core::Var::from_tensor(
        &Tensor::new(
            &[
                [1.0f32, 0.0, 2.0, 1.0],
                [0.5, 1.0, -1.0, 0.0],
                [0.0, 0.0, 1.0, 1.0],
            ],
            &dev,
        )
        .unwrap(),
    )
    .unwrap();
    let fv = candle_core::Var::from_tensor(
        &Tensor::new(
            &[
                [0.0f32, 1.0, 1.0, 3.0],
                [2.0, -1.0, 0.0, 1.0],
                [1.0, 1.0, 1.0, -1.0],
            ],
            &dev,
        )
        .unwrap(),
    )
    .unwrap();
    let cfg = SammLossConfig::default();
    let on_logits = samm_loss(
        &cfg,
        &SammBatch {
            logits: &h,
            labels: &y,
            align: None,
        },
        None,
    )
    .unwrap();
    let align = Some((fa.as_tensor(), fv.as_tensor()));
    let on_features = samm_loss(
        &cfg,
        &SammBatch {
            logits: &h,
            labels: &y,
            align,
        },
        None,
    )
    .unwrap();
    let a = on_logits.total.to_scalar::<f32>().unwrap();
    let b = on_features.total.to_scalar::<f32>().unwrap();
    assert!(
        (a - b).abs() > 1e-4,
        "alignment target must matter: {a} vs {b}"
    );
    let grads = on_features.total.backward().unwrap();
    assert!(grads.get(&fa).is_some() && grads.get(&fv).is_some());
}

#[test]
fn fused_consistency_target_regresses_every_head_to_the_stored_fused_logits() {
    let dev = Device::Cpu;
    let t = |v: &[[f32; 3]; 3]| Tensor::new(v, &dev).unwrap();
    let current = HeadLogits::new(
        t(&[[1.0, 2.0, 0.5], [0.1, -1.0, 3.0], [2.0, 0.0, 0.0]]),
        t(&[[0.0, 1.0, 0.5], [1.0, 1.0, -3.0], [0.5, 0.2, 0.1]]),
        t(&[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
    )
    .unwrap();
    let fused = t(&[[0.3, 0.1, 0.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0]]);
    let stored = HeadLogits::new(
        t(&[[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]]),
        t(&[[0.0, 5.0, 0.0], [5.0, 0.0, 0.0], [5.0, 0.0, 0.0]]),
        fused.clone(),
    )
    .unwrap();
    // The same stored fused logits under every head: dynamic selection cannot choose
    // anything else, so both targets must give the same loss.
    let all_fused = HeadLogits::new(fused.clone(), fused.clone(), fused).unwrap();
    let y = Tensor::new(&[1u32, 2, 0], &dev).unwrap();
    let batch = SammBatch {
        logits: &current,
        labels: &y,
        align: None,
    };
    let loss = |target, stored: &HeadLogits| {
        let cfg = SammLossConfig {
            consistency_target: target,
            ..SammLossConfig::default()
        };
        samm_loss(&cfg, &batch, Some((&batch, stored))).unwrap()
    };
    let scalar = |l: &SammLoss| l.total.to_scalar::<f32>().unwrap();
    let fixed = loss(ConsistencyTarget::Fused, &stored);
    assert!(fixed
        .selected
        .iter()
        .all(|h| *h == mmcl_losses::Head::Fused));
    assert_eq!(
        scalar(&fixed),
        scalar(&loss(ConsistencyTarget::Dynamic, &all_fused))
    );
    // With distinct stored heads the paper's dynamic selection is another loss.
    assert_ne!(
        scalar(&fixed),
        scalar(&loss(ConsistencyTarget::Dynamic, &stored))
    );
}
