//! sysctl inside a private network namespace: the live value really changes, an unprivileged
//! user really binds port 80, the sysctl.d file appears under --root; rollback restores both.

use crate::support::*;

const DROP_IN: &str = "etc/sysctl.d/60-lowport-unprivileged-ports.conf";

#[test]
fn sysctl_lowers_the_boundary_and_rollback_restores_it() {
    if !is_root_or_skip("sysctl_lowers_the_boundary_and_rollback_restores_it") {
        return;
    }
    let t = TestEnv::new();
    let ns = Netns::new();
    let before = tree(&t.root);
    assert_eq!(ns.sysctl(), "1024");
    assert_eq!(ns.bind_as_nobody(80), "EACCES");

    let out = Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args([
            "apply", "--method", "sysctl", "--port", "80", "--port", "443",
        ])
        .args(["--yes", "--accept-risk", "--json"])
        .run()
        .code(0);
    let doc = out.json();
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["outcome"]["status"], "applied");
    assert_eq!(doc["verify"]["ok"], true);
    assert_eq!(ns.sysctl(), "80");
    assert_eq!(ns.bind_as_nobody(80), "ok");
    assert_eq!(ns.bind_as_nobody(443), "ok");
    let file = std::fs::read_to_string(t.root.join(DROP_IN)).unwrap();
    assert!(
        file.contains("net.ipv4.ip_unprivileged_port_start = 80\n"),
        "{file}"
    );

    Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(0);
    assert_eq!(ns.sysctl(), "1024");
    assert_eq!(ns.bind_as_nobody(80), "EACCES");
    assert_eq!(
        tree(&t.root),
        before,
        "the root tree is as before, etc/sysctl.d removed"
    );
}

#[test]
fn high_risk_needs_accept_risk_in_scripts() {
    if !is_root_or_skip("high_risk_needs_accept_risk_in_scripts") {
        return;
    }
    let t = TestEnv::new();
    let ns = Netns::new();
    Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args(["apply", "--method", "sysctl", "--port", "80", "--yes"])
        .run()
        .code(3)
        .stderr_has("--accept-risk");
    assert_eq!(ns.sysctl(), "1024");
    assert!(!t.root.join(DROP_IN).exists());
    assert_eq!(t.runs(), 0, "nothing recorded either");
}
