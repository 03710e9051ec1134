//! How runs behave: idempotence, plan exit codes, saved plans and their staleness, the lock,
//! edited files on rollback, history, and the JSON documents scripts rely on.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn setcap_args(app: &Path) -> Vec<String> {
    [
        "--method",
        "setcap",
        "--binary",
        app.to_str().unwrap(),
        "--port",
        "80",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn second_apply_changes_nothing_and_plan_says_nothing_to_do() {
    if !is_root_or_skip("second_apply_changes_nothing_and_plan_says_nothing_to_do") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    t.lowport()
        .arg("plan")
        .args(setcap_args(&app))
        .run()
        .code(0)
        .stdout_has("1 to change");
    t.lowport()
        .arg("apply")
        .args(setcap_args(&app))
        .arg("--yes")
        .run()
        .code(0);
    let after = tree(&t.root);
    t.lowport()
        .arg("plan")
        .args(setcap_args(&app))
        .run()
        .code(9)
        .stdout_has("already in place");
    t.lowport()
        .arg("apply")
        .args(setcap_args(&app))
        .arg("--yes")
        .run()
        .code(0)
        .stdout_has("Nothing to do");
    assert_eq!(tree(&t.root), after);
    let h = t.lowport().args(["history", "--json"]).run().code(0).json();
    assert_eq!(
        h["runs"].as_array().unwrap().len(),
        1,
        "the no-op apply recorded no run"
    );
    assert_eq!(h["runs"][0]["status"], "applied");
    assert_eq!(h["runs"][0]["who"]["user"], "root");
}

#[test]
fn saved_plan_applies_exactly_and_a_stale_one_is_refused() {
    if !is_root_or_skip("saved_plan_applies_exactly_and_a_stale_one_is_refused") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let plan: PathBuf = t.state.with_file_name("plan.json");
    t.lowport()
        .arg("plan")
        .args(setcap_args(&app))
        .arg("--out")
        .arg(&plan)
        .run()
        .code(0);
    // The host drifts: someone changes the binary's mode after the plan was made.
    set_mode(&t.host(&app), 0o700);
    let before = tree(&t.root);
    t.lowport()
        .args(["apply", "--yes", "--plan"])
        .arg(&plan)
        .run()
        .code(7)
        .stderr_has("stale")
        .stderr_has("changed since the plan was made");
    assert_eq!(tree(&t.root), before);
    // Made again on the current state, it applies.
    t.lowport()
        .arg("plan")
        .args(setcap_args(&app))
        .arg("--out")
        .arg(&plan)
        .run()
        .code(0);
    t.lowport()
        .args(["apply", "--yes", "--plan"])
        .arg(&plan)
        .run()
        .code(0);
    assert!(getcap(&t.host(&app)).contains("cap_net_bind_service=ep"));
}

#[test]
fn a_plan_without_its_verification_target_is_stale() {
    if !is_root_or_skip("a_plan_without_its_verification_target_is_stale") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let plan: PathBuf = t.state.with_file_name("plan.json");
    t.lowport()
        .arg("plan")
        .args(setcap_args(&app))
        .arg("--out")
        .arg(&plan)
        .run()
        .code(0);
    // As an older lowport saved it: no `verify`. It loads (so do runs journaled then), but it
    // cannot run without saying what it proves.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    doc.as_object_mut().unwrap().remove("verify");
    std::fs::write(&plan, doc.to_string()).unwrap();
    t.lowport()
        .args(["apply", "--yes", "--plan"])
        .arg(&plan)
        .run()
        .code(7)
        .stderr_has("what it would verify is no longer the same");
    assert_eq!(getcap(&t.host(&app)), "");
}

#[test]
fn a_tampered_saved_plan_is_refused() {
    // lowport refuses binaries and trees a non-root user owns: this needs root-owned files.
    if !is_root_or_skip("a_tampered_saved_plan_is_refused") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let plan = t.state.with_file_name("plan.json");
    t.lowport()
        .arg("plan")
        .args(setcap_args(&app))
        .arg("--out")
        .arg(&plan)
        .run()
        .code(0);
    let text = std::fs::read_to_string(&plan).unwrap();
    // Point the capability at another file without changing the request.
    let edited = text.replacen("\"path\": \"/opt/app\"", "\"path\": \"/etc/passwd\"", 1);
    assert_ne!(text, edited);
    std::fs::write(&plan, edited).unwrap();
    t.lowport()
        .args(["apply", "--yes", "--dry-run", "--plan"])
        .arg(&plan)
        .run()
        .code(7)
        .stderr_has("no longer the same");
}

#[test]
fn a_second_run_is_refused_while_the_lock_is_held() {
    if !is_root_or_skip("a_second_run_is_refused_while_the_lock_is_held") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let holder = hold_lock(&t);
    let before = tree(&t.root);
    let out = t
        .lowport()
        .arg("apply")
        .args(setcap_args(&app))
        .arg("--yes")
        .run();
    drop(holder);
    out.code(6).stderr_has("holds the lock");
    assert_eq!(tree(&t.root), before);
    assert_eq!(getcap(&t.host(&app)), "");
}

#[test]
fn a_run_in_progress_is_reported_as_the_lock_not_as_unfinished() {
    if !is_root_or_skip("a_run_in_progress_is_reported_as_the_lock_not_as_unfinished") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    // A run that is still going has an open journal, exactly like one killed half-way; what
    // tells them apart is that its process holds the lock.
    t.lowport()
        .arg("apply")
        .args(setcap_args(&app))
        .arg("--yes")
        .env("LOWPORT_TEST_FAULT", "kill-before:1")
        .run()
        .killed();
    let holder = hold_lock(&t);
    let out = t
        .lowport()
        .arg("apply")
        .args(setcap_args(&app))
        .arg("--yes")
        .run();
    drop(holder);
    out.code(6).stderr_has("holds the lock");
    // Once the lock is free, the unfinished run is what refuses.
    t.lowport()
        .arg("apply")
        .args(setcap_args(&app))
        .arg("--yes")
        .run()
        .code(7)
        .stderr_has("unfinished");
}

#[test]
fn a_signal_at_the_confirmation_ends_lowport_and_changes_nothing() {
    if !is_root_or_skip("a_signal_at_the_confirmation_ends_lowport_and_changes_nothing") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(&t.root)
        .arg("--state-dir")
        .arg(&t.state)
        .arg("apply")
        .args(setcap_args(&app))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it asks (the prompt is on stderr), then signal it. SIGTERM rather than SIGINT:
    // a shell starts background jobs with SIGINT ignored, and they pass that on.
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("Type 'yes'") {
        let n = std::io::Read::read(&mut stderr, &mut buf).unwrap();
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(15),
        "{status:?}: the signal ends the prompt"
    );
    assert_eq!(t.runs(), 0);
    assert_eq!(getcap(&t.host(&app)), "");
}

#[test]
fn rollback_refuses_to_clobber_an_edited_file_unless_forced() {
    if !is_root_or_skip("rollback_refuses_to_clobber_an_edited_file_unless_forced") {
        return;
    }
    let t = TestEnv::new();
    let ns = Netns::new();
    let apply = [
        "apply",
        "--method",
        "sysctl",
        "--port",
        "80",
        "--yes",
        "--accept-risk",
    ];
    Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args(apply)
        .run()
        .code(0);
    let file = t
        .root
        .join("etc/sysctl.d/60-lowport-unprivileged-ports.conf");
    std::fs::write(&file, "# edited by the operator\n").unwrap();
    Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(7)
        .stderr_has("/etc/sysctl.d/60-lowport-unprivileged-ports.conf")
        .stderr_has("--force");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "# edited by the operator\n"
    );
    assert_eq!(ns.sysctl(), "80", "refused means nothing was undone");
    Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args(["rollback", "--last", "--yes", "--force"])
        .run()
        .code(0);
    assert!(!file.exists());
    assert_eq!(ns.sysctl(), "1024");
    // Rolling back again is a no-op that says so.
    let h = t.lowport().args(["history", "--json"]).run().code(0).json();
    let id = h["runs"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(h["runs"][0]["status"], "rolled_back");
    Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args(["rollback", &id, "--yes"])
        .run()
        .code(0)
        .stdout_has("already rolled back");
}

#[test]
fn apply_as_a_normal_user_is_refused_and_changes_nothing() {
    if !is_root_or_skip("apply_as_a_normal_user_is_refused_and_changes_nothing") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            BIN,
        ])
        .arg("--root")
        .arg(&t.root)
        .arg("--state-dir")
        .arg(&t.state)
        .arg("apply")
        .args(setcap_args(&app))
        .arg("--yes")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs root"));
    assert_eq!(getcap(&t.host(&app)), "");
}

