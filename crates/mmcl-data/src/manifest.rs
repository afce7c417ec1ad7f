//! The benchmark manifest: one CSV file listing every clip of a dataset.
//!
//! # Format (`mmcl-manifest`, CSV, UTF-8, comma-separated, RFC 4180 quoting)
//! The first line is the header, exactly:
//!
//! ```text
//! id,label,class_name,supercategory,super_label,split,audio,frames,video
//! ```
//!
//! | column          | meaning                                                                 |
//! |-----------------|-------------------------------------------------------------------------|
//! | `id`            | clip id, unique in the file (VGGSound: `<ytid>_<start:06>`)             |
//! | `label`         | class index 0..99 (see `data/mmcl-vggsound-classes.toml`)               |
//! | `class_name`    | the class's name, e.g. `dog barking` (one name per label)               |
//! | `supercategory` | `animals`, `music`, `people`, `sports` or `vehicle`                     |
//! | `super_label`   | fixed Dom-IL label: animals 0, music 1, people 2, sports 3, vehicle 4   |
//! | `split`         | `train` or `test`                                                       |
//! | `audio`         | WAV file (any rate/channels), or empty                                  |
//! | `frames`        | folder of frames (`00000.png`/`.jpg`…, one per second, sorted by name), or empty |
//! | `video`         | video file (MP4: H.264 + AAC), or empty                                 |
//!
//! Paths are relative to the folder holding the manifest (absolute paths are allowed and
//! kept as they are) and use `/` separators. Every row has audio or video, and frames or
//! video. Lines starting with `#` are comments.
//!
//! ```
//! use mmcl_data::manifest::{Manifest, ManifestEntry, Split};
//! let dir = tempfile::tempdir().unwrap();
//! let mut m = Manifest::new(dir.path());
//! m.entries.push(ManifestEntry::new("clip0", 18, Split::Train)
//!     .with_audio("audio/clip0.wav").with_frames("frames/clip0"));
//! let path = dir.path().join("manifest.csv");
//! m.write(&path).unwrap();
//! let back = Manifest::read(&path).unwrap();
//! assert_eq!(back.entries, m.entries);
//! assert_eq!(back.entries[0].class_name, "dog barking");
//! assert_eq!(back.audio_path(&back.entries[0]).unwrap(), dir.path().join("audio/clip0.wav"));
//! ```
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::classes::{class_table, Supercategory};

/// The header line every manifest starts with.
pub const MANIFEST_HEADER: [&str; 9] = [
    "id",
    "label",
    "class_name",
    "supercategory",
    "super_label",
    "split",
    "audio",
    "frames",
    "video",
];

/// 1-based line numbers of byte offsets, counted in the manifest's text. csv's own line
/// counter is one short after a CRLF terminator or a comment line (it reports the record on
/// line 3 of a CRLF file as line 2), so it is not used.
struct LineIndex<'a> {
    text: &'a [u8],
    /// Offset up to which newlines are counted, and the line it is on.
    pos: usize,
    line: u64,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a [u8]) -> Self {
        LineIndex {
            text,
            pos: 0,
            line: 1,
        }
    }

    /// The line of the record csv places at `byte`. csv may place a record on the `\n` of
    /// the previous CRLF, on blank lines or on comment lines before it; a record starts with
    /// neither a line break nor `#`, so those are skipped first. Offsets arrive in
    /// increasing order, so the whole file is scanned once.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut start = (byte as usize).min(self.text.len());
        while let Some(&c) = self.text.get(start) {
            match c {
                b'\r' | b'\n' => start += 1,
                b'#' => {
                    start += self.text[start..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(self.text.len() - start, |p| p + 1)
                }
                _ => break,
            }
        }
        if start < self.pos {
            (self.pos, self.line) = (0, 1);
        }
        self.line += self.text[self.pos..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        self.pos = start;
        self.line
    }
}

/// csv's error text without its own (miscounted) position: the line is in our prefix.
fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("found a record with {len} fields, the header has {expected_len}"),
        csv::ErrorKind::Utf8 { err, .. } => format!("invalid UTF-8 in field {}", err.field() + 1),
        _ => e.to_string(),
    }
}

