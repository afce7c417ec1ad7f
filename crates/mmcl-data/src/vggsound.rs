//! Building the MMCL-VGGSound manifest from the public VGGSound CSV and the files a user has.
//!
//! The VGGSound CSV has no header and four columns: YouTube id, start second, label text,
//! split (`train`/`test`). A clip's id is `<ytid>_<start:06>` (e.g. `---g-f_I2yQ_000001`).
//! Two media layouts are accepted under the data root, per clip:
//! * pre-extracted (the reference layout): `audio/<id>.wav` and `frames/<id>/` holding at
//!   least `min_frames` image files (`.jpg`, `.jpeg` or `.png`, one per second);
//! * raw: `video/<id>.mp4` (H.264 + AAC), decoded later by `prep`.
//!
//! A clip is usable when it has audio (WAV or MP4) and frames (folder or MP4). Files are
//! checked by their headers here (RIFF/WAVE, PNG/JPEG signatures, the MP4 `ftyp` box);
//! deeper decoding failures are reported by `prep`. Per class, candidate clips are taken
//! in CSV order, original test clips first then train clips; the first `test_per_class` usable
//! ones go to test and the next up to `max_train_per_class` to train (reference: 50 and
//! 500). Every missing or corrupt clip that was examined and every class short of clips is
//! reported; nothing here is fatal except an unreadable CSV.
//!
//! ```no_run
//! use mmcl_data::vggsound::{build_manifest, VggSoundOptions};
//! let (manifest, report) = build_manifest(
//!     "vggsound.csv".as_ref(), "/data/vggsound".as_ref(), "/data/vggsound/manifest.csv".as_ref(),
//!     &VggSoundOptions::default(),
//! ).unwrap();
//! manifest.write("/data/vggsound/manifest.csv".as_ref()).unwrap();
//! for c in report.short_classes() { eprintln!("{} is short: {} test, {} train", c.name, c.test, c.train); }
//! ```
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::classes::class_table;
use crate::manifest::{Manifest, ManifestEntry, Split};

/// Selection parameters (defaults: the reference's 50 test / up to 500 train, 4 frames).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VggSoundOptions {
    pub test_per_class: usize,
    pub max_train_per_class: usize,
    /// A frame folder needs at least this many images (reference: more than 3).
    pub min_frames: usize,
}

impl Default for VggSoundOptions {
    fn default() -> Self {
        Self {
            test_per_class: 50,
            max_train_per_class: 500,
            min_frames: 4,
        }
    }
}

/// Why the VGGSound CSV could not be used at all.
#[derive(Debug, thiserror::Error)]
pub enum VggSoundError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no row of the CSV names one of the 100 MMCL-VGGSound classes; is it the VGGSound CSV (ytid,start,label,split)?")]
    NoBenchmarkRows { path: PathBuf },
}

/// A problem with one clip's media.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClipProblem {
    pub id: String,
    pub label: u32,
    /// The clip's original VGGSound split.
    pub original_split: Split,
    /// `true` if the clip was still used (e.g. corrupt WAV but a good MP4).
    pub used: bool,
    /// Every problem found, e.g. `audio/x.wav: missing`.
    pub reasons: Vec<String>,
    /// The same as kinds for counting, e.g. `audio: missing`.
    pub kinds: Vec<String>,
}

/// A CSV line that was not understood.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CsvProblem {
    pub line: u64,
    pub reason: String,
}

/// What was selected for one class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClassSelection {
    pub label: u32,
    pub name: String,
    /// Rows of this class in the CSV (original train, test).
    pub csv_train: usize,
    pub csv_test: usize,
    /// Clips examined before the class was full, and how many of them were usable.
    pub examined: usize,
    pub usable: usize,
    /// Clips selected.
    pub test: usize,
    pub train: usize,
    /// Selected test clips that come from VGGSound's train split (only when the class has
    /// fewer usable original test clips than `test_per_class`).
    pub test_from_train: usize,
}

