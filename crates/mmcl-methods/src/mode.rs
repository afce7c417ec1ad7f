//! Inference modes: which output of the network a prediction is taken from.

use serde::{Deserialize, Serialize};

/// One way of turning the network's outputs into a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InferenceMode {
    /// The fused head (or, for a unimodal network, its only head).
    Av,
    /// The audio head.
    Audio,
    /// The visual head.
    Visual,
    /// SAMM's calibrated dynamic weighted ensemble of the three heads.
    Ensemble,
}

impl InferenceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            InferenceMode::Av => "av",
            InferenceMode::Audio => "audio",
            InferenceMode::Visual => "visual",
            InferenceMode::Ensemble => "ensemble",
        }
    }
}
