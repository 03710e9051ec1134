//! Plain mode: the same flow as line prompts, driven by piped input and, with dialoguer's
//! prompts, in a real terminal; and the scripted form that asks nothing.

use std::path::Path;

use crate::support::*;

#[test]
fn piped_answers_walk_the_flow_and_apply() {
    if !is_root_or_skip("piped_answers_walk_the_flow_and_apply") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    // Approach 2 (setcap), keep binary and ports, no user or group, then confirm.
    t.lowport()
        .args(["--plain", "--binary", "/opt/app", "--port", "80"])
        .stdin("2\n\n\n\n\nyes\n")
        .run()
        .code(0)
        .stderr_has("Approach [1-")
        .stderr_has("Binary (path or command name, empty for none) [/opt/app]")
        .stdout_has("runs: /usr/sbin/setcap 'cap_net_bind_service=+ep'")
        .stdout_has("Applied as run");
    assert!(getcap(&t.host(&app)).contains("cap_net_bind_service=ep"));
}

#[test]
fn piped_answers_are_validated_and_asked_again() {
    // lowport refuses binaries and trees a non-root user owns: this needs root-owned files.
    if !is_root_or_skip("piped_answers_are_validated_and_asked_again") {
        return;
    }
    let t = TestEnv::new();
    t.install(Path::new("/usr/bin/true"), "opt/app");
    let out = t
        .lowport()
        .args(["--plain", "--binary", "/opt/app"])
        .stdin("99\n2\n\n80 99999\n80\n\n\nno\n")
        .run()
        .code(3)
        .stderr_has("'99' is not one of 1 to")
        .stderr_has("port 99999 is out of range");
    assert!(out.stderr.contains("not confirmed; nothing was changed"));
    assert_eq!(t.runs(), 0, "declined before anything was recorded");
}

#[test]
fn piped_high_risk_needs_accept_risk() {
    if !is_root_or_skip("piped_high_risk_needs_accept_risk") {
        return;
    }
    let t = TestEnv::new();
    let ns = Netns::new();
    Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args(["--plain", "--method", "sysctl", "--port", "80"])
        .stdin("\n\n\n\nyes\n")
        .run()
        .code(3)
        .stderr_has("--accept-risk");
    assert_eq!(ns.sysctl(), "1024");
}

#[test]
fn yes_with_every_flag_asks_nothing() {
    if !is_root_or_skip("yes_with_every_flag_asks_nothing") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    t.lowport()
        .args([
            "--yes", "--method", "setcap", "--binary", "/opt/app", "--port", "80",
        ])
        .run()
        .code(0)
        .stdout_has("Applied as run");
    assert!(getcap(&t.host(&app)).contains("cap_net_bind_service=ep"));
    t.lowport()
        .args(["--yes", "--port", "80"])
        .run()
        .code(2)
        .stderr_has("--yes needs --method");
}
