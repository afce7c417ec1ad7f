//! Calibration: expected calibration error, temperature scaling and SAMM's calibrated dynamic
//! weighted ensemble.
//!
//! Temperature fitting runs on the host in f64 (the buffer is at most a few thousand rows).

use candle_core::{DType, Tensor, D};

use crate::classification::{first_argmax, softmax};
use crate::error::{check_labels, dims2, LossError, Result};
use crate::selection::{Head, HeadLogits};

/// Number of ECE bins used throughout the paper.
pub const ECE_BINS: usize = 15;

/// Bin edges as `torch.linspace(0, 1, n_bins + 1)` computes them in f32.
fn torch_linspace_edges(n_bins: usize) -> Vec<f32> {
    let steps = n_bins + 1;
    let step = 1.0f32 / n_bins as f32;
    let halfway = steps / 2;
    (0..steps)
        .map(|i| {
            if i < halfway {
                step * i as f32
            } else {
                1.0f32 - step * (steps - i - 1) as f32
            }
        })
        .collect()
}

/// The ECE binning rule: `n_bins` equal-width bins `(lo, hi]` over `[0, 1]`, with edges as
/// `torch.linspace(0, 1, n_bins + 1)` computes them in f32 (Guo et al. 2017's `_ECELoss`).
/// The evaluator bins predictions with it, so ECE computed later from stored bin totals
/// equals [`ece_from_confidences`] on the samples.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfidenceBins {
    edges: Vec<f32>,
}

impl ConfidenceBins {
    /// The rule for `n_bins` bins; errors on zero bins.
    pub fn new(n_bins: usize) -> Result<ConfidenceBins> {
        if n_bins == 0 {
            return Err(LossError::InvalidArgument {
                what: "ece",
                reason: "n_bins must be > 0".into(),
            });
        }
        Ok(ConfidenceBins {
            edges: torch_linspace_edges(n_bins),
        })
    }

    /// Number of bins.
    pub fn len(&self) -> usize {
        self.edges.len() - 1
    }

    /// Always false: there is at least one bin.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bin holding `confidence`, `None` outside `(0, 1]` (or NaN).
    pub fn bin(&self, confidence: f32) -> Option<usize> {
        self.edges
            .windows(2)
            .position(|e| confidence > e[0] && confidence <= e[1])
    }
}

/// Expected calibration error from per-sample confidences and correctness, binned by
/// [`ConfidenceBins`]: `sum_b |mean conf_b - acc_b| * n_b / n`.
pub fn ece_from_confidences(confidences: &[f32], correct: &[bool], n_bins: usize) -> Result<f64> {
    if confidences.len() != correct.len() {
        return Err(LossError::InvalidArgument {
            what: "ece",
            reason: format!(
                "{} confidences but {} correctness flags",
                confidences.len(),
                correct.len()
            ),
        });
    }
    if confidences.is_empty() {
        return Err(LossError::Empty { what: "ece" });
    }
    let bins = ConfidenceBins::new(n_bins)?;
    let n = confidences.len() as f64;
    // Per bin: (count, confidence sum, correct count).
    let mut totals = vec![(0usize, 0.0f64, 0.0f64); n_bins];
    for (&c, &ok) in confidences.iter().zip(correct) {
        if let Some(b) = bins.bin(c) {
            let t = &mut totals[b];
            t.0 += 1;
            t.1 += c as f64;
            t.2 += ok as u8 as f64;
        }
    }
    let mut ece = 0.0;
    for &(count, conf_sum, acc_sum) in &totals {
        if count > 0 {
            let k = count as f64;
            ece += (conf_sum / k - acc_sum / k).abs() * (k / n);
        }
    }
    Ok(ece)
}

/// ECE of `[N, C]` probabilities (confidence = max probability, prediction = first argmax).
pub fn ece(probs: &Tensor, labels: &Tensor, n_bins: usize) -> Result<f64> {
    let (n, c) = dims2(probs, "ece probs")?;
    let labels = check_labels(labels, n, c, "ece labels")?;
    let values = probs
        .detach()
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    let mut conf = Vec::with_capacity(n);
    let mut correct = Vec::with_capacity(n);
    for (i, &y) in labels.iter().enumerate() {
        let row = &values[i * c..(i + 1) * c];
        let pred = first_argmax(row);
        conf.push(row[pred] as f32);
        correct.push(pred as u32 == y);
    }
    ece_from_confidences(&conf, &correct, n_bins)
}

