//! Deterministic synthetic audio-visual dataset generator shaped like MMCL-VGGSound.
//!
//! VGGSound cannot be downloaded by most users; this crate writes a stand-in with the
//! same structure — 100 classes named like MMCL's, 5 supercategories of 20, a train and a
//! test split — as REAL media files in the reference layout (`audio/<id>.wav`, 16-bit PCM,
//! and `frames/<id>/00000.png…`, one frame per second) plus a `manifest.csv`
//! ([`mmcl_data::manifest`]), so the whole pipeline (prep cache, loader, training) runs on
//! it unchanged. Each class has an audio and a visual signature (see [`signature`]) with
//! family-level shared traits (timbre and register; colour family, texture and motion)
//! that only half the classes of a supercategory share, so that Domain-IL needs each
//! subclass's supercategory to be learnt and remembered (a sequentially trained model
//! forgets it, as on VGGSound), complementary confusions (pairs that sound alike but look
//! different and vice versa), and audio as the stronger modality. Generation is parallel (rayon) and deterministic: the same profile and
//! seed give byte-identical files. With the `ffmpeg` feature, [`generate_with`] can also
//! write each clip as an MP4 (H.264 + AAC, frames at 1 fps) to exercise video decoding.
//!
//! ```no_run
//! use mmcl_synth::{generate, Profile};
//! let summary = generate("data/synth-mini".as_ref(), &Profile::mini(), 0, true).unwrap();
//! println!("{} clips, manifest at {}", summary.clips, summary.manifest.display());
//! ```
pub mod audio;
pub mod dataset;
pub mod error;
#[cfg(feature = "ffmpeg")]
pub mod mp4;
pub mod profile;
pub mod signature;
pub mod visual;

pub use dataset::{
    clip_specs, generate, generate_with, render_clip, ClipSpec, RenderedClip, SynthOptions,
    SynthSummary,
};
pub use error::SynthError;
pub use profile::Profile;
pub use signature::{all_signatures, class_signature, label_of, slot_of, ClassSignature};

/// Version of the dataset design (class signatures, rendering). It is written to
/// `dataset.json` as `design_version`, so tools that keep generated data around (`cargo
/// xtask reproduce`) can tell data made by an older design from current data: the file
/// names and the manifest stay the same when the design changes, only the media differ.
/// Bump it with every change that alters generated files.
/// 1: supercategory traits shared by all 20 classes; 2: by half of them; 3: class labels
/// are the names' alphabetical ranks (the reference's numbering), so each clip's label, id
/// and RNG stream changed.
pub const DESIGN_VERSION: u32 = 3;

/// Number of classes generated (all of MMCL-VGGSound's).
pub const NUM_CLASSES: usize = mmcl_data::classes::NUM_CLASSES;