/// Everything `build_manifest` has to say; serialisable to JSON.
#[derive(Clone, Debug, Serialize)]
pub struct VggSoundReport {
    pub csv: PathBuf,
    pub root: PathBuf,
    pub test_per_class: usize,
    pub max_train_per_class: usize,
    pub csv_rows: usize,
    /// Rows of classes outside the benchmark.
    pub other_class_rows: usize,
    pub csv_problems: Vec<CsvProblem>,
    pub classes: Vec<ClassSelection>,
    /// Examined clips with a problem (used or skipped), in class and CSV order.
    pub clip_problems: Vec<ClipProblem>,
    /// Problems of skipped clips per kind (`audio: missing`, `frames: corrupt frame`, …).
    pub skipped_by_reason: BTreeMap<String, usize>,
}

impl VggSoundReport {
    /// Classes with fewer than `test_per_class` test clips or `max_train_per_class` train clips.
    pub fn short_classes(&self) -> impl Iterator<Item = &ClassSelection> {
        self.classes
            .iter()
            .filter(|c| c.test < self.test_per_class || c.train < self.max_train_per_class)
    }

    /// Clips examined and skipped.
    pub fn skipped(&self) -> usize {
        self.clip_problems.iter().filter(|p| !p.used).count()
    }
}

struct Row {
    id: String,
    split: Split,
}

/// Builds the benchmark manifest. `manifest_path` is where the manifest will be written:
/// media paths are made relative to its folder when it is the data root, and absolute
/// otherwise. The manifest is returned, not written (see [`Manifest::write`]).
pub fn build_manifest(
    csv_path: &Path,
    root: &Path,
    manifest_path: &Path,
    opts: &VggSoundOptions,
) -> Result<(Manifest, VggSoundReport), VggSoundError> {
    let mut text = String::new();
    std::fs::File::open(csv_path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|source| VggSoundError::Io {
            path: csv_path.to_path_buf(),
            source,
        })?;
    let table = class_table();
    let mut rows: Vec<Vec<Row>> = (0..table.len()).map(|_| Vec::new()).collect();
    let mut csv_problems = Vec::new();
    let (mut csv_rows, mut other_class_rows) = (0, 0);
    let mut seen = HashSet::new();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                csv_problems.push(CsvProblem {
                    line,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        csv_rows += 1;
        if rec.len() != 4 {
            csv_problems.push(CsvProblem {
                line,
                reason: format!("expected 4 columns, found {}", rec.len()),
            });
            continue;
        }
        let (ytid, start, label, split) =
            (rec[0].trim(), rec[1].trim(), rec[2].trim(), rec[3].trim());
        let Some(class) = table.by_name(label) else {
            other_class_rows += 1;
            continue;
        };
        let Ok(start) = start.parse::<u32>() else {
            csv_problems.push(CsvProblem {
                line,
                reason: format!("start second {start:?} is not an integer"),
            });
            continue;
        };
        let Some(split) = Split::parse(split) else {
            csv_problems.push(CsvProblem {
                line,
                reason: format!("split {split:?} is neither train nor test"),
            });
            continue;
        };
        if ytid.is_empty() {
            csv_problems.push(CsvProblem {
                line,
                reason: "empty YouTube id".into(),
            });
            continue;
        }
        let id = format!("{ytid}_{start:06}");
        if !seen.insert(id.clone()) {
            csv_problems.push(CsvProblem {
                line,
                reason: format!("duplicate clip {id}, later row ignored"),
            });
            continue;
        }
        rows[class.index as usize].push(Row { id, split });
    }
    if rows.iter().all(Vec::is_empty) {
        return Err(VggSoundError::NoBenchmarkRows {
            path: csv_path.to_path_buf(),
        });
    }

    let manifest_dir = manifest_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let relative = same_dir(&manifest_dir, root);
    let prefix = if relative {
        PathBuf::new()
    } else {
        std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf())
    };

    // Classes are independent: examine them in parallel, each in CSV order until full.
    let per_class: Vec<(Vec<ManifestEntry>, ClassSelection, Vec<ClipProblem>)> = rows
        .par_iter()
        .enumerate()
        .map(|(label, class_rows)| select_class(label as u32, class_rows, root, &prefix, opts))
        .collect();

    let mut manifest = Manifest::new(manifest_dir);
    let mut classes = Vec::new();
    let mut clip_problems = Vec::new();
    for (entries, sel, problems) in per_class {
        manifest.entries.extend(entries);
        classes.push(sel);
        clip_problems.extend(problems);
    }
    let mut skipped_by_reason = BTreeMap::new();
    for p in clip_problems.iter().filter(|p| !p.used) {
        for k in &p.kinds {
            *skipped_by_reason.entry(k.clone()).or_insert(0) += 1;
        }
    }
    let report = VggSoundReport {
        csv: csv_path.to_path_buf(),
        root: root.to_path_buf(),
        test_per_class: opts.test_per_class,
        max_train_per_class: opts.max_train_per_class,
        csv_rows,
        other_class_rows,
        csv_problems,
        classes,
        clip_problems,
        skipped_by_reason,
    };
    Ok((manifest, report))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    let norm = |p: &Path| {
        let p = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        std::fs::canonicalize(p).or_else(|_| std::path::absolute(p))
    };
    matches!((norm(a), norm(b)), (Ok(x), Ok(y)) if x == y)
}