/// ECE of `[N, C]` logits (softmax first).
pub fn ece_from_logits(logits: &Tensor, labels: &Tensor, n_bins: usize) -> Result<f64> {
    ece(&softmax(&logits.detach())?, labels, n_bins)
}

/// How [`fit_temperature_with`] minimises the NLL over the temperature.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum TemperatureSolver {
    /// [ours, default] The exact minimiser. The NLL of `logits * s` is convex in `s = 1/T`
    /// (its second derivative is the mean variance of the logits under the softmax), so a
    /// safeguarded Newton iteration on `s` (bisection fallback, bracket `[1/t_max, 1/t_min]`)
    /// converges to machine precision in a handful of steps. If the minimum lies outside the
    /// bracket (e.g. every sample already correct and confident) the nearest bound is returned.
    Exact { t_min: f64, t_max: f64 },
    /// [impl] What the reference runs: `torch.optim.LBFGS([T], lr, max_iter)` from `init`, one
    /// `step` without line search, emulated exactly in 1-D (L-BFGS on one variable is a secant
    /// method scaled by `lr`). With lr 0.01 each iteration moves T only ~1% of the way to the
    /// optimum, so after 50 iterations T is still close to `init`: this is *not* the minimiser.
    TorchLbfgs { init: f64, lr: f64, max_iter: usize },
}

impl Default for TemperatureSolver {
    fn default() -> Self {
        TemperatureSolver::Exact {
            t_min: 0.01,
            t_max: 100.0,
        }
    }
}

impl TemperatureSolver {
    /// The reference's settings: LBFGS, init 1.5, lr 0.01, 50 iterations.
    pub fn reference() -> Self {
        TemperatureSolver::TorchLbfgs {
            init: 1.5,
            lr: 0.01,
            max_iter: 50,
        }
    }
}

/// A fitted temperature and the NLL before (T = 1) and after.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TemperatureFit {
    pub temperature: f32,
    pub nll_at_one: f64,
    pub nll_fitted: f64,
    pub iterations: usize,
}

/// Logits and labels on the host, for 1-D NLL evaluations.
struct NllProblem {
    logits: Vec<f64>,
    labels: Vec<u32>,
    classes: usize,
}

impl NllProblem {
    fn new(logits: &Tensor, labels: &Tensor) -> Result<Self> {
        let (n, classes) = dims2(logits, "fit_temperature logits")?;
        if n == 0 || classes == 0 {
            return Err(LossError::Empty {
                what: "fit_temperature",
            });
        }
        let labels = check_labels(labels, n, classes, "fit_temperature labels")?;
        let logits = logits
            .detach()
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        if logits.iter().any(|v| !v.is_finite()) {
            return Err(LossError::InvalidArgument {
                what: "fit_temperature logits",
                reason: "non-finite value".into(),
            });
        }
        Ok(Self {
            logits,
            labels,
            classes,
        })
    }

    /// NLL of `logits * s` and its first two derivatives with respect to `s`.
    fn eval_scale(&self, s: f64) -> (f64, f64, f64) {
        let c = self.classes;
        let (mut f, mut g, mut h) = (0.0, 0.0, 0.0);
        for (i, &y) in self.labels.iter().enumerate() {
            let row = &self.logits[i * c..(i + 1) * c];
            let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v * s));
            let (mut z, mut m1, mut m2) = (0.0, 0.0, 0.0);
            for &l in row {
                let w = (l * s - max).exp();
                z += w;
                m1 += w * l;
                m2 += w * l * l;
            }
            let (m1, m2) = (m1 / z, m2 / z);
            f += max + z.ln() - row[y as usize] * s;
            g += m1 - row[y as usize];
            h += (m2 - m1 * m1).max(0.0);
        }
        let n = self.labels.len() as f64;
        (f / n, g / n, h / n)
    }

    /// NLL of `logits / t` and its derivative with respect to `t`.
    fn eval_temperature(&self, t: f64) -> (f64, f64) {
        let (f, g, _) = self.eval_scale(1.0 / t);
        (f, -g / (t * t))
    }
}

/// Fits one temperature on `[N, C]` logits and `u32` labels with the default exact solver.
pub fn fit_temperature(logits: &Tensor, labels: &Tensor) -> Result<f32> {
    Ok(fit_temperature_with(logits, labels, TemperatureSolver::default())?.temperature)
}

