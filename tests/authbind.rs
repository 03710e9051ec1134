//! authbind for real: lowport writes the byport files (under --root), and a dynamically linked
//! program run as nobody through `authbind --deep` really binds port 80 with them. The helper
//! reads /etc/authbind, so the check runs in a private mount namespace where the --root tree's
//! /etc/authbind is mounted there: the host's own is never touched.

use std::path::Path;

use crate::subjects::*;
use crate::support::*;

/// perl binds `port` through the libc `bind()` authbind intercepts; prints ok or the errno name.
fn perl_bind(port: u16) -> String {
    format!(
        "socket(S, PF_INET, SOCK_STREAM, 0) or die; print bind(S, pack_sockaddr_in({port}, \
         INADDR_ANY)) ? 'ok' : ($!{{EACCES}} ? 'EACCES' : \"$!\")"
    )
}

/// Runs `argv` as nobody in `ns`, with `authbind_dir` mounted over /etc/authbind.
/// Runs `argv` in `ns` and a private mount namespace where `authbind_dir` is /etc/authbind.
fn with_authbind_dir(ns: &Netns, authbind_dir: &Path, argv: &[&str]) -> std::process::Output {
    let script = "mount --bind \"$1\" /etc/authbind && shift && exec \"$@\"";
    let dir = authbind_dir.to_str().unwrap();
    let mut cmd = vec!["unshare", "-m", "sh", "-c", script, "sh", dir];
    cmd.extend(argv);
    ns.exec(&cmd)
}

/// Runs `argv` as nobody with `authbind_dir` as /etc/authbind; returns its output.
fn as_nobody_with(ns: &Netns, authbind_dir: &Path, argv: &[&str]) -> String {
    let mut cmd = vec![
        "setpriv",
        "--reuid",
        "nobody",
        "--regid",
        "nogroup",
        "--clear-groups",
    ];
    cmd.extend(argv);
    let out = with_authbind_dir(ns, authbind_dir, &cmd);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_dynamic_program_binds_80_as_nobody_through_authbind() {
    if !is_root_or_skip("a_dynamic_program_binds_80_as_nobody_through_authbind") {
        return;
    }
    let t = TestEnv::new();
    t.install(Path::new("/usr/bin/socat"), "usr/bin/socat");
    let ns = Netns::new();
    let dir = t.root.join("etc/authbind");
    t.lowport()
        .args([
            "apply",
            "--method",
            "authbind",
            "--binary",
            "/usr/bin/socat",
            "--user",
            "nobody",
        ])
        .args(["--port", "80", "--yes"])
        .run()
        .code(0)
        .stdout_has("authbind --deep /usr/bin/socat")
        .stderr_has("/etc/authbind/byport/80 is executable by nobody and only root may change it");
    // nobody cannot open the file to other users.
    let chmod = ns.exec(&[
        "setpriv",
        "--reuid",
        "nobody",
        "--regid",
        "nogroup",
        "--clear-groups",
        "chmod",
        "0555",
        dir.join("byport/80").to_str().unwrap(),
    ]);
    assert!(
        !chmod.status.success(),
        "nobody changed the byport file's mode"
    );
    let deep = ["authbind", "--deep", "perl", "-MSocket", "-e"];
    let with = |port: u16| {
        let script = perl_bind(port);
        let mut argv = deep.to_vec();
        argv.push(&script);
        as_nobody_with(&ns, &dir, &argv)
    };
    assert_eq!(with(80), "ok", "bound 80 through authbind");
    // authbind's helper answers EPERM for a port without a byport file.
    assert_eq!(with(81), "Operation not permitted", "81 has no byport file");
    let script = perl_bind(80);
    assert_eq!(
        as_nobody_with(&ns, &dir, &["perl", "-MSocket", "-e", &script]),
        "EACCES",
        "not without authbind"
    );

    t.lowport()
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(0);
    assert!(!dir.join("byport/80").exists());
}

#[test]
fn static_binaries_are_refused_with_the_reason_and_high_ports_get_the_bang() {
    let t = TestEnv::new();
    t.install(Path::new("/sbin/ldconfig"), "usr/sbin/ldconfig");
    t.install(Path::new("/usr/bin/socat"), "usr/bin/socat");
    t.lowport()
        .args([
            "plan",
            "--method",
            "authbind",
            "--binary",
            "/usr/sbin/ldconfig",
            "--user",
            "nobody",
            "--port",
            "80",
        ])
        .run()
        .code(7)
        .stderr_has("is statically linked");
    let plan = t
        .lowport()
        .args([
            "plan",
            "--method",
            "authbind",
            "--binary",
            "/usr/bin/socat",
            "--user",
            "nobody",
        ])
        .args(["--port", "80", "--port", "873", "--json"])
        .run()
        .code(0)
        .json();
    let paths: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/etc/authbind/byport/80", "/etc/authbind/byport/!873"]
    );
    // Root owns it, so the service user can use it but never chmod it open to others.
    assert_eq!(plan["steps"][1]["action"]["mode"], "0550");
    assert_eq!(plan["steps"][1]["action"]["owner"], "root");
    assert_eq!(plan["steps"][1]["action"]["group"], "nogroup");
    assert!(
        plan["warnings"]
            .to_string()
            .contains("every member of nogroup may bind"),
        "{plan:#}"
    );
}

