//! `mmcl`: the runner library behind the `mmcl` command line, over the mmcl crates.
//!
//! Each module is one thing the command line does, callable from tests and other programs:
//! - [`config`]: experiment configs from presets, TOML files and `--set` overrides;
//! - [`runs`]: a run's summary, evaluating a run's checkpoint;
//! - [`datasets`]: synthetic data, manifests and the preprocessing cache;
//! - [`report`]: the benchmark report from finished run folders;
//! - [`pipeline`]: synthesise, prepare and train on the tiny profile in one call;
//! - [`gpu_check`]: the GPU build check (golden comparisons, step benchmark, tiny run);
//! - [`model_files`], [`media_files`]: checkpoint and media inspection files;
//! - [`cmd`]: the command line itself; each subcommand translates its arguments into one
//!   call of the modules above (the binary only parses and reports the error).
//!
//! ```
//! use mmcl::config::{resolve, ConfigSources, Shorthands};
//!
//! let shorthands = Shorthands { method: Some("er".into()), buffer: Some(200), ..Shorthands::default() };
//! let cfg = resolve(&ConfigSources {
//!     preset: Some("tiny".into()),
//!     shorthands: shorthands.to_pairs(),
//!     ..ConfigSources::default()
//! })?;
//! assert_eq!((cfg.method.buffer_size, cfg.train.epochs), (200, 1));
//! # Ok::<(), anyhow::Error>(())
//! ```
pub mod cmd;
pub mod config;
pub mod datasets;
pub mod gpu_check;
pub mod media_files;
pub mod model_files;
pub mod pipeline;
pub mod report;
pub mod runs;
