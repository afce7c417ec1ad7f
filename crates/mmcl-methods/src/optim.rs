//! The optimiser the methods step: SGD over the model's trainable variables.

use candle_core::{Tensor, Var};
use candle_nn::Optimizer as _;

use crate::config::OptimConfig;
use crate::{MethodError, Result};

/// SGD over the trainable variables (BatchNorm running statistics are not among them).
pub struct Optimizer {
    inner: candle_nn::SGD,
    cfg: OptimConfig,
}

impl Optimizer {
    pub fn new(vars: Vec<Var>, cfg: OptimConfig) -> Result<Self> {
        if cfg.momentum != 0.0 || cfg.weight_decay != 0.0 || cfg.nesterov {
            return Err(MethodError::Config(
                "momentum, weight decay and Nesterov need mmcl_model::optim::Sgd, not available in this build".into(),
            ));
        }
        Ok(Optimizer {
            inner: candle_nn::SGD::new(vars, cfg.lr)?,
            cfg,
        })
    }
    pub fn config(&self) -> &OptimConfig {
        &self.cfg
    }
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        self.inner.backward_step(loss)?;
        Ok(())
    }
    /// Save the optimiser state (plain SGD has none beyond its config).
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let text = serde_json::to_string(&self.cfg).expect("config serialises");
        crate::write_atomic(path, text.as_bytes())
    }
    pub fn load(&mut self, _path: &std::path::Path) -> Result<()> {
        Ok(())
    }
}
