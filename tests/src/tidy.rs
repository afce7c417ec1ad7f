//! The repository's rules, checked per crate: a crate-level doc, every dependency version
//! pinned once in the workspace table, and no dependency the crate does not use.
//!
//! The unused-dependency check reads sources the way `cargo machete` does (a crate is used
//! when its name appears as a path, `use` or `extern crate`), and honours machete's
//! `[package.metadata.cargo-machete] ignored = [..]` list, so both tools agree. It is
//! stricter in one way: a normal dependency must be used by the crate's own code (`src/`,
//! `build.rs`), not only by its tests, benches or examples — those belong in
//! `[dev-dependencies]`.

use std::fs;
use std::path::{Path, PathBuf};

use toml::Value;

/// A rule check that could not read a file: names the file and the reason.
#[derive(Debug)]
pub struct TidyError(pub String);

impl std::fmt::Display for TidyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TidyError {}

fn read_toml(path: &Path) -> Result<Value, TidyError> {
    let text = fs::read_to_string(path)
        .map_err(|e| TidyError(format!("{}: cannot read: {e}", path.display())))?;
    text.parse::<Value>()
        .map_err(|e| TidyError(format!("{}: not valid TOML: {e}", path.display())))
}

/// The folders of every workspace member, from the root `Cargo.toml`'s `workspace.members`.
pub fn workspace_crates(root: &Path) -> Result<Vec<PathBuf>, TidyError> {
    let manifest = root.join("Cargo.toml");
    let doc = read_toml(&manifest)?;
    let members = doc
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(Value::as_array)
        .ok_or_else(|| TidyError(format!("{}: no workspace.members", manifest.display())))?;
    Ok(members
        .iter()
        .filter_map(Value::as_str)
        .map(|m| root.join(m))
        .collect())
}

/// `Some(reason)` when the crate's root file (`src/lib.rs`, else `src/main.rs`) does not
/// open with a crate-level doc (`//!` or `#![doc = ..]`).
pub fn missing_crate_doc(crate_dir: &Path) -> Result<Option<String>, TidyError> {
    let root = ["src/lib.rs", "src/main.rs"]
        .iter()
        .map(|p| crate_dir.join(p))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            TidyError(format!(
                "{}: neither src/lib.rs nor src/main.rs",
                crate_dir.display()
            ))
        })?;
    let text = fs::read_to_string(&root)
        .map_err(|e| TidyError(format!("{}: cannot read: {e}", root.display())))?;
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("#![allow") && !l.starts_with("#![cfg"));
    Ok(match first {
        Some(l) if l.starts_with("//!") || l.starts_with("#![doc") => None,
        _ => Some(format!("{} has no crate-level doc (`//!`)", root.display())),
    })
}

/// Every dependency table of a package manifest: `[dependencies]`, `[dev-dependencies]`,
/// `[build-dependencies]` and their `[target.'cfg(..)'.*]` forms, as (table name, table).
fn dependency_tables(doc: &Value) -> Vec<(String, &toml::Table)> {
    const KINDS: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];
    let mut tables = Vec::new();
    for kind in KINDS {
        if let Some(t) = doc.get(kind).and_then(Value::as_table) {
            tables.push((kind.to_string(), t));
        }
    }
    if let Some(targets) = doc.get("target").and_then(Value::as_table) {
        for (cfg, target) in targets {
            for kind in KINDS {
                if let Some(t) = target.get(kind).and_then(Value::as_table) {
                    tables.push((format!("target.{cfg}.{kind}"), t));
                }
            }
        }
    }
    tables
}

/// Dependencies whose version is set in the crate instead of once in the workspace's
/// `[workspace.dependencies]` (`dep.workspace = true`), as "table: name".
pub fn unpinned_dependencies(crate_dir: &Path) -> Result<Vec<String>, TidyError> {
    let doc = read_toml(&crate_dir.join("Cargo.toml"))?;
    let mut bad = Vec::new();
    for (table, deps) in dependency_tables(&doc) {
        for (name, spec) in deps {
            let inherited = spec.get("workspace").and_then(Value::as_bool) == Some(true);
            if !inherited {
                bad.push(format!("{table}: {name}"));
            }
        }
    }
    Ok(bad)
}

