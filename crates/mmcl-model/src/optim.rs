//! Stochastic gradient descent with momentum, dampening, weight decay and Nesterov, computing
//! exactly what `torch.optim.SGD` computes (candle-nn's SGD has none of these), with its state
//! (momentum buffers keyed by parameter name) saved and restored with checkpoints.
//!
//! Per parameter with a gradient `g` (parameters without one are skipped, as in torch):
//! ```text
//! d = g + weight_decay * p
//! buf = d                                       (first step)
//! buf = momentum * buf + (1 - dampening) * d    (later steps)
//! d = nesterov ? d + momentum * buf : buf       (when momentum != 0)
//! p = p - lr * d
//! ```
//! Pass only trainable variables: BatchNorm running statistics are model state, not parameters.
//!
//! ```
//! use candle_core::{DType, Device, Var};
//! use mmcl_model::optim::{Sgd, SgdConfig};
//!
//! let w = Var::ones(3, DType::F32, &Device::Cpu)?;
//! let mut opt = Sgd::new(vec![("w".to_string(), w.clone())], SgdConfig { momentum: 0.9, ..SgdConfig::plain(0.1) })?;
//! let loss = w.as_tensor().sqr()?.sum_all()?;
//! opt.step(&loss.backward()?)?;
//! assert!((w.as_tensor().to_vec1::<f32>()?[0] - 0.8).abs() < 1e-6);
//! # Ok::<(), mmcl_model::ModelError>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};

use crate::error::{ModelError, Result};

/// Hyper-parameters of [`Sgd`], with torch's meaning and defaults (0) for all but `lr`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

impl SgdConfig {
    /// Plain SGD (what SAMM's reference uses): no momentum, no weight decay.
    pub fn plain(lr: f64) -> Self {
        Self {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f64| {
            ModelError::Config(format!("sgd: {what} must be >= 0 and finite, got {v}"))
        };
        for (what, v) in [
            ("lr", self.lr),
            ("momentum", self.momentum),
            ("dampening", self.dampening),
            ("weight_decay", self.weight_decay),
        ] {
            if v.is_nan() || v < 0.0 || v.is_infinite() {
                return Err(bad(what, v));
            }
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(ModelError::Config(
                "sgd: nesterov momentum requires momentum > 0 and zero dampening".into(),
            ));
        }
        Ok(())
    }
}

/// Tensor-name prefix of the momentum buffers in a saved state file.
pub const MOMENTUM_PREFIX: &str = "momentum_buffer.";

/// SGD over named candle [`Var`]s.
#[derive(Debug)]
pub struct Sgd {
    config: SgdConfig,
    params: Vec<(String, Var)>,
    momentum: Vec<Option<Tensor>>,
    steps: u64,
}

impl Sgd {
    /// An optimiser over `params` (name, variable); names key the saved state.
    pub fn new(params: Vec<(String, Var)>, config: SgdConfig) -> Result<Self> {
        config.validate()?;
        let mut seen = HashSet::new();
        for (name, _) in &params {
            if !seen.insert(name.as_str()) {
                return Err(ModelError::Config(format!(
                    "sgd: parameter name {name} appears twice"
                )));
            }
        }
        let momentum = vec![None; params.len()];
        Ok(Self {
            config,
            params,
            momentum,
            steps: 0,
        })
    }

