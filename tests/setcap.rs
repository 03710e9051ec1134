//! setcap on a real ELF binary: the capability is really set, an unprivileged user really binds
//! port 80 with it, and rollback really takes it away again.

use std::path::Path;

use crate::subjects::*;
use crate::support::*;

/// Runs the lowport copy at `copy` as nobody inside `ns`, asking it to bind port 80 as itself:
/// a real ELF binding with nothing but its own file capability.
fn bind_as_nobody_with(ns: &Netns, copy: &Path) -> std::process::Output {
    let c = copy.to_str().unwrap();
    ns.exec(&[
        "setpriv",
        "--reuid",
        "nobody",
        "--regid",
        "nogroup",
        "--clear-groups",
        c,
        "verify",
        "--port",
        "80",
        "--user",
        "nobody",
    ])
}

#[test]
fn setcap_grants_a_real_bind_and_rollback_removes_it() {
    if !is_root_or_skip("setcap_grants_a_real_bind_and_rollback_removes_it") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new(BIN), "opt/app/bin/app");
    let host = t.host(&app);
    let ns = Netns::new();
    let before = bind_as_nobody_with(&ns, &host);
    assert_eq!(
        before.status.code(),
        Some(8),
        "nobody must not bind 80 before"
    );
    assert!(String::from_utf8_lossy(&before.stdout).contains("EACCES"));

    t.lowport()
        .args([
            "apply",
            "--method",
            "setcap",
            "--binary",
            app.to_str().unwrap(),
        ])
        .args(["--port", "80", "--user", "nobody", "--yes"])
        .run()
        .code(0)
        .stdout_has("Applied as run")
        .stderr_has("verified");
    assert!(
        getcap(&host).contains("cap_net_bind_service=ep"),
        "getcap: {}",
        getcap(&host)
    );

    let bound = bind_as_nobody_with(&ns, &host);
    assert!(
        bound.status.success(),
        "{}",
        String::from_utf8_lossy(&bound.stdout)
    );
    assert!(String::from_utf8_lossy(&bound.stdout).contains("user nobody bound port 80"));

    t.lowport()
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(0);
    assert_eq!(getcap(&host), "", "capability gone after rollback");
    let after = bind_as_nobody_with(&ns, &host);
    assert_eq!(after.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&after.stdout).contains("EACCES"));
}

#[test]
fn group_restricts_execution_and_rollback_restores_owner_and_mode() {
    if !is_root_or_skip("group_restricts_execution_and_rollback_restores_owner_and_mode") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "usr/local/bin/app");
    let host = t.host(&app);
    let before = tree(&t.root);
    t.lowport()
        .args([
            "apply",
            "--method",
            "setcap",
            "--binary",
            app.to_str().unwrap(),
        ])
        .args([
            "--port", "443", "--group", "nogroup", "--user", "nobody", "--yes",
        ])
        .run()
        .code(0);
    let m = std::fs::metadata(&host).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o750, 0));
    assert_eq!(
        Some(m.gid()),
        nix::unistd::Group::from_name("nogroup")
            .unwrap()
            .map(|g| g.gid.as_raw())
    );
    assert!(getcap(&host).contains("cap_net_bind_service=ep"));
    t.lowport()
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(0);
    assert_eq!(tree(&t.root), before);
}

#[test]
fn symlinked_binary_is_resolved_and_said() {
    if !is_root_or_skip("symlinked_binary_is_resolved_and_said") {
        return;
    }
    let t = TestEnv::new();
    let real = t.install(Path::new("/usr/bin/true"), "opt/app/app-1.2");
    std::fs::create_dir_all(t.root.join("usr/bin")).unwrap();
    std::os::unix::fs::symlink("/opt/app/app-1.2", t.root.join("usr/bin/app")).unwrap();
    let out = t
        .lowport()
        .args([
            "plan",
            "--method",
            "setcap",
            "--binary",
            "/usr/bin/app",
            "--port",
            "80",
            "--json",
        ])
        .run()
        .code(0);
    let plan = out.json();
    let step = &plan["steps"][0]["action"];
    assert_eq!(step["type"], "set_file_cap");
    assert_eq!(step["path"], real.to_str().unwrap());
    let warnings = plan["warnings"].to_string();
    assert!(
        warnings.contains("/usr/bin/app is a symbolic link"),
        "{warnings}"
    );
    // The setcap argv names the host path of the resolved file, never the link.
    let argv = plan["steps"][0]["commands"].to_string();
    assert!(argv.contains(t.host(&real).to_str().unwrap()), "{argv}");
}

#[test]
fn the_static_go_server_caddy_and_socat_serve_http_on_80_as_nobody_after_setcap() {
    if !is_root_or_skip(
        "the_static_go_server_caddy_and_socat_serve_http_on_80_as_nobody_after_setcap",
    ) {
        return;
    }
    let files = tempfile::tempdir().unwrap();
    set_mode(files.path(), 0o755);
    let programs = [
        (go_server(), vec![":80".to_string()], go_body(80)),
        (Path::new(CADDY), caddy_args(80), "caddy on 80".to_string()),
        (
            Path::new("/usr/bin/socat"),
            socat_http(files.path(), 80),
            "socat on 80".to_string(),
        ),
    ];
    for (program, args, body) in programs {
        let t = TestEnv::new();
        let app = t.install(program, "opt/app/bin/server");
        let ns = Netns::new();
        t.lowport()
            .args(["apply", "--method", "setcap", "--binary"])
            .arg(&app)
            .args(["--port", "80", "--user", "nobody", "--yes"])
            .run()
            .code(0);
        Server::start(&ns, &t.host(&app), &args).assert_serves(&ns, "127.0.0.1", 80, &body);
        t.lowport()
            .args(["rollback", "--last", "--yes"])
            .run()
            .code(0);
        // Without the capability the same program cannot serve on 80: it exits at once.
        let host = t.host(&app);
        let mut argv = vec![
            "setpriv",
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            host.to_str().unwrap(),
        ];
        argv.extend(args.iter().map(String::as_str));
        let refused = ns.exec(&argv);
        assert!(
            !refused.status.success(),
            "{program:?} served without the grant"
        );
        assert!(
            String::from_utf8_lossy(&refused.stderr)
                .to_lowercase()
                .contains("permission denied"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
    }
}

#[test]
fn restricting_an_already_marked_binary_with_group_sets_the_capability_again() {
    if !is_root_or_skip("restricting_an_already_marked_binary_with_group_sets_the_capability_again")
    {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(go_server(), "opt/app/bin/server");
    let host = t.host(&app);
    let apply = |extra: &[&str]| {
        t.lowport()
            .args(["apply", "--method", "setcap", "--binary"])
            .arg(&app)
            .args(["--port", "80", "--user", "nobody", "--yes"])
            .args(extra)
            .run()
    };
    apply(&[]).code(0);
    // The chown that restricts execution clears the capability: it must be set again.
    apply(&["--group", "nogroup"])
        .code(0)
        .stderr_has("verified");
    assert!(
        getcap(&host).contains("cap_net_bind_service=ep"),
        "{}",
        getcap(&host)
    );
    let ns = Netns::new();
    Server::start(&ns, &host, &[":80".into()]).assert_serves(&ns, "127.0.0.1", 80, &go_body(80));
}
