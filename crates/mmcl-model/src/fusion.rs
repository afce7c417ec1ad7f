//! Fusion modules and the three classification heads (`fusion_module.*` in the state_dict).
//!
//! Semantics follow the OGM-GE fusion modules that the reference (a mammoth fork) reuses,
//! with the reference's two extra unimodal heads `x_out` (audio) and `y_out` (visual):
//! - `Film` (default): `[gamma, beta] = split(fc(a), d)`, fused = `fc_out(gamma * v + beta)`
//!   (audio conditions visual, no nonlinearity);
//! - `Sum`: fused = `fc_x(a) + fc_y(v)` (two d -> C linears, no `fc_out`);
//! - `Concat`: fused = `fc_out(cat(a, v))` (`fc_out` is 2d -> C);
//! - `Gated` (OGM-GE `x_gate=True`): fused = `fc_out(sigmoid(fc_x(a)) * fc_y(v))` with
//!   `fc_x`, `fc_y` d -> d;
//! - unimodal networks ([`Modality::Audio`] / [`Modality::Visual`]): fused = `fc_out(a)` or
//!   `fc_out(v)` (`fc_out` is d -> C; the fusion kind is ignored), and of the two unimodal
//!   heads only the one on their encoder (`x_out` or `y_out`).
use std::fmt;
use std::str::FromStr;

use candle_core::{Tensor, D};
use candle_nn::{ops::sigmoid, Module};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::init::Builder;
use crate::layers::Linear;
use crate::Result;

/// How the fused (av) head combines the audio and visual features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Audio features modulate visual features (the paper's default).
    #[default]
    Film,
    Sum,
    Concat,
    Gated,
}

/// Which modalities a network sees: both (through the fusion module) or one, for the
/// unimodal baselines. The one type for the concept in every crate (configs, checkpoints,
/// results.json, the report).
///
/// Serialised (serde, checkpoint metadata, command line, run-folder names) as
/// `audio-visual`, `audio`, `visual`; `audio_visual`, which results.json files written
/// before this type was shared carry, is read as [`Modality::AudioVisual`]. Declared in the
/// report's column order (Audio, Visual, Multimodal), which `Ord` follows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Modality {
    /// Unimodal baseline: the fused head sees only the audio features.
    Audio,
    /// Unimodal baseline: the fused head sees only the visual features.
    Visual,
    /// Both, through the fusion module.
    #[default]
    #[serde(alias = "audio_visual")]
    AudioVisual,
}

impl Modality {
    /// Every modality, in the report's column order.
    pub const ALL: [Modality; 3] = [Modality::Audio, Modality::Visual, Modality::AudioVisual];

    /// The report's column label: `Audio`, `Visual`, `Multimodal`.
    pub fn label(self) -> &'static str {
        match self {
            Modality::Audio => "Audio",
            Modality::Visual => "Visual",
            Modality::AudioVisual => "Multimodal",
        }
    }

    /// Whether a network of this modality holds the encoder (and head) of `own`
    /// ([`Modality::Audio`] or [`Modality::Visual`]).
    pub fn holds(self, own: Modality) -> bool {
        self == Modality::AudioVisual || self == own
    }
}

macro_rules! str_enum {
    ($ty:ty, $($variant:path => $name:literal),+) => {
        impl $ty {
            /// The lowercase name used on the command line and in checkpoint metadata.
            pub fn as_str(self) -> &'static str {
                match self { $($variant => $name),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                // `_` for `-`: the spelling of older results.json files (`audio_visual`).
                match s.to_ascii_lowercase().replace('_', "-").as_str() {
                    $($name => Ok($variant),)+
                    _ => Err(format!("unknown {} {s:?}; expected one of: {}", stringify!($ty), [$($name),+].join(", "))),
                }
            }
        }
    };
}
str_enum!(Fusion, Fusion::Film => "film", Fusion::Sum => "sum", Fusion::Concat => "concat", Fusion::Gated => "gated");
str_enum!(Modality, Modality::AudioVisual => "audio-visual", Modality::Audio => "audio", Modality::Visual => "visual");

#[derive(Clone)]
enum Fused {
    Film {
        fc: Linear,
        fc_out: Linear,
        dim: usize,
    },
    Sum {
        fc_x: Linear,
        fc_y: Linear,
    },
    Concat {
        fc_out: Linear,
    },
    Gated {
        fc_x: Linear,
        fc_y: Linear,
        fc_out: Linear,
    },
    Unimodal {
        fc_out: Linear,
        modality: Modality,
    },
}

/// The fusion module with its three heads.
#[derive(Clone)]
pub struct FusionModule {
    fused: Fused,
    /// `None` in a visual network (it holds no audio encoder).
    x_out: Option<Linear>,
    /// `None` in an audio network.
    y_out: Option<Linear>,
}

/// Logits of the three heads.
pub(crate) struct HeadOutputs {
    pub a_logits: Option<Tensor>,
    pub v_logits: Option<Tensor>,
    pub av_logits: Tensor,
}