/// Fits one temperature with the chosen solver.
pub fn fit_temperature_with(
    logits: &Tensor,
    labels: &Tensor,
    solver: TemperatureSolver,
) -> Result<TemperatureFit> {
    let problem = NllProblem::new(logits, labels)?;
    let (t, iterations) = match solver {
        TemperatureSolver::Exact { t_min, t_max } => {
            if !(t_min > 0.0 && t_max > t_min) {
                return Err(LossError::InvalidArgument {
                    what: "TemperatureSolver::Exact",
                    reason: format!("need 0 < t_min < t_max, got {t_min}, {t_max}"),
                });
            }
            let (s, it) = newton_on_scale(&problem, 1.0 / t_max, 1.0 / t_min);
            (1.0 / s, it)
        }
        TemperatureSolver::TorchLbfgs { init, lr, max_iter } => {
            if !(init > 0.0 && lr > 0.0) {
                return Err(LossError::InvalidArgument {
                    what: "TemperatureSolver::TorchLbfgs",
                    reason: format!("need init > 0 and lr > 0, got {init}, {lr}"),
                });
            }
            torch_lbfgs_1d(|t| problem.eval_temperature(t), init, lr, max_iter)
        }
    };
    Ok(TemperatureFit {
        temperature: t as f32,
        nll_at_one: problem.eval_scale(1.0).0,
        nll_fitted: problem.eval_scale(1.0 / t).0,
        iterations,
    })
}

/// Safeguarded Newton on the convex NLL(s) over `[lo, hi]`; returns `(s, iterations)`.
fn newton_on_scale(p: &NllProblem, lo: f64, hi: f64) -> (f64, usize) {
    let (mut lo, mut hi) = (lo, hi);
    if p.eval_scale(lo).1 >= 0.0 {
        return (lo, 0);
    }
    if p.eval_scale(hi).1 <= 0.0 {
        return (hi, 0);
    }
    let mut s = (1.0 / 1.5f64).clamp(lo, hi);
    for it in 1..=200 {
        let (_, g, h) = p.eval_scale(s);
        if g == 0.0 {
            return (s, it);
        }
        if g > 0.0 {
            hi = s;
        } else {
            lo = s;
        }
        let newton = if h > 0.0 { s - g / h } else { f64::NAN };
        let next = if newton.is_finite() && newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        if (next - s).abs() <= 1e-14 * s.abs() || (hi - lo) <= 1e-15 * hi {
            return (next, it);
        }
        s = next;
    }
    (s, 200)
}

/// `torch.optim.LBFGS(lr, max_iter, tolerance_grad=1e-7, tolerance_change=1e-9,
/// history_size=100, line_search_fn=None).step(closure)` on one variable; returns `(x, iters)`.
fn torch_lbfgs_1d(
    f: impl Fn(f64) -> (f64, f64),
    x0: f64,
    lr: f64,
    max_iter: usize,
) -> (f64, usize) {
    const TOL_GRAD: f64 = 1e-7;
    const TOL_CHANGE: f64 = 1e-9;
    const HISTORY: usize = 100;
    let max_eval = max_iter * 5 / 4;
    let mut x = x0;
    let (mut loss, mut g) = f(x);
    let mut evals = 1;
    if g.abs() <= TOL_GRAD {
        return (x, 0);
    }
    let (mut old_y, mut old_s, mut ro): (Vec<f64>, Vec<f64>, Vec<f64>) = (vec![], vec![], vec![]);
    let (mut d, mut t, mut h_diag) = (0.0f64, 0.0f64, 1.0f64);
    let mut prev_g = g;
    let mut n_iter = 0;
    while n_iter < max_iter {
        n_iter += 1;
        if n_iter == 1 {
            d = -g;
            h_diag = 1.0;
        } else {
            let y = g - prev_g;
            let s = d * t;
            let ys = y * s;
            if ys > 1e-10 {
                if old_y.len() == HISTORY {
                    old_y.remove(0);
                    old_s.remove(0);
                    ro.remove(0);
                }
                old_y.push(y);
                old_s.push(s);
                ro.push(1.0 / ys);
                h_diag = ys / (y * y);
            }
            let mut q = -g;
            let mut al = vec![0.0; old_y.len()];
            for i in (0..old_y.len()).rev() {
                al[i] = old_s[i] * q * ro[i];
                q -= al[i] * old_y[i];
            }
            let mut r = q * h_diag;
            for i in 0..old_y.len() {
                let be = old_y[i] * r * ro[i];
                r += old_s[i] * (al[i] - be);
            }
            d = r;
        }
        prev_g = g;
        let prev_loss = loss;
        t = if n_iter == 1 {
            (1.0f64).min(1.0 / g.abs()) * lr
        } else {
            lr
        };
        if g * d > -TOL_CHANGE {
            break;
        }
        x += t * d;
        let mut opt_cond = false;
        if n_iter != max_iter {
            (loss, g) = f(x);
            opt_cond = g.abs() <= TOL_GRAD;
            evals += 1;
        }
        if n_iter == max_iter || evals >= max_eval || opt_cond {
            break;
        }
        if (d * t).abs() <= TOL_CHANGE || (loss - prev_loss).abs() < TOL_CHANGE {
            break;
        }
    }
    (x, n_iter)
}