/// Which split a clip belongs to.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "train" => Some(Split::Train),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One clip. Paths are as written in the file (relative to the manifest's folder); resolve
/// them with [`Manifest::audio_path`] and friends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    pub id: String,
    /// Class index 0..99.
    pub label: u32,
    pub class_name: String,
    pub supercategory: String,
    /// Fixed Dom-IL label of `supercategory`.
    pub super_label: u32,
    pub split: Split,
    pub audio: Option<PathBuf>,
    pub frames: Option<PathBuf>,
    pub video: Option<PathBuf>,
}

impl ManifestEntry {
    /// An entry of MMCL-VGGSound class `label` (class name and supercategory from the
    /// embedded class table) with no media paths yet. Panics if `label >= 100`.
    pub fn new(id: impl Into<String>, label: u32, split: Split) -> Self {
        let class = class_table().class(label);
        Self {
            id: id.into(),
            label,
            class_name: class.name.clone(),
            supercategory: class.supercategory.name().to_string(),
            super_label: class.supercategory.label(),
            split,
            audio: None,
            frames: None,
            video: None,
        }
    }

    pub fn with_audio(mut self, p: impl Into<PathBuf>) -> Self {
        self.audio = Some(p.into());
        self
    }

    pub fn with_frames(mut self, p: impl Into<PathBuf>) -> Self {
        self.frames = Some(p.into());
        self
    }

    pub fn with_video(mut self, p: impl Into<PathBuf>) -> Self {
        self.video = Some(p.into());
        self
    }
}

/// Why a manifest could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: malformed CSV: {}", csv_reason(.source))]
    Csv {
        path: PathBuf,
        line: u64,
        #[source]
        source: csv::Error,
    },
    #[error("{path}: header must be `{}`, found `{found}`", MANIFEST_HEADER.join(","))]
    Header { path: PathBuf, found: String },
    #[error("{path}:{line}: {reason}")]
    Invalid {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("{path}: entry {id:?}: path {field} is not valid UTF-8")]
    NonUtf8Path {
        path: PathBuf,
        id: String,
        field: &'static str,
    },
}