fn select_class(
    label: u32,
    rows: &[Row],
    root: &Path,
    prefix: &Path,
    opts: &VggSoundOptions,
) -> (Vec<ManifestEntry>, ClassSelection, Vec<ClipProblem>) {
    let class = class_table().class(label);
    let csv_test = rows.iter().filter(|r| r.split == Split::Test).count();
    let ordered = rows
        .iter()
        .filter(|r| r.split == Split::Test)
        .chain(rows.iter().filter(|r| r.split == Split::Train));
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let (mut examined, mut test, mut train, mut test_from_train) = (0, 0, 0, 0);
    for row in ordered {
        if test >= opts.test_per_class && train >= opts.max_train_per_class {
            break;
        }
        examined += 1;
        let media = check_clip(root, &row.id, opts.min_frames);
        let usable = media.usable();
        if !media.reasons.is_empty() {
            problems.push(ClipProblem {
                id: row.id.clone(),
                label,
                original_split: row.split,
                used: usable,
                reasons: media.reasons.clone(),
                kinds: media.kinds.clone(),
            });
        }
        if !usable {
            continue;
        }
        let split = if test < opts.test_per_class {
            test += 1;
            if row.split == Split::Train {
                test_from_train += 1;
            }
            Split::Test
        } else {
            train += 1;
            Split::Train
        };
        let mut e = ManifestEntry::new(row.id.clone(), label, split);
        if media.audio {
            e.audio = Some(prefix.join(format!("audio/{}.wav", row.id)));
        }
        if media.frames {
            e.frames = Some(prefix.join(format!("frames/{}", row.id)));
        }
        if media.video {
            e.video = Some(prefix.join(format!("video/{}.mp4", row.id)));
        }
        entries.push(e);
    }
    let sel = ClassSelection {
        label,
        name: class.name.clone(),
        csv_train: rows.len() - csv_test,
        csv_test,
        examined,
        usable: test + train,
        test,
        train,
        test_from_train,
    };
    (entries, sel, problems)
}

/// Which media of a clip are present and sound, and what is wrong with the rest.
struct ClipMedia {
    audio: bool,
    frames: bool,
    video: bool,
    reasons: Vec<String>,
    kinds: Vec<String>,
}

impl ClipMedia {
    fn usable(&self) -> bool {
        self.video || (self.audio && self.frames)
    }
}

/// A problem with one media file: a short kind (for counting) and details.
struct Problem {
    kind: &'static str,
    detail: String,
}