    /// An optimiser over unnamed variables, named `param.0`, `param.1`, ... in order.
    pub fn from_vars(vars: Vec<Var>, config: SgdConfig) -> Result<Self> {
        let named = vars
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("param.{i}"), v))
            .collect();
        Self::new(named, config)
    }

    /// The hyper-parameters.
    pub fn config(&self) -> SgdConfig {
        self.config
    }

    /// Changes the learning rate (e.g. for a schedule); the state is kept.
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        let config = SgdConfig { lr, ..self.config };
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Number of `step` calls so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The parameters, in order.
    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// One update from the gradients in `grads`; parameters without a gradient are untouched
    /// (their momentum buffer too), as in torch.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        let c = self.config;
        for ((_, var), buf) in self.params.iter().zip(self.momentum.iter_mut()) {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            let p = var.as_detached_tensor();
            let mut d = grad.detach();
            if c.weight_decay != 0.0 {
                d = (d + (&p * c.weight_decay)?)?;
            }
            if c.momentum != 0.0 {
                let next = match buf.take() {
                    None => d.clone(),
                    Some(b) => ((b * c.momentum)? + (&d * (1.0 - c.dampening))?)?,
                };
                d = if c.nesterov {
                    (d + (&next * c.momentum)?)?
                } else {
                    next.clone()
                };
                *buf = Some(next);
            }
            var.set(&(p - (d * c.lr)?)?)?;
        }
        self.steps += 1;
        Ok(())
    }

    /// The state as named tensors: `momentum_buffer.<param name>` for each parameter that has
    /// one (none before the first step or with momentum 0).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .zip(&self.momentum)
            .filter_map(|((name, _), buf)| {
                buf.as_ref()
                    .map(|b| (format!("{MOMENTUM_PREFIX}{name}"), b.clone()))
            })
            .collect()
    }

    /// Restores momentum buffers from named tensors (as [`Sgd::state_tensors`] gives them).
    /// Every tensor must name a known parameter with the same shape; parameters not named get no
    /// buffer (as a torch parameter that never had a gradient).
    pub fn load_state_tensors(
        &mut self,
        tensors: HashMap<String, Tensor>,
        source: &Path,
    ) -> Result<()> {
        let bad = |reason: String| ModelError::Checkpoint {
            path: source.to_path_buf(),
            reason,
        };
        let index: HashMap<&str, usize> = self
            .params
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.as_str(), i))
            .collect();
        let mut momentum = vec![None; self.params.len()];
        for (key, t) in tensors {
            let name = key
                .strip_prefix(MOMENTUM_PREFIX)
                .ok_or_else(|| bad(format!("unexpected tensor {key} in optimiser state")))?;
            let &i = index
                .get(name)
                .ok_or_else(|| bad(format!("momentum buffer for unknown parameter {name}")))?;
            let p = self.params[i].1.as_tensor();
            if t.dims() != p.dims() {
                return Err(bad(format!(
                    "momentum buffer {name} has shape {:?}, parameter has {:?}",
                    t.dims(),
                    p.dims()
                )));
            }
            momentum[i] = Some(t.to_dtype(p.dtype())?.to_device(p.device())?);
        }
        self.momentum = momentum;
        Ok(())
    }

    /// Writes the state to a safetensors file (atomically: temp file, then rename). The
    /// metadata holds `format = mmcl-sgd-state`, `config` (JSON) and `steps`.
    pub fn save_state(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let io = |source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut metadata = HashMap::new();
        metadata.insert("format".to_string(), "mmcl-sgd-state".to_string());
        metadata.insert(
            "config".to_string(),
            serde_json::to_string(&self.config).expect("config serialises"),
        );
        metadata.insert("steps".to_string(), self.steps.to_string());
        let tensors: Vec<(String, Tensor)> = self
            .state_tensors()
            .into_iter()
            .map(|(n, t)| Ok((n, t.to_device(&Device::Cpu)?)))
            .collect::<Result<_>>()?;
        let bytes = mmcl_io::safetensors_bytes(tensors, Some(metadata)).map_err(|e| {
            ModelError::Checkpoint {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
        mmcl_io::write_atomic(path, &bytes).map_err(io)
    }

    /// Restores the state written by [`Sgd::save_state`]: momentum buffers and step count.
    /// Returns the configuration saved with it (the current one is kept; compare if needed).
    pub fn load_state(&mut self, path: impl AsRef<Path>) -> Result<SgdConfig> {
        let path = path.as_ref();
        let bad = |reason: String| ModelError::Checkpoint {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let (_, meta) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some("mmcl-sgd-state") {
            return Err(bad(
                "not an mmcl SGD state file (metadata format != mmcl-sgd-state)".into(),
            ));
        }
        let config: SgdConfig =
            serde_json::from_str(meta.get("config").map(String::as_str).unwrap_or(""))
                .map_err(|e| bad(format!("bad config metadata: {e}")))?;
        let steps: u64 = meta
            .get("steps")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("missing or bad steps metadata".into()))?;
        let device = self
            .params
            .first()
            .map(|(_, v)| v.device().clone())
            .unwrap_or(Device::Cpu);
        let tensors = candle_core::safetensors::load_buffer(&bytes, &device)?;
        self.load_state_tensors(tensors, path)?;
        self.steps = steps;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    //! Golden trajectories from `torch.optim.SGD` (`tools/golden/losses.py`).
    use super::*;
    use candle_core::DType;

    fn fixture() -> HashMap<String, Tensor> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/sgd.safetensors"
        );
        candle_core::safetensors::load(path, &Device::Cpu).expect("sgd fixture")
    }

    fn close(got: &Tensor, want: &Tensor, what: &str) {
        let g: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
        let w: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
        for (i, (a, b)) in g.iter().zip(&w).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{what}[{i}]: {a} vs {b}"
            );
        }
    }

    fn grads_for(step: usize, fx: &HashMap<String, Tensor>, vars: &[Var]) -> GradStore {
        let mut g = GradStore::default();
        g.insert(vars[0].as_tensor(), fx[&format!("grad{step}/p0")].clone());
        if step != 2 {
            g.insert(vars[1].as_tensor(), fx[&format!("grad{step}/p1")].clone());
        }
        g
    }

    fn configs() -> Vec<(&'static str, SgdConfig)> {
        let m = SgdConfig {
            momentum: 0.9,
            weight_decay: 5e-4,
            ..SgdConfig::plain(0.1)
        };
        vec![
            ("momentum", m),
            (
                "nesterov",
                SgdConfig {
                    lr: 0.05,
                    weight_decay: 1e-3,
                    nesterov: true,
                    ..m
                },
            ),
            (
                "dampening",
                SgdConfig {
                    momentum: 0.8,
                    dampening: 0.3,
                    ..SgdConfig::plain(0.1)
                },
            ),
            ("plain", SgdConfig::plain(0.1)),
        ]
    }

    fn fresh(fx: &HashMap<String, Tensor>) -> Vec<Var> {
        vec![
            Var::from_tensor(&fx["init/p0"]).unwrap(),
            Var::from_tensor(&fx["init/p1"]).unwrap(),
        ]
    }

    #[test]
    fn matches_torch_sgd_trajectories() {
        let fx = fixture();
        for (name, cfg) in configs() {
            let vars = fresh(&fx);
            let named = vec![
                ("a".to_string(), vars[0].clone()),
                ("b".to_string(), vars[1].clone()),
            ];
            let mut opt = Sgd::new(named, cfg).unwrap();
            for k in 0..4 {
                opt.step(&grads_for(k, &fx, &vars)).unwrap();
                close(
                    vars[0].as_tensor(),
                    &fx[&format!("{name}/step{k}/p0")],
                    &format!("{name} step{k} p0"),
                );
                close(
                    vars[1].as_tensor(),
                    &fx[&format!("{name}/step{k}/p1")],
                    &format!("{name} step{k} p1"),
                );
            }
        }
    }

    #[test]
    fn resume_from_saved_state_is_exact() {
        let fx = fixture();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.safetensors");
        for (name, cfg) in configs() {
            let vars = fresh(&fx);
            let mut opt = Sgd::from_vars(vars.clone(), cfg).unwrap();
            opt.step(&grads_for(0, &fx, &vars)).unwrap();
            opt.step(&grads_for(1, &fx, &vars)).unwrap();
            opt.save_state(&path).unwrap();
            // A new optimiser over copies of the parameters, resumed from the file.
            let vars2: Vec<Var> = vars
                .iter()
                .map(|v| Var::from_tensor(v.as_tensor()).unwrap())
                .collect();
            let mut resumed = Sgd::from_vars(vars2.clone(), cfg).unwrap();
            assert_eq!(resumed.load_state(&path).unwrap(), cfg);
            assert_eq!(resumed.steps(), 2);
            for k in 2..4 {
                resumed.step(&grads_for(k, &fx, &vars2)).unwrap();
            }
            close(
                vars2[0].as_tensor(),
                &fx[&format!("{name}/step3/p0")],
                &format!("{name} resumed p0"),
            );
            close(
                vars2[1].as_tensor(),
                &fx[&format!("{name}/step3/p1")],
                &format!("{name} resumed p1"),
            );
        }
    }

    #[test]
    fn bad_state_and_config_are_errors() {
        assert!(Sgd::from_vars(
            vec![],
            SgdConfig {
                nesterov: true,
                ..SgdConfig::plain(0.1)
            }
        )
        .is_err());
        assert!(Sgd::from_vars(vec![], SgdConfig::plain(-1.0)).is_err());
        let v = Var::zeros(3, DType::F32, &Device::Cpu).unwrap();
        assert!(Sgd::new(
            vec![("x".into(), v.clone()), ("x".into(), v.clone())],
            SgdConfig::plain(0.1)
        )
        .is_err());
        let mut opt = Sgd::new(vec![("x".into(), v)], SgdConfig::plain(0.1)).unwrap();
        let mut t = HashMap::new();
        t.insert(
            "momentum_buffer.y".to_string(),
            Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
        );
        assert!(opt.load_state_tensors(t, Path::new("x")).is_err());
        let mut t = HashMap::new();
        t.insert(
            "momentum_buffer.x".to_string(),
            Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap(),
        );
        assert!(opt.load_state_tensors(t, Path::new("x")).is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk.safetensors");
        std::fs::write(&p, b"not safetensors").unwrap();
        assert!(matches!(
            opt.load_state(&p),
            Err(ModelError::Checkpoint { .. })
        ));
    }
}
