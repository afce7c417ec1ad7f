//! The corruption types and their text form (`audio:white:3`, `visual:missing`,
//! `audio:pink:2+visual:blur:4`, `suite:audio`, `clean`): parser, `Display`, serde.
use std::fmt;
use std::str::FromStr;

/// Severity of a corruption: 1..=5 index the parameter tables of the module doc; 0 is the
/// identity (the clean signal, left bit-for-bit unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Severity(u8);

impl Severity {
    /// The highest severity.
    pub const MAX: u8 = 5;
    /// Severity 0: the identity.
    pub const CLEAN: Severity = Severity(0);

    /// `Some` for 0..=5.
    pub const fn new(level: u8) -> Option<Severity> {
        if level <= Self::MAX {
            Some(Severity(level))
        } else {
            None
        }
    }

    /// The level, 0..=5.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Severities 1..=5 in order.
    pub fn all() -> impl Iterator<Item = Severity> {
        (1..=Self::MAX).map(Severity)
    }

    /// `table[severity - 1]`, or `None` at severity 0.
    pub(crate) fn pick<T: Copy>(self, table: &[T; 5]) -> Option<T> {
        (self.0 > 0).then(|| table[self.0 as usize - 1])
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A corruption of the mono waveform, applied before the STFT
/// ([`AudioCorruption::apply`]). Parameters per severity: the module doc's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCorruption {
    /// Additive white Gaussian noise at the severity's SNR.
    White(Severity),
    /// Additive pink (1/f) noise at the severity's SNR.
    Pink(Severity),
    /// Additive brown (1/f^2) noise at the severity's SNR.
    Brown(Severity),
    /// Overdrive: gain then hard clipping at the original peak.
    Clip(Severity),
    /// Zeroed segments covering the severity's fraction of the duration.
    Dropout(Severity),
    /// Silence: every sample zero.
    Missing,
}

/// A corruption of decoded RGB u8 frames, applied before resizing and normalisation
/// ([`VisualCorruption::apply`]). Parameters per severity: the module doc's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VisualCorruption {
    /// Additive Gaussian noise per pixel and channel (ImageNet-C `gaussian_noise`).
    Noise(Severity),
    /// Gaussian blur (ImageNet-C `gaussian_blur`, sigma scaled to the frame size).
    Blur(Severity),
    /// JPEG re-compression (ImageNet-C `jpeg_compression`).
    Jpeg(Severity),
    /// One black rectangle, the same in every frame of the clip.
    Occlusion(Severity),
    /// Night: contrast reduction (ImageNet-C `contrast`) then darkening (ImageNet-C
    /// `brightness`, negated).
    Night(Severity),
    /// Dropped frames, each replaced by the nearest earlier kept frame (a frozen stream).
    Drop(Severity),
    /// Black frames.
    Missing,
}

const AUDIO_NAMES: [&str; 5] = ["white", "pink", "brown", "clip", "dropout"];
const VISUAL_NAMES: [&str; 6] = ["noise", "blur", "jpeg", "occlusion", "night", "drop"];
const SUITE_NAMES: [&str; 4] = ["audio", "visual", "missing", "default"];

impl AudioCorruption {
    /// Every audio corruption at severities 1..=5, then [`AudioCorruption::Missing`].
    pub fn all() -> Vec<AudioCorruption> {
        let mut v: Vec<_> = AUDIO_NAMES
            .iter()
            .flat_map(|name| Severity::all().map(|s| Self::from_name(name, s).unwrap()))
            .collect();
        v.push(Self::Missing);
        v
    }

