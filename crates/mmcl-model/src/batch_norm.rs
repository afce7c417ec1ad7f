//! BatchNorm2d with running statistics kept out of the optimiser.
//!
//! Matches `torch.nn.BatchNorm2d(c)` (eps 1e-5, momentum 0.1): training mode normalises by
//! the batch statistics and updates `running_mean` / `running_var` with the UNBIASED batch
//! variance and increments `num_batches_tracked`; eval mode uses the running statistics.
use std::sync::{Arc, Mutex};

use candle_core::{Tensor, Var};
use candle_nn::{Module, ModuleT};
use rand::Rng;

use crate::init::Builder;
use crate::layers::Conv2d;
use crate::ops;
use crate::Result;

/// PyTorch's defaults.
pub const BN_EPS: f64 = 1e-5;
pub const BN_MOMENTUM: f64 = 0.1;

/// The non-trainable state of one BatchNorm layer (state_dict buffers).
#[derive(Debug, Clone)]
pub struct RunningStats {
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub num_batches_tracked: i64,
}

/// One BatchNorm2d layer: trainable `weight`/`bias` plus shared running statistics.
#[derive(Clone)]
pub struct BatchNorm2d {
    weight: Var,
    bias: Var,
    stats: Arc<Mutex<RunningStats>>,
}

impl BatchNorm2d {
    /// Reference init: weight ~ N(1, 0.02), bias 0, running mean 0 / var 1.
    pub(crate) fn new<R: Rng>(b: &mut Builder<'_, R>, channels: usize) -> Result<Self> {
        let w = b.normal(channels, 1.0, 0.02);
        let weight = b.param("weight", &[channels], w)?;
        let bias = b.param("bias", &[channels], vec![0.0; channels])?;
        let stats = Arc::new(Mutex::new(RunningStats {
            running_mean: Tensor::zeros(channels, candle_core::DType::F32, b.device)?,
            running_var: Tensor::ones(channels, candle_core::DType::F32, b.device)?,
            num_batches_tracked: 0,
        }));
        b.buffer(stats.clone());
        Ok(Self {
            weight,
            bias,
            stats,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RunningStats> {
        // A poisoned lock only means another thread panicked mid-update; the tensors are
        // still whole values, so keep going.
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl BatchNorm2d {
    /// Training mode: batch statistics (and running-statistics update); eval mode: running
    /// statistics. With `relu`, the ReLU that follows is fused in.
    fn apply(&self, x: &Tensor, train: bool, relu: bool) -> candle_core::Result<Tensor> {
        let c = x.dim(1)?;
        if train {
            let n = x.elem_count() / c;
            if n < 2 {
                candle_core::bail!(
                    "BatchNorm in training mode needs more than 1 value per channel, got input {:?}",
                    x.dims()
                );
            }
            let (w, b) = (self.weight.as_tensor(), self.bias.as_tensor());
            let (y, mean, var) = if relu {
                ops::batch_norm_relu_train(x, w, b, BN_EPS)?
            } else {
                ops::batch_norm_train(x, w, b, BN_EPS)?
            };
            self.update_running(&mean, &var, n)?;
            Ok(y)
        } else {
            let s = self.lock();
            let scale = (self.weight.as_tensor() / (&s.running_var + BN_EPS)?.sqrt()?)?;
            let shift = (self.bias.as_tensor() - (&s.running_mean * &scale)?)?;
            drop(s);
            let y = x
                .broadcast_mul(&scale.reshape((1, c, 1, 1))?)?
                .broadcast_add(&shift.reshape((1, c, 1, 1))?)?;
            if relu {
                y.relu()
            } else {
                Ok(y)
            }
        }
    }

    /// PyTorch's running-statistics update from one batch's mean and biased variance over
    /// `n` values per channel (the running variance gets the UNBIASED variance).
    fn update_running(&self, mean: &Tensor, var: &Tensor, n: usize) -> candle_core::Result<()> {
        let unbiased = (var * (n as f64 / (n as f64 - 1.0)))?;
        let mut s = self.lock();
        s.running_mean = ((&s.running_mean * (1.0 - BN_MOMENTUM))? + (mean * BN_MOMENTUM)?)?;
        s.running_var = ((&s.running_var * (1.0 - BN_MOMENTUM))? + (unbiased * BN_MOMENTUM)?)?;
        s.num_batches_tracked += 1;
        Ok(())
    }

    /// `bn(conv(x))` (then ReLU when `relu`): in training mode one fused node (the
    /// convolution output gets no gradient tensor of its own in candle's backward); the
    /// same values as `self.forward_t(&conv.forward(x)?, train)`.
    pub fn forward_conv_t(
        &self,
        conv: &Conv2d,
        x: &Tensor,
        train: bool,
        relu: bool,
    ) -> candle_core::Result<Tensor> {
        if !train {
            return self.apply(&conv.forward(x)?, false, relu);
        }
        let (w, b) = (self.weight.as_tensor(), self.bias.as_tensor());
        let (y, mean, var) =
            ops::conv2d_batch_norm_train(x, conv.weight(), conv.config(), w, b, BN_EPS, relu)?;
        let (_, c, oh, ow) = y.dims4()?;
        let n = y.elem_count() / c;
        debug_assert_eq!(n, y.dim(0)? * oh * ow);
        self.update_running(&mean, &var, n)?;
        Ok(y)
    }
}

impl ModuleT for BatchNorm2d {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.apply(x, train, false)
    }
}
