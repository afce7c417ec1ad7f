//! Golden tests against PyTorch: fixtures written by `tools/golden/losses.py`.
//!
//! Every differentiable loss is checked in f64 (tolerance 1e-9: proves the same formula) and
//! in f32 (tolerance 1e-4 relative: what training runs), value and gradient. A gradient element
//! passes when `|got - want| <= rtol * (|want| + max|want| * 1e-2)`: a relative bound with a
//! floor at 1% of the tensor's largest entry, so entries that are ~0 are not held to an
//! impossible relative bound.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use mmcl_losses::*;

fn fixtures() -> HashMap<String, Tensor> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/losses.safetensors"
    );
    candle_core::safetensors::load(path, &Device::Cpu).expect("fixture losses.safetensors")
}

struct Fx(HashMap<String, Tensor>);

impl Fx {
    fn get(&self, name: &str) -> Tensor {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("missing fixture {name}"))
            .clone()
    }
    fn input(&self, name: &str, dtype: DType) -> Var {
        Var::from_tensor(&self.get(name).to_dtype(dtype).unwrap()).unwrap()
    }
    fn f64s(&self, name: &str) -> Vec<f64> {
        self.get(name)
            .to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let bound = rtol * (w.abs() + scale * 1e-2);
        assert!(
            (g - w).abs() <= bound,
            "{what}[{i}]: got {g}, want {w} (|diff| {} > {bound})",
            (g - w).abs()
        );
    }
}

fn tol(dtype: DType) -> f64 {
    if dtype == DType::F64 {
        1e-9
    } else {
        1e-4
    }
}

/// Runs `loss` on the named inputs in `dtype`; checks value and the gradient of each input.
fn check_value_and_grads(
    fx: &Fx,
    name: &str,
    inputs: &[&str],
    dtype: DType,
    loss: impl Fn(&[Tensor]) -> Result<Tensor>,
) {
    let vars: Vec<Var> = inputs.iter().map(|n| fx.input(n, dtype)).collect();
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = loss(&tensors).unwrap();
    let rtol = tol(dtype);
    assert_close(
        &format!("{name} value ({dtype:?})"),
        &values(&out),
        &fx.f64s(&format!("{name}/value")),
        rtol,
    );
    let grads = out.backward().unwrap();
    for (i, v) in vars.iter().enumerate() {
        let g = grads
            .get(v)
            .unwrap_or_else(|| panic!("{name}: no gradient for input {i}"));
        assert_close(
            &format!("{name} grad{i} ({dtype:?})"),
            &values(g),
            &fx.f64s(&format!("{name}/grad{i}")),
            rtol,
        );
    }
}

const DTYPES: [DType; 2] = [DType::F64, DType::F32];

#[test]
fn cross_entropy_matches_torch() {
    let fx = Fx(fixtures());
    let y = fx.get("ce/labels");
    for dt in DTYPES {
        check_value_and_grads(&fx, "ce", &["ce/logits"], dt, |x| cross_entropy(&x[0], &y));
    }
}

#[test]
fn smooth_l1_matches_torch() {
    let fx = Fx(fixtures());
    for dt in DTYPES {
        let target = fx.get("smooth_l1/target").to_dtype(dt).unwrap();
        for (name, beta) in [("smooth_l1/beta1", 1.0), ("smooth_l1/beta0.5", 0.5)] {
            check_value_and_grads(&fx, name, &["smooth_l1/input"], dt, |x| {
                smooth_l1(&x[0], &target, beta)
            });
        }
    }
}

#[test]
fn rkd_matches_reference() {
    let fx = Fx(fixtures());
    for dt in DTYPES {
        let teacher = fx.get("rkd/teacher").to_dtype(dt).unwrap();
        check_value_and_grads(&fx, "rkd/inclusive", &["rkd/student"], dt, |x| {
            rkd_distance(&x[0], &teacher, RkdMean::Inclusive)
        });
        check_value_and_grads(&fx, "rkd/exclusive", &["rkd/student"], dt, |x| {
            rkd_distance(&x[0], &teacher, RkdMean::Exclusive)
        });
        check_value_and_grads(&fx, "rkd/angle", &["rkd/student"], dt, |x| {
            rkd_angle(&x[0], &teacher)
        });
    }
}

#[test]
fn rkd_teacher_gets_no_gradient() {
    let fx = Fx(fixtures());
    let s = fx.input("rkd/student", DType::F32);
    let t = Var::from_tensor(
        &fx.get("rkd/student")
            .flatten_from(1)
            .unwrap()
            .affine(0.5, 0.1)
            .unwrap(),
    )
    .unwrap();
    let loss = rkd_distance(s.as_tensor(), t.as_tensor(), RkdMean::Inclusive).unwrap();
    let grads = loss.backward().unwrap();
    assert!(grads.get(&s).is_some());
    assert!(grads.get(&t).is_none(), "teacher must be detached");
}

fn heads(fx: &Fx, prefix: &str, dtype: DType) -> HeadLogits {
    let get = |n: &str| fx.get(&format!("{prefix}_{n}")).to_dtype(dtype).unwrap();
    HeadLogits::new(get("audio"), get("visual"), get("fused")).unwrap()
}

#[test]
fn logit_selection_matches_reference_including_ties() {
    let fx = Fx(fixtures());
    let want: Vec<u32> = fx.get("select/heads").to_vec1().unwrap();
    for dt in DTYPES {
        let sel = select_targets(
            &heads(&fx, "select/current", dt),
            &heads(&fx, "select/stored", dt),
            &fx.get("select/labels"),
        )
        .unwrap();
        let got: Vec<u32> = sel.heads.iter().map(|h| h.index() as u32).collect();
        assert_eq!(got, want, "{dt:?}");
        assert_eq!(values(&sel.targets), fx.f64s("select/targets"));
        let z = sel.targets.clone();
        check_value_and_grads(
            &fx,
            "select/mse_fused",
            &["select/current_fused"],
            dt,
            |x| consistency_mse(&x[0], &z),
        );
    }
    assert_eq!(&want[..3], &[0, 1, 2], "fixture must hold the tie cases");
}

