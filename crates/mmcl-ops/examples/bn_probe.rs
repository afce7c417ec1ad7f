//! Probe: BatchNorm(+ReLU) forward and backward kernel time on mini-scale activations.
//!
//! `cargo run -p mmcl-ops --example bn_probe`
use candle_core::{Device, Tensor, Var};
use mmcl_ops::batch_norm_relu_train;
use mmcl_ops::profile::{set_profiling, take_profile};

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    set_profiling(true);
    for dims in [
        (32usize, 16usize, 65usize, 63usize),
        (64, 32, 16, 16),
        (32, 128, 5, 4),
    ] {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, dims, &dev)?)?;
        let g = Var::ones(dims.1, candle_core::DType::F32, &dev)?;
        let b = Var::zeros(dims.1, candle_core::DType::F32, &dev)?;
        // [AVX-512 build, portable build], alternated.
        let mut best = [[f64::MAX; 2]; 2];
        for _ in 0..7 {
            for (v, b2) in best.iter_mut().enumerate() {
                mmcl_ops::set_simd_kernels(v == 0);
                take_profile();
                let (y, _, _) = batch_norm_relu_train(&x, &g, &b, 1e-5)?;
                let _grads = y.sum_all()?.backward()?;
                let p = take_profile();
                b2[0] = b2[0].min(p[3].1.as_secs_f64() * 1e3);
                b2[1] = b2[1].min(p[4].1.as_secs_f64() * 1e3);
            }
        }
        let mb = (dims.0 * dims.1 * dims.2 * dims.3 * 4) as f64 / 1e6;
        println!(
            "{dims:?} ({mb:.1} MB): fwd {:.3} ms, bwd {:.3} ms (portable: {:.3}, {:.3})",
            best[0][0], best[0][1], best[1][0], best[1][1]
        );
    }
    Ok(())
}