/// Dependencies the crate never names in its code, as "table: name". Normal and build
/// dependencies must appear in `src/` or `build.rs`; dev-dependencies anywhere in the
/// package (`src/` unit tests, `tests/`, `benches/`, `examples/`).
pub fn unused_dependencies(crate_dir: &Path) -> Result<Vec<String>, TidyError> {
    let manifest = crate_dir.join("Cargo.toml");
    let doc = read_toml(&manifest)?;
    let ignored: Vec<&str> = doc
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("cargo-machete"))
        .and_then(|m| m.get("ignored"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let own_code = sources(&[crate_dir.join("src"), crate_dir.join("build.rs")])?;
    let all_code = sources(&[
        crate_dir.join("src"),
        crate_dir.join("build.rs"),
        crate_dir.join("tests"),
        crate_dir.join("benches"),
        crate_dir.join("examples"),
    ])?;
    let mut unused = Vec::new();
    for (table, deps) in dependency_tables(&doc) {
        let code = if table.ends_with("dev-dependencies") {
            &all_code
        } else {
            &own_code
        };
        for name in deps.keys() {
            if ignored.contains(&name.as_str()) {
                continue;
            }
            let ident = name.replace('-', "_");
            if !code.iter().any(|src| names_crate(src, &ident)) {
                unused.push(format!("{table}: {name}"));
            }
        }
    }
    Ok(unused)
}

/// The names in the root manifest's `[workspace.dependencies]`.
pub fn workspace_dependencies(root: &Path) -> Result<Vec<String>, TidyError> {
    let doc = read_toml(&root.join("Cargo.toml"))?;
    Ok(doc
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(Value::as_table)
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default())
}

/// The dependencies a crate takes from the workspace table (`dep.workspace = true`).
pub fn inherited_dependencies(crate_dir: &Path) -> Result<Vec<String>, TidyError> {
    let doc = read_toml(&crate_dir.join("Cargo.toml"))?;
    let mut names = Vec::new();
    for (_, deps) in dependency_tables(&doc) {
        for (name, spec) in deps {
            if spec.get("workspace").and_then(Value::as_bool) == Some(true) {
                names.push(name.clone());
            }
        }
    }
    Ok(names)
}

/// Lines under `paths` (files or folders, relative to `root`) that point at folders a
/// clone of the repository does not have (the development machine's shared folder), as
/// "file:line: text".
pub fn references_outside(root: &Path, paths: &[&str]) -> Result<Vec<String>, TidyError> {
    // Spelled in pieces so that this file does not match itself.
    let patterns = [
        format!("..{}shared", '/'),
        format!("shared{}reference", '/'),
        format!("shared{}bench", '/'),
        format!("/work{}", '/'),
        // The developers' private method sheet; the repository's own notes are docs/.
        format!("SAMM{}md", '.'),
    ];
    let mut bad = Vec::new();
    let mut stack: Vec<PathBuf> = paths.iter().map(|p| root.join(p)).collect();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            let entries = fs::read_dir(&p)
                .map_err(|e| TidyError(format!("{}: cannot list: {e}", p.display())))?;
            for entry in entries {
                let entry =
                    entry.map_err(|e| TidyError(format!("{}: cannot list: {e}", p.display())))?;
                stack.push(entry.path());
            }
            continue;
        }
        let text_file = p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["rs", "md", "py", "toml", "sh", "txt"].contains(&e));
        if !text_file {
            continue;
        }
        let Ok(text) = fs::read_to_string(&p) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if patterns.iter().any(|pat| line.contains(pat.as_str())) {
                let rel = p.strip_prefix(root).unwrap_or(&p);
                bad.push(format!("{}:{}: {}", rel.display(), i + 1, line.trim()));
            }
        }
    }
    Ok(bad)
}

