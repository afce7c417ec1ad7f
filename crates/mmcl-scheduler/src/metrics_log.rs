//! `metrics.jsonl` in the run folder: one JSON object per training step ([`StepRecord`]),
//! for plotting with any tool (`pandas.read_json(path, lines=True)`, `jq`).
//!
//! Writing: lines are appended through a buffer (no measurable cost per step) that is
//! flushed at every epoch's end and flushed and fsynced before every checkpoint, so each
//! step a checkpoint covers is on disk before the checkpoint is. A kill can leave the last
//! line cut off, and steps trained after the last checkpoint that a resume trains again: a
//! resume first truncates the file to the steps its checkpoint covers (dropping a cut-off
//! line too), then appends, so the file holds every step of the run exactly once, in order.
//! A run begun by an mmcl without this log holds the steps from its resume on only.
//!
//! Reading: [`read`] skips a last line without its newline (cut off by a kill); any other
//! line that is not a record is an error naming the file and the line.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::SchedulerError;

/// File name of the per-step log in a run folder.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// One training step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The run's step, 0-based, counted over every task.
    pub step: usize,
    /// The training task (0-based).
    pub task: usize,
    /// The epoch within the task (0-based).
    pub epoch: usize,
    /// The step within the epoch (0-based).
    pub batch: usize,
    /// Clips of the task's data in the batch (replayed memory items not counted).
    pub samples: usize,
    /// The loss the method optimised (the methods report the total only).
    pub loss: f64,
    /// The learning rate of the step.
    pub lr: f64,
    /// `samples` over the wall time since the previous step ended (the epoch's start for its
    /// first step), waiting for the batch's loading included.
    pub samples_per_s: f64,
}

/// The open log of a run being trained.
pub struct MetricsLog {
    path: PathBuf,
    out: BufWriter<File>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SchedulerError + '_ {
    move |e| SchedulerError::Io {
        path: path.to_owned(),
        source: e,
    }
}

/// The records of `text` with the byte length of the complete lines they came from; a last
/// line without its newline is left out.
fn parse(path: &Path, text: &str) -> Result<Vec<(StepRecord, usize)>, SchedulerError> {
    let mut out = Vec::new();
    let mut end = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !line.ends_with('\n') {
            break;
        }
        end += line.len();
        let record = serde_json::from_str(line).map_err(|e| SchedulerError::Format {
            path: path.to_owned(),
            reason: format!("line {}: not a step record ({e})", i + 1),
        })?;
        out.push((record, end));
    }
    Ok(out)
}

/// The records of a `metrics.jsonl` (see the module docs for a cut-off last line).
pub fn read(path: &Path) -> Result<Vec<StepRecord>, SchedulerError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    Ok(parse(path, &text)?.into_iter().map(|(r, _)| r).collect())
}

impl MetricsLog {
    /// Opens `dir`'s log to append the steps from `steps_done` on: records of later steps
    /// (trained after the checkpoint the run resumes from) and a cut-off last line are
    /// removed first (the file is rewritten atomically).
    pub fn open(dir: &Path, steps_done: usize) -> Result<MetricsLog, SchedulerError> {
        let path = dir.join(METRICS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let records = parse(&path, &text)?;
                let keep = records
                    .iter()
                    .take_while(|(r, _)| r.step < steps_done)
                    .last()
                    .map_or(0, |(_, end)| *end);
                if keep < text.len() {
                    crate::write_atomic(&path, &text.as_bytes()[..keep])?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(MetricsLog {
            out: BufWriter::new(file),
            path,
        })
    }

    /// Appends one step (to the buffer).
    pub fn record(&mut self, r: &StepRecord) -> Result<(), SchedulerError> {
        let mut line = serde_json::to_vec(r).expect("step record serialises");
        line.push(b'\n');
        self.out.write_all(&line).map_err(io_err(&self.path))
    }

    /// Writes the buffered lines to the file.
    pub fn flush(&mut self) -> Result<(), SchedulerError> {
        self.out.flush().map_err(io_err(&self.path))
    }

    /// [`MetricsLog::flush`], then to the disk: before a checkpoint.
    pub fn sync(&mut self) -> Result<(), SchedulerError> {
        self.flush()?;
        self.out.get_ref().sync_data().map_err(io_err(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: usize) -> StepRecord {
        StepRecord {
            step,
            task: step / 2,
            epoch: 0,
            batch: step % 2,
            samples: 4,
            loss: 2.5 - step as f64 * 0.1,
            lr: 0.05,
            samples_per_s: 100.0,
        }
    }

    #[test]
    fn a_resume_truncates_to_the_checkpoint_and_a_cut_off_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(METRICS_FILE);
        let mut log = MetricsLog::open(dir.path(), 0).unwrap();
        for s in 0..5 {
            log.record(&record(s)).unwrap();
        }
        log.sync().unwrap();
        drop(log);
        // A kill in the middle of writing a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"step":5,"task":2,"ep"#).unwrap();
        drop(f);
        assert_eq!(read(&path).unwrap(), (0..5).map(record).collect::<Vec<_>>());

        // The checkpoint covers steps 0..3: steps 3 and 4 are trained again.
        let mut log = MetricsLog::open(dir.path(), 3).unwrap();
        assert_eq!(read(&path).unwrap(), (0..3).map(record).collect::<Vec<_>>());
        for s in 3..6 {
            log.record(&record(s)).unwrap();
        }
        log.flush().unwrap();
        assert_eq!(read(&path).unwrap(), (0..6).map(record).collect::<Vec<_>>());
    }

    #[test]
    fn a_corrupt_line_is_an_error_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(METRICS_FILE);
        let good = serde_json::to_string(&record(0)).unwrap();
        std::fs::write(&path, format!("{good}\nnot json\n")).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains("line 2"),
            "{e}"
        );
        assert!(MetricsLog::open(dir.path(), 1).is_err());
    }
}
