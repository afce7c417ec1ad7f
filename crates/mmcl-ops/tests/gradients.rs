//! Forward values and gradients of the fast CPU kernels against (a) the device-generic
//! compositions of candle ops, (b) candle's own conv2d where candle is correct (no padding
//! parity problem) and (c) central finite differences. Odd, non-square shapes throughout.

use candle_core::{DType, Device, Tensor, Var};
use mmcl_ops::*;

/// Deterministic pseudo-random values in [-1, 1) (a tiny LCG; tests must not depend on
/// candle's unseedable CPU RNG).
fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn rand_t(dims: &[usize], seed: u64) -> Tensor {
    let n = dims.iter().product();
    Tensor::from_vec(rand_vec(n, seed), dims, &Device::Cpu).unwrap()
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn assert_close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes differ");
    let (a, b) = (to_vec(a), to_vec(b));
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}: element {i}: {x} vs {y} (scale {scale})"
        );
    }
}

/// `sum(f(inputs) * r)` for a fixed random `r`: its gradient is f's vector-Jacobian product.
fn weighted_sum(y: &Tensor, seed: u64) -> Tensor {
    let r = rand_t(y.dims(), seed);
    (y * r).unwrap().sum_all().unwrap()
}

/// [`weighted_sum`] evaluated in f64, for finite differences with small steps.
fn weighted_sum_f64(y: &Tensor, seed: u64) -> f32 {
    let r = rand_t(y.dims(), seed).to_dtype(DType::F64).unwrap();
    (y.to_dtype(DType::F64).unwrap() * r)
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap() as f32
}

/// Central finite differences of `loss(inputs)` w.r.t. a few entries of input `which`,
/// compared with the analytic gradient `grad`.
fn check_fd(
    inputs: &[Tensor],
    which: usize,
    grad: &Tensor,
    loss: &dyn Fn(&[Tensor]) -> f32,
    eps: f32,
    tol: f32,
    what: &str,
) {
    let base = to_vec(&inputs[which]);
    let g = to_vec(grad);
    let scale = g.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-2);
    let n = base.len();
    let probes: Vec<usize> = (0..n.min(12)).map(|i| (i * 7919 + 13) % n).collect();
    for &i in &probes {
        let eval = |d: f32| {
            let mut v = base.clone();
            v[i] += d;
            let mut ins = inputs.to_vec();
            ins[which] = Tensor::from_vec(v, inputs[which].dims(), &Device::Cpu).unwrap();
            loss(&ins)
        };
        let fd = (eval(eps) - eval(-eps)) / (2.0 * eps);
        assert!(
            (fd - g[i]).abs() <= tol * scale,
            "{what}: d/d[{i}]: finite difference {fd} vs analytic {}",
            g[i]
        );
    }
}