    /// The name in the spec (`white`, ..., `missing`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::White(_) => "white",
            Self::Pink(_) => "pink",
            Self::Brown(_) => "brown",
            Self::Clip(_) => "clip",
            Self::Dropout(_) => "dropout",
            Self::Missing => "missing",
        }
    }

    /// The severity; `None` for `Missing`, which has none.
    pub fn severity(&self) -> Option<Severity> {
        match *self {
            Self::White(s) | Self::Pink(s) | Self::Brown(s) | Self::Clip(s) | Self::Dropout(s) => {
                Some(s)
            }
            Self::Missing => None,
        }
    }

    /// Whether it leaves the waveform unchanged (severity 0).
    pub fn is_identity(&self) -> bool {
        self.severity() == Some(Severity::CLEAN)
    }

    fn from_name(name: &str, s: Severity) -> Option<Self> {
        Some(match name {
            "white" => Self::White(s),
            "pink" => Self::Pink(s),
            "brown" => Self::Brown(s),
            "clip" => Self::Clip(s),
            "dropout" => Self::Dropout(s),
            _ => return None,
        })
    }
}

impl VisualCorruption {
    /// Every visual corruption at severities 1..=5, then [`VisualCorruption::Missing`].
    pub fn all() -> Vec<VisualCorruption> {
        let mut v: Vec<_> = VISUAL_NAMES
            .iter()
            .flat_map(|name| Severity::all().map(|s| Self::from_name(name, s).unwrap()))
            .collect();
        v.push(Self::Missing);
        v
    }

    /// The name in the spec (`noise`, ..., `missing`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Noise(_) => "noise",
            Self::Blur(_) => "blur",
            Self::Jpeg(_) => "jpeg",
            Self::Occlusion(_) => "occlusion",
            Self::Night(_) => "night",
            Self::Drop(_) => "drop",
            Self::Missing => "missing",
        }
    }

    /// The severity; `None` for `Missing`, which has none.
    pub fn severity(&self) -> Option<Severity> {
        match *self {
            Self::Noise(s)
            | Self::Blur(s)
            | Self::Jpeg(s)
            | Self::Occlusion(s)
            | Self::Night(s)
            | Self::Drop(s) => Some(s),
            Self::Missing => None,
        }
    }

    /// Whether it leaves the frames unchanged (severity 0).
    pub fn is_identity(&self) -> bool {
        self.severity() == Some(Severity::CLEAN)
    }

    fn from_name(name: &str, s: Severity) -> Option<Self> {
        Some(match name {
            "noise" => Self::Noise(s),
            "blur" => Self::Blur(s),
            "jpeg" => Self::Jpeg(s),
            "occlusion" => Self::Occlusion(s),
            "night" => Self::Night(s),
            "drop" => Self::Drop(s),
            _ => return None,
        })
    }
}

/// One evaluation cell: an optional audio and an optional visual corruption (both: bimodal;
/// neither: the clean evaluation, written `clean`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Corruption {
    /// Applied to the waveform.
    pub audio: Option<AudioCorruption>,
    /// Applied to the frames.
    pub visual: Option<VisualCorruption>,
}

impl Corruption {
    /// No corruption.
    pub const CLEAN: Corruption = Corruption {
        audio: None,
        visual: None,
    };

    /// Audio only.
    pub fn audio(a: AudioCorruption) -> Self {
        Corruption {
            audio: Some(a),
            visual: None,
        }
    }

    /// Visual only.
    pub fn visual(v: VisualCorruption) -> Self {
        Corruption {
            audio: None,
            visual: Some(v),
        }
    }

    /// Both (bimodal).
    pub fn both(a: AudioCorruption, v: VisualCorruption) -> Self {
        Corruption {
            audio: Some(a),
            visual: Some(v),
        }
    }

    /// Whether it changes nothing (no part, or only severity-0 parts).
    pub fn is_identity(&self) -> bool {
        self.audio.is_none_or(|a| a.is_identity()) && self.visual.is_none_or(|v| v.is_identity())
    }
}

impl fmt::Display for AudioCorruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity() {
            Some(s) => write!(f, "audio:{}:{s}", self.name()),
            None => write!(f, "audio:{}", self.name()),
        }
    }
}

