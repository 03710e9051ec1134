//! The one-way flow, checked: every module of `src/` may use only modules of a lower layer.
//! A `use crate::X` (or a `crate::X::` path) that points up or sideways fails this test, naming
//! the file and the line, so a cycle cannot come back unnoticed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may use modules of lower layers only; modules within one
/// layer never use each other. An entry is a top-level module, or a submodule (`facts::acl`)
/// placed on its own; a file belongs to the longest entry its path names.
const LAYERS: &[&[&str]] = &[
    // Leaves: typed errors, the `--root` mapping, input validation, extended attributes, the
    // primitives whose spelling differs per operating system, and what the lib tests share.
    &["error", "root", "validate", "xattr", "os", "testing"],
    // POSIX ACLs of a file (used by the trusted-program check and by the binary's facts).
    &["facts::acl"],
    // The one place programs are found and spawned: system directories, root-owned only.
    &["programs"],
    // Kernel settings by name, each system's way (the BSDs' through their sysctl program).
    &["sysctl"],
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
    // Why a service did not come up (its exit, log and likely cause), as verification checks.
    &["diagnose"],
    // A plan (data) written for other engines: Ansible, cloud-init, containers, scripts.
    &["export"],
    // Proof of a grant.
    &["verify"],
    // The executor: the only writer (lock, journal, rollback).
    &["apply"],
    // Drift: what an applied run left, read again.
    &["drift"],
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

type Layers<'a> = &'a [&'a [&'a str]];

fn layer_of(layers: Layers, module: &str) -> Option<usize> {
    layers.iter().position(|l| l.contains(&module))
}

/// The longest declared module that `segments` (a module path) names, else its first segment.
fn declared(layers: Layers, segments: &[String]) -> String {
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|m| layer_of(layers, m).is_some())
        .unwrap_or_else(|| segments.first().cloned().unwrap_or_default())
}

/// The module a source file belongs to (`src/plan/action.rs` → `plan`, unless `plan::action`
/// is declared on its own).
fn module_of(layers: Layers, src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let segments: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .filter(|c| c != "mod")
        .collect();
    Some(declared(layers, &segments))
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

/// The crate modules a line names: `crate::X…` and each item of `crate::{X, Y::…}`, each as the
/// longest declared module its path names.
fn uses(layers: Layers, line: &str) -> Vec<String> {
    // `a::b::{c, d}` or `a::b::Item` → the leading identifiers joined by `::`.
    let path = |s: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = s.trim();
        loop {
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if ident.is_empty() {
                break;
            }
            rest = &rest[ident.len()..];
            out.push(ident);
            match rest.strip_prefix("::") {
                Some(r) => rest = r,
                None => break,
            }
        }
        out
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
                        out.push(path(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            out.push(path(&item));
        } else {
            out.push(path(rest));
        }
    }
    out.into_iter()
        .filter(|p| p.first().is_some_and(|m| m != "self"))
        .map(|p| declared(layers, &p))
        .collect()
}

fn violations(layers: Layers, src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let Some(module) = module_of(layers, src, &file) else {
            continue;
        };
        // The binary's entry point and the crate root only wire modules together.
        if module == "main" || module == "lib" {
            continue;
        }
        let Some(own) = layer_of(layers, &module) else {
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
            for used in uses(layers, line) {
                if used == module {
                    continue;
                }
                match layer_of(layers, &used) {
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
    let v = violations(LAYERS, &src);
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
    let v: BTreeMap<_, _> = violations(LAYERS, src)
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

#[test]
fn a_submodule_can_be_a_layer_of_its_own() {
    let layers: Layers = &[&["leaf"], &["facts::acl"], &["programs"], &["facts"]];
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("facts")).unwrap();
    std::fs::write(src.join("leaf.rs"), "").unwrap();
    std::fs::write(
        src.join("facts/acl.rs"),
        "use crate::leaf;\nuse crate::facts::caps::X;\n",
    )
    .unwrap();
    std::fs::write(src.join("facts/mod.rs"), "use crate::programs::find;\n").unwrap();
    std::fs::write(src.join("programs.rs"), "use crate::facts::acl::Acl;\n").unwrap();
    let v = violations(layers, src);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].ends_with("facts::acl uses facts, which is not below it"),
        "{v:?}"
    );
}
