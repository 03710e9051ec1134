//! The one-way flow, checked: every module of `src/` may use only modules of a lower layer.
//! A `use crate::X` (or a `crate::X::` path) that points up or sideways fails this test, naming
//! the file and the line, so a cycle cannot come back unnoticed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may use modules of lower layers only; modules within one
/// layer never use each other.
const LAYERS: &[&[&str]] = &[
    // Leaves: typed errors, the `--root` mapping, input validation, extended attributes.
    &["error", "root", "validate", "xattr"],
    // Reading the host: facts and the host seam (live, or a facts document).
    &["facts"],
    // The operator's request, resolved once; a known program's profile.
    &["request", "profile"],
    // Plans as pure data, including what to verify.
    &["plan"],
    // Pure methods: facts + request → check, actions, verification target.
    &["methods"],
    // Method actions + host → plan.
    &["planner"],
    // Proof of a grant.
    &["verify"],
    // The executor: the only writer (lock, journal, rollback).
    &["apply"],
    // Command-line definitions (clap data only).
    &["cli"],
    // The one orchestration every front end uses.
    &["runner"],
    // Text shared by the front ends.
    &["render"],
    &["console"],
    // Front ends: they ask and show, and never use each other.
    &["commands", "ui"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a source file belongs to (`src/plan/action.rs` → `plan`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The crate modules a line names: `crate::X…` and each item of `crate::{X, Y::…}`.
fn uses(line: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    for (i, _) in line.match_indices("crate::") {
        let rest = &line[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Items at the first nesting level of the group.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(ident(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            out.push(ident(&item));
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let Some(module) = module_of(src, &file) else {
            continue;
        };
        // The binary's entry point and the crate root only wire modules together.
        if module == "main" || module == "lib" {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            out.push(format!(
                "{}: module {module} is in no layer; add it to LAYERS",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for used in uses(line) {
                if used == module {
                    continue;
                }
                match layer_of(&used) {
                    Some(l) if l < own => {}
                    Some(_) => out.push(format!(
                        "{}:{}: {module} uses {used}, which is not below it",
                        file.display(),
                        n + 1
                    )),
                    None => out.push(format!(
                        "{}:{}: {module} uses {used}, which is in no layer",
                        file.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    out
}

#[test]
fn every_module_uses_only_modules_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let v = violations(&src);
    assert!(v.is_empty(), "the flow has a cycle:\n{}", v.join("\n"));
}

#[test]
fn the_check_finds_an_upward_use_and_a_sideways_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("plan")).unwrap();
    std::fs::write(src.join("plan/mod.rs"), "use crate::methods::Method;\n").unwrap();
    std::fs::write(
        src.join("commands.rs"),
        "use crate::{error::Result, ui::run};\n// crate::runner in a comment is no use\n",
    )
    .unwrap();
    std::fs::write(
        src.join("facts.rs"),
        "pub fn f() -> crate::error::Result<()> { Ok(()) }\n",
    )
    .unwrap();
    let v: BTreeMap<_, _> = violations(src)
        .into_iter()
        .map(|l| (l.split(": ").nth(1).unwrap().to_string(), l))
        .collect();
    assert_eq!(
        v.keys().collect::<Vec<_>>(),
        [
            "commands uses ui, which is not below it",
            "plan uses methods, which is not below it"
        ],
        "{v:?}"
    );
}