impl Problem {
    fn new(kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

fn check_clip(root: &Path, id: &str, min_frames: usize) -> ClipMedia {
    let audio_rel = format!("audio/{id}.wav");
    let frames_rel = format!("frames/{id}");
    let video_rel = format!("video/{id}.mp4");
    let checks = [
        (
            "audio",
            audio_rel.as_str(),
            check_file(&root.join(&audio_rel), is_wav),
        ),
        (
            "frames",
            frames_rel.as_str(),
            check_frames(&root.join(&frames_rel), min_frames),
        ),
        (
            "video",
            video_rel.as_str(),
            check_file(&root.join(&video_rel), is_mp4),
        ),
    ];
    let mut out = ClipMedia {
        audio: checks[0].2.is_ok(),
        frames: checks[1].2.is_ok(),
        video: checks[2].2.is_ok(),
        reasons: Vec::new(),
        kinds: Vec::new(),
    };
    // A usable clip reports only damaged files (a missing MP4 is normal in the
    // pre-extracted layout and missing WAV/frames in the raw one); an unusable clip
    // reports everything that is missing or damaged.
    let usable = out.usable();
    for (media, rel, result) in &checks {
        if let Err(p) = result {
            if usable && p.kind == MISSING {
                continue;
            }
            out.reasons.push(format!(
                "{rel}: {}{}",
                p.kind,
                if p.detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", p.detail)
                }
            ));
            out.kinds.push(format!("{media}: {}", p.kind));
        }
    }
    out
}

const MISSING: &str = "missing";

fn check_file(path: &Path, valid: fn(&[u8]) -> bool) -> Result<(), Problem> {
    let mut head = [0u8; 12];
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Problem::new(MISSING, ""))
        }
        Err(e) => return Err(Problem::new("unreadable", e.to_string())),
    };
    let n = read_up_to(&mut f, &mut head).map_err(|e| Problem::new("unreadable", e.to_string()))?;
    if n == 0 {
        return Err(Problem::new("empty file", ""));
    }
    if n < head.len() || !valid(&head) {
        return Err(Problem::new("corrupt", "not the expected file format"));
    }
    Ok(())
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn is_wav(h: &[u8]) -> bool {
    &h[0..4] == b"RIFF" && &h[8..12] == b"WAVE"
}

fn is_mp4(h: &[u8]) -> bool {
    &h[4..8] == b"ftyp"
}

fn is_image(h: &[u8]) -> bool {
    h.starts_with(&[0x89, b'P', b'N', b'G']) || h.starts_with(&[0xFF, 0xD8, 0xFF])
}