impl fmt::Display for VisualCorruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity() {
            Some(s) => write!(f, "visual:{}:{s}", self.name()),
            None => write!(f, "visual:{}", self.name()),
        }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.audio, &self.visual) {
            (None, None) => f.write_str("clean"),
            (Some(a), None) => write!(f, "{a}"),
            (None, Some(v)) => write!(f, "{v}"),
            (Some(a), Some(v)) => write!(f, "{a}+{v}"),
        }
    }
}

/// A named list of corruptions (`suite:NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// Every audio corruption at severities 1..=5, and audio missing (26 cells).
    Audio,
    /// Every visual corruption at severities 1..=5, and visual missing (31 cells).
    Visual,
    /// Audio missing, visual missing.
    Missing,
    /// `audio` then `visual` (57 cells).
    Default,
}

impl Suite {
    /// The cells of the suite, in a fixed order (clean, severity 0, is not among them).
    pub fn expand(&self) -> Vec<Corruption> {
        let audio = || AudioCorruption::all().into_iter().map(Corruption::audio);
        let visual = || VisualCorruption::all().into_iter().map(Corruption::visual);
        match self {
            Suite::Audio => audio().collect(),
            Suite::Visual => visual().collect(),
            Suite::Missing => vec![
                Corruption::audio(AudioCorruption::Missing),
                Corruption::visual(VisualCorruption::Missing),
            ],
            Suite::Default => audio().chain(visual()).collect(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Suite::Audio => "audio",
            Suite::Visual => "visual",
            Suite::Missing => "missing",
            Suite::Default => "default",
        }
    }
}

/// What `--corrupt` takes: one cell or a named suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorruptSpec {
    /// One corruption (possibly bimodal, possibly `clean`).
    One(Corruption),
    /// A named suite.
    Suite(Suite),
}

impl CorruptSpec {
    /// The cells to evaluate.
    pub fn expand(&self) -> Vec<Corruption> {
        match self {
            CorruptSpec::One(c) => vec![*c],
            CorruptSpec::Suite(s) => s.expand(),
        }
    }
}

impl fmt::Display for CorruptSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptSpec::One(c) => write!(f, "{c}"),
            CorruptSpec::Suite(s) => write!(f, "suite:{}", s.name()),
        }
    }
}

/// A malformed corruption spec: names the bad part, why, and every accepted form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad corruption spec part `{part}`: {reason}; accepted: {}",
    accepted_forms()
)]
pub struct CorruptSpecError {
    /// The offending part of the spec (the whole spec when it is not split into parts).
    pub part: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The accepted spec forms, as listed in [`CorruptSpecError`]'s message.
pub fn accepted_forms() -> String {
    format!(
        "audio:{{{}}}:{{1-5}}, audio:missing, visual:{{{}}}:{{1-5}}, visual:missing, \
         AUDIO+VISUAL (one of each), clean, suite:{{{}}} (severity 0 is the identity)",
        AUDIO_NAMES.join(","),
        VISUAL_NAMES.join(","),
        SUITE_NAMES.join(",")
    )
}

fn bad(part: &str, reason: impl Into<String>) -> CorruptSpecError {
    CorruptSpecError {
        part: part.to_string(),
        reason: reason.into(),
    }
}

enum Part {
    Audio(AudioCorruption),
    Visual(VisualCorruption),
}

fn parse_severity(
    part: &str,
    text: Option<&str>,
    name: &str,
) -> Result<Severity, CorruptSpecError> {
    let text = text.ok_or_else(|| bad(part, format!("`{name}` needs a severity 1-5")))?;
    text.parse::<u8>()
        .ok()
        .and_then(Severity::new)
        .ok_or_else(|| bad(part, format!("severity `{text}` is not 0-5")))
}

fn parse_part(part: &str) -> Result<Part, CorruptSpecError> {
    let mut it = part.split(':');
    let modality = it.next().unwrap_or_default();
    let name = it
        .next()
        .ok_or_else(|| bad(part, "expected MODALITY:NAME[:SEVERITY]"))?;
    let severity = it.next();
    if it.next().is_some() {
        return Err(bad(part, "too many `:`-separated fields"));
    }
    let no_severity = |what: &str| match severity {
        Some(s) => Err(bad(part, format!("`{what}` takes no severity (got `{s}`)"))),
        None => Ok(()),
    };
    match modality {
        "audio" if name == "missing" => {
            no_severity("audio:missing").map(|()| Part::Audio(AudioCorruption::Missing))
        }
        "audio" => {
            if !AUDIO_NAMES.contains(&name) {
                return Err(bad(part, format!("unknown audio corruption `{name}`")));
            }
            let s = parse_severity(part, severity, name)?;
            Ok(Part::Audio(AudioCorruption::from_name(name, s).unwrap()))
        }
        "visual" if name == "missing" => {
            no_severity("visual:missing").map(|()| Part::Visual(VisualCorruption::Missing))
        }
        "visual" => {
            if !VISUAL_NAMES.contains(&name) {
                return Err(bad(part, format!("unknown visual corruption `{name}`")));
            }
            let s = parse_severity(part, severity, name)?;
            Ok(Part::Visual(VisualCorruption::from_name(name, s).unwrap()))
        }
        m => Err(bad(
            part,
            format!("unknown modality `{m}` (audio or visual)"),
        )),
    }
}

impl FromStr for Corruption {
    type Err = CorruptSpecError;

