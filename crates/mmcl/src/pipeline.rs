//! The whole pipeline on the tiny synthetic profile: synthesise the data, prepare the cache,
//! train one SAMM run and derive its metrics. `mmcl gpu-check` runs it on the GPU; its test
//! runs it on the CPU.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use mmcl_data::prep::PrepOptions;

use crate::config::{resolve, ConfigSources};
use crate::datasets::{self, PrepOverrides};

/// What a tiny run produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TinyRun {
    pub device: String,
    pub tasks: usize,
    /// Final accuracy on every seen class, per inference mode (`av`, `audio`, ...).
    pub final_seen_accuracy_percent: BTreeMap<String, f64>,
    pub seconds: f64,
    pub run_dir: PathBuf,
}

/// The tiny profile's data under `work/synth-tiny` (generated once, then reused).
fn synthesise(work: &Path) -> anyhow::Result<PathBuf> {
    let synth = work.join("synth-tiny");
    let manifest = synth.join("manifest.csv");
    if !manifest.exists() {
        let profile = mmcl_synth::Profile::by_name("tiny")?;
        let opts = mmcl_synth::SynthOptions {
            progress: false,
            mp4: false,
        };
        datasets::synthesise(&synth, &profile, 0, opts)?;
    }
    Ok(manifest)
}

/// The cache of `manifest` under `work/cache-tiny`, with the dataset's own hints.
fn prepare(manifest: &Path, work: &Path) -> anyhow::Result<PathBuf> {
    let cache = work.join("cache-tiny");
    let base = PrepOptions {
        frame_size: 32,
        progress: false,
        ..PrepOptions::default()
    };
    let (opts, hints) = datasets::prep_options(manifest, PrepOverrides::default(), base)?;
    anyhow::ensure!(
        hints.is_some(),
        "{}: the synthetic dataset has no dataset.json",
        manifest.display()
    );
    datasets::prepare_cache(manifest, &cache, &opts)?;
    Ok(cache)
}

/// Synthesise, prepare and train a tiny-profile SAMM run (buffer 50, one epoch per task)
/// on `device` under `work`, replacing an earlier run folder of the same device.
pub fn tiny_run(work: &Path, device: &str) -> anyhow::Result<TinyRun> {
    let start = Instant::now();
    let manifest = synthesise(work)?;
    let cache = prepare(&manifest, work)?;
    let cfg = resolve(&ConfigSources {
        preset: Some("tiny".into()),
        file: None,
        shorthands: vec![
            ("method.kind".into(), "\"samm\"".into()),
            ("method.buffer_size".into(), "50".into()),
            ("device".into(), format!("{device:?}")),
            ("cache".into(), format!("{:?}", cache.display().to_string())),
        ],
        sets: vec![],
    })?;
    let run_dir = work.join(format!("run-samm-{}", device.replace(':', "")));
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)
            .with_context(|| format!("removing the old {}", run_dir.display()))?;
    }
    let r = mmcl_scheduler::train(&cfg, &run_dir, &mmcl_scheduler::RunOptions::default())?;
    let mut modes = BTreeMap::new();
    for m in &mmcl_metrics::RunMetrics::derive(&r)?.modes {
        let seen = m.gcil.final_all_seen;
        anyhow::ensure!(seen.is_finite(), "mode {}: no final accuracy", m.mode);
        modes.insert(m.mode.clone(), seen);
    }
    Ok(TinyRun {
        device: device.into(),
        tasks: r.tasks.len(),
        final_seen_accuracy_percent: modes,
        seconds: (start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        run_dir,
    })
}

#[cfg(test)]
mod tests {
    /// The tiny SAMM run on the CPU (~6 s here: synthesis, cache, 10 tasks).
    #[test]
    fn tiny_run_on_cpu() {
        let dir = tempfile::tempdir().unwrap();
        let r = super::tiny_run(dir.path(), "cpu").unwrap();
        assert!(r.tasks > 1, "{r:?}");
        assert!(r.final_seen_accuracy_percent.contains_key("av"), "{r:?}");
        assert!(r.run_dir.join("results.json").is_file());
    }
}