#[test]
fn ece_matches_torch_style() {
    let fx = Fx(fixtures());
    let logits = fx.get("ece/logits");
    let y = fx.get("ece/labels");
    for (bins, name) in [(15, "ece/value15"), (10, "ece/value10")] {
        let got = ece_from_logits(&logits, &y, bins).unwrap();
        assert_close(name, &[got], &fx.f64s(name), 1e-5);
    }
}

#[test]
fn temperatures_match_scipy_and_torch_lbfgs() {
    let fx = Fx(fixtures());
    let logits = fx.get("temperature/logits");
    let y = fx.get("temperature/labels");
    let exact = fx.f64s("temperature/exact");
    let lbfgs = fx.f64s("temperature/lbfgs");
    for h in 0..3 {
        let l = logits.get(h).unwrap();
        let fit = fit_temperature_with(&l, &y, TemperatureSolver::default()).unwrap();
        assert_close(
            &format!("exact T head {h}"),
            &[fit.temperature as f64],
            &exact[h..h + 1],
            1e-5,
        );
        assert!(fit.nll_fitted <= fit.nll_at_one);
        let fit = fit_temperature_with(&l, &y, TemperatureSolver::reference()).unwrap();
        assert_close(
            &format!("lbfgs T head {h}"),
            &[fit.temperature as f64],
            &lbfgs[h..h + 1],
            1e-4,
        );
    }
}

#[test]
fn ensemble_matches_reference() {
    let fx = Fx(fixtures());
    let l = fx.get("ensemble/logits");
    let t: Vec<f32> = fx.get("ensemble/temperatures").to_vec1().unwrap();
    for dt in DTYPES {
        let l = l.to_dtype(dt).unwrap();
        let heads =
            HeadLogits::new(l.get(0).unwrap(), l.get(1).unwrap(), l.get(2).unwrap()).unwrap();
        let out = calibrated_ensemble(&heads, HeadTemperatures([t[0], t[1], t[2]])).unwrap();
        assert_close(
            &format!("ensemble {dt:?}"),
            &values(&out),
            &fx.f64s("ensemble/output"),
            tol(dt),
        );
    }
}

#[test]
fn samm_objective_matches_reference() {
    let fx = Fx(fixtures());
    let names = [
        "samm/current_audio",
        "samm/current_visual",
        "samm/current_fused",
        "samm/buffer_audio",
        "samm/buffer_visual",
        "samm/buffer_fused",
    ];
    let y = fx.get("samm/labels");
    let yb = fx.get("samm/buffer_labels");
    let variants = [
        ("default", SammLossConfig::default()),
        (
            "exclusive_angle",
            SammLossConfig {
                rkd_mean: RkdMean::Exclusive,
                angle_weight: 1.0,
                ..SammLossConfig::default()
            },
        ),
    ];
    for dt in DTYPES {
        let stored = heads(&fx, "samm/stored", dt);
        for (variant, cfg) in variants {
            let vars: Vec<Var> = names.iter().map(|n| fx.input(n, dt)).collect();
            let t: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
            let cur = HeadLogits::new(t[0].clone(), t[1].clone(), t[2].clone()).unwrap();
            let buf = HeadLogits::new(t[3].clone(), t[4].clone(), t[5].clone()).unwrap();
            let cur_batch = SammBatch {
                logits: &cur,
                labels: &y,
                align: None,
            };
            let buf_batch = SammBatch {
                logits: &buf,
                labels: &yb,
                align: None,
            };
            let loss = samm_loss(&cfg, &cur_batch, Some((&buf_batch, &stored))).unwrap();
            let rtol = tol(dt);
            let p = format!("samm/{variant}");
            assert_close(
                &format!("{p} total {dt:?}"),
                &values(&loss.total),
                &fx.f64s(&format!("{p}/total")),
                rtol,
            );
            assert_close(
                &format!("{p} current"),
                &values(&loss.current),
                &fx.f64s(&format!("{p}/current")),
                rtol,
            );
            assert_close(
                &format!("{p} buffer"),
                &values(loss.buffer.as_ref().unwrap()),
                &fx.f64s(&format!("{p}/buffer")),
                rtol,
            );
            let heads_want: Vec<u32> = fx.get(&format!("{p}/heads")).to_vec1().unwrap();
            let heads_got: Vec<u32> = loss.selected.iter().map(|h| h.index() as u32).collect();
            assert_eq!(heads_got, heads_want);
            let grads = loss.total.backward().unwrap();
            for (i, v) in vars.iter().enumerate() {
                assert_close(
                    &format!("{p} grad{i} {dt:?}"),
                    &values(grads.get(v).unwrap()),
                    &fx.f64s(&format!("{p}/grad{i}")),
                    rtol,
                );
            }
            // Empty buffer: L_cur alone.
            let cur_only = samm_loss(&cfg, &cur_batch, None).unwrap();
            assert!(cur_only.buffer.is_none());
            let grads = cur_only.total.backward().unwrap();
            for (i, v) in vars.iter().take(3).enumerate() {
                assert_close(
                    &format!("{p} current-only grad{i} {dt:?}"),
                    &values(grads.get(v).unwrap()),
                    &fx.f64s(&format!("{p}/current_only_grad{i}")),
                    rtol,
                );
            }
        }
    }
}
