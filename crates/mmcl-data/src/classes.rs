//! The MMCL-VGGSound class table (100 classes, 5 supercategories of 20) and the fixed
//! supercategory label mapping, embedded in the binary from the crate's own
//! `data/mmcl-vggsound-classes.toml` so nothing is read at run time.
//!
//! ```
//! use mmcl_data::classes::{class_table, Supercategory};
//! let table = class_table();
//! assert_eq!(table.len(), 100);
//! // Class indices follow the reference: the names in code-point order.
//! assert_eq!(table.class(0).name, "airplane flyby");
//! assert_eq!(table.by_name("dog barking").unwrap().index, 18);
//! assert_eq!(table.class(18).supercategory, Supercategory::Animals);
//! assert_eq!(Supercategory::Vehicle.label(), 4);
//! ```
use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;

/// The embedded class table source (our TOML format, documented in `data/README.md`).
pub const CLASS_TABLE_TOML: &str = include_str!("../data/mmcl-vggsound-classes.toml");

/// Number of benchmark classes.
pub const NUM_CLASSES: usize = 100;
/// Number of supercategories (the Dom-IL targets).
pub const NUM_SUPERCATEGORIES: usize = 5;

/// The five MMCL supercategories with their fixed Dom-IL labels
/// (animals 0, music 1, people 2, sports 3, vehicle 4). The mapping never depends on the
/// task (the reference rebuilt it per task; we do not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Supercategory {
    Animals,
    Music,
    People,
    Sports,
    Vehicle,
}

impl Supercategory {
    /// All supercategories, in label order.
    pub const ALL: [Supercategory; NUM_SUPERCATEGORIES] = [
        Supercategory::Animals,
        Supercategory::Music,
        Supercategory::People,
        Supercategory::Sports,
        Supercategory::Vehicle,
    ];

    /// The fixed Dom-IL label.
    pub fn label(self) -> u32 {
        self as u32
    }

    /// The lower-case name used in manifests and the class table.
    pub fn name(self) -> &'static str {
        match self {
            Supercategory::Animals => "animals",
            Supercategory::Music => "music",
            Supercategory::People => "people",
            Supercategory::Sports => "sports",
            Supercategory::Vehicle => "vehicle",
        }
    }

    /// Parses a manifest/table name (exact, lower case).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The supercategory with a given fixed label.
    pub fn from_label(label: u32) -> Option<Self> {
        Self::ALL.get(label as usize).copied()
    }
}

impl fmt::Display for Supercategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One benchmark class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassInfo {
    /// Class index 0..99 (the manifest `label`).
    pub index: u32,
    /// The VGGSound label text, e.g. `"dog barking"`.
    pub name: String,
    pub supercategory: Supercategory,
    /// Clips of this class in the original VGGSound train split.
    pub vggsound_train: u32,
    /// Clips of this class in the original VGGSound test split.
    pub vggsound_test: u32,
}

/// The 100 classes in class-index order.
#[derive(Clone, Debug)]
pub struct ClassTable {
    classes: Vec<ClassInfo>,
}

/// A malformed class table (only reachable through [`ClassTable::parse`] on user text; the
/// embedded table is checked by tests).
#[derive(Debug, thiserror::Error)]
pub enum ClassTableError {
    #[error("class table is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("class table: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
struct RawTable {
    format: String,
    supercategory: Vec<RawSuper>,
}

#[derive(Deserialize)]
struct RawSuper {
    name: String,
    label: u32,
    classes: Vec<RawClass>,
}

#[derive(Deserialize)]
struct RawClass {
    index: u32,
    name: String,
    vggsound_train: u32,
    vggsound_test: u32,
}

impl ClassTable {
    /// Parses and checks a class table in our TOML format: supercategory names and labels
    /// must follow the fixed mapping, names unique, and each class index must be the rank
    /// of its name among all names in code-point order (the reference's numbering).
    pub fn parse(text: &str) -> Result<Self, ClassTableError> {
        let raw: RawTable = toml::from_str(text)?;
        if raw.format != "mmcl-class-table/2" {
            return Err(ClassTableError::Invalid(format!(
                "unknown format {:?}",
                raw.format
            )));
        }
        let mut classes = Vec::new();
        for s in raw.supercategory {
            let sc = Supercategory::from_name(&s.name).ok_or_else(|| {
                ClassTableError::Invalid(format!("unknown supercategory {:?}", s.name))
            })?;
            if sc.label() != s.label {
                return Err(ClassTableError::Invalid(format!(
                    "supercategory {} has label {}, the fixed mapping says {}",
                    s.name,
                    s.label,
                    sc.label()
                )));
            }
            for c in s.classes {
                if classes.iter().any(|k: &ClassInfo| k.name == c.name) {
                    return Err(ClassTableError::Invalid(format!(
                        "duplicate class {:?}",
                        c.name
                    )));
                }
                classes.push(ClassInfo {
                    index: c.index,
                    name: c.name,
                    supercategory: sc,
                    vggsound_train: c.vggsound_train,
                    vggsound_test: c.vggsound_test,
                });
            }
        }
        // Rust orders `str` by bytes, which for UTF-8 is code-point order, as Python's.
        let mut names: Vec<&str> = classes.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        for c in &classes {
            let rank = names
                .binary_search(&c.name.as_str())
                .expect("name is in the list");
            if c.index as usize != rank {
                return Err(ClassTableError::Invalid(format!(
                    "class {:?} has index {}, expected {rank} (indices are the names' ranks in code-point order)",
                    c.name, c.index
                )));
            }
        }
        classes.sort_unstable_by_key(|c| c.index);
        Ok(Self { classes })
    }