struct ConvCase {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

fn conv_cases() -> Vec<ConvCase> {
    let mut v = Vec::new();
    for &(n, h, w) in &[(1, 9, 14), (3, 13, 10), (3, 33, 63)] {
        for &k in &[1, 3, 7] {
            for &stride in &[1, 2] {
                for &pad in &[0, 1, 3] {
                    if h + 2 * pad < k || w + 2 * pad < k || (h == 33 && (pad == 1 || stride == 1))
                    {
                        continue;
                    }
                    v.push(ConvCase {
                        n,
                        cin: 2,
                        h,
                        w,
                        cout: 3,
                        k,
                        stride,
                        pad,
                    });
                }
            }
        }
    }
    v
}

#[test]
fn conv2d_matches_candle_composition_forward_and_backward() {
    for (ci, c) in conv_cases().iter().enumerate() {
        let cfg = Conv2dConfig {
            stride: c.stride,
            padding: c.pad,
        };
        let x = Var::from_tensor(&rand_t(&[c.n, c.cin, c.h, c.w], 10 + ci as u64)).unwrap();
        let w = Var::from_tensor(&rand_t(&[c.cout, c.cin, c.k, c.k], 20 + ci as u64)).unwrap();
        let what = format!(
            "conv n{} {}x{} k{} s{} p{}",
            c.n, c.h, c.w, c.k, c.stride, c.pad
        );
        let y = conv2d(&x, &w, cfg).unwrap();
        let yr = conv2d_composed(&x, &w, cfg).unwrap();
        assert_close(&y, &yr, 1e-5, &format!("{what} forward"));
        let g = weighted_sum(&y, 99).backward().unwrap();
        let gr = weighted_sum(&yr, 99).backward().unwrap();
        assert_close(
            g.get(&x).unwrap(),
            gr.get(&x).unwrap(),
            1e-5,
            &format!("{what} grad input"),
        );
        assert_close(
            g.get(&w).unwrap(),
            gr.get(&w).unwrap(),
            1e-5,
            &format!("{what} grad weight"),
        );
    }
}

/// Channel counts of real layers (>= 8 outputs, not multiples of the register tiles) take
/// the AVX-512 grid kernels where the CPU has them (see `simd_kernels_active`); the im2col
/// path is covered by the narrow cases above and by the kernels' own unit tests.
#[test]
fn conv2d_wide_layers_match_candle_composition_forward_and_backward() {
    eprintln!("grid kernels active: {}", mmcl_ops::simd_kernels_active());
    let mut ci = 0u64;
    for &(n, h, w) in &[(1, 9, 14), (3, 13, 10)] {
        for &k in &[1, 3, 7] {
            for &stride in &[1, 2] {
                for &pad in &[0, 1, 3] {
                    if h + 2 * pad < k || w + 2 * pad < k {
                        continue;
                    }
                    ci += 1;
                    let cfg = Conv2dConfig {
                        stride,
                        padding: pad,
                    };
                    let x = Var::from_tensor(&rand_t(&[n, 9, h, w], 300 + ci)).unwrap();
                    let wt = Var::from_tensor(&rand_t(&[10, 9, k, k], 400 + ci)).unwrap();
                    let what = format!("wide conv n{n} {h}x{w} k{k} s{stride} p{pad}");
                    let y = conv2d(&x, &wt, cfg).unwrap();
                    let yr = conv2d_composed(&x, &wt, cfg).unwrap();
                    assert_close(&y, &yr, 1e-5, &format!("{what} forward"));
                    let g = weighted_sum(&y, 98).backward().unwrap();
                    let gr = weighted_sum(&yr, 98).backward().unwrap();
                    for (v, name) in [(&x, "input"), (&wt, "weight")] {
                        assert_close(
                            g.get(v).unwrap(),
                            gr.get(v).unwrap(),
                            1e-5,
                            &format!("{what} grad {name}"),
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn conv2d_wide_layer_gradients_match_finite_differences() {
    for &(n, h, w, k, stride, pad) in &[
        (3, 7, 10, 3, 1, 1),
        (1, 9, 6, 3, 2, 1),
        (3, 5, 8, 1, 2, 0),
        (1, 11, 9, 7, 2, 3),
    ] {
        let cfg = Conv2dConfig {
            stride,
            padding: pad,
        };
        let x = rand_t(&[n, 8, h, w], 11);
        let wt = rand_t(&[9, 8, k, k], 12);
        let loss = |ins: &[Tensor]| {
            weighted_sum(&conv2d(&ins[0], &ins[1], cfg).unwrap(), 13)
                .to_scalar::<f32>()
                .unwrap()
        };
        let (xv, wv) = (
            Var::from_tensor(&x).unwrap(),
            Var::from_tensor(&wt).unwrap(),
        );
        let g = weighted_sum(&conv2d(&xv, &wv, cfg).unwrap(), 13)
            .backward()
            .unwrap();
        let what = format!("wide conv n{n} {h}x{w} k{k} s{stride} p{pad}");
        let ins = [x, wt];
        check_fd(
            &ins,
            0,
            g.get(&xv).unwrap(),
            &loss,
            1e-2,
            2e-3,
            &format!("{what} x"),
        );
        check_fd(
            &ins,
            1,
            g.get(&wv).unwrap(),
            &loss,
            1e-2,
            2e-3,
            &format!("{what} w"),
        );
    }
}

#[test]
fn conv2d_matches_plain_candle_where_candle_is_correct() {
    // Square, even input: candle's own padded conv2d backward is right here.
    for &(k, stride, pad) in &[(3, 1, 1), (3, 2, 1), (7, 2, 3), (1, 2, 0), (1, 1, 0)] {
        let cfg = Conv2dConfig {
            stride,
            padding: pad,
        };
        let x = Var::from_tensor(&rand_t(&[3, 2, 12, 12], 5)).unwrap();
        let w = Var::from_tensor(&rand_t(&[4, 2, k, k], 6)).unwrap();
        let y = conv2d(&x, &w, cfg).unwrap();
        let yr = x.conv2d(&w, pad, stride, 1, 1).unwrap();
        assert_close(&y, &yr, 1e-5, "forward");
        let g = weighted_sum(&y, 7).backward().unwrap();
        let gr = weighted_sum(&yr, 7).backward().unwrap();
        assert_close(g.get(&x).unwrap(), gr.get(&x).unwrap(), 1e-5, "grad input");
        assert_close(g.get(&w).unwrap(), gr.get(&w).unwrap(), 1e-5, "grad weight");
    }
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    for &(n, h, w, k, stride, pad) in &[
        (1, 7, 10, 3, 2, 1),
        (3, 9, 6, 7, 2, 3),
        (3, 5, 8, 1, 2, 0),
        (1, 6, 9, 3, 1, 0),
    ] {
        let cfg = Conv2dConfig {
            stride,
            padding: pad,
        };
        let x = rand_t(&[n, 2, h, w], 1);
        let wt = rand_t(&[3, 2, k, k], 2);
        let loss = |ins: &[Tensor]| {
            weighted_sum(&conv2d(&ins[0], &ins[1], cfg).unwrap(), 3)
                .to_scalar::<f32>()
                .unwrap()
        };
        let (xv, wv) = (
            Var::from_tensor(&x).unwrap(),
            Var::from_tensor(&wt).unwrap(),
        );
        let g = weighted_sum(&conv2d(&xv, &wv, cfg).unwrap(), 3)
            .backward()
            .unwrap();
        let what = format!("conv n{n} {h}x{w} k{k} s{stride} p{pad}");
        check_fd(
            &[x.clone(), wt.clone()],
            0,
            g.get(&xv).unwrap(),
            &loss,
            1e-2,
            2e-3,
            &format!("{what} x"),
        );
        check_fd(
            &[x, wt],
            1,
            g.get(&wv).unwrap(),
            &loss,
            1e-2,
            2e-3,
            &format!("{what} w"),
        );
    }
}

#[test]
fn conv2d_skips_grad_of_plain_input_and_keeps_shapes() {
    let x = rand_t(&[1, 1, 129, 126], 4); // the mini-scale spectrogram, parity differs
    let w = Var::from_tensor(&rand_t(&[2, 1, 7, 7], 5)).unwrap();
    let y = conv2d(
        &x,
        &w,
        Conv2dConfig {
            stride: 2,
            padding: 3,
        },
    )
    .unwrap();
    assert_eq!(y.dims(), &[1, 2, 65, 63]);
    let g = y.sum_all().unwrap().backward().unwrap();
    assert!(g.get(&x).is_none());
    assert_eq!(g.get(&w).unwrap().dims(), &[2, 1, 7, 7]);
}

#[test]
fn conv2d_rejects_bad_shapes_with_typed_errors() {
    let x = rand_t(&[1, 2, 5, 5], 1);
    let w = rand_t(&[3, 4, 3, 3], 2);
    let e = conv2d(&x, &w, Conv2dConfig::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("conv2d") && e.contains("channels"), "{e}");
    let e = conv2d(&rand_t(&[2, 5, 5], 1), &w, Conv2dConfig::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("rank-4"), "{e}");
}

#[test]
fn max_pool_matches_composition_and_finite_differences() {
    for &(n, h, w) in &[(1, 9, 14), (3, 17, 16), (3, 33, 63), (2, 4, 5)] {
        let cfg = MaxPoolConfig::default();
        let x = rand_t(&[n, 2, h, w], h as u64);
        let xv = Var::from_tensor(&x).unwrap();
        let y = max_pool2d(&xv, cfg).unwrap();
        let yr = max_pool2d_composed(&xv, cfg).unwrap();
        assert_eq!(y.dims(), &[n, 2, (h - 1) / 2 + 1, (w - 1) / 2 + 1]);
        assert_close(&y, &yr, 0.0, "pool forward");
        let g = weighted_sum(&y, 8).backward().unwrap();
        let gr = weighted_sum(&yr, 8).backward().unwrap();
        assert_close(g.get(&xv).unwrap(), gr.get(&xv).unwrap(), 1e-6, "pool grad");
        let loss = |ins: &[Tensor]| {
            weighted_sum(&max_pool2d(&ins[0], cfg).unwrap(), 8)
                .to_scalar::<f32>()
                .unwrap()
        };
        check_fd(&[x], 0, g.get(&xv).unwrap(), &loss, 1e-4, 1e-2, "pool fd");
    }
}

#[test]
fn max_pool_ties_go_to_the_first_maximum_like_pytorch() {
    let x =
        Var::from_tensor(&Tensor::ones((1, 1, 3, 3), DType::F32, &Device::Cpu).unwrap()).unwrap();
    let y = max_pool2d(&x, MaxPoolConfig::default()).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    // Windows cover rows/cols {0,1} and {1,2}; the first (row-major) maximum of each window
    // wins, as torch.nn.functional.max_pool2d(torch.ones(1,1,3,3), 3, 2, 1) gives.
    assert_eq!(
        to_vec(g.get(&x).unwrap()),
        vec![1., 1., 0., 1., 1., 0., 0., 0., 0.]
    );
}

#[test]
fn batch_norm_matches_composition_and_finite_differences() {
    for &relu in &[false, true] {
        for dims in [&[3usize, 4, 5, 7][..], &[1, 3, 9, 2], &[5, 3]] {
            let c = dims[1];
            let x = (rand_t(dims, 31) * 2.0).unwrap().affine(1.0, 0.5).unwrap();
            let wt = rand_t(&[c], 32).affine(0.5, 1.0).unwrap();
            let b = rand_t(&[c], 33);
            let (xv, wv, bv) = (
                Var::from_tensor(&x).unwrap(),
                Var::from_tensor(&wt).unwrap(),
                Var::from_tensor(&b).unwrap(),
            );
            let f = if relu {
                batch_norm_relu_train
            } else {
                batch_norm_train
            };
            let (y, m, v) = f(&xv, &wv, &bv, 1e-5).unwrap();
            let (yr, mr, vr) = batch_norm_train_composed(&xv, &wv, &bv, 1e-5, relu).unwrap();
            let what = format!("bn relu={relu} {dims:?}");
            assert_close(&y, &yr, 1e-5, &format!("{what} y"));
            assert_close(&m, &mr, 1e-5, &format!("{what} mean"));
            assert_close(&v, &vr, 1e-5, &format!("{what} var"));
            let g = weighted_sum(&y, 34).backward().unwrap();
            let gr = weighted_sum(&yr, 34).backward().unwrap();
            for (a, name) in [(&xv, "x"), (&wv, "weight"), (&bv, "bias")] {
                assert_close(
                    g.get(a).unwrap(),
                    gr.get(a).unwrap(),
                    1e-4,
                    &format!("{what} grad {name}"),
                );
            }
            // Small steps (f64 loss) so that few values cross the ReLU kink.
            let loss = |ins: &[Tensor]| {
                weighted_sum_f64(&f(&ins[0], &ins[1], &ins[2], 1e-5).unwrap().0, 34)
            };
            let ins = [x, wt, b];
            check_fd(
                &ins,
                0,
                g.get(&xv).unwrap(),
                &loss,
                1e-3,
                2e-2,
                &format!("{what} fd x"),
            );
            check_fd(
                &ins,
                1,
                g.get(&wv).unwrap(),
                &loss,
                1e-3,
                2e-2,
                &format!("{what} fd weight"),
            );
            check_fd(
                &ins,
                2,
                g.get(&bv).unwrap(),
                &loss,
                1e-3,
                2e-2,
                &format!("{what} fd bias"),
            );
        }
    }
}

#[test]
fn batch_norm_statistics_are_exact_and_detached() {
    // Channel 0 = [1, 2, 3, 4] over batch and space: mean 2.5, biased var 1.25.
    let x = Tensor::from_vec(
        vec![1f32, 2., 10., 10., 3., 4., 10., 10.],
        (2, 2, 2),
        &Device::Cpu,
    )
    .unwrap();
    let one = Tensor::ones(2, DType::F32, &Device::Cpu).unwrap();
    let zero = Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap();
    let (_, m, v) = batch_norm_train(&x, &one, &zero, 1e-5).unwrap();
    assert_eq!(to_vec(&m), vec![2.5, 10.0]);
    assert_eq!(to_vec(&v), vec![1.25, 0.0]);
    assert!(!m.track_op() && !v.track_op());
}

#[test]
fn add_relu_matches_composition() {
    let a = Var::from_tensor(&rand_t(&[3, 2, 5, 7], 41)).unwrap();
    let b = Var::from_tensor(&rand_t(&[3, 2, 5, 7], 42)).unwrap();
    let y = add_relu(&a, &b).unwrap();
    let yr = (a.as_tensor() + b.as_tensor()).unwrap().relu().unwrap();
    assert_close(&y, &yr, 0.0, "add_relu forward");
    let g = weighted_sum(&y, 43).backward().unwrap();
    let gr = weighted_sum(&yr, 43).backward().unwrap();
    assert_close(g.get(&a).unwrap(), gr.get(&a).unwrap(), 0.0, "grad a");
    assert_close(g.get(&b).unwrap(), gr.get(&b).unwrap(), 0.0, "grad b");
}

#[test]
fn non_f32_inputs_take_the_candle_composition() {
    let x = rand_t(&[2, 2, 9, 8], 51).to_dtype(DType::F64).unwrap();
    let w = rand_t(&[3, 2, 3, 3], 52).to_dtype(DType::F64).unwrap();
    let cfg = Conv2dConfig {
        stride: 2,
        padding: 1,
    };
    let y = conv2d(&x, &w, cfg).unwrap();
    let y32 = conv2d(
        &x.to_dtype(DType::F32).unwrap(),
        &w.to_dtype(DType::F32).unwrap(),
        cfg,
    )
    .unwrap();
    assert_eq!(y.dtype(), DType::F64);
    assert_close(&y.to_dtype(DType::F32).unwrap(), &y32, 1e-5, "f64 conv");
    let p = max_pool2d(&x, MaxPoolConfig::default()).unwrap();
    assert_eq!(p.dims(), &[2, 2, 5, 4]);
    let (b, _, _) = batch_norm_train(
        &x,
        &Tensor::ones(2, DType::F64, &Device::Cpu).unwrap(),
        &Tensor::zeros(2, DType::F64, &Device::Cpu).unwrap(),
        1e-5,
    )
    .unwrap();
    assert_eq!(b.dtype(), DType::F64);
}

/// The fused conv+BN(+ReLU) node equals conv2d followed by batch_norm_train: forward,
/// statistics and all four gradients, on odd non-square shapes, strides 1 and 2, padding
/// 0, 1 and 3, batch 1 and 3, narrow (im2col) and wide (grid-kernel) channel counts.
#[test]
fn conv_batch_norm_matches_separate_ops() {
    let mut ci = 0u64;
    for &(n, h, w) in &[(1, 9, 14), (3, 13, 10)] {
        for &(cin, cout) in &[(2, 3), (9, 10)] {
            for &(k, stride, pad) in &[(3, 1, 1), (3, 2, 1), (1, 2, 0), (7, 2, 3), (3, 1, 0)] {
                for relu in [false, true] {
                    ci += 1;
                    let cfg = Conv2dConfig {
                        stride,
                        padding: pad,
                    };
                    let x = Var::from_tensor(&rand_t(&[n, cin, h, w], 500 + ci)).unwrap();
                    let wt = Var::from_tensor(&rand_t(&[cout, cin, k, k], 600 + ci)).unwrap();
                    let gamma =
                        Var::from_tensor(&rand_t(&[cout], 700 + ci).affine(0.2, 1.0).unwrap())
                            .unwrap();
                    let beta = Var::from_tensor(&rand_t(&[cout], 800 + ci)).unwrap();
                    let what = format!(
                        "conv-bn n{n} {h}x{w} c{cin}->{cout} k{k} s{stride} p{pad} relu {relu}"
                    );
                    let (y, m, v) =
                        conv2d_batch_norm_train(&x, &wt, cfg, &gamma, &beta, 1e-5, relu).unwrap();
                    let z = conv2d(&x, &wt, cfg).unwrap();
                    let (yr, mr, vr) = if relu {
                        batch_norm_relu_train(&z, &gamma, &beta, 1e-5).unwrap()
                    } else {
                        batch_norm_train(&z, &gamma, &beta, 1e-5).unwrap()
                    };
                    assert_eq!(to_vec(&y), to_vec(&yr), "{what}: forward");
                    assert_eq!(to_vec(&m), to_vec(&mr), "{what}: mean");
                    assert_eq!(to_vec(&v), to_vec(&vr), "{what}: var");
                    let g = weighted_sum(&y, 97).backward().unwrap();
                    let gr = weighted_sum(&yr, 97).backward().unwrap();
                    for (t, name) in [(&x, "x"), (&wt, "w"), (&gamma, "gamma"), (&beta, "beta")] {
                        assert_close(
                            g.get(t).unwrap(),
                            gr.get(t).unwrap(),
                            1e-6,
                            &format!("{what}: grad {name}"),
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn conv_batch_norm_rejects_bad_affine_shapes() {
    let x = rand_t(&[2, 3, 8, 8], 1);
    let w = rand_t(&[4, 3, 3, 3], 2);
    let cfg = Conv2dConfig {
        stride: 1,
        padding: 1,
    };
    let e = conv2d_batch_norm_train(&x, &w, cfg, &rand_t(&[3], 3), &rand_t(&[4], 4), 1e-5, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("gamma"), "{e}");
}
