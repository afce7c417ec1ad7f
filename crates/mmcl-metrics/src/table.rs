//! The paper's table layouts (Seq/Dom and GCIL) in Markdown and CSV, our numbers beside
//! the paper's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::keys::{Method, Modality, Scenario};
use crate::paper::{paper_buffers, paper_value, PaperValue};
use crate::stats::MeanStd;

/// One cell of the paper's tables. `buffer` is `None` for the bounds (JOINT, SGD) and for
/// methods without a replay buffer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellKey {
    pub scenario: Scenario,
    pub method: Method,
    pub buffer: Option<u32>,
    pub modality: Modality,
}

/// Our value (over seeds) and the paper's value of one cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    pub ours: Option<MeanStd>,
    pub paper: Option<PaperValue>,
}

/// One table row: a method at a buffer size, cells scenario-major then
/// Audio / Visual / Multimodal.
#[derive(Clone, Debug, PartialEq)]
pub struct TableRow {
    pub method: Method,
    pub buffer: Option<u32>,
    pub cells: Vec<Cell>,
}

/// A table in the paper's layout: rows JOINT, SGD, then ER and SAMM per buffer size (then
/// any other method); for every scenario, Audio / Visual / Multimodal columns.
#[derive(Clone, Debug, PartialEq)]
pub struct PaperLayoutTable {
    pub title: String,
    pub scenarios: Vec<Scenario>,
    pub rows: Vec<TableRow>,
}

impl PaperLayoutTable {
    /// Builds the table from our per-cell aggregates. Rows are the union of what we ran and
    /// what the paper published for these scenarios, so missing runs show as "—".
    pub fn build(
        title: impl Into<String>,
        scenarios: &[Scenario],
        ours: &BTreeMap<CellKey, MeanStd>,
    ) -> PaperLayoutTable {
        PaperLayoutTable::build_with(title, scenarios, ours, true)
    }

    /// The same layout for a number the paper does not publish (e.g. GCIL's final
    /// all-seen accuracy): only the rows we ran, no paper values.
    pub fn build_without_paper(
        title: impl Into<String>,
        scenarios: &[Scenario],
        ours: &BTreeMap<CellKey, MeanStd>,
    ) -> PaperLayoutTable {
        PaperLayoutTable::build_with(title, scenarios, ours, false)
    }

    fn build_with(
        title: impl Into<String>,
        scenarios: &[Scenario],
        ours: &BTreeMap<CellKey, MeanStd>,
        with_paper: bool,
    ) -> PaperLayoutTable {
        // (bounds first, buffer, method): JOINT, SGD, then per buffer ER, SAMM, others.
        let mut row_keys: BTreeSet<(bool, Option<u32>, Method)> = BTreeSet::new();
        let mut add = |method: Method, buffer: Option<u32>| {
            let buffer = if method.is_bound() { None } else { buffer };
            row_keys.insert((!method.is_bound(), buffer, method));
        };
        for scenario in scenarios.iter().filter(|_| with_paper) {
            add(Method::Joint, None);
            add(Method::Sgd, None);
            for b in paper_buffers(scenario) {
                add(Method::Er, Some(b));
                add(Method::Samm, Some(b));
            }
        }
        for key in ours.keys().filter(|k| scenarios.contains(&k.scenario)) {
            add(key.method.clone(), key.buffer);
        }
        let rows = row_keys
            .into_iter()
            .map(|(_, buffer, method)| {
                let cells = scenarios
                    .iter()
                    .flat_map(|scenario| {
                        Modality::ALL.into_iter().map({
                            let method = method.clone();
                            move |modality| {
                                let key = CellKey {
                                    scenario: scenario.clone(),
                                    method: method.clone(),
                                    buffer,
                                    modality,
                                };
                                Cell {
                                    ours: ours.get(&key).copied(),
                                    paper: with_paper
                                        .then(|| paper_value(scenario, &method, buffer, modality))
                                        .flatten(),
                                }
                            }
                        })
                    })
                    .collect();
                TableRow {
                    method,
                    buffer,
                    cells,
                }
            })
            .collect();
        PaperLayoutTable {
            title: title.into(),
            scenarios: scenarios.to_vec(),
            rows,
        }
    }

    /// Whether any cell holds one of our numbers.
    pub fn has_ours(&self) -> bool {
        self.rows
            .iter()
            .any(|r| r.cells.iter().any(|c| c.ours.is_some()))
    }

