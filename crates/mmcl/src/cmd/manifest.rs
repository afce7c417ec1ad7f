//! `mmcl manifest …`: build benchmark manifests from datasets users bring.
use std::path::PathBuf;

use clap::{Args, Subcommand};
use mmcl_data::vggsound::VggSoundOptions;

use crate::datasets::vggsound_manifest;

#[derive(Subcommand)]
pub enum ManifestCommand {
    /// MMCL-VGGSound from the public VGGSound CSV and the clips under --root (pre-extracted
    /// `audio/<id>.wav` + `frames/<id>/`, or raw `video/<id>.mp4`, id = `<ytid>_<start:06>`).
    /// Missing or corrupt clips and classes short of clips are reported, never fatal.
    Vggsound(VggSoundArgs),
}

#[derive(Args)]
pub struct VggSoundArgs {
    /// The VGGSound CSV (no header: ytid, start second, label, split).
    #[arg(long)]
    pub csv: PathBuf,
    /// Folder holding audio/, frames/ and/or video/.
    #[arg(long)]
    pub root: PathBuf,
    /// Manifest to write (paths are relative when it lies in --root, else absolute).
    #[arg(long)]
    pub out: PathBuf,
    /// Full report (JSON); default: `<out>` with `.report.json`.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Test clips per class (reference: 50).
    #[arg(long, default_value_t = 50)]
    pub test_per_class: usize,
    /// Most training clips per class (reference: 500).
    #[arg(long, default_value_t = 500)]
    pub max_train_per_class: usize,
    /// Frames a frame folder needs (reference: more than 3).
    #[arg(long, default_value_t = 4)]
    pub min_frames: usize,
}

pub fn run(c: ManifestCommand) -> anyhow::Result<()> {
    match c {
        ManifestCommand::Vggsound(a) => vggsound(a),
    }
}

fn vggsound(a: VggSoundArgs) -> anyhow::Result<()> {
    let opts = VggSoundOptions {
        test_per_class: a.test_per_class,
        max_train_per_class: a.max_train_per_class,
        min_frames: a.min_frames,
    };
    let (manifest, report, report_path) =
        vggsound_manifest(&a.csv, &a.root, &a.out, a.report.as_deref(), &opts)?;
    for p in &report.csv_problems {
        eprintln!("warning: {}:{}: {}", a.csv.display(), p.line, p.reason);
    }
    for p in report.clip_problems.iter().filter(|p| !p.used) {
        eprintln!("skipped {}: {}", p.id, p.reasons.join("; "));
    }
    for p in report.clip_problems.iter().filter(|p| p.used) {
        eprintln!("used {} despite: {}", p.id, p.reasons.join("; "));
    }
    for c in report.short_classes() {
        eprintln!(
            "short class {:>2} {:?}: {} test (want {}), {} train (want {}); {} usable of {} listed",
            c.label,
            c.name,
            c.test,
            opts.test_per_class,
            c.train,
            opts.max_train_per_class,
            c.usable,
            c.csv_test + c.csv_train
        );
    }
    let test = manifest.split(mmcl_data::manifest::Split::Test).count();
    println!(
        "manifest: {} clips ({} train, {} test) -> {}; {} clips skipped ({:?}); {} classes short; report {}",
        manifest.entries.len(),
        manifest.entries.len() - test,
        test,
        a.out.display(),
        report.skipped(),
        report.skipped_by_reason,
        report.short_classes().count(),
        report_path.display()
    );
    Ok(())
}