#[test]
fn confirmation_is_required_without_yes() {
    if !is_root_or_skip("confirmation_is_required_without_yes") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    t.lowport()
        .arg("apply")
        .args(setcap_args(&app))
        .stdin("no\n")
        .run()
        .code(3);
    assert_eq!(getcap(&t.host(&app)), "");
    t.lowport()
        .arg("apply")
        .args(setcap_args(&app))
        .stdin("yes\n")
        .run()
        .code(0);
    assert!(getcap(&t.host(&app)).contains("cap_net_bind_service"));
}

#[test]
fn read_commands_carry_format_version() {
    // Any user: nothing here needs a binary, whose files would have to be root's.
    let t = TestEnv::new();
    let facts = t.state.with_file_name("facts.json");
    let detected = t
        .lowport()
        .args(["detect", "--port", "80", "--method", "sysctl", "--json"])
        .run();
    std::fs::write(&facts, &detected.stdout).unwrap();
    let f = facts.to_str().unwrap();
    for args in [
        vec!["detect", "--port", "80", "--json"],
        vec!["methods", "--port", "80", "--json"],
        vec!["methods", "--port", "80", "--facts", f, "--json"],
        vec!["plan", "--method", "sysctl", "--port", "80", "--json"],
        vec![
            "plan", "--method", "sysctl", "--port", "80", "--facts", f, "--json",
        ],
        vec!["history", "--json"],
    ] {
        let out = t.lowport().args(&args).run();
        assert!(
            matches!(out.code, Some(0) | Some(9)),
            "{args:?}: {}",
            out.stderr
        );
        assert_eq!(out.json()["format_version"], 1, "{args:?}");
    }
}

