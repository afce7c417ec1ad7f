//! Repository rules over every workspace crate (rust-analyzer's `tidy` idea): each has a
//! crate-level doc, takes every dependency version from the workspace table, and uses
//! every dependency it declares. Each rule's own unit test (in `src/tidy.rs`) shows it
//! fails on a crate that breaks it.
use mmcl_tests::{tidy, workspace_root};

fn violations(rule: impl Fn(&std::path::Path) -> Vec<String>) -> Vec<String> {
    let root = workspace_root();
    let mut crates = tidy::workspace_crates(&root).unwrap();
    crates.sort();
    crates
        .iter()
        .flat_map(|dir| {
            let name = dir.strip_prefix(&root).unwrap_or(dir).display().to_string();
            rule(dir).into_iter().map(move |v| format!("{name}: {v}"))
        })
        .collect()
}

#[test]
fn the_tests_crate_itself_is_a_workspace_member() {
    let root = workspace_root();
    assert!(tidy::workspace_crates(&root)
        .unwrap()
        .contains(&root.join("tests")));
}

#[test]
fn every_crate_has_a_crate_level_doc() {
    let bad = violations(|dir| tidy::missing_crate_doc(dir).unwrap().into_iter().collect());
    assert!(
        bad.is_empty(),
        "crates without a crate doc:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_dependency_version_is_pinned_in_the_workspace() {
    let bad = violations(|dir| tidy::unpinned_dependencies(dir).unwrap());
    assert!(
        bad.is_empty(),
        "set these versions once in the root Cargo.toml's [workspace.dependencies] and use \
         `dep.workspace = true`:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_crate_declares_a_dependency_it_does_not_use() {
    let bad = violations(|dir| tidy::unused_dependencies(dir).unwrap());
    assert!(
        bad.is_empty(),
        "unused dependencies (remove them, move test-only ones to [dev-dependencies], or list \
         them with the reason under [package.metadata.cargo-machete] ignored):\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_workspace_dependency_is_left_unused() {
    let root = workspace_root();
    let declared = tidy::workspace_dependencies(&root).unwrap();
    let used: Vec<String> = tidy::workspace_crates(&root)
        .unwrap()
        .iter()
        .flat_map(|dir| tidy::inherited_dependencies(dir).unwrap())
        .collect();
    let unused: Vec<&String> = declared.iter().filter(|d| !used.contains(d)).collect();
    assert!(
        unused.is_empty(),
        "[workspace.dependencies] entries no crate uses: {unused:?}"
    );
}

#[test]
fn nothing_refers_to_files_outside_the_repository() {
    let root = workspace_root();
    let bad = tidy::references_outside(
        &root,
        &["crates", "xtask", "tools", "tests", "docs", "README.md"],
    )
    .unwrap();
    assert!(
        bad.is_empty(),
        "these lines point at folders a clone does not have:\n{}",
        bad.join("\n")
    );
}
