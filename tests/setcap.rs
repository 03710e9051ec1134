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
    // The step names the resolved file, never the link, and runs no program.
    let summary = plan["steps"][0]["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(" on {}, ", real.display())),
        "{summary}"
    );
    assert_eq!(plan["steps"][0]["commands"], serde_json::json!([]));
}

#[test]
fn malformed_elf_binaries_are_refused_without_a_panic() {
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app/app");
    let host = t.host(&app);
    let whole = std::fs::read(&host).unwrap();
    let patched = |off: usize, bytes: &[u8]| {
        let mut b = whole.clone();
        b[off..off + bytes.len()].copy_from_slice(bytes);
        b
    };
    // /usr/bin/true is a 64-bit ELF: e_phoff at 32, e_phentsize at 54, e_shoff at 40.
    let cases = [
        ("truncated header", whole[..40].to_vec()),
        ("truncated program headers", whole[..100].to_vec()),
        ("program header size 1", patched(54, &[1, 0])),
        (
            "program headers at a huge offset",
            patched(32, &u64::MAX.to_le_bytes()),
        ),
        (
            "garbage after the magic",
            [&whole[..4], &[0xa5; 200][..]].concat(),
        ),
    ];
    for (what, bytes) in cases {
        std::fs::write(&host, &bytes).unwrap();
        t.lowport()
            .args(["detect", "--binary", "/opt/app/app", "--port", "80"])
            .run()
            .code(0)
            .stdout_has("not an executable format lowport knows");
        let out = t
            .lowport()
            .args(["plan", "--method", "setcap", "--binary", "/opt/app/app"])
            .args(["--port", "80"])
            .run()
            .code(7)
            .stderr_has("/opt/app/app is not an ELF executable");
        assert_eq!(out.signal, None, "{what}");
    }
    // The section headers only tell Go apart: a file the kernel can run stays an ELF.
    std::fs::write(&host, patched(40, &u64::MAX.to_le_bytes())).unwrap();
    t.lowport()
        .args(["detect", "--binary", "/opt/app/app", "--port", "80"])
        .run()
        .code(0)
        .stdout_has("Kind:    ELF, dynamic");
}

/// Starts `apply --method setcap` on /opt/app/app without `--yes`, waits until it asks for
/// confirmation (the plan was made and shown), lets `change` act on the file as another user
/// could in that moment, then confirms. Returns (exit code, stdout + stderr).
fn apply_with_change_at_the_prompt(t: &TestEnv, change: impl FnOnce(&Path)) -> (i32, String) {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(&t.root)
        .arg("--state-dir")
        .arg(&t.state)
        .args(["apply", "--method", "setcap", "--binary", "/opt/app/app"])
        .args(["--port", "80"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("Type 'yes' to continue") {
        let n = stderr.read(&mut buf).unwrap();
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    change(&t.host(Path::new("/opt/app/app")));
    child.stdin.take().unwrap().write_all(b"yes\n").unwrap();
    stderr.read_to_end(&mut seen).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&seen);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn a_file_changed_after_the_review_is_not_marked() {
    if !is_root_or_skip("a_file_changed_after_the_review_is_not_marked") {
        return;
    }
    // Unchanged: marked, with exactly the bytes `setcap cap_net_bind_service=+ep` writes.
    let t = TestEnv::new();
    t.install(Path::new("/usr/bin/true"), "opt/app/app");
    let (code, text) = apply_with_change_at_the_prompt(&t, |_| {});
    assert_eq!(code, 0, "{text}");
    let app = t.host(Path::new("/opt/app/app"));
    let ours = lowport::xattr::get(&app, "security.capability").unwrap();
    let reference = t.host(&t.install(Path::new("/usr/bin/true"), "opt/reference"));
    let ok = std::process::Command::new("setcap")
        .arg("cap_net_bind_service=+ep")
        .arg(&reference)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    assert_eq!(
        ours,
        lowport::xattr::get(&reference, "security.capability").unwrap()
    );
    assert_eq!(
        getcap(&app).split_whitespace().last(),
        Some("cap_net_bind_service=ep")
    );

    type Change = fn(&Path);
    let cases: [(&str, Change, &str); 4] = [
        (
            "swapped for another program",
            |p| {
                let other = p.with_file_name("other");
                std::fs::copy("/usr/bin/false", &other).unwrap();
                std::fs::rename(&other, p).unwrap();
            },
            "replaced or written to since the plan was made",
        ),
        (
            "written to in place",
            |p| {
                let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
                std::io::Write::write_all(&mut f, b"\0").unwrap();
            },
            "replaced or written to since the plan was made",
        ),
        (
            "made writable by its group",
            |p| set_mode(p, 0o775),
            "now owned by uid 0 with mode 0775",
        ),
        (
            "replaced by a symlink to the reviewed file",
            |p| {
                let real = p.with_file_name("real");
                std::fs::rename(p, &real).unwrap();
                std::os::unix::fs::symlink(&real, p).unwrap();
            },
            "cannot be opened as a file",
        ),
    ];
    for (what, change, why) in cases {
        let t = TestEnv::new();
        t.install(Path::new("/usr/bin/true"), "opt/app/app");
        let (code, text) = apply_with_change_at_the_prompt(&t, change);
        assert_eq!(code, 4, "{what}: failed and rolled back\n{text}");
        assert!(
            text.contains("refusing to set the capability"),
            "{what}: {text}"
        );
        assert!(text.contains(why), "{what}: {text}");
        // Nothing under the root carries a capability: not the path, not what it points to.
        for (path, snap) in tree(&t.root) {
            assert!(
                !snap.xattrs.contains_key("security.capability"),
                "{what}: {} was marked",
                path.display()
            );
        }
    }
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
