//! `MMCL_KERNELS=composed` routes every op to the candle compositions on the CPU (own test
//! binary: the variable is read once per process).
use candle_core::{Device, Tensor, Var};
use mmcl_ops::profile::{set_profiling, take_profile};
use mmcl_ops::{
    add_relu, batch_norm_relu_train, conv2d, kernels, max_pool2d, Conv2dConfig, Kernels,
    MaxPoolConfig,
};

#[test]
fn composed_switch_bypasses_every_cpu_kernel() -> candle_core::Result<()> {
    std::env::set_var("MMCL_KERNELS", "composed");
    assert_eq!(kernels()?, Kernels::Composed);
    set_profiling(true);
    take_profile();
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (2, 3, 9, 11), &dev)?;
    let w = Var::randn(0f32, 0.1, (4, 3, 3, 3), &dev)?;
    let g = Var::ones(4, candle_core::DType::F32, &dev)?;
    let b = Var::zeros(4, candle_core::DType::F32, &dev)?;
    let y = conv2d(
        &x,
        &w,
        Conv2dConfig {
            stride: 2,
            padding: 1,
        },
    )?;
    let (y, _, _) = batch_norm_relu_train(&y, &g, &b, 1e-5)?;
    let y = add_relu(&y, &y)?;
    let y = max_pool2d(&y, MaxPoolConfig::default())?;
    let grads = y.sum_all()?.backward()?;
    assert!(grads.get(&w).is_some());
    for (class, _, calls) in take_profile() {
        assert_eq!(
            calls,
            0,
            "{} kernel ran although MMCL_KERNELS=composed",
            class.name()
        );
    }
    Ok(())
}