/// Per-head temperatures (audio, visual, fused), 1.0 = uncalibrated.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeadTemperatures(pub [f32; 3]);

impl Default for HeadTemperatures {
    fn default() -> Self {
        HeadTemperatures([1.0; 3])
    }
}

impl HeadTemperatures {
    /// The temperature of `head`.
    pub fn get(&self, head: Head) -> f32 {
        self.0[head.index()]
    }
}

/// Fits a temperature per head on the same labels (e.g. the whole buffer at the end of a task).
pub fn fit_head_temperatures(
    logits: &HeadLogits,
    labels: &Tensor,
    solver: TemperatureSolver,
) -> Result<HeadTemperatures> {
    let mut temps = [1.0f32; 3];
    for head in Head::ALL {
        temps[head.index()] = fit_temperature_with(logits.get(head), labels, solver)?.temperature;
    }
    Ok(HeadTemperatures(temps))
}

/// The temperature-scaled logits `l_m / T_m` of each head with its per-sample ensemble
/// weight `w_m = max softmax(l_m / T_m)` (`[batch, 1]`), in [`Head::ALL`] order.
fn weighted_heads(
    logits: &HeadLogits,
    temperatures: HeadTemperatures,
) -> Result<[(Tensor, Tensor); 3]> {
    logits.dims()?;
    let scale = |head: Head| -> Result<(Tensor, Tensor)> {
        let t = temperatures.get(head) as f64;
        if !(t != 0.0 && t.is_finite()) {
            return Err(LossError::InvalidArgument {
                what: "calibrated_ensemble temperature",
                reason: format!("{head:?} temperature {t} must be finite and non-zero"),
            });
        }
        let scaled = (logits.get(head) / t)?;
        let weight = softmax(&scaled)?.max_keepdim(D::Minus1)?;
        Ok((scaled, weight))
    };
    let [a, b, c] = Head::ALL;
    Ok([scale(a)?, scale(b)?, scale(c)?])
}

/// SAMM's calibrated dynamic weighted ensemble `[batch, classes]`: per sample and head,
/// `w_m = max softmax(l_m / T_m)`; output `sum_m w_m * l_m / T_m`. A negative temperature
/// is accepted: the reference's LBFGS fit (`TemperatureSolver::TorchLbfgs`) can overshoot
/// below zero, and the reference then ensembles with it (the head's order is inverted).
pub fn calibrated_ensemble(logits: &HeadLogits, temperatures: HeadTemperatures) -> Result<Tensor> {
    let [(sa, wa), (sb, wb), (sc, wc)] = weighted_heads(logits, temperatures)?;
    Ok(((sa.broadcast_mul(&wa)? + sb.broadcast_mul(&wb)?)? + sc.broadcast_mul(&wc)?)?)
}

/// The calibrated ensemble's per-sample head weights `w_m` (`[batch, 3]`, columns in
/// [`Head::ALL`] order): how much the ensemble leans on each head, e.g. when one modality
/// is corrupted.
pub fn ensemble_weights(logits: &HeadLogits, temperatures: HeadTemperatures) -> Result<Tensor> {
    let [(_, wa), (_, wb), (_, wc)] = weighted_heads(logits, temperatures)?;
    Ok(Tensor::cat(&[wa, wb, wc], 1)?)
}