impl FusionModule {
    pub(crate) fn new<R: Rng>(
        b: &mut Builder<'_, R>,
        dim: usize,
        classes: usize,
        fusion: Fusion,
        modality: Modality,
    ) -> Result<Self> {
        let fused = match (modality, fusion) {
            (Modality::Audio | Modality::Visual, _) => Fused::Unimodal {
                fc_out: b.pp("fc_out", |b| Linear::new(b, dim, classes))?,
                modality,
            },
            (Modality::AudioVisual, Fusion::Film) => Fused::Film {
                fc: b.pp("fc", |b| Linear::new(b, dim, 2 * dim))?,
                fc_out: b.pp("fc_out", |b| Linear::new(b, dim, classes))?,
                dim,
            },
            (Modality::AudioVisual, Fusion::Sum) => Fused::Sum {
                fc_x: b.pp("fc_x", |b| Linear::new(b, dim, classes))?,
                fc_y: b.pp("fc_y", |b| Linear::new(b, dim, classes))?,
            },
            (Modality::AudioVisual, Fusion::Concat) => Fused::Concat {
                fc_out: b.pp("fc_out", |b| Linear::new(b, 2 * dim, classes))?,
            },
            (Modality::AudioVisual, Fusion::Gated) => Fused::Gated {
                fc_x: b.pp("fc_x", |b| Linear::new(b, dim, dim))?,
                fc_y: b.pp("fc_y", |b| Linear::new(b, dim, dim))?,
                fc_out: b.pp("fc_out", |b| Linear::new(b, dim, classes))?,
            },
        };
        // The head on an encoder the network lacks is drawn (to keep the RNG stream) and dropped.
        let head = |b: &mut Builder<'_, R>, name: &str, own: Modality| {
            let build = |b: &mut Builder<'_, R>| b.pp(name, |b| Linear::new(b, dim, classes));
            if modality.holds(own) {
                build(b).map(Some)
            } else {
                b.discarding(build).map(|_| None)
            }
        };
        let x_out = head(b, "x_out", Modality::Audio)?;
        let y_out = head(b, "y_out", Modality::Visual)?;
        Ok(Self {
            fused,
            x_out,
            y_out,
        })
    }

    /// `a`, `v`: pooled features [B, d], `None` for the encoder a unimodal network lacks.
    pub(crate) fn forward(
        &self,
        a: Option<&Tensor>,
        v: Option<&Tensor>,
    ) -> candle_core::Result<HeadOutputs> {
        let missing = |what: &str| {
            candle_core::Error::Msg(format!("the fused head needs the {what} features"))
        };
        let a_in = || a.ok_or_else(|| missing("audio"));
        let v_in = || v.ok_or_else(|| missing("visual"));
        let av_logits = match &self.fused {
            Fused::Film { fc, fc_out, dim } => {
                let film = fc.forward(a_in()?)?;
                let gamma = film.narrow(D::Minus1, 0, *dim)?;
                let beta = film.narrow(D::Minus1, *dim, *dim)?;
                fc_out.forward(&((gamma * v_in()?)? + beta)?)?
            }
            Fused::Sum { fc_x, fc_y } => (fc_x.forward(a_in()?)? + fc_y.forward(v_in()?)?)?,
            Fused::Concat { fc_out } => {
                fc_out.forward(&Tensor::cat(&[a_in()?, v_in()?], D::Minus1)?)?
            }
            Fused::Gated { fc_x, fc_y, fc_out } => {
                let gate = sigmoid(&fc_x.forward(a_in()?)?)?;
                fc_out.forward(&(gate * fc_y.forward(v_in()?)?)?)?
            }
            Fused::Unimodal { fc_out, modality } => match modality {
                Modality::Visual => fc_out.forward(v_in()?)?,
                _ => fc_out.forward(a_in()?)?,
            },
        };
        let head = |lin: &Option<Linear>, x: Option<&Tensor>| match (lin, x) {
            (Some(lin), Some(x)) => lin.forward(x).map(Some),
            _ => Ok(None),
        };
        Ok(HeadOutputs {
            a_logits: head(&self.x_out, a)?,
            v_logits: head(&self.y_out, v)?,
            av_logits,
        })
    }
}

#[cfg(test)]
mod modality_tests {
    use super::Modality;

    #[test]
    fn one_spelling_written_the_old_one_read() {
        for m in Modality::ALL {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert_eq!(serde_json::from_str::<Modality>(&json).unwrap(), m);
            assert_eq!(m.as_str().parse::<Modality>().unwrap(), m);
        }
        assert_eq!(Modality::AudioVisual.as_str(), "audio-visual");
        let old: Modality = serde_json::from_str("\"audio_visual\"").unwrap();
        assert_eq!(old, Modality::AudioVisual);
        assert_eq!(
            "audio_visual".parse::<Modality>(),
            Ok(Modality::AudioVisual)
        );
        assert!(serde_json::from_str::<Modality>("\"multimodal\"").is_err());
        assert!("smell".parse::<Modality>().is_err());
    }

    #[test]
    fn labels_and_order_are_the_report_columns() {
        let labels: Vec<&str> = Modality::ALL.iter().map(|m| m.label()).collect();
        assert_eq!(labels, ["Audio", "Visual", "Multimodal"]);
        assert!(Modality::Audio < Modality::Visual && Modality::Visual < Modality::AudioVisual);
        assert_eq!(Modality::default(), Modality::AudioVisual);
    }
}
