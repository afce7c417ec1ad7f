//! Names of scenarios and methods, parsed leniently from run metadata, and the modality
//! (the model's own type).

use std::fmt;

use mmcl_methods::MethodKind;
use serde::{Deserialize, Serialize};

/// A continual-learning scenario.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Scenario {
    /// Class-incremental Seq-VGGSound.
    Seq,
    /// Domain-incremental Dom-VGGSound.
    Dom,
    /// Generalised class-incremental, uniform class weights.
    GcilUniform,
    /// Generalised class-incremental, long-tailed class weights.
    GcilLongtail,
    /// Any other scenario name, kept verbatim.
    Other(String),
}

impl Scenario {
    /// Accepts `seq`, `seq-vggsound`, `class-il`, `dom`, `gcil-uniform`, `gcil_longtail`, ...
    pub fn parse(name: &str) -> Scenario {
        let n = normalise(name);
        let n = n.strip_suffix("vggsound").unwrap_or(&n);
        match n {
            "seq" | "classil" | "class" => Scenario::Seq,
            "dom" | "domainil" | "domain" => Scenario::Dom,
            "gciluniform" | "gcil" | "uniform" => Scenario::GcilUniform,
            "gcillongtail" | "longtail" => Scenario::GcilLongtail,
            _ => Scenario::Other(name.to_string()),
        }
    }

    /// Short file-name-safe identifier (`seq`, `dom`, `gcil-uniform`, `gcil-longtail`).
    pub fn slug(&self) -> String {
        match self {
            Scenario::Seq => "seq".into(),
            Scenario::Dom => "dom".into(),
            Scenario::GcilUniform => "gcil-uniform".into(),
            Scenario::GcilLongtail => "gcil-longtail".into(),
            Scenario::Other(s) => slugify(s),
        }
    }

    /// Whether the scenario is evaluated on cumulative test sets (GCIL).
    pub fn is_gcil(&self) -> bool {
        matches!(self, Scenario::GcilUniform | Scenario::GcilLongtail)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scenario::Seq => f.write_str("Seq"),
            Scenario::Dom => f.write_str("Dom"),
            Scenario::GcilUniform => f.write_str("GCIL-uniform"),
            Scenario::GcilLongtail => f.write_str("GCIL-longtail"),
            Scenario::Other(s) => f.write_str(s),
        }
    }
}

impl From<String> for Scenario {
    fn from(s: String) -> Self {
        Scenario::parse(&s)
    }
}

impl From<Scenario> for String {
    fn from(s: Scenario) -> Self {
        s.slug()
    }
}

/// A table row's method: a run's [`MethodKind`] (`From`), or a derived row such as
/// `SAMM-ensemble` or `SAMM λ=0.1` ([`Method::Other`]). Rows are ordered as declared here.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Method {
    /// Upper bound: all tasks' data at once.
    Joint,
    /// Lower bound: plain fine-tuning.
    Sgd,
    /// Experience replay.
    Er,
    /// The paper's method.
    Samm,
    /// Any other method name, kept verbatim.
    Other(String),
}

impl Method {
    /// Case-insensitive; unknown names become [`Method::Other`].
    pub fn parse(name: &str) -> Method {
        match normalise(name).as_str() {
            "joint" => Method::Joint,
            "sgd" | "finetune" => Method::Sgd,
            "er" => Method::Er,
            "samm" => Method::Samm,
            _ => Method::Other(name.to_string()),
        }
    }

    /// JOINT and SGD are bounds without a replay buffer.
    pub fn is_bound(&self) -> bool {
        matches!(self, Method::Joint | Method::Sgd)
    }

    /// File-name-safe identifier.
    pub fn slug(&self) -> String {
        match self {
            Method::Other(s) => slugify(s),
            m => m.to_string().to_lowercase(),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::Joint => f.write_str("JOINT"),
            Method::Sgd => f.write_str("SGD"),
            Method::Er => f.write_str("ER"),
            Method::Samm => f.write_str("SAMM"),
            Method::Other(s) => f.write_str(s),
        }
    }
}

impl From<String> for Method {
    fn from(s: String) -> Self {
        Method::parse(&s)
    }
}

/// A run's method (typed in results.json) as its table row.
impl From<MethodKind> for Method {
    fn from(k: MethodKind) -> Self {
        match k {
            MethodKind::Joint => Method::Joint,
            MethodKind::Sgd => Method::Sgd,
            MethodKind::Er => Method::Er,
            MethodKind::Samm => Method::Samm,
        }
    }
}

impl From<Method> for String {
    fn from(m: Method) -> Self {
        m.slug()
    }
}

/// Which inputs the network sees: the paper's three table columns (`label()`: Audio,
/// Visual, Multimodal).
pub use mmcl_model::Modality;

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn slugify(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() {
        "unnamed".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_spellings() {
        assert_eq!(Scenario::parse("Seq-VGGSound"), Scenario::Seq);
        assert_eq!(Scenario::parse("gcil_longtail"), Scenario::GcilLongtail);
        assert_eq!(Scenario::parse("GCIL-uniform"), Scenario::GcilUniform);
        assert_eq!(Scenario::parse("mine"), Scenario::Other("mine".into()));
        assert_eq!(Method::parse("SAMM"), Method::Samm);
        assert_eq!(Method::parse("My Method").slug(), "my-method");
        assert!(Method::Joint < Method::Sgd && Method::Er < Method::Samm);
    }
}
