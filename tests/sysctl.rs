//! sysctl inside a private network namespace: the live value really changes, an unprivileged
//! user really binds port 80, the sysctl.d file appears under --root; rollback restores both.

use crate::subjects::*;
use crate::support::*;

const DROP_IN: &str = "etc/sysctl.d/60-lowport-unprivileged-ports.conf";
/// `plan`'s exit code when everything is already in place.
const NOTHING_TO_DO: i32 = 9;

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

#[test]
fn where_every_user_may_already_bind_it_says_so_first_and_changes_nothing() {
    if !is_root_or_skip("where_every_user_may_already_bind_it_says_so_first_and_changes_nothing") {
        return;
    }
    let t = TestEnv::new();
    let ns = Netns::new();
    // As Docker, Podman and containerd set it inside containers.
    let set = ns.exec(&["sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=0"]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let out = Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args(["plan", "--method", "sysctl", "--port", "80", "--json"])
        .run()
        .code(NOTHING_TO_DO);
    let plan = out.json();
    assert_eq!(plan["steps"], serde_json::json!([]), "{plan:#}");
    let first = plan["warnings"][0].as_str().unwrap();
    assert!(
        first.starts_with("already open: net.ipv4.ip_unprivileged_port_start is 0"),
        "{first}"
    );
    assert!(first.contains("No sysctl.d file sets it"), "{first}");
    // `methods` says it before any method, in text and JSON.
    let out = Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args(["methods", "--port", "80"])
        .run()
        .code(0);
    assert!(
        out.stdout
            .starts_with("already open: net.ipv4.ip_unprivileged_port_start is 0"),
        "{}",
        out.stdout
    );
    let doc = Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args(["methods", "--port", "80", "--json"])
        .run()
        .code(0)
        .json();
    assert!(
        doc["already_open"]
            .as_str()
            .is_some_and(|s| s.contains("may bind port 80")),
        "{doc:#}"
    );
    assert_eq!(ns.sysctl(), "0");
    assert!(!t.root.join(DROP_IN).exists());
}

#[test]
fn a_second_run_for_a_higher_port_keeps_boot_and_live_values_agreeing() {
    if !is_root_or_skip("a_second_run_for_a_higher_port_keeps_boot_and_live_values_agreeing") {
        return;
    }
    let t = TestEnv::new();
    let ns = Netns::new();
    let apply = |port: &str| {
        Lowport::new()
            .netns(&ns)
            .env_dirs(&t)
            .args(["apply", "--method", "sysctl", "--port", port])
            .args(["--yes", "--accept-risk"])
            .run()
    };
    apply("80").code(0);
    apply("443")
        .code(0)
        .stdout_has("already open: net.ipv4.ip_unprivileged_port_start is 80");
    assert_eq!(ns.sysctl(), "80");
    let file = std::fs::read_to_string(t.root.join(DROP_IN)).unwrap();
    assert!(
        file.contains("net.ipv4.ip_unprivileged_port_start = 80\n"),
        "the boot value stays the live one: {file}"
    );
}

#[test]
fn a_later_slash_form_setting_is_seen() {
    let t = TestEnv::new();
    std::fs::create_dir_all(t.root.join("etc/sysctl.d")).unwrap();
    std::fs::write(
        t.root.join("etc/sysctl.d/99-later.conf"),
        "net/ipv4/ip_unprivileged_port_start = 1024\n",
    )
    .unwrap();
    let plan = t
        .lowport()
        .args(["plan", "--method", "sysctl", "--port", "80", "--json"])
        .run()
        .json();
    assert!(
        plan["warnings"]
            .to_string()
            .contains("/etc/sysctl.d/99-later.conf sets it to 1024"),
        "{plan:#}"
    );
}

#[test]
fn with_binary_it_verifies_by_binding_as_the_user_and_go_caddy_and_socat_serve() {
    if !is_root_or_skip(
        "with_binary_it_verifies_by_binding_as_the_user_and_go_and_caddy_serve_on_80",
    ) {
        return;
    }
    let t = TestEnv::new();
    let go = t.install(go_server(), "opt/app/bin/server");
    let ns = Netns::new();
    // The wizard and --profile always name the binary: the proof must still be a bind as the
    // user, not a look for a file capability the sysctl method never sets.
    let out = Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args(["apply", "--method", "sysctl", "--port", "80", "--binary"])
        .arg(&go)
        .args(["--user", "nobody", "--yes", "--accept-risk", "--json"])
        .run()
        .code(0);
    let doc = out.json();
    assert_eq!(doc["verify"]["status"], "verified", "{doc:#}");
    assert!(
        doc["verify"]["checks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("user nobody bound port 80"),
        "{doc:#}"
    );
    Server::start(&ns, &t.host(&go), &[":80".into()]).assert_serves(
        &ns,
        "127.0.0.1",
        80,
        &go_body(80),
    );
    Server::start(&ns, std::path::Path::new(CADDY), &caddy_args(81)).assert_serves(
        &ns,
        "127.0.0.1",
        81,
        "caddy on 81",
    );
    let files = tempfile::tempdir().unwrap();
    set_mode(files.path(), 0o755);
    Server::start(
        &ns,
        std::path::Path::new("/usr/bin/socat"),
        &socat_http(files.path(), 82),
    )
    .assert_serves(&ns, "127.0.0.1", 82, "socat on 82");
}

#[test]
fn a_signal_during_verification_rolls_back() {
    if !is_root_or_skip("a_signal_during_verification_rolls_back") {
        return;
    }
    let t = TestEnv::new();
    let ns = Netns::new();
    let before = tree(&t.root);
    Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .env("LOWPORT_TEST_FAULT", "signal-during-verify:1")
        .args(["apply", "--method", "sysctl", "--port", "80"])
        .args(["--yes", "--accept-risk"])
        .run()
        .code(4)
        .stderr_has("rolling back (interrupted by a signal during verification)")
        .stdout_has("every change was rolled back");
    assert_eq!(ns.sysctl(), "1024");
    assert_eq!(ns.bind_as_nobody(80), "EACCES");
    assert_eq!(tree(&t.root), before);
}

#[test]
fn rollback_from_another_network_namespace_is_refused() {
    if !is_root_or_skip("rollback_from_another_network_namespace_is_refused") {
        return;
    }
    let t = TestEnv::new();
    let (ns, other) = (Netns::new(), Netns::new());
    Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args(["apply", "--method", "sysctl", "--port", "80"])
        .args(["--yes", "--accept-risk"])
        .run()
        .code(0);
    for force in [false, true] {
        Lowport::new()
            .netns(&other)
            .env_dirs(&t)
            .args(["rollback", "--last", "--yes"])
            .args(force.then_some("--force"))
            .run()
            .code(7)
            .stderr_has("network namespace")
            .stderr_has("Nothing was changed");
    }
    assert_eq!(ns.sysctl(), "80", "the run's namespace keeps its change");
    assert_eq!(other.sysctl(), "1024");
    Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(0);
    assert_eq!(ns.sysctl(), "1024");
}

#[test]
fn verify_binds_as_the_service_will_and_reports_a_busy_port_with_its_holder() {
    if !is_root_or_skip("verify_binds_as_the_service_will_and_reports_a_busy_port_with_its_holder")
    {
        return;
    }
    let ns = Netns::new();
    for argv in [
        &["ip", "addr", "add", "10.9.9.9/32", "dev", "lo"][..],
        &["sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=80"],
    ] {
        let out = ns.exec(argv);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let verify = || {
        Lowport::new()
            .netns(&ns)
            .args(["verify", "--user", "nobody", "--port", "80"])
            .run()
    };
    verify().code(0).stdout_has("user nobody bound port 80");
    // Another program on one of the host's own addresses: 127.0.0.1:80 is still free, but the
    // service's wildcard bind would fail.
    let mut other = Server::start(&ns, go_server(), &["10.9.9.9:80".into()]);
    other.assert_serves(&ns, "10.9.9.9", 80, &go_body(80));
    verify()
        .code(8)
        .stdout_has("inconclusive: port 80 is busy (held by lowport-testsrv (pid ");
}
