//! Windows (issue 7): no privileged ports is said before the methods, and the plan is netsh
//! argv vectors (one word per `key=value`, no shell) with a read-only check and an undo, as the
//! PowerShell export and the executor take them.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::*;

#[test]
fn no_privileged_ports_is_said_first() {
    let methods = |json: bool| {
        Lowport::new()
            .args(["methods", "--target-os", "windows", "--port", "443"])
            .args(json.then_some("--json"))
            .run()
            .code(0)
    };
    let text = methods(false).stdout;
    assert!(
        text.starts_with(
            "already open: Windows has no privileged ports: Winsock lets every user bind port 443"
        ),
        "{text}"
    );
    let doc = methods(true).json();
    assert!(
        doc["already_open"]
            .as_str()
            .unwrap()
            .contains("excluded port range")
    );
    assert_eq!(doc["recommended"], "windows");
}

#[test]
fn the_firewall_rule_is_netsh_argv_with_its_check_and_undo() {
    let facts =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/windows_plan/facts.json");
    let plan = Lowport::new()
        .args([
            "plan", "--json", "--method", "windows", "--port", "80", "--port", "443",
        ])
        .args(["--binary", r"C:\fabio\fabio.exe", "--facts"])
        .arg(facts)
        .run()
        .code(0)
        .json();
    assert_eq!(plan["family"], "windows");
    let steps = plan["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1);
    let netsh = r"C:\Windows\System32\netsh.exe";
    let rule = "name=lowport-fabio-tcp-80-443";
    let fw = [netsh, "advfirewall", "firewall"];
    let argv = |rest: &[&str]| -> Value { json!(fw.iter().chain(rest).collect::<Vec<_>>()) };
    let a = &steps[0]["action"];
    assert_eq!(a["type"], "run_commands");
    assert_eq!(
        a["run"],
        json!([argv(&[
            "add",
            "rule",
            rule,
            "dir=in",
            "action=allow",
            r"program=C:\fabio\fabio.exe",
            "protocol=TCP",
            "localport=80,443",
            "profile=any",
        ])])
    );
    assert_eq!(a["undo"], json!([argv(&["delete", "rule", rule])]));
    assert_eq!(a["check"], argv(&["show", "rule", rule]));
    assert_eq!(plan["verify"]["ports"], json!([80, 443]));
}