#[test]
fn methods_mark_a_script_unavailable_with_the_reason() {
    let t = TestEnv::new();
    let dir = t.root.join("opt");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("run.sh"), "#!/bin/sh\nexec true\n").unwrap();
    set_mode(&dir.join("run.sh"), 0o755);
    let out = t
        .lowport()
        .args([
            "methods",
            "--binary",
            "/opt/run.sh",
            "--port",
            "80",
            "--json",
        ])
        .run()
        .code(0);
    let methods = out.json()["methods"].clone();
    let setcap = methods
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "setcap")
        .unwrap()
        .clone();
    assert_eq!(setcap["available"], false);
    assert!(
        setcap["blockers"]
            .to_string()
            .contains("is a script run by /bin/sh"),
        "{setcap}"
    );
    t.lowport()
        .args([
            "plan",
            "--method",
            "setcap",
            "--binary",
            "/opt/run.sh",
            "--port",
            "80",
        ])
        .run()
        .code(7)
        .stderr_has("unavailable");
}

#[test]
fn methods_assess_another_host_from_its_facts() {
    let t = TestEnv::new();
    let out = t.lowport().args(["detect", "--json"]).run().code(0);
    let mut facts = out.json();
    // An old host: kernel 3.10, no ip_unprivileged_port_start, systemd 219.
    facts["os"]["kernel"] = "3.10.0-1160.el7.x86_64".into();
    facts["unprivileged_port_start"] = serde_json::Value::Null;
    facts["init"] =
        serde_json::json!({ "pid1": "systemd", "systemd": true, "systemd_version": 219 });
    facts["tools"]["systemctl"] = "/usr/bin/systemctl".into();
    // And no `nobody` in its user database: methods judge accounts from the facts, not from here.
    assert!(facts["accounts"]["users"]["nobody"].is_object());
    facts["accounts"]["users"]["nobody"] = serde_json::Value::Null;
    let file = t.state.with_file_name("old-host.json");
    std::fs::write(&file, facts.to_string()).unwrap();
    let out = t
        .lowport()
        .args(["methods", "--port", "80", "--json", "--facts"])
        .arg(&file)
        .run()
        .code(0);
    let list = out.json()["methods"].clone();
    let blockers = |id: &str| {
        let m = list
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap()
            .clone();
        assert_eq!(m["available"], false, "{id}");
        m["blockers"].to_string()
    };
    assert!(blockers("systemd").contains("systemd 219 is too old"));
    assert!(blockers("sysctl").contains("needs Linux 4.11"));
    assert!(
        blockers("sysctl").contains("user 'nobody'"),
        "{}",
        blockers("sysctl")
    );
    std::fs::write(&file, "{}").unwrap();
    t.lowport()
        .args(["methods", "--facts"])
        .arg(&file)
        .run()
        .code(2)
        .stderr_has("is not a lowport facts document");
}

/// A reader that has gone (`lowport … | head`) is no reason to panic: the output is dropped,
/// the command carries on and exits with its own code. Before, printing hit EPIPE and panicked.
#[test]
fn a_closed_stdout_is_no_panic() {
    for args in [
        &["methods", "--json", "--port", "80"][..],
        &["methods", "--port", "80"],
        &["--help"],
        &["plan", "--method", "sysctl", "--port", "80", "--json"],
    ] {
        let (read, write) = nix::unistd::pipe().unwrap();
        // The read end closed before lowport writes: every write fails with EPIPE.
        drop(read);
        let out = Command::new(BIN)
            .args(args)
            .env("LOWPORT_STATE_DIR", "/nonexistent/lowport-state")
            .stdout(std::process::Stdio::from(std::fs::File::from(write)))
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}
