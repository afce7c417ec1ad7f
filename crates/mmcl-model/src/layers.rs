//! Bias-free convolution and fully connected layers with reference initialisation.
use candle_core::{Tensor, Var};
use candle_nn::Module;
use rand::Rng;

use crate::init::{kaiming_normal_fan_out_std, linear_bound, Builder};
use crate::ops::{self, Conv2dConfig};
use crate::Result;

/// `nn.Conv2d(cin, cout, k, stride, padding, bias=False)`, kaiming-normal (fan_out, relu).
#[derive(Clone)]
pub struct Conv2d {
    weight: Var,
    cfg: Conv2dConfig,
}

impl Conv2d {
    pub(crate) fn new<R: Rng>(
        b: &mut Builder<'_, R>,
        cin: usize,
        cout: usize,
        kernel: usize,
        cfg: Conv2dConfig,
    ) -> Result<Self> {
        let shape = [cout, cin, kernel, kernel];
        let std = kaiming_normal_fan_out_std(&shape);
        let values = b.normal(shape.iter().product(), 0.0, std);
        let weight = b.param("weight", &shape, values)?;
        Ok(Self { weight, cfg })
    }
}

impl Conv2d {
    pub(crate) fn weight(&self) -> &Tensor {
        self.weight.as_tensor()
    }
    pub(crate) fn config(&self) -> Conv2dConfig {
        self.cfg
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        ops::conv2d(x, self.weight.as_tensor(), self.cfg)
    }
}

/// `nn.Linear(fan_in, fan_out)` with PyTorch's default init (weight [out, in], bias [out]).
#[derive(Clone)]
pub struct Linear {
    weight: Var,
    bias: Var,
}

impl Linear {
    pub(crate) fn new<R: Rng>(
        b: &mut Builder<'_, R>,
        fan_in: usize,
        fan_out: usize,
    ) -> Result<Self> {
        let bound = linear_bound(fan_in);
        let w = b.uniform(fan_in * fan_out, bound);
        let weight = b.param("weight", &[fan_out, fan_in], w)?;
        let bias_values = b.uniform(fan_out, bound);
        let bias = b.param("bias", &[fan_out], bias_values)?;
        Ok(Self { weight, bias })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.weight.as_tensor().t()?)?
            .broadcast_add(self.bias.as_tensor())
    }
}