fn check_frames(dir: &Path, min_frames: usize) -> Result<(), Problem> {
    let listing = match std::fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Problem::new(MISSING, ""))
        }
        Err(e) => return Err(Problem::new("unreadable", e.to_string())),
    };
    let mut names: Vec<PathBuf> = listing
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png"))
        })
        .collect();
    names.sort();
    for p in &names {
        if let Err(problem) = check_file(p, is_image) {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Err(Problem::new(
                "corrupt frame",
                format!("{name}: {}", problem.kind),
            ));
        }
    }
    if names.len() < min_frames {
        return Err(Problem::new(
            "too few frames",
            format!("{} < {min_frames}", names.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = &[
        0x89, b'P', b'N', b'G', 13, 10, 26, 10, 0, 0, 0, 13, b'I', b'H',
    ];

    fn wav(root: &Path, id: &str, good: bool) {
        let bytes: &[u8] = if good {
            b"RIFF\x24\x00\x00\x00WAVEfmt "
        } else {
            b"<html>not found</html>"
        };
        std::fs::write(root.join(format!("audio/{id}.wav")), bytes).unwrap();
    }

    fn frames(root: &Path, id: &str, n: usize, corrupt: Option<usize>) {
        let dir = root.join(format!("frames/{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..n {
            let bytes: &[u8] = if corrupt == Some(i) { b"" } else { PNG };
            std::fs::write(dir.join(format!("{i:05}.png")), bytes).unwrap();
        }
    }

    fn mp4(root: &Path, id: &str, good: bool) {
        let bytes: &[u8] = if good {
            b"\x00\x00\x00\x20ftypisom\x00\x00"
        } else {
            b"\x00\x00"
        };
        std::fs::write(root.join(format!("video/{id}.mp4")), bytes).unwrap();
    }

    /// A fake VGGSound copy: dog barking (label 18) has every kind of problem, playing cello
    /// (59) has too few clips.
    fn fake_tree(root: &Path) -> PathBuf {
        for d in ["audio", "frames", "video"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let csv = "t1,10,dog barking,test\n\
                   t2,20,dog barking,test\n\
                   t3,30,dog barking,test\n\
                   r1,0,dog barking,train\n\
                   r2,0,dog barking,train\n\
                   r3,0,dog barking,train\n\
                   r4,0,dog barking,train\n\
                   r5,0,dog barking,train\n\
                   r6,0,dog barking,train\n\
                   r1,0,dog barking,train\n\
                   x1,0,\"not, a benchmark class\",train\n\
                   bad,zero,dog barking,train\n\
                   short,1\n\
                   c1,5,playing cello,test\n\
                   c2,5,playing cello,train\n";
        let csv_path = root.join("vggsound.csv");
        std::fs::write(&csv_path, csv).unwrap();
        // test: t1 extracted, t2 nothing, t3 raw MP4
        wav(root, "t1_000010", true);
        frames(root, "t1_000010", 3, None);
        mp4(root, "t3_000030", true);
        // train: r1 extracted; r2 corrupt WAV and no MP4 (skipped); r3 corrupt WAV but good
        // MP4 (used, reported); r4 one frame only (skipped); r5 extracted; r6 never examined.
        wav(root, "r1_000000", true);
        frames(root, "r1_000000", 2, None);
        wav(root, "r2_000000", false);
        frames(root, "r2_000000", 2, None);
        wav(root, "r3_000000", false);
        mp4(root, "r3_000000", true);
        wav(root, "r4_000000", true);
        frames(root, "r4_000000", 1, None);
        wav(root, "r5_000000", true);
        frames(root, "r5_000000", 4, None);
        wav(root, "r6_000000", true);
        frames(root, "r6_000000", 2, Some(1));
        // cello: one test clip and one train clip, both raw; c2 fills the test split.
        mp4(root, "c1_000005", true);
        mp4(root, "c2_000005", true);
        csv_path
    }

    fn opts() -> VggSoundOptions {
        VggSoundOptions {
            test_per_class: 2,
            max_train_per_class: 3,
            min_frames: 2,
        }
    }

    #[test]
    fn selects_reports_and_never_fails_on_bad_clips() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let csv = fake_tree(root);
        let out = root.join("manifest.csv");
        let (m, report) = build_manifest(&csv, root, &out, &opts()).unwrap();

        let ids = |split| {
            m.split(split)
                .filter(|e| e.label == 18)
                .map(|e| e.id.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(Split::Test), ["t1_000010", "t3_000030"]);
        assert_eq!(ids(Split::Train), ["r1_000000", "r3_000000", "r5_000000"]);
        let t1 = &m.entries[0];
        assert_eq!(t1.audio.as_deref(), Some(Path::new("audio/t1_000010.wav")));
        assert_eq!(t1.frames.as_deref(), Some(Path::new("frames/t1_000010")));
        assert_eq!(t1.video, None);
        let r3 = m.entries.iter().find(|e| e.id == "r3_000000").unwrap();
        assert_eq!((r3.audio.is_none(), r3.frames.is_none()), (true, true));
        assert_eq!(r3.video.as_deref(), Some(Path::new("video/r3_000000.mp4")));

        let dog = &report.classes[18];
        assert_eq!(
            (
                dog.csv_test,
                dog.csv_train,
                dog.examined,
                dog.test,
                dog.train
            ),
            (3, 6, 8, 2, 3)
        );
        let problems: Vec<(&str, bool)> = report
            .clip_problems
            .iter()
            .map(|p| (p.id.as_str(), p.used))
            .collect();
        assert_eq!(
            problems,
            [
                ("t2_000020", false),
                ("r2_000000", false),
                ("r3_000000", true),
                ("r4_000000", false)
            ]
        );
        let r2 = &report.clip_problems[1];
        assert!(
            r2.reasons.contains(
                &"audio/r2_000000.wav: corrupt (not the expected file format)".to_string()
            ),
            "{:?}",
            r2.reasons
        );
        assert!(report.clip_problems[3].reasons[0].contains("too few frames (1 < 2)"));
        assert_eq!(report.skipped(), 3);
        assert_eq!(report.skipped_by_reason["video: missing"], 3);
        assert_eq!(report.skipped_by_reason["audio: missing"], 1);

        let cello = &report.classes[59];
        assert_eq!(cello.name, "playing cello");
        assert_eq!((cello.test, cello.train, cello.test_from_train), (2, 0, 1));
        let short: Vec<u32> = report.short_classes().map(|c| c.label).collect();
        assert_eq!(short.len(), 99, "every class but dog barking is short");
        assert!(!short.contains(&18));

        assert_eq!(report.csv_rows, 15);
        assert_eq!(report.other_class_rows, 1);
        let csv_lines: Vec<u64> = report.csv_problems.iter().map(|p| p.line).collect();
        assert_eq!(csv_lines, [10, 12, 13]);

        // The manifest is valid and round-trips.
        m.write(&out).unwrap();
        let back = Manifest::read(&out).unwrap();
        assert_eq!(back.entries, m.entries);
        assert!(back.audio_path(&back.entries[0]).unwrap().is_file());
        // Serialisable report.
        serde_json::to_string(&report).unwrap();
    }

    #[test]
    fn paths_are_absolute_when_the_manifest_lives_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::create_dir_all(&root).unwrap();
        let csv = fake_tree(&root);
        let out = dir.path().join("elsewhere/manifest.csv");
        let (m, _) = build_manifest(&csv, &root, &out, &opts()).unwrap();
        let audio = m.entries[0].audio.clone().unwrap();
        assert!(audio.is_absolute() && audio.is_file(), "{audio:?}");
        m.write(&out).unwrap();
        let back = Manifest::read(&out).unwrap();
        assert!(back.audio_path(&back.entries[0]).unwrap().is_file());
    }

    #[test]
    fn unusable_csv_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("other.csv");
        std::fs::write(&csv, "a,1,car,train\n").unwrap();
        let err = build_manifest(&csv, dir.path(), &dir.path().join("m.csv"), &opts()).unwrap_err();
        assert!(matches!(err, VggSoundError::NoBenchmarkRows { .. }));
        assert!(err.to_string().contains("other.csv"));
        let err = build_manifest(
            &dir.path().join("nope.csv"),
            dir.path(),
            &dir.path().join("m.csv"),
            &opts(),
        )
        .unwrap_err();
        assert!(matches!(err, VggSoundError::Io { .. }));
    }
}

#[cfg(test)]
mod frame_tests {
    use super::*;

    #[test]
    fn jpeg_frames_count_and_a_damaged_frame_skips_the_clip() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (id, damaged) in [("j_000000", false), ("k_000000", true)] {
            std::fs::create_dir_all(root.join("audio")).unwrap();
            std::fs::write(
                root.join(format!("audio/{id}.wav")),
                b"RIFF\x24\x00\x00\x00WAVEfmt ",
            )
            .unwrap();
            let frames = root.join(format!("frames/{id}"));
            std::fs::create_dir_all(&frames).unwrap();
            for i in 0..4 {
                let bytes: &[u8] = if damaged && i == 2 {
                    b"GIF89a not a jpeg"
                } else {
                    b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01"
                };
                std::fs::write(frames.join(format!("{i:05}.jpg")), bytes).unwrap();
            }
            // Files that are not frames are ignored.
            std::fs::write(frames.join("notes.txt"), "x").unwrap();
        }
        let csv = root.join("v.csv");
        std::fs::write(&csv, "j,0,skiing,test\nk,0,skiing,test\n").unwrap();
        let (m, report) =
            build_manifest(&csv, root, &root.join("m.csv"), &VggSoundOptions::default()).unwrap();
        assert_eq!(m.entries.len(), 1);
        assert_eq!(m.entries[0].id, "j_000000");
        assert_eq!(m.entries[0].class_name, "skiing");
        let p = &report.clip_problems[0];
        assert_eq!((p.id.as_str(), p.used), ("k_000000", false));
        assert!(
            p.reasons[0].starts_with("frames/k_000000: corrupt frame (00002.jpg: corrupt)"),
            "{:?}",
            p.reasons
        );
        assert_eq!(report.skipped_by_reason["frames: corrupt frame"], 1);
    }
}