    /// GitHub-flavoured Markdown. Each cell reads `ours mean ± std (paper mean ± std)`,
    /// two decimals; "—" where there is no value.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "**{}**\n", self.title);
        out.push_str("| Method | Buffer |");
        for scenario in &self.scenarios {
            for modality in Modality::ALL {
                let _ = write!(out, " {scenario} {} |", modality.label());
            }
        }
        out.push_str("\n|---|---:|");
        out.push_str(&"---:|".repeat(self.scenarios.len() * Modality::ALL.len()));
        out.push('\n');
        for row in &self.rows {
            let _ = write!(out, "| {} | {} |", row.method, buffer_label(row.buffer));
            for cell in &row.cells {
                let ours = cell.ours.map_or_else(|| "—".to_string(), |v| v.format(2));
                match cell.paper {
                    Some(p) => {
                        let _ = write!(out, " {ours} ({}) |", p.format());
                    }
                    None => {
                        let _ = write!(out, " {ours} |");
                    }
                }
            }
            out.push('\n');
        }
        out
    }

    /// Long-form CSV, one line per cell:
    /// `scenario,method,buffer,modality,seeds,ours_mean,ours_std,paper_mean,paper_std`
    /// (empty fields where there is no value; ours with 4 decimals).
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "scenario,method,buffer,modality,seeds,ours_mean,ours_std,paper_mean,paper_std\n",
        );
        for row in &self.rows {
            let mut cells = row.cells.iter();
            for scenario in &self.scenarios {
                for modality in Modality::ALL {
                    let cell = cells.next().expect("one cell per scenario and modality");
                    let (n, mean, std) = match cell.ours {
                        Some(v) => (
                            v.n.to_string(),
                            format!("{:.4}", v.mean),
                            if v.std.is_finite() {
                                format!("{:.4}", v.std)
                            } else {
                                String::new()
                            },
                        ),
                        None => Default::default(),
                    };
                    let (pm, ps) = cell.paper.map_or_else(Default::default, |p| {
                        (format!("{:.2}", p.mean), format!("{:.2}", p.std))
                    });
                    let _ = writeln!(
                        out,
                        "{},{},{},{},{n},{mean},{std},{pm},{ps}",
                        scenario.slug(),
                        row.method.slug(),
                        row.buffer.map(|b| b.to_string()).unwrap_or_default(),
                        modality.label().to_ascii_lowercase(),
                    );
                }
            }
        }
        out
    }
}

/// `"–"` for no buffer, else the size.
pub fn buffer_label(buffer: Option<u32>) -> String {
    buffer.map_or_else(|| "–".to_string(), |b| b.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scenario: Scenario, method: Method, buffer: Option<u32>, modality: Modality) -> CellKey {
        CellKey {
            scenario,
            method,
            buffer,
            modality,
        }
    }

    fn ours() -> BTreeMap<CellKey, MeanStd> {
        let mut m = BTreeMap::new();
        m.insert(
            key(
                Scenario::Seq,
                Method::Samm,
                Some(200),
                Modality::AudioVisual,
            ),
            MeanStd::of(&[11.0, 13.0]).unwrap(),
        );
        m.insert(
            key(Scenario::Seq, Method::Joint, None, Modality::Audio),
            MeanStd::of(&[50.0, 52.0]).unwrap(),
        );
        m.insert(
            key(Scenario::Dom, Method::Er, Some(500), Modality::Visual),
            MeanStd::of(&[30.0]).unwrap(),
        );
        m
    }

    #[test]
    fn rows_follow_the_paper_order_and_include_our_buffers() {
        let t = PaperLayoutTable::build("t", &[Scenario::Seq, Scenario::Dom], &ours());
        let order: Vec<String> = t
            .rows
            .iter()
            .map(|r| format!("{}@{}", r.method, buffer_label(r.buffer)))
            .collect();
        assert_eq!(
            order,
            [
                "JOINT@–",
                "SGD@–",
                "SAMM@200",
                "ER@500",
                "SAMM@500",
                "ER@1000",
                "SAMM@1000",
                "ER@2000",
                "SAMM@2000"
            ]
        );
        assert!(t.has_ours());
        for row in &t.rows {
            assert_eq!(row.cells.len(), 6);
        }
    }

    #[test]
    fn markdown_puts_ours_beside_paper() {
        let md = PaperLayoutTable::build("Seq / Dom", &[Scenario::Seq, Scenario::Dom], &ours())
            .to_markdown();
        assert!(md
            .contains("| Method | Buffer | Seq Audio | Seq Visual | Seq Multimodal | Dom Audio |"));
        // JOINT Seq audio: ours 51 ± 1, paper 53.47 ± 1.62
        assert!(md.contains("| JOINT | – | 51.00 ± 1.00 (53.47 ± 1.62) | — (34.52 ± 0.28) |"));
        // a buffer the paper did not run has no paper value
        assert!(md.contains("| SAMM | 200 | — | — | 12.00 ± 1.00 | — | — | — |"));
        // Dom ER 500 visual, one seed
        assert!(md.contains("30.00 ± 0.00 (27.36 ± 1.60)"));
    }

    #[test]
    fn a_table_without_paper_values_has_only_our_rows() {
        let t = PaperLayoutTable::build_without_paper("x", &[Scenario::Seq], &ours());
        let md = t.to_markdown();
        assert_eq!(t.rows.len(), 2, "{md}");
        assert!(md.contains("| JOINT | – | 51.00 ± 1.00 | — | — |"), "{md}");
        assert!(!md.contains("53.47"));
    }

    #[test]
    fn csv_is_long_form() {
        let csv = PaperLayoutTable::build("x", &[Scenario::Seq], &ours()).to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "scenario,method,buffer,modality,seeds,ours_mean,ours_std,paper_mean,paper_std"
        );
        assert!(lines.contains(&"seq,joint,,audio,2,51.0000,1.0000,53.47,1.62"));
        assert!(lines.contains(&"seq,samm,200,multimodal,2,12.0000,1.0000,,"));
        assert!(lines.contains(&"seq,er,500,visual,,,,9.07,0.39"));
        // 1 header + 9 rows x 3 modalities
        assert_eq!(lines.len(), 1 + 9 * 3);
    }
}
