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
        .stderr_has("Binary (absolute path or command name) [/opt/app]")
        .stdout_has("write security.capability = cap_net_bind_service=ep on /opt/app")
        .stdout_has("Applied as run");
    assert!(getcap(&t.host(&app)).contains("cap_net_bind_service=ep"));
}

#[test]
fn piped_systemd_reaches_every_service_setting_and_takes_a_method_id() {
    // Planning under --root is read-only; root is needed for a root-owned binary.
    if !is_root_or_skip("piped_systemd_reaches_every_service_setting_and_takes_a_method_id") {
        return;
    }
    let t = TestEnv::new();
    t.install(Path::new("/usr/bin/true"), "opt/app");
    // The method by its id; binary and ports kept; then user, group, service (with the
    // suffix), arguments with a quoted space, dynamic user, writable paths, state directory,
    // JIT, unmask (kept: no); then decline the apply.
    let answers = [
        "systemd",
        "",
        "",
        "",
        "",
        "app.service",
        r#"-cfg "/etc/app/my file.conf" -v"#,
        "yes",
        "/var/log/app /srv/data",
        "app",
        "y",
        "",
        "no",
    ];
    t.lowport()
        .args(["--plain", "--binary", "/opt/app", "--port", "80"])
        .stdin(&(answers.join("\n") + "\n"))
        .run()
        .code(3)
        .stderr_has("Approach [1-7 or a name")
        .stderr_has("Dynamic user (")
        .stderr_has("Allow JIT (")
        .stderr_has("Unmask (")
        .stdout_has("/etc/systemd/system/app.service")
        .stdout_has(r#"+ExecStart=/opt/app -cfg "/etc/app/my file.conf" -v"#)
        .stdout_has("+DynamicUser=yes")
        .stdout_has("+ReadWritePaths=/var/log/app")
        .stdout_has("+ReadWritePaths=/srv/data")
        .stdout_has("+StateDirectory=app")
        .stderr_has("not confirmed; nothing was changed");
    assert!(
        !t.host(Path::new("/etc/systemd/system/app.service"))
            .exists(),
        "declined: nothing written"
    );
    assert_eq!(t.runs(), 0);
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
        .stderr_has("nor one of: systemd, setcap,")
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
