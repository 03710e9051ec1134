//! macOS (issue 7): every LaunchDaemon plist a launchd scenario plans is parsed by a real plist
//! parser (Python's plistlib; `plutil` exists only on a Mac, and Linux's `plistutil` exits 0 on a
//! parse error) and carries launchd.plist(5)'s keys with the right types and exactly the values
//! asked for, whatever markup they hold; `--target-os` plans from the representative documents
//! the `*_target_os*` scenarios link; and the wildcard rule is said before the methods.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::*;

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

/// Debian's python3 (`.ci/run` installs it); missing, the test says so and is skipped, except
/// in CI, where it fails.
fn python(test: &str) -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/python3");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: python3 is not installed (.ci/run installs it)"
    );
    eprintln!("SKIPPED (needs python3): {test}");
    None
}

fn args(name: &str) -> Vec<String> {
    std::fs::read_to_string(scenarios().join(name).join("args"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// The scenarios whose golden plan was made (exit 0, or 9: nothing to do).
fn planned(prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(scenarios())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .filter(|n| {
            let golden = std::fs::read_to_string(scenarios().join(n).join("plan.txt")).unwrap();
            golden.starts_with("exit 0\n") || golden.starts_with("exit 9\n")
        })
        .collect();
    out.sort();
    out
}

/// Parses a plist with plistlib and prints each key's Python type and value as JSON.
const PARSE: &str = "\
import json, plistlib, sys
d = plistlib.loads(sys.stdin.buffer.read())
assert isinstance(d, dict), type(d)
print(json.dumps({k: [type(v).__name__, v] for k, v in d.items()}))
";

fn parse_plist(python: &Path, text: &str) -> serde_json::Map<String, Value> {
    let mut child = Command::new(python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "plistlib refused:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).unwrap() {
        Value::Object(m) => m,
        v => panic!("not a dict: {v}"),
    }
}

#[test]
fn every_launchd_plist_parses_and_carries_exactly_what_was_asked() {
    let Some(python) = python("every_launchd_plist_parses") else {
        return;
    };
    let mut checked = 0;
    for name in planned("launchd_") {
        let d = scenarios().join(&name);
        let plan = Lowport::new()
            .args(["plan", "--json", "--facts"])
            .arg(d.join("facts.json"))
            .args(args(&name))
            .env("LOWPORT_STATE_DIR", "/nonexistent/lowport-state")
            .run()
            .json();
        let req = &plan["request"];
        for step in plan["steps"].as_array().unwrap() {
            let a = &step["action"];
            let path = a["path"].as_str().unwrap_or_default();
            if a["type"] != "write_file" || !path.ends_with(".plist") {
                continue;
            }
            let keys = parse_plist(&python, a["content"].as_str().unwrap());
            let get = |k: &str, ty: &str| -> Value {
                let [t, v] = keys
                    .get(k)
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                else {
                    panic!("{name}: no {k} in {keys:?}");
                };
                assert_eq!(t, ty, "{name}: {k}");
                v.clone()
            };
            let label = get("Label", "str");
            assert_eq!(
                format!("/Library/LaunchDaemons/{}.plist", label.as_str().unwrap()),
                path,
                "{name}"
            );
            let mut want = vec![req["binary"].clone()];
            want.extend(req["service"]["args"].as_array().unwrap().iter().cloned());
            let argv = get("ProgramArguments", "list");
            assert!(
                argv.as_array().unwrap().iter().all(Value::is_string),
                "{name}: {argv}"
            );
            assert_eq!(argv, Value::Array(want), "{name}");
            assert!(argv[0].as_str().unwrap().starts_with('/'), "{name}");
            assert_eq!(get("UserName", "str"), req["user"], "{name}");
            match req["group"].as_str() {
                Some(g) => assert_eq!(get("GroupName", "str"), g, "{name}"),
                None => assert!(!keys.contains_key("GroupName"), "{name}"),
            }
            assert_eq!(get("RunAtLoad", "bool"), true, "{name}");
            assert_eq!(get("KeepAlive", "bool"), true, "{name}");
            // fabio does not check in with launchd: no Sockets, and nothing lowport did not ask.
            let mut names: Vec<&str> = keys.keys().map(String::as_str).collect();
            names.sort_unstable();
            names.retain(|k| *k != "GroupName");
            assert_eq!(
                names,
                [
                    "KeepAlive",
                    "Label",
                    "ProgramArguments",
                    "RunAtLoad",
                    "UserName"
                ],
                "{name}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} plists checked");
}

/// The escaping scenario holds what XML markup is made of, so its round trip above proves the
/// plist rule; this says it does, so that scenario cannot lose them unnoticed.
#[test]
fn the_escaping_scenario_holds_markup() {
    let a = args("launchd_escaped_args").join("\n");
    for markup in ["&", "<", ">", "]]>", "&amp;", "\"", "'"] {
        assert!(a.contains(markup), "{markup}");
    }
}

/// `--target-os NAME` plans from the same document the `*_target_os*` scenarios link: their
/// golden output is what `--target-os` prints.
#[test]
fn target_os_plans_are_the_linked_scenarios() {
    for (name, os) in [
        ("launchd_target_os_macos_14", "macos-14"),
        ("launchd_target_os_macos_10_13", "macos-10.13"),
        ("launchd_target_os_binary_name_invalid", "macos-14"),
        ("windows_target_os", "windows"),
        ("windows_unix_binary_invalid", "windows"),
        ("windows_user_invalid", "windows"),
    ] {
        let d = scenarios().join(name);
        let link = std::fs::read_link(d.join("facts.json")).unwrap();
        assert_eq!(
            link,
            Path::new("../../../assets/targets").join(format!("{os}.json")),
            "{name}"
        );
        let out = Lowport::new()
            .args(["plan", "--target-os", os])
            .args(args(name))
            .env("LOWPORT_STATE_DIR", "/nonexistent/lowport-state")
            .run();
        let mut text = format!("exit {}\n{}", out.code.unwrap_or(-1), out.stdout);
        if !out.stderr.is_empty() {
            text.push_str("--- stderr\n");
            text.push_str(&out.stderr);
        }
        let golden = std::fs::read_to_string(d.join("plan.txt")).unwrap();
        assert_eq!(text, golden, "{name}");
    }
}

/// On macOS 10.14 and later the wildcard rule is said before any method, in text and JSON; on
/// 10.13 it is not so, and nothing says it is.
#[test]
fn the_wildcard_rule_is_said_first_from_10_14() {
    let methods = |os: &str, json: bool| {
        Lowport::new()
            .args([
                "methods",
                "--target-os",
                os,
                "--port",
                "80",
                "--port",
                "443",
            ])
            .args(json.then_some("--json"))
            .run()
            .code(0)
    };
    let text = methods("macos-14", false).stdout;
    assert!(
        text.starts_with(
            "already open: on macOS 14.7 (10.14 and later) every user may bind ports 80 and 443 \
             on the wildcard address"
        ),
        "{text}"
    );
    let doc = methods("macos-14", true).json();
    assert!(
        doc["already_open"]
            .as_str()
            .unwrap()
            .contains("specific IPv4 address")
    );
    let old = methods("macos-10.13", true).json();
    assert_eq!(old["already_open"], Value::Null);
    let launchd = old["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "launchd")
        .unwrap();
    assert_eq!(launchd["available"], false);
    assert!(
        launchd["blockers"][0]
            .as_str()
            .unwrap()
            .contains("older than 10.14"),
        "{launchd}"
    );
    assert!(
        !methods("macos-10.13", false)
            .stdout
            .contains("already open")
    );
}