    /// One cell: `clean`, `audio:...`, `visual:...` or `audio:...+visual:...` (either order).
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let spec = spec.trim();
        if spec == "clean" {
            return Ok(Corruption::CLEAN);
        }
        if spec.is_empty() {
            return Err(bad(spec, "empty spec"));
        }
        let parts: Vec<&str> = spec.split('+').collect();
        if parts.len() > 2 {
            return Err(bad(
                spec,
                "at most two parts (one audio, one visual) joined by `+`",
            ));
        }
        let mut out = Corruption::CLEAN;
        for part in parts {
            match parse_part(part)? {
                Part::Audio(_) if out.audio.is_some() => {
                    return Err(bad(
                        part,
                        "a second audio part (a bimodal spec is one audio + one visual)",
                    ))
                }
                Part::Visual(_) if out.visual.is_some() => {
                    return Err(bad(
                        part,
                        "a second visual part (a bimodal spec is one audio + one visual)",
                    ))
                }
                Part::Audio(a) => out.audio = Some(a),
                Part::Visual(v) => out.visual = Some(v),
            }
        }
        Ok(out)
    }
}

impl FromStr for CorruptSpec {
    type Err = CorruptSpecError;

    /// A cell (see [`Corruption`]'s `FromStr`) or `suite:NAME`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let spec = spec.trim();
        if let Some(name) = spec.strip_prefix("suite:") {
            let suite = match name {
                "audio" => Suite::Audio,
                "visual" => Suite::Visual,
                "missing" => Suite::Missing,
                "default" => Suite::Default,
                _ => return Err(bad(spec, format!("unknown suite `{name}`"))),
            };
            return Ok(CorruptSpec::Suite(suite));
        }
        spec.parse().map(CorruptSpec::One)
    }
}