/// A dataset manifest: the entries and the folder their relative paths resolve against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The folder the entry paths are relative to (the manifest file's folder).
    pub root: PathBuf,
    pub entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// An empty manifest whose paths resolve against `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            entries: Vec::new(),
        }
    }

    /// Reads and validates a manifest file; paths resolve against its folder.
    pub fn read(path: &Path) -> Result<Self, ManifestError> {
        let file = std::fs::File::open(path).map_err(|source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_reader(std::io::BufReader::new(file), path, root)
    }

    /// Reads and validates a manifest from any reader; `source` names it in errors.
    pub fn from_reader(
        mut reader: impl Read,
        source: &Path,
        root: impl Into<PathBuf>,
    ) -> Result<Self, ManifestError> {
        // Read whole: line numbers are counted in the text itself (see `LineIndex`).
        let mut text = Vec::new();
        reader
            .read_to_end(&mut text)
            .map_err(|e| ManifestError::Io {
                path: source.to_path_buf(),
                source: e,
            })?;
        let lines_of = std::cell::RefCell::new(LineIndex::new(&text));
        let line_at =
            |p: Option<&csv::Position>| p.map_or(0, |p| lines_of.borrow_mut().line_at(p.byte()));
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .comment(Some(b'#'))
            .flexible(false)
            .from_reader(&text[..]);
        let csv_err = |e: csv::Error| ManifestError::Csv {
            path: source.to_path_buf(),
            line: line_at(e.position()),
            source: e,
        };
        let header = rdr.headers().map_err(csv_err)?.clone();
        if header.iter().ne(MANIFEST_HEADER.iter().copied()) {
            return Err(ManifestError::Header {
                path: source.to_path_buf(),
                found: header.iter().collect::<Vec<_>>().join(","),
            });
        }
        let mut entries = Vec::new();
        let mut lines = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(csv_err)?;
            let line = line_at(rec.position());
            let invalid = |reason: String| ManifestError::Invalid {
                path: source.to_path_buf(),
                line,
                reason,
            };
            let parse_u32 = |field: &str, s: &str| {
                s.parse::<u32>().map_err(|_| {
                    invalid(format!(
                        "{field} must be a non-negative integer, found {s:?}"
                    ))
                })
            };
            let opt_path = |s: &str| {
                if s.is_empty() {
                    None
                } else {
                    Some(PathBuf::from(s))
                }
            };
            let split = Split::parse(&rec[5]).ok_or_else(|| {
                invalid(format!("split must be train or test, found {:?}", &rec[5]))
            })?;
            entries.push(ManifestEntry {
                id: rec[0].to_string(),
                label: parse_u32("label", &rec[1])?,
                class_name: rec[2].to_string(),
                supercategory: rec[3].to_string(),
                super_label: parse_u32("super_label", &rec[4])?,
                split,
                audio: opt_path(&rec[6]),
                frames: opt_path(&rec[7]),
                video: opt_path(&rec[8]),
            });
            lines.push(line);
        }
        let manifest = Self {
            root: root.into(),
            entries,
        };
        manifest.validate_with_lines(source, &lines)?;
        Ok(manifest)
    }

    /// Checks the rules of the format: unique non-empty ids, label < 100, one class name and
    /// supercategory per label, the fixed supercategory mapping, and media present.
    /// Errors name `source` and the (1-based) line of the offending entry, counting the header
    /// as line 1 and assuming no comment lines.
    pub fn validate(&self, source: &Path) -> Result<(), ManifestError> {
        let lines: Vec<u64> = (0..self.entries.len() as u64).map(|i| i + 2).collect();
        self.validate_with_lines(source, &lines)
    }

    fn validate_with_lines(&self, source: &Path, lines: &[u64]) -> Result<(), ManifestError> {
        let mut ids: HashMap<&str, u64> = HashMap::new();
        let mut classes: HashMap<u32, (&str, &str, u64)> = HashMap::new();
        for (e, &line) in self.entries.iter().zip(lines) {
            let invalid = |reason: String| ManifestError::Invalid {
                path: source.to_path_buf(),
                line,
                reason,
            };
            if e.id.is_empty() {
                return Err(invalid("empty id".into()));
            }
            if let Some(first) = ids.insert(&e.id, line) {
                return Err(invalid(format!(
                    "duplicate id {:?} (first on line {first})",
                    e.id
                )));
            }
            if e.label as usize >= crate::classes::NUM_CLASSES {
                return Err(invalid(format!(
                    "label {} out of range 0..{}",
                    e.label,
                    crate::classes::NUM_CLASSES
                )));
            }
            let sc = Supercategory::from_name(&e.supercategory).ok_or_else(|| {
                invalid(format!(
                    "unknown supercategory {:?} (animals, music, people, sports, vehicle)",
                    e.supercategory
                ))
            })?;
            if sc.label() != e.super_label {
                return Err(invalid(format!(
                    "super_label {} does not match supercategory {} (fixed label {})",
                    e.super_label,
                    sc,
                    sc.label()
                )));
            }
            // A manifest numbered by an older class table would train with another class
            // order without a word: refuse it.
            if let Some(class) = class_table().misnumbered(e.label, &e.class_name) {
                return Err(invalid(format!(
                    "class {:?} has label {}, the class table says {} (labels are the class names' alphabetical ranks, as in the reference; rebuild the manifest with `mmcl manifest vggsound` or `mmcl synth`)",
                    e.class_name, e.label, class.index
                )));
            }
            match classes.get(&e.label) {
                Some(&(name, sup, first)) if name != e.class_name || sup != e.supercategory => {
                    return Err(invalid(format!(
                        "label {} is {:?} ({}) here but {:?} ({}) on line {first}",
                        e.label, e.class_name, e.supercategory, name, sup
                    )));
                }
                Some(_) => {}
                None => {
                    classes.insert(e.label, (&e.class_name, &e.supercategory, line));
                }
            }
            if e.audio.is_none() && e.video.is_none() {
                return Err(invalid(format!(
                    "clip {:?} has neither audio nor video",
                    e.id
                )));
            }
            if e.frames.is_none() && e.video.is_none() {
                return Err(invalid(format!(
                    "clip {:?} has neither frames nor video",
                    e.id
                )));
            }
        }
        Ok(())
    }

    /// Writes the manifest as CSV to any writer.
    pub fn to_writer(&self, writer: impl Write, dest: &Path) -> Result<(), ManifestError> {
        let mut w = csv::WriterBuilder::new().from_writer(writer);
        let csv_err = |e: csv::Error| ManifestError::Csv {
            path: dest.to_path_buf(),
            line: 0,
            source: e,
        };
        w.write_record(MANIFEST_HEADER).map_err(csv_err)?;
        for e in &self.entries {
            let path_str =
                |p: &Option<PathBuf>, field: &'static str| -> Result<String, ManifestError> {
                    match p {
                        None => Ok(String::new()),
                        Some(p) => p.to_str().map(|s| s.replace('\\', "/")).ok_or_else(|| {
                            ManifestError::NonUtf8Path {
                                path: dest.to_path_buf(),
                                id: e.id.clone(),
                                field,
                            }
                        }),
                    }
                };
            let label = e.label.to_string();
            let super_label = e.super_label.to_string();
            let audio = path_str(&e.audio, "audio")?;
            let frames = path_str(&e.frames, "frames")?;
            let video = path_str(&e.video, "video")?;
            w.write_record([
                e.id.as_str(),
                &label,
                &e.class_name,
                &e.supercategory,
                &super_label,
                e.split.as_str(),
                &audio,
                &frames,
                &video,
            ])
            .map_err(csv_err)?;
        }
        w.flush().map_err(|source| ManifestError::Io {
            path: dest.to_path_buf(),
            source,
        })?;
        Ok(())
    }

    /// Validates, then writes the manifest atomically (a temporary file in the same folder,
    /// then a rename), so readers never see a half-written manifest.
    pub fn write(&self, path: &Path) -> Result<(), ManifestError> {
        self.validate(path)?;
        let mut buf = Vec::new();
        self.to_writer(&mut buf, path)?;
        write_atomic(path, &buf)
    }

    /// Resolves a path from an entry against the manifest's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        self.root.join(p)
    }

    pub fn audio_path(&self, e: &ManifestEntry) -> Option<PathBuf> {
        e.audio.as_deref().map(|p| self.resolve(p))
    }

    pub fn frames_path(&self, e: &ManifestEntry) -> Option<PathBuf> {
        e.frames.as_deref().map(|p| self.resolve(p))
    }

    pub fn video_path(&self, e: &ManifestEntry) -> Option<PathBuf> {
        e.video.as_deref().map(|p| self.resolve(p))
    }

    /// Entries of one split, in file order.
    pub fn split(&self, split: Split) -> impl Iterator<Item = &ManifestEntry> {
        self.entries.iter().filter(move |e| e.split == split)
    }

    /// Clip counts per (label, split), sorted by label.
    pub fn counts(&self) -> BTreeMap<u32, ClassCounts> {
        let mut out: BTreeMap<u32, ClassCounts> = BTreeMap::new();
        for e in &self.entries {
            let c = out.entry(e.label).or_default();
            match e.split {
                Split::Train => c.train += 1,
                Split::Test => c.test += 1,
            }
        }
        out
    }
}

