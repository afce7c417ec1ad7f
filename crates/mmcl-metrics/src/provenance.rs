//! Which runs may share a table cell: the seeds averaged in one cell must come from the same
//! code (mmcl version, git commit, dirty flag) and the same cache (manifest sha256), or the
//! mean mixes two experiments. Every session of a resumed run counts.
//!
//! Runs without provenance (results written before it was recorded) are exempt: there is
//! nothing to compare, and refusing them would make every older run unreportable.

use std::collections::BTreeMap;
use std::path::Path;

use mmcl_scheduler::provenance::SessionProvenance;
use mmcl_scheduler::results::RunResults;

use crate::analysis::{row_label, table_cells};
use crate::error::{MetricsError, Result};
use crate::table::CellKey;

/// The code of a session, in full: `mmcl <version> commit <hash>[+dirty]`.
fn code(s: &SessionProvenance) -> String {
    let dirty = match s.dirty {
        Some(true) => "+dirty",
        Some(false) => "",
        None => " (dirty flag unknown)",
    };
    format!("mmcl {} commit {}{dirty}", s.mmcl_version, s.commit)
}

fn cell_label(k: &CellKey) -> String {
    format!(
        "{} {} {}",
        k.scenario,
        row_label(&k.method, k.buffer),
        k.modality.label()
    )
}

/// Refuses runs that share a table cell but not their code or their cache: the error names
/// the cell, two such runs and both values. `runs`: each run's folder and results.
pub fn check_cells(runs: &[(&Path, &RunResults)]) -> Result<()> {
    type Seen<'a> = (&'a Path, &'a SessionProvenance);
    let mut first: BTreeMap<CellKey, Seen> = BTreeMap::new();
    for &(dir, results) in runs {
        let Some(p) = &results.provenance else {
            continue;
        };
        for (key, _) in table_cells(results) {
            for s in p.sessions() {
                let &mut (dir0, s0) = first.entry(key.clone()).or_insert((dir, s));
                let mismatch = if code(s) != code(s0) {
                    Some(("code versions", code(s0), code(s)))
                } else if s.cache_manifest_sha256 != s0.cache_manifest_sha256 {
                    Some((
                        "caches",
                        format!("cache manifest sha256 {}", s0.cache_manifest_sha256),
                        format!("cache manifest sha256 {}", s.cache_manifest_sha256),
                    ))
                } else {
                    None
                };
                if let Some((what, a, b)) = mismatch {
                    return Err(MetricsError::InconsistentRuns(format!(
                        "table cell {} would average runs of different {what}: {} was made by \
                         {a}, {} by {b}; train them with the same build and cache, or pass \
                         --allow-mixed to `mmcl report` to put them in one cell anyway",
                        cell_label(&key),
                        dir0.display(),
                        dir.display(),
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmcl_scheduler::provenance::Provenance;

    fn run(seed: u64, commit: &str, cache: &str) -> RunResults {
        let mut r = crate::derive::tests::results("seq");
        r.run.seed = seed;
        let mut s = SessionProvenance::capture(b"seed = 0\n", cache, "cpu", true, 0);
        s.commit = commit.into();
        s.dirty = Some(false);
        r.provenance = Some(Provenance {
            first: s,
            resumes: Vec::new(),
        });
        r
    }

    fn check(runs: &[RunResults]) -> Result<()> {
        let dirs: Vec<String> = (0..runs.len()).map(|i| format!("runs/seed{i}")).collect();
        let pairs: Vec<(&Path, &RunResults)> = dirs
            .iter()
            .zip(runs)
            .map(|(d, r)| (Path::new(d.as_str()), r))
            .collect();
        check_cells(&pairs)
    }

    #[test]
    fn runs_of_one_cell_with_another_cache_or_commit_are_refused_naming_both() {
        let (c1, c2) = ("a".repeat(40), "b".repeat(40));
        let (h1, h2) = ("5d3e".repeat(16), "77f0".repeat(16));
        assert!(check(&[run(0, &c1, &h1), run(1, &c1, &h1)]).is_ok());

        let e = check(&[run(0, &c1, &h1), run(1, &c1, &h2)])
            .unwrap_err()
            .to_string();
        assert!(e.contains(&h1) && e.contains(&h2), "{e}");
        assert!(e.contains("runs/seed0") && e.contains("runs/seed1"), "{e}");
        assert!(e.contains("caches") && e.contains("--allow-mixed"), "{e}");

        let e = check(&[run(0, &c1, &h1), run(1, &c2, &h1)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&c1) && e.contains(&c2) && e.contains("code versions"),
            "{e}"
        );

        // A dirty build of the same commit is other code.
        let mut dirty = run(1, &c1, &h1);
        dirty.provenance.as_mut().unwrap().first.dirty = Some(true);
        assert!(check(&[run(0, &c1, &h1), dirty]).is_err());

        // A resume by another build mixes the run itself.
        let mut resumed = run(0, &c1, &h1);
        let mut later = resumed.provenance.clone().unwrap().first;
        later.commit = c2.clone();
        resumed.provenance.as_mut().unwrap().resumes.push(later);
        assert!(check(&[resumed]).is_err());
    }

    #[test]
    fn other_cells_and_runs_without_provenance_are_not_compared() {
        let (c1, c2) = ("a".repeat(40), "b".repeat(40));
        let h = "5d3e".repeat(16);
        // Another scenario is another cell.
        let mut dom = run(1, &c2, &h);
        dom.run.scenario = "dom".into();
        assert!(check(&[run(0, &c1, &h), dom]).is_ok());
        // An old run has no provenance to compare.
        let mut old = run(1, &c2, &h);
        old.provenance = None;
        assert!(check(&[run(0, &c1, &h), old]).is_ok());
    }
}