/// The text of every `.rs` file under the given files or folders (missing ones skipped).
fn sources(paths: &[PathBuf]) -> Result<Vec<String>, TidyError> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            let entries = fs::read_dir(&p)
                .map_err(|e| TidyError(format!("{}: cannot list: {e}", p.display())))?;
            for entry in entries {
                let entry =
                    entry.map_err(|e| TidyError(format!("{}: cannot list: {e}", p.display())))?;
                stack.push(entry.path());
            }
        } else if p.extension().is_some_and(|e| e == "rs") && p.is_file() {
            out.push(
                fs::read_to_string(&p)
                    .map_err(|e| TidyError(format!("{}: cannot read: {e}", p.display())))?,
            );
        }
    }
    Ok(out)
}

/// Whether `src` names the crate `ident` as a path (`ident::`), in a `use` or in an
/// `extern crate`, with `ident` standing alone (not the tail of a longer name).
fn names_crate(src: &str, ident: &str) -> bool {
    let is_ident_char = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(at) = src[from..].find(ident) {
        let start = from + at;
        let end = start + ident.len();
        from = end;
        if src[..start].chars().next_back().is_some_and(is_ident_char) {
            continue;
        }
        let rest = &src[end..];
        if rest.starts_with("::") {
            return true;
        }
        let before = src[..start].trim_end();
        let after_ok = rest.starts_with(|c: char| !is_ident_char(c));
        if after_ok && (before.ends_with("use") || before.ends_with("extern crate")) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_crate(manifest: &str, lib: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("src")).unwrap();
        fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
        fs::write(dir.path().join("src/lib.rs"), lib).unwrap();
        dir
    }

    const HEAD: &str = "[package]\nname = \"fake\"\n";

    #[test]
    fn an_added_but_unused_dependency_is_reported() {
        let used = format!("{HEAD}[dependencies]\nserde-json.workspace = true\n");
        let lib = "//! Doc.\npub fn f() -> serde_json::Value { todo!() }\n";
        assert!(unused_dependencies(fake_crate(&used, lib).path())
            .unwrap()
            .is_empty());
        let added = format!("{used}rayon.workspace = true\n");
        assert_eq!(
            unused_dependencies(fake_crate(&added, lib).path()).unwrap(),
            ["dependencies: rayon"]
        );
        let ignored = format!("{added}[package.metadata.cargo-machete]\nignored = [\"rayon\"]\n");
        assert!(unused_dependencies(fake_crate(&ignored, lib).path())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_normal_dependency_used_only_by_tests_is_reported() {
        let manifest = format!("{HEAD}[dependencies]\nhound.workspace = true\n");
        let dir = fake_crate(&manifest, "//! Doc.\n");
        fs::create_dir_all(dir.path().join("tests")).unwrap();
        fs::write(dir.path().join("tests/t.rs"), "use hound::WavReader;\n").unwrap();
        assert_eq!(
            unused_dependencies(dir.path()).unwrap(),
            ["dependencies: hound"]
        );
        let dev = format!("{HEAD}[dev-dependencies]\nhound.workspace = true\n");
        fs::write(dir.path().join("Cargo.toml"), dev).unwrap();
        assert!(unused_dependencies(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn a_longer_name_ending_in_the_crate_name_does_not_count() {
        assert!(!names_crate("let x = my_rand::f();", "rand"));
        assert!(!names_crate("use random::X;", "rand"));
        assert!(names_crate("use rand::Rng;", "rand"));
        assert!(names_crate("extern crate rand;", "rand"));
        assert!(names_crate("#[derive(thiserror::Error)]", "thiserror"));
    }

    #[test]
    fn a_missing_crate_doc_and_an_unpinned_version_are_reported() {
        let manifest = format!("{HEAD}[dependencies]\nrand = \"0.9\"\n");
        let dir = fake_crate(&manifest, "pub fn f() {}\n");
        assert!(missing_crate_doc(dir.path()).unwrap().is_some());
        assert_eq!(
            unpinned_dependencies(dir.path()).unwrap(),
            ["dependencies: rand"]
        );
        fs::write(dir.path().join("src/lib.rs"), "//! A doc.\n").unwrap();
        assert!(missing_crate_doc(dir.path()).unwrap().is_none());
    }
}