/// Serde as the spec string (`"audio:pink:2+visual:blur:4"`), parsed on the way in.
macro_rules! serde_as_string {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_as_string!(Corruption);
serde_as_string!(CorruptSpec);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_round_trips_through_display() {
        let mut all = Suite::Default.expand();
        all.push(Corruption::CLEAN);
        all.push(Corruption::audio(AudioCorruption::White(Severity::CLEAN)));
        for a in AudioCorruption::all() {
            for v in VisualCorruption::all() {
                all.push(Corruption::both(a, v));
            }
        }
        for c in all {
            let text = c.to_string();
            assert_eq!(text.parse::<Corruption>(), Ok(c), "{text}");
            assert_eq!(
                text.parse::<CorruptSpec>(),
                Ok(CorruptSpec::One(c)),
                "{text}"
            );
        }
        for s in [Suite::Audio, Suite::Visual, Suite::Missing, Suite::Default] {
            let spec = CorruptSpec::Suite(s);
            assert_eq!(spec.to_string().parse::<CorruptSpec>(), Ok(spec));
        }
    }

    #[test]
    fn the_issue_examples_parse() {
        let c: Corruption = "audio:white:3".parse().unwrap();
        assert_eq!(c, Corruption::audio(AudioCorruption::White(Severity(3))));
        let c: Corruption = "visual:missing".parse().unwrap();
        assert_eq!(c, Corruption::visual(VisualCorruption::Missing));
        let c: Corruption = "audio:pink:2+visual:blur:4".parse().unwrap();
        assert_eq!(
            c,
            Corruption::both(
                AudioCorruption::Pink(Severity(2)),
                VisualCorruption::Blur(Severity(4))
            )
        );
        // Either order; Display puts audio first.
        let d: Corruption = "visual:blur:4+audio:pink:2".parse().unwrap();
        assert_eq!((d, d.to_string()), (c, "audio:pink:2+visual:blur:4".into()));
        let s: CorruptSpec = "suite:default".parse().unwrap();
        assert_eq!(s.expand().len(), 26 + 31);
        assert_eq!(
            "suite:audio".parse::<CorruptSpec>().unwrap().expand().len(),
            26
        );
        assert!("clean".parse::<Corruption>().unwrap().is_identity());
    }

    #[test]
    fn malformed_specs_name_the_part_and_the_accepted_forms() {
        let cases = [
            (
                "audio:whte:3",
                "audio:whte:3",
                "unknown audio corruption `whte`",
            ),
            (
                "audio:pink:2+visual:blurr:4",
                "visual:blurr:4",
                "unknown visual corruption",
            ),
            ("audio:white:6", "audio:white:6", "severity `6` is not 0-5"),
            ("audio:white", "audio:white", "needs a severity"),
            ("audio:missing:2", "audio:missing:2", "takes no severity"),
            ("video:blur:2", "video:blur:2", "unknown modality `video`"),
            (
                "audio:white:1+audio:pink:2",
                "audio:pink:2",
                "second audio part",
            ),
            (
                "audio:white:1+visual:blur:1+visual:jpeg:1",
                "audio:white:1+visual:blur:1+visual:jpeg:1",
                "at most two parts",
            ),
            ("suite:all", "suite:all", "unknown suite `all`"),
            ("", "", "empty spec"),
            ("audio:white:1:2", "audio:white:1:2", "too many"),
            ("audio:white:x", "audio:white:x", "severity `x`"),
            ("white", "white", "expected MODALITY:NAME"),
        ];
        for (spec, part, reason) in cases {
            let e = spec.parse::<CorruptSpec>().unwrap_err();
            assert_eq!(e.part, part, "{spec}");
            assert!(e.reason.contains(reason), "{spec}: {}", e.reason);
            let msg = e.to_string();
            assert!(msg.contains(&format!("`{part}`")), "{msg}");
            assert!(
                msg.contains("audio:{white,pink,brown,clip,dropout}:{1-5}")
                    && msg.contains("visual:{noise,blur,jpeg,occlusion,night,drop}:{1-5}")
                    && msg.contains("suite:{audio,visual,missing,default}"),
                "{msg}"
            );
        }
    }

    #[test]
    fn serde_is_the_spec_string() {
        let c: Corruption = "audio:brown:5+visual:jpeg:1".parse().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, "\"audio:brown:5+visual:jpeg:1\"");
        assert_eq!(serde_json::from_str::<Corruption>(&json).unwrap(), c);
        let s: CorruptSpec = serde_json::from_str("\"suite:visual\"").unwrap();
        assert_eq!(s, CorruptSpec::Suite(Suite::Visual));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"suite:visual\"");
        let e = serde_json::from_str::<Corruption>("\"audio:whte:3\"").unwrap_err();
        assert!(
            e.to_string().contains("unknown audio corruption `whte`"),
            "{e}"
        );
    }
}
