//! The optimiser the methods step: torch-exact SGD (`mmcl_model::optim::Sgd`) over the
//! model's trainable variables, with its momentum buffers saved in checkpoints.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use mmcl_model::optim::{Sgd, SgdConfig};

use crate::config::OptimConfig;
use crate::Result;

/// SGD over the trainable variables (BatchNorm running statistics are not among them).
pub struct Optimizer {
    inner: Sgd,
    cfg: OptimConfig,
}

impl Optimizer {
    /// `vars` are named as in the checkpoint so momentum buffers are saved under those names.
    pub fn new(vars: Vec<(String, Var)>, cfg: OptimConfig) -> Result<Self> {
        let sgd = SgdConfig {
            lr: cfg.lr,
            momentum: cfg.momentum,
            dampening: 0.0,
            weight_decay: cfg.weight_decay,
            nesterov: cfg.nesterov,
        };
        Ok(Optimizer {
            inner: Sgd::new(vars, sgd)?,
            cfg,
        })
    }
    pub fn config(&self) -> &OptimConfig {
        &self.cfg
    }
    /// Backpropagate `loss` and step; returns the gradients the step used.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<GradStore> {
        let grads = loss.backward()?;
        self.inner.step(&grads)?;
        Ok(grads)
    }
    /// Save the optimiser state (momentum buffers, step count, config) atomically.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        self.inner.save_state(path)?;
        Ok(())
    }
    /// The momentum buffers, named as in the checkpoint (for the finite-state guard).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.inner.state_tensors()
    }
    pub fn load(&mut self, path: &std::path::Path) -> Result<()> {
        self.inner.load_state(path)?;
        Ok(())
    }
}
