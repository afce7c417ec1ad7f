//! The provenance of results.json and the per-step metrics.jsonl of tiny runs: what they
//! record, that results without provenance still read, and that a killed and resumed run
//! logs every step exactly once.

mod common;

use common::{small_seq, tiny_config};
use mmcl_methods::MethodKind;
use mmcl_model::Modality;
use mmcl_scheduler::metrics_log::{self, StepRecord, METRICS_FILE};
use mmcl_scheduler::{resume, train, ExperimentConfig, RunDir, RunOptions, RunResults};
use sha2::{Digest, Sha256};

/// ER, three steps per task (12 clips at batch 4), three tasks.
fn config() -> ExperimentConfig {
    let mut cfg = tiny_config(MethodKind::Er, Modality::AudioVisual, small_seq());
    cfg.train.batch_size = 4;
    cfg
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything of a step record but its timing.
fn untimed(r: &StepRecord) -> (usize, usize, usize, usize, usize, u64, u64) {
    let &StepRecord {
        step,
        task,
        epoch,
        batch,
        samples,
        loss,
        lr,
        ..
    } = r;
    (
        step,
        task,
        epoch,
        batch,
        samples,
        loss.to_bits(),
        lr.to_bits(),
    )
}

#[test]
fn provenance_names_code_config_cache_and_machine_and_old_results_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config();
    let r = train(&cfg, dir.path(), &RunOptions::default()).unwrap();
    let p = r
        .provenance
        .as_ref()
        .expect("a new run records its provenance");
    let first = &p.first;
    assert_eq!(first.mmcl_version, env!("CARGO_PKG_VERSION"));
    assert!(!first.commit.is_empty());
    assert!(
        first.commit == "unknown" || first.commit.len() == 40,
        "{}",
        first.commit
    );
    let rd = RunDir::new(dir.path());
    let config_bytes = std::fs::read(rd.config_path()).unwrap();
    assert_eq!(first.config_sha256, hex(&Sha256::digest(&config_bytes)));
    let header = mmcl_data::cache::CacheHeader::read(&cfg.cache).unwrap();
    assert_eq!(first.cache_manifest_sha256, header.manifest_sha256);
    assert_eq!(first.cache_manifest_sha256.len(), 64);
    assert_eq!((first.device.as_str(), first.from_task), ("cpu", 0));
    assert!(first.threads >= 1);
    assert!(["fast", "composed"].contains(&first.kernels.as_str()));
    assert!(!first.host.is_empty() && !first.command_line.is_empty());
    assert!(first.started.ends_with('Z') && first.started.len() == 20);
    if cfg!(target_os = "linux") {
        assert!(first.peak_rss_bytes.is_some_and(|b| b > 1 << 20));
    }
    assert!(p.resumes.is_empty());
    // What is written is what was returned.
    let written = RunResults::read(&rd.results_path()).unwrap();
    assert_eq!(written.provenance, r.provenance);

    // A results.json written before provenance existed reads, under the same schema version.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rd.results_path()).unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("provenance").unwrap();
    std::fs::write(rd.results_path(), json.to_string()).unwrap();
    let old = RunResults::read(&rd.results_path()).unwrap();
    assert_eq!(old.provenance, None);
    assert_eq!(old.modes, r.modes);
}

#[test]
fn metrics_log_has_every_step_once_also_after_a_kill_and_resume() {
    let cfg = config();
    let full_dir = tempfile::tempdir().unwrap();
    let full = train(&cfg, full_dir.path(), &RunOptions::default()).unwrap();
    let full_log = metrics_log::read(&full_dir.path().join(METRICS_FILE)).unwrap();
    let steps: usize = full.training.iter().map(|t| t.steps).sum();
    assert_eq!(steps, 9);
    assert_eq!(full_log.len(), steps);
    for (i, r) in full_log.iter().enumerate() {
        assert_eq!((r.step, r.task, r.batch), (i, i / 3, i % 3), "{r:?}");
        assert!(r.loss.is_finite() && r.loss > 0.0);
        assert_eq!(r.lr, cfg.optim.lr);
        assert!(r.samples == 4 && r.samples_per_s > 0.0);
    }

    // Killed in task 1 after its second step: steps 3 and 4 are logged but not in the
    // task-0 checkpoint, so the resume trains them again.
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        stop_after_steps: Some(5),
        ..RunOptions::default()
    };
    train(&cfg, dir.path(), &opts).unwrap_err();
    let path = dir.path().join(METRICS_FILE);
    assert_eq!(metrics_log::read(&path).unwrap().len(), 5);
    let resumed = resume(dir.path(), &RunOptions::default()).unwrap();
    assert_eq!(resumed.modes, full.modes);
    let log = metrics_log::read(&path).unwrap();
    assert_eq!(
        log.iter().map(untimed).collect::<Vec<_>>(),
        full_log.iter().map(untimed).collect::<Vec<_>>(),
        "no step missing or logged twice, and each as in the uninterrupted run"
    );

    // The resume is the run's second session; the first is kept as it was.
    let p = resumed.provenance.unwrap();
    let first = full.provenance.unwrap().first;
    assert_eq!(p.resumes.len(), 1);
    assert_eq!((p.first.from_task, p.resumes[0].from_task), (0, 1));
    assert_eq!(p.first.config_sha256, first.config_sha256);
    assert_eq!(p.resumes[0].config_sha256, first.config_sha256);
    assert_eq!(
        p.resumes[0].cache_manifest_sha256,
        first.cache_manifest_sha256
    );
}
