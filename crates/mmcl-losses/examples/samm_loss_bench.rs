//! Times the SAMM objective (forward + backward on the logits) at paper scale: batch 32 current
//! + 32 buffer, 100 classes, f32 on the CPU. Prints the median of 200 runs.
//!
//! `cargo run -p mmcl-losses --example samm_loss_bench`
//! (PyTorch counterpart: `python3 tools/golden/losses_bench.py`.)

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use mmcl_losses::{samm_loss, HeadLogits, SammBatch, SammLossConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dev = Device::Cpu;
    let (b, c) = (32usize, 100usize);
    let var = |k: f64| -> candle_core::Result<Var> {
        Var::from_tensor(&(Tensor::randn(0f32, 1.0, (b, c), &dev)? * k)?)
    };
    let vars: Vec<Var> = (0..6)
        .map(|k| var(1.0 + k as f64 * 0.2))
        .collect::<candle_core::Result<_>>()?;
    let t: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let cur = HeadLogits::new(t[0].clone(), t[1].clone(), t[2].clone())?;
    let buf = HeadLogits::new(t[3].clone(), t[4].clone(), t[5].clone())?;
    let stored = HeadLogits::new(
        Tensor::randn(0f32, 1.0, (b, c), &dev)?,
        Tensor::randn(0f32, 1.0, (b, c), &dev)?,
        Tensor::randn(0f32, 1.0, (b, c), &dev)?,
    )?;
    let labels: Vec<u32> = (0..b as u32).map(|i| (i * 7) % c as u32).collect();
    let y = Tensor::new(labels.as_slice(), &dev)?;
    let cfg = SammLossConfig::default();
    let mut times = Vec::new();
    for i in 0..220 {
        let start = Instant::now();
        let cb = SammBatch {
            logits: &cur,
            labels: &y,
            align: None,
        };
        let bb = SammBatch {
            logits: &buf,
            labels: &y,
            align: None,
        };
        let loss = samm_loss(&cfg, &cb, Some((&bb, &stored)))?;
        let grads = loss.total.backward()?;
        let _ = grads.get(&vars[0]).expect("grad").to_dtype(DType::F32)?;
        if i >= 20 {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "samm_loss fwd+bwd, B=32+32, C=100, f32 CPU: median {:.3} ms over {} runs",
        times[times.len() / 2],
        times.len()
    );
    Ok(())
}
