//! Micro-benchmark: forward, grad-input and grad-weight time of every convolution of the
//! AV ResNet-18 at one bench scale, with achieved GFLOP/s, for the AVX-512 grid kernels and
//! the im2col + GEMM kernels side by side.
//!
//! `cargo run -p mmcl-ops --example conv_layers -- tiny|mini|paper [reps]`
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use mmcl_ops::{conv2d, Conv2dConfig};

fn out(x: usize, k: usize, s: usize, p: usize) -> usize {
    (x + 2 * p - k) / s + 1
}

/// (name, n, cin, cout, k, stride, pad, h, w) of every conv of one ResNet-18 encoder.
fn encoder(
    name: &str,
    n: usize,
    cin: usize,
    width: usize,
    h: usize,
    w: usize,
) -> Vec<(String, [usize; 8])> {
    let mut v = vec![(format!("{name}.stem"), [n, cin, width, 7, 2, 3, h, w])];
    let (mut h, mut w) = (out(h, 7, 2, 3), out(w, 7, 2, 3));
    h = out(h, 3, 2, 1);
    w = out(w, 3, 2, 1);
    let mut c = width;
    for (i, (m, s)) in [(1, 1), (2, 2), (4, 2), (8, 2)].into_iter().enumerate() {
        let co = width * m;
        v.push((format!("{name}.l{}.c1", i + 1), [n, c, co, 3, s, 1, h, w]));
        let (h2, w2) = (out(h, 3, s, 1), out(w, 3, s, 1));
        if s != 1 || c != co {
            v.push((format!("{name}.l{}.ds", i + 1), [n, c, co, 1, s, 0, h, w]));
        }
        for j in 0..3 {
            v.push((
                format!("{name}.l{}.3x3#{j}", i + 1),
                [n, co, co, 3, 1, 1, h2, w2],
            ));
        }
        (h, w, c) = (h2, w2, co);
    }
    v
}

fn main() -> candle_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let scale = args.get(1).map(String::as_str).unwrap_or("tiny");
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let (b, width, frames, side, fb, tf) = match scale {
        "tiny" => (32, 8, 2, 32, 65, 63),
        "mini" => (32, 16, 2, 64, 129, 126),
        _ => (8, 64, 4, 224, 129, 626),
    };
    let mut layers = encoder("audio", b, 1, width, fb, tf);
    layers.extend(encoder("video", b * frames, 3, width, side, side));
    let dev = Device::Cpu;
    // Index 0: AVX-512 grid kernels (where the CPU has them), 1: im2col + gemm; alternated
    // per repetition so both see the same machine load.
    let mut tot = [[0f64; 3]; 2];
    let mut flops = 0.0;
    println!(
        "{:<18} {:>27} {:>27}  (ms; grid kernels | im2col+gemm; GFLOP/s fwd)",
        "layer", "fwd / bwd_in / bwd_w", "fwd / bwd_in / bwd_w"
    );
    for (name, [n, cin, cout, k, s, p, h, w]) in layers {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, cin, h, w), &dev)?)?;
        let wt = Var::from_tensor(&Tensor::randn(0f32, 0.1, (cout, cin, k, k), &dev)?)?;
        let cfg = Conv2dConfig {
            stride: s,
            padding: p,
        };
        let mut best = [[f64::MAX; 3]; 2];
        mmcl_ops::profile::set_profiling(true);
        for _ in 0..reps {
            for (v, b) in best.iter_mut().enumerate() {
                mmcl_ops::set_simd_kernels(v == 0);
                mmcl_ops::profile::take_profile();
                let t0 = Instant::now();
                let y = conv2d(&x, &wt, cfg)?;
                b[0] = b[0].min(t0.elapsed().as_secs_f64() * 1e3);
                let _g = y.sum_all()?.backward()?;
                let prof = mmcl_ops::profile::take_profile();
                b[1] = b[1].min(prof[1].1.as_secs_f64() * 1e3);
                b[2] = b[2].min(prof[2].1.as_secs_f64() * 1e3);
            }
        }
        mmcl_ops::set_simd_kernels(true);
        let (oh, ow) = (out(h, k, s, p), out(w, k, s, p));
        let f = 2.0 * (n * cout * oh * ow * cin * k * k) as f64;
        let [g, i] = best;
        println!(
            "{name:<18} {:>8.3} {:>8.3} {:>8.3}  {:>8.3} {:>8.3} {:>8.3}  {:.0} | {:.0}",
            g[0],
            g[1],
            g[2],
            i[0],
            i[1],
            i[2],
            f / g[0] / 1e6,
            f / i[0] / 1e6
        );
        for v in 0..2 {
            for j in 0..3 {
                tot[v][j] += best[v][j];
            }
        }
        flops += f;
    }
    println!(
        "{:<18} {:>8.3} {:>8.3} {:>8.3}  {:>8.3} {:>8.3} {:>8.3}  fwd GFLOP {:.3}",
        "total",
        tot[0][0],
        tot[0][1],
        tot[0][2],
        tot[1][0],
        tot[1][1],
        tot[1][2],
        flops / 1e9
    );
    Ok(())
}