#[test]
fn verify_binds_through_authbind_as_the_user() {
    if !is_root_or_skip("verify_binds_through_authbind_as_the_user") {
        return;
    }
    let t = TestEnv::new();
    t.install(Path::new("/usr/bin/socat"), "usr/bin/socat");
    // A copy nobody may execute: verify runs itself as nobody under `authbind --deep`.
    let me = t.install(Path::new(BIN), "opt/lowport");
    let me = t.host(&me);
    let ns = Netns::new();
    t.lowport()
        .args([
            "apply",
            "--method",
            "authbind",
            "--binary",
            "/usr/bin/socat",
            "--user",
            "nobody",
        ])
        .args(["--port", "80", "--yes"])
        .run()
        .code(0);
    // On the host's /etc/authbind (here the root's, mounted over it), verify really binds.
    let dir = t.root.join("etc/authbind");
    let verify = |port: &str| {
        let me = me.to_str().unwrap();
        let argv = [
            me,
            "verify",
            "--authbind",
            "--user",
            "nobody",
            "--port",
            port,
        ];
        let out = with_authbind_dir(&ns, &dir, &argv);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = verify("80");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("user nobody bound port 80 through authbind --deep"),
        "{text}"
    );
    let (code, text) = verify("81");
    assert_eq!(code, Some(8), "{text}");
    assert!(
        text.contains("could not bind port 81 through authbind"),
        "{text}"
    );
    // The old service still holds the port: inconclusive, naming it, not a failure.
    let mut old = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "socat",
            "TCP-LISTEN:80,reuseaddr",
            "EXEC:/bin/cat",
        ])
        .spawn()
        .unwrap();
    let mut text = String::new();
    for _ in 0..100 {
        text = verify("80").1;
        if text.contains("busy") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = old.kill();
    let _ = old.wait();
    assert!(
        text.contains("inconclusive: port 80 is busy (held by socat (pid "),
        "{text}"
    );
    assert!(!text.contains("FAIL"), "{text}");
    assert!(
        text.contains("not proven: the inconclusive checks above"),
        "{text}"
    );
}

#[test]
fn both_go_programs_are_refused_with_the_reason_and_really_cannot_use_it() {
    let t = TestEnv::new();
    let go = t.install(go_server(), "opt/app/bin/server");
    t.install(Path::new(CADDY), "usr/bin/caddy");
    for binary in [go.to_str().unwrap(), "/usr/bin/caddy"] {
        t.lowport()
            .args(["plan", "--method", "authbind", "--binary", binary])
            .args(["--user", "nobody", "--port", "80"])
            .run()
            .code(7)
            .stderr_has(&format!(
                "{binary} is a Go program: it makes the bind system call itself"
            ));
    }
    if !is_root_or_skip("both_go_programs_are_refused_with_the_reason_and_really_cannot_use_it") {
        return;
    }
    // The reason holds: with a byport file that lets nobody bind 80 (the one socat gets), caddy
    // (dynamically linked, so the library is preloaded) still gets EACCES from the kernel.
    t.install(Path::new("/usr/bin/socat"), "usr/bin/socat");
    t.lowport()
        .args([
            "apply",
            "--method",
            "authbind",
            "--binary",
            "/usr/bin/socat",
        ])
        .args(["--user", "nobody", "--port", "80", "--yes"])
        .run()
        .code(0);
    let ns = Netns::new();
    let dir = t.root.join("etc/authbind");
    let mut argv = vec!["authbind", "--deep", CADDY];
    let args = caddy_args(80);
    argv.extend(args.iter().map(String::as_str));
    let mut cmd = vec![
        "setpriv",
        "--reuid",
        "nobody",
        "--regid",
        "nogroup",
        "--clear-groups",
        "env",
        "HOME=/nonexistent",
    ];
    cmd.extend(argv);
    let out = with_authbind_dir(&ns, &dir, &cmd);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bind: permission denied"), "{err}");
}
