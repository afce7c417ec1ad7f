//! The ResNet-18 encoder of the reference (BasicBlock [2, 2, 2, 2], no final fc).
use candle_core::Tensor;
use candle_nn::ModuleT;
use rand::Rng;

use crate::batch_norm::BatchNorm2d;
use crate::init::Builder;
use crate::layers::Conv2d;
use crate::ops::{self, Conv2dConfig, MaxPoolConfig};
use crate::Result;

/// Two 3x3 conv-BN pairs with an identity or 1x1 conv-BN shortcut.
#[derive(Clone)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    downsample: Option<(Conv2d, BatchNorm2d)>,
}

impl BasicBlock {
    fn new<R: Rng>(b: &mut Builder<'_, R>, cin: usize, cout: usize, stride: usize) -> Result<Self> {
        let conv1 = b.pp("conv1", |b| {
            Conv2d::new(b, cin, cout, 3, Conv2dConfig { stride, padding: 1 })
        })?;
        let bn1 = b.pp("bn1", |b| BatchNorm2d::new(b, cout))?;
        let conv2 = b.pp("conv2", |b| {
            Conv2d::new(
                b,
                cout,
                cout,
                3,
                Conv2dConfig {
                    stride: 1,
                    padding: 1,
                },
            )
        })?;
        let bn2 = b.pp("bn2", |b| BatchNorm2d::new(b, cout))?;
        let downsample = if stride != 1 || cin != cout {
            Some(b.pp("downsample", |b| {
                let conv = b.pp("0", |b| {
                    Conv2d::new(b, cin, cout, 1, Conv2dConfig { stride, padding: 0 })
                })?;
                let bn = b.pp("1", |b| BatchNorm2d::new(b, cout))?;
                Ok((conv, bn))
            })?)
        } else {
            None
        };
        Ok(Self {
            conv1,
            bn1,
            conv2,
            bn2,
            downsample,
        })
    }
}

impl ModuleT for BasicBlock {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        // Conv-BN pairs as one node each (see BatchNorm2d::forward_conv_t).
        let y = self.bn1.forward_conv_t(&self.conv1, x, train, true)?;
        let y = self.bn2.forward_conv_t(&self.conv2, &y, train, false)?;
        let shortcut = match &self.downsample {
            Some((conv, bn)) => bn.forward_conv_t(conv, x, train, false)?,
            None => x.clone(),
        };
        ops::add_relu(&y, &shortcut)
    }
}

/// ResNet-18 trunk: stem conv 7x7/2 + BN + ReLU + max pool 3x3/2, then layer1..layer4 with
/// widths w, 2w, 4w, 8w. Output is the layer4 map [N, 8w, h, w] (pooling is the caller's).
#[derive(Clone)]
pub struct ResNet18 {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    layers: Vec<[BasicBlock; 2]>,
}

impl ResNet18 {
    pub(crate) fn new<R: Rng>(
        b: &mut Builder<'_, R>,
        in_channels: usize,
        width: usize,
    ) -> Result<Self> {
        let conv1 = b.pp("conv1", |b| {
            Conv2d::new(
                b,
                in_channels,
                width,
                7,
                Conv2dConfig {
                    stride: 2,
                    padding: 3,
                },
            )
        })?;
        let bn1 = b.pp("bn1", |b| BatchNorm2d::new(b, width))?;
        let mut layers = Vec::with_capacity(4);
        let mut cin = width;
        for (i, (mult, stride)) in [(1, 1), (2, 2), (4, 2), (8, 2)].into_iter().enumerate() {
            let cout = width * mult;
            let blocks = b.pp(format!("layer{}", i + 1), |b| {
                let first = b.pp("0", |b| BasicBlock::new(b, cin, cout, stride))?;
                let second = b.pp("1", |b| BasicBlock::new(b, cout, cout, 1))?;
                Ok([first, second])
            })?;
            layers.push(blocks);
            cin = cout;
        }
        Ok(Self { conv1, bn1, layers })
    }
}

impl ModuleT for ResNet18 {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let x = self.bn1.forward_conv_t(&self.conv1, x, train, true)?;
        let mut x = ops::max_pool2d(
            &x,
            MaxPoolConfig {
                kernel: 3,
                stride: 2,
                padding: 1,
            },
        )?;
        for blocks in &self.layers {
            for block in blocks {
                x = block.forward_t(&x, train)?;
            }
        }
        Ok(x)
    }
}
