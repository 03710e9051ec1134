//! "Without root, everything up to Preview works": run as the real user nobody (setpriv), never
//! mocked. Whatever nobody cannot read is unknown in the plan, not an error; what cannot be
//! answered without root says so and fails.

use std::path::Path;

use crate::support::*;

/// A root whose account files are as on a real host: shadow and gshadow readable by root only.
fn env_with_shadow() -> (TestEnv, std::path::PathBuf) {
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    for f in ["etc/shadow", "etc/gshadow"] {
        let p = t.root.join(f);
        std::fs::write(&p, "root:*:19000:0:99999:7:::\n").unwrap();
        set_mode(&p, 0o600);
    }
    (t, app)
}

#[test]
fn plan_systemd_as_nobody_reads_shadow_as_unknown_and_applies_later_as_root() {
    if !is_root_or_skip("plan_systemd_as_nobody_reads_shadow_as_unknown_and_applies_later_as_root")
    {
        return;
    }
    let (t, app) = env_with_shadow();
    let out_dir = tempfile::tempdir().unwrap();
    set_mode(out_dir.path(), 0o1777);
    let saved = out_dir.path().join("plan.json");
    let plan = [
        "plan",
        "--method",
        "systemd",
        "--binary",
        app.to_str().unwrap(),
        "--port",
        "80",
        "--user",
        "svc-lowport-t",
        "--out",
        saved.to_str().unwrap(),
    ];
    t.lowport()
        .by_nobody()
        .args(plan)
        .run()
        .code(0)
        .stdout_has("create system user svc-lowport-t")
        .stdout_has(&format!(
            "apply it with: sudo chown root: {}",
            saved.display()
        ))
        .stdout_has(&format!(
            "&& sudo {BIN} --root {} --state-dir {} apply --plan {}",
            t.root.display(),
            t.state.display(),
            saved.display()
        ));
    // The file is nobody's: apply refuses it until root owns it, as the hint says.
    let apply = || {
        t.lowport()
            .args(["apply", "--plan", saved.to_str().unwrap(), "--dry-run"])
            .run()
    };
    apply()
        .code(7)
        .stderr_has("someone other than root could have written it");
    std::os::unix::fs::chown(&saved, Some(0), Some(0)).unwrap();
    // The saved plan is what root applies: the state nobody could not read is read now, and
    // every check passes (a dry run changes nothing).
    t.lowport()
        .args(["apply", "--plan", saved.to_str().unwrap(), "--dry-run"])
        .run()
        .code(0)
        .stdout_has("Dry run: every check passed");
    assert_eq!(t.runs(), 0);
}

#[test]
fn history_on_an_unreadable_state_dir_says_so() {
    if !is_root_or_skip("history_on_an_unreadable_state_dir_says_so") {
        return;
    }
    let t = TestEnv::new();
    // No state directory yet: no runs, as before.
    t.lowport()
        .by_nobody()
        .arg("history")
        .run()
        .code(0)
        .stdout_has("No runs recorded");
    std::fs::create_dir_all(t.state.join("runs")).unwrap();
    set_mode(&t.state, 0o700);
    set_mode(&t.state.join("runs"), 0o700);
    let out = t
        .lowport()
        .by_nobody()
        .arg("history")
        .run()
        .code(7)
        .stderr_has("Permission denied");
    assert!(!out.stdout.contains("No runs recorded"), "{}", out.stdout);
    t.lowport()
        .by_nobody()
        .args(["history", "--json"])
        .run()
        .code(7);
}

#[test]
fn rollback_json_prints_a_document_on_every_failure() {
    if !is_root_or_skip("rollback_json_prints_a_document_on_every_failure") {
        return;
    }
    let t = TestEnv::new();
    let check = |out: Output, code: i32, says: &str| {
        let out = out.code(code);
        let doc = out.json();
        assert_eq!(doc["format_version"], 1, "{doc}");
        assert_eq!(doc["outcome"]["status"], "error", "{doc}");
        assert_eq!(doc["outcome"]["exit"], code, "{doc}");
        let message = doc["outcome"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    };
    let rollback = |args: &[&str]| t.lowport().arg("rollback").args(args).arg("--json");
    check(
        rollback(&["20991231T000000Z-0000", "--yes"]).run(),
        2,
        "no run",
    );
    check(rollback(&["--last", "--yes"]).run(), 7, "no run left");
    check(rollback(&["--last", "--yes"]).by_nobody().run(), 7, "root");
    check(rollback(&["--yes"]).run(), 2, "--last");
    // Held lock: exit 6, and a document too.
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    t.lowport()
        .args([
            "apply",
            "--method",
            "setcap",
            "--binary",
            app.to_str().unwrap(),
        ])
        .args(["--port", "80", "--yes"])
        .run()
        .code(0);
    let holder = hold_lock(&t);
    check(rollback(&["--last", "--yes"]).run(), 6, "");
    drop(holder);
    // Declined (no --yes, no answer): exit 3 with a document; then done, then already done.
    check(
        rollback(&["--last"]).stdin("no\n").run(),
        3,
        "not confirmed",
    );
    rollback(&["--last", "--yes"]).run().code(0);
    let h = t.lowport().args(["history", "--json"]).run().code(0).json();
    let id = h["runs"][0]["id"].as_str().unwrap().to_string();
    let doc = rollback(&[&id, "--yes"]).run().code(0).json();
    assert_eq!(doc["outcome"]["status"], "already_rolled_back", "{doc}");
    assert_eq!(doc["format_version"], 1);
}

#[test]
fn methods_json_names_the_recommended_method() {
    let t = TestEnv::new();
    let doc = t
        .lowport()
        .args(["methods", "--port", "80", "--json"])
        .run()
        .code(0)
        .json();
    let methods = doc["methods"].as_array().unwrap();
    let first_available = methods.iter().find(|m| m["available"] == true);
    assert_eq!(
        doc["recommended"],
        first_available.map_or(serde_json::Value::Null, |m| m["id"].clone()),
        "{doc}"
    );
}
