//! docs/json.md is checked against the real output of each command: a section's top-level
//! fields are exactly what the command prints, and each nested field it lists is present.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::support::*;

/// Section title (`lowport plan --json`) → documented field paths.
fn documented() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md"))
        .unwrap();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = None;
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("## `").and_then(|t| t.strip_suffix('`')) {
            section = Some(t.to_string());
            out.insert(t.to_string(), Vec::new());
        } else if let (Some(s), Some(row)) = (&section, line.strip_prefix("| `")) {
            let field = row.split('`').next().unwrap().to_string();
            out.get_mut(s).unwrap().push(field);
        }
    }
    out
}

/// Every value at `path` (`a.b`, `list[].c`); a path through an empty list yields nothing.
fn at<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut now = vec![v];
    for part in path.split('.') {
        let (key, each) = match part.strip_suffix("[]") {
            Some(k) => (k, true),
            None => (part, false),
        };
        let mut next = Vec::new();
        for v in now {
            let Some(x) = v.get(key) else {
                panic!("{path}: no `{key}` in {v:#}");
            };
            if each {
                next.extend(x.as_array().unwrap_or_else(|| panic!("{path}: not a list")));
            } else {
                next.push(x);
            }
        }
        now = next;
    }
    now
}

fn check(docs: &BTreeMap<String, Vec<String>>, title: &str, doc: &Value) {
    let fields = docs
        .get(title)
        .unwrap_or_else(|| panic!("docs/json.md has no section `{title}`"));
    let top: BTreeSet<&str> = fields
        .iter()
        .filter(|f| !f.contains('.'))
        .map(String::as_str)
        .collect();
    let real: BTreeSet<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        top, real,
        "{title}: documented top-level fields vs real output"
    );
    assert_eq!(doc["format_version"], 1, "{title}");
    for f in fields.iter().filter(|f| f.contains('.')) {
        // Nested fields are checked wherever the output has the object they belong to.
        let parent = f.rsplit_once('.').unwrap().0;
        let has_parent = at(doc, parent).into_iter().any(|p| !p.is_null());
        if has_parent {
            at(doc, f);
        }
    }
}

#[test]
fn every_documented_json_field_is_in_the_real_output() {
    let docs = documented();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/setcap_fabio");
    let args: Vec<String> = std::fs::read_to_string(scenario.join("args"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let facts = scenario.join("facts.json");
    let json = |l: Lowport| l.run().json();

    check(
        &docs,
        "lowport detect --json",
        &json(Lowport::new().args(["detect", "--json"])),
    );
    check(
        &docs,
        "lowport methods --json",
        &json(Lowport::new().args(["methods", "--json"])),
    );
    let plan = Lowport::new()
        .args(["plan", "--json", "--facts"])
        .arg(&facts)
        .args(&args);
    check(&docs, "lowport plan --json", &json(plan));
    let verify = Lowport::new().args(["verify", "--json", "--port", "80", "--user", "nobody"]);
    check(&docs, "lowport verify --json", &json(verify));

    let mut covered = 4;
    if nix::unistd::geteuid().is_root() {
        let t = TestEnv::new();
        let app = t.install(Path::new(BIN), "opt/app/bin/app");
        let apply = t
            .lowport()
            .args(["apply", "--json", "--method", "setcap", "--binary"])
            .arg(&app)
            .args(["--port", "80", "--user", "nobody", "--yes"]);
        let doc = json(apply);
        check(&docs, "lowport apply --json", &doc);
        check(&docs, "lowport plan --json", &doc["plan"]);
        check(&docs, "lowport verify --json", &doc["verify"]);
        let history = json(t.lowport().args(["history", "--json"]));
        assert_eq!(history["runs"].as_array().unwrap().len(), 1);
        check(&docs, "lowport history --json", &history);
        let all = json(t.lowport().args(["verify", "--all", "--json"]));
        assert_eq!(all["runs"].as_array().unwrap().len(), 1);
        check(&docs, "lowport verify --all --json", &all);
        let rollback = t.lowport().args(["rollback", "--last", "--yes", "--json"]);
        check(&docs, "lowport rollback --json", &json(rollback));
        covered += 4;
    } else {
        eprintln!("SKIPPED (needs root): apply, rollback, history and verify --all JSON");
    }
    if covered == 8 {
        assert_eq!(
            docs.len(),
            covered,
            "a documented command is not checked: {docs:?}"
        );
    }
}
