//! Reference initialisation drawn from our own seeded RNG, and the registry that names
//! every tensor with its PyTorch state_dict key while the network is built.
//!
//! candle's CPU RNG cannot be seeded, so every value is sampled here from the caller's
//! RNG (a `ChaCha8Rng` seeded from the run seed) in state_dict order, then uploaded.
use std::sync::{Arc, Mutex};

use candle_core::{Device, Tensor, Var};
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::batch_norm::RunningStats;
use crate::Result;

/// Everything a network owns, keyed by state_dict name, in state_dict order.
#[derive(Default)]
pub(crate) struct Registry {
    /// Trainable parameters (what the optimiser sees).
    pub params: Vec<(String, Var)>,
    /// BatchNorm running statistics (non-trainable state), by BN module prefix.
    pub buffers: Vec<(String, Arc<Mutex<RunningStats>>)>,
}

/// Builder handed down the layer constructors: a name prefix, the device, the RNG and the
/// registry everything is recorded in (cf. candle-nn's `VarBuilder::pp`).
pub(crate) struct Builder<'a, R: Rng> {
    prefix: String,
    pub device: &'a Device,
    pub rng: &'a mut R,
    pub registry: &'a mut Registry,
    /// While set, values are still drawn (so the RNG stream stays that of the full network)
    /// but nothing is registered: the module being built is thrown away.
    discard: bool,
}

impl<'a, R: Rng> Builder<'a, R> {
    pub fn new(device: &'a Device, rng: &'a mut R, registry: &'a mut Registry) -> Self {
        Self {
            prefix: String::new(),
            device,
            rng,
            registry,
            discard: false,
        }
    }

    /// Runs `f`, drawing its values from the RNG but registering nothing, for a module the
    /// network does not hold (a unimodal network's other encoder): the modules built after
    /// it get the same values as in the network that holds it.
    pub fn discarding<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let saved = std::mem::replace(&mut self.discard, true);
        let out = f(self);
        self.discard = saved;
        out
    }

    /// Runs `f` with the prefix extended by `.name`.
    pub fn pp<T>(
        &mut self,
        name: impl AsRef<str>,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let saved = self.prefix.clone();
        if !self.prefix.is_empty() {
            self.prefix.push('.');
        }
        self.prefix.push_str(name.as_ref());
        let out = f(self);
        self.prefix = saved;
        out
    }

    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// Registers a trainable parameter with the given values.
    pub fn param(&mut self, name: &str, shape: &[usize], values: Vec<f32>) -> Result<Var> {
        if self.discard {
            // Built on the CPU and dropped with the module: never uploaded.
            return Ok(Var::from_tensor(&Tensor::from_vec(
                values,
                shape,
                &Device::Cpu,
            )?)?);
        }
        let var = Var::from_tensor(&Tensor::from_vec(values, shape, self.device)?)?;
        self.registry.params.push((self.key(name), var.clone()));
        Ok(var)
    }

    /// Registers the BatchNorm running statistics of the module at the current prefix.
    pub fn buffer(&mut self, stats: Arc<Mutex<RunningStats>>) {
        if !self.discard {
            let prefix = self.prefix.clone();
            self.registry.buffers.push((prefix, stats));
        }
    }

    pub fn normal(&mut self, n: usize, mean: f32, std: f32) -> Vec<f32> {
        let dist = Normal::new(mean, std).expect("finite std");
        (0..n).map(|_| dist.sample(self.rng)).collect()
    }

    pub fn uniform(&mut self, n: usize, bound: f32) -> Vec<f32> {
        if bound == 0.0 {
            return vec![0.0; n];
        }
        let dist = Uniform::new(-bound, bound).expect("bound > 0");
        (0..n).map(|_| dist.sample(self.rng)).collect()
    }
}

/// `nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")` for a conv weight
/// [Cout, Cin, kh, kw]: std = sqrt(2 / (Cout * kh * kw)).
pub(crate) fn kaiming_normal_fan_out_std(shape: &[usize]) -> f32 {
    let fan_out = shape[0] * shape[2..].iter().product::<usize>();
    (2.0 / fan_out as f64).sqrt() as f32
}

/// PyTorch's default `nn.Linear` bound: kaiming_uniform(a = sqrt(5)) on the weight and
/// uniform bias both reduce to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
pub(crate) fn linear_bound(fan_in: usize) -> f32 {
    (1.0 / (fan_in as f64).sqrt()) as f32
}