    pub fn len(&self) -> usize {
        self.classes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// All classes in index order.
    pub fn classes(&self) -> &[ClassInfo] {
        &self.classes
    }

    /// The class with index `index`. Panics if out of range (indices come from this table).
    pub fn class(&self, index: u32) -> &ClassInfo {
        &self.classes[index as usize]
    }

    /// Looks a class up by its VGGSound label text (exact match).
    pub fn by_name(&self, name: &str) -> Option<&ClassInfo> {
        self.classes.iter().find(|c| c.name == name)
    }

    /// The table's class when `name` is one of its classes but `label` is not its index: a
    /// manifest or cache numbered by an older class table, which would train another class
    /// order without a word. `None` when they agree or the name is not the table's.
    pub fn misnumbered(&self, label: u32, name: &str) -> Option<&ClassInfo> {
        self.by_name(name).filter(|c| c.index != label)
    }

    /// The classes of one supercategory, in index order.
    pub fn in_supercategory(&self, sc: Supercategory) -> impl Iterator<Item = &ClassInfo> {
        self.classes.iter().filter(move |c| c.supercategory == sc)
    }
}

/// The embedded MMCL-VGGSound class table (parsed once).
pub fn class_table() -> &'static ClassTable {
    static TABLE: OnceLock<ClassTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        ClassTable::parse(CLASS_TABLE_TOML).expect("embedded class table is checked by tests")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_has_100_classes_20_per_supercategory() {
        let t = class_table();
        assert_eq!(t.len(), NUM_CLASSES);
        for sc in Supercategory::ALL {
            assert_eq!(t.in_supercategory(sc).count(), 20, "{sc}");
        }
        for (i, c) in t.classes().iter().enumerate() {
            assert_eq!(c.index as usize, i);
        }
        // Facts from the released selection table.
        assert_eq!(t.by_name("gibbon howling").unwrap().vggsound_test, 49);
        let train: u32 = t.classes().iter().map(|c| c.vggsound_train).sum();
        let test: u32 = t.classes().iter().map(|c| c.vggsound_test).sum();
        assert_eq!((train, test), (88136, 4999));
        let mut sorted: Vec<_> = t.classes().iter().map(|c| c.name.clone()).collect();
        sorted.sort();
        let names: Vec<_> = t.classes().iter().map(|c| c.name.clone()).collect();
        assert_eq!(names, sorted, "index order is alphabetical");
        assert_eq!(t.class(0).name, "airplane flyby");
        assert_eq!(t.class(0).supercategory, Supercategory::Vehicle);
        assert_eq!(t.class(5).name, "bird chirping, tweeting");
        assert_eq!(t.class(5).supercategory, Supercategory::Animals);
        // Seq's first task mixes supercategories (it is all animals in grouped order).
        let first: std::collections::HashSet<_> =
            t.classes()[..10].iter().map(|c| c.supercategory).collect();
        assert!(first.len() >= 3, "{first:?}");
    }

    #[test]
    fn fixed_supercategory_mapping() {
        let names: Vec<_> = Supercategory::ALL
            .iter()
            .map(|s| (s.name(), s.label()))
            .collect();
        assert_eq!(
            names,
            [
                ("animals", 0),
                ("music", 1),
                ("people", 2),
                ("sports", 3),
                ("vehicle", 4)
            ]
        );
        assert_eq!(Supercategory::from_label(3), Some(Supercategory::Sports));
        assert_eq!(Supercategory::from_name("home"), None);
    }

    #[test]
    fn rejects_wrong_super_label_and_index_gaps() {
        let bad = CLASS_TABLE_TOML.replacen("label = 1", "label = 2", 1);
        assert!(matches!(
            ClassTable::parse(&bad),
            Err(ClassTableError::Invalid(_))
        ));
        let swapped = CLASS_TABLE_TOML.replacen("index = 5,", "index = 6,", 1);
        assert!(ClassTable::parse(&swapped)
            .unwrap_err()
            .to_string()
            .contains("expected 5"));
        let old = CLASS_TABLE_TOML.replacen("mmcl-class-table/2", "mmcl-class-table/1", 1);
        assert!(ClassTable::parse(&old).is_err());
        let t = class_table();
        assert_eq!(t.misnumbered(7, "dog barking").map(|c| c.index), Some(18));
        assert!(t.misnumbered(18, "dog barking").is_none());
        assert!(t.misnumbered(7, "not a class").is_none());
    }
}