/// Train/test clip counts of one class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassCounts {
    pub train: usize,
    pub test: usize,
}

/// Writes `bytes` to `path` atomically and durably (mmcl-io's shared writer), creating
/// the folder if needed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ManifestError> {
    let io = |source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    mmcl_io::write_atomic(path, bytes).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut m = Manifest::new("/data/set");
        m.entries.push(
            ManifestEntry::new("a_000010", 0, Split::Train)
                .with_audio("audio/a_000010.wav")
                .with_frames("frames/a_000010"),
        );
        m.entries
            .push(ManifestEntry::new("b, \"quoted\"", 25, Split::Test).with_video("video/b.mp4"));
        m.entries.push(
            ManifestEntry::new("c", 99, Split::Test)
                .with_audio("/abs/c.wav")
                .with_video("video/c.mp4"),
        );
        m
    }

    #[test]
    fn round_trip_through_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/manifest.csv");
        let m = sample();
        m.write(&path).unwrap();
        let back = Manifest::read(&path).unwrap();
        assert_eq!(back.entries, m.entries);
        assert_eq!(back.root, dir.path().join("sub"));
        assert_eq!(back.entries[1].class_name, "female speech, woman speaking");
        assert_eq!(back.entries[1].super_label, 2);
        assert_eq!(
            back.video_path(&back.entries[1]).unwrap(),
            dir.path().join("sub/video/b.mp4")
        );
        assert_eq!(
            back.audio_path(&back.entries[2]).unwrap(),
            PathBuf::from("/abs/c.wav")
        );
        let counts = back.counts();
        assert_eq!(counts[&99], ClassCounts { train: 0, test: 1 });
        // No temporary file is left behind.
        assert_eq!(
            std::fs::read_dir(dir.path().join("sub")).unwrap().count(),
            1
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(
            "id,label,class_name,supercategory,super_label,split,audio,frames,video\n"
        ));
    }

    fn read_str(s: &str) -> Result<Manifest, ManifestError> {
        Manifest::from_reader(s.as_bytes(), Path::new("m.csv"), "/r")
    }

    const H: &str = "id,label,class_name,supercategory,super_label,split,audio,frames,video\n";

    #[test]
    fn errors_name_file_and_line() {
        let ok = "x,18,dog barking,animals,0,train,audio/x.wav,frames/x,\n";
        assert_eq!(
            read_str(&format!("{H}# comment\n{ok}"))
                .unwrap()
                .entries
                .len(),
            1
        );

        let cases = [
            (
                format!("{H}{ok}y,18,dog barking,animals,0,valid,a.wav,f,\n"),
                "m.csv:3: split must be train or test",
            ),
            (
                format!("{H}{ok}x,18,dog barking,animals,0,test,a.wav,f,\n"),
                "m.csv:3: duplicate id \"x\" (first on line 2)",
            ),
            (
                format!("{H}{ok}y,100,z,animals,0,test,a.wav,f,\n"),
                "m.csv:3: label 100 out of range",
            ),
            (
                format!("{H}{ok}y,18,dog barking,animals,1,test,a.wav,f,\n"),
                "m.csv:3: super_label 1 does not match",
            ),
            (
                format!("{H}{ok}y,18,cat,animals,0,test,a.wav,f,\n"),
                "m.csv:3: label 18 is \"cat\"",
            ),
            (
                format!("{H}{ok}y,18,dog barking,home,0,test,a.wav,f,\n"),
                "m.csv:3: unknown supercategory \"home\"",
            ),
            (
                format!("{H}{ok}y,-1,dog barking,animals,0,test,a.wav,f,\n"),
                "m.csv:3: label must be a non-negative integer",
            ),
            (
                format!("{H}{ok}y,18,dog barking,animals,0,test,,f,\n"),
                "neither audio nor video",
            ),
            (
                format!("{H}{ok}y,18,dog barking,animals,0,test,a.wav,,\n"),
                "neither frames nor video",
            ),
            (
                format!("{H}{ok}y,7,dog barking,animals,0,test,a.wav,f,\n"),
                "m.csv:3: class \"dog barking\" has label 7, the class table says 18",
            ),
            (
                format!("{H}{ok}y,18,dog barking\n"),
                "m.csv:3: malformed CSV: found a record with 3 fields, the header has 9",
            ),
            ("id,label\n".to_string(), "m.csv: header must be"),
        ];
        for (text, want) in cases {
            let err = read_str(&text).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    #[test]
    fn line_numbers_are_right_with_crlf_comments_and_blank_lines() {
        let ok = "x,18,dog barking,animals,0,train,audio/x.wav,frames/x,\n";
        let bad = "y,18,dog barking,animals,0,valid,a.wav,f,\n";
        let cases = [
            (format!("{H}{ok}{bad}"), 3),
            (format!("{H}# a comment\n{ok}{bad}"), 4),
            (format!("{H}{ok}\n\n{bad}"), 5),
            (format!("{H}# c\n{ok}# d\n\n{bad}"), 6),
            // A quoted field spanning two lines: the next record starts on line 4.
            (
                format!("{H}\"x\nz\",18,dog barking,animals,0,train,a.wav,f,\n{bad}"),
                4,
            ),
            (format!("{H}{ok}y,18,dog barking\n"), 3),
        ];
        for (text, line) in cases {
            for t in [text.clone(), text.replace('\n', "\r\n")] {
                let err = read_str(&t).unwrap_err().to_string();
                assert!(err.starts_with(&format!("m.csv:{line}: ")), "{t:?}: {err}");
            }
        }
        // Good CRLF manifests read as LF ones do.
        let lf = format!("{H}{ok}");
        assert_eq!(
            read_str(&lf.replace('\n', "\r\n")).unwrap().entries,
            read_str(&lf).unwrap().entries
        );
    }

    #[test]
    fn missing_file_is_a_typed_error() {
        let err = Manifest::read(Path::new("/nonexistent/m.csv")).unwrap_err();
        assert!(matches!(err, ManifestError::Io { .. }));
        assert!(err.to_string().starts_with("/nonexistent/m.csv"));
    }

    #[test]
    fn write_refuses_invalid_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = sample();
        m.entries[1].super_label = 3;
        let path = dir.path().join("m.csv");
        assert!(matches!(
            m.write(&path),
            Err(ManifestError::Invalid { line: 3, .. })
        ));
        assert!(!path.exists());
    }
}
