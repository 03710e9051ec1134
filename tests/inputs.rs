//! Bad input is refused with exit code 2 and a message naming what was wrong, before anything on
//! the host is read for writing or changed: no state directory, no file touched.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::*;

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A saved plan whose request is `request` (otherwise well-formed), written where `apply --plan`
/// reads it; returns its path as a string.
fn forged_plan(t: &TestEnv, name: &str, request: serde_json::Value) -> String {
    // This host's name, so only the request can be what refuses it.
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let hostname = hostname.trim();
    let plan = json!({
        "format_version": 1, "method": "systemd", "title": "t", "risk": "low",
        "request": request, "root": t.root, "hostname": hostname, "fingerprint": "sha256:0",
        "warnings": [], "steps": []
    });
    let path = t.state.with_file_name(name);
    std::fs::write(&path, plan.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

fn request(extra: serde_json::Value) -> serde_json::Value {
    let mut r = json!({
        "method": "systemd", "binary": "/opt/app", "ports": [80], "user": null, "group": null,
        "service": { "name": null, "dynamic_user": false, "args": [], "writable": [],
                     "state_directory": null, "allow_jit": false }
    });
    for (k, v) in extra.as_object().unwrap() {
        match k.as_str() {
            "name" | "args" | "writable" | "state_directory" => r["service"][k] = v.clone(),
            _ => r[k] = v.clone(),
        }
    }
    r
}

/// Classes 1, 3 and 10 of issue 11: values that would break the syntax of a file lowport
/// writes, unit names systemd would not accept, and saved plans whose request is not what the
/// command line would accept. Each is refused with exit 2.
fn trust_cases(t: &TestEnv, app: &str) -> Vec<(Vec<String>, &'static str)> {
    let systemd = |extra: &[&str]| -> Vec<String> {
        let mut v = strings(&[
            "plan", "--method", "systemd", "--binary", app, "--port", "80",
        ]);
        v.extend(strings(extra));
        v
    };
    // A binary reached through a symlink whose target's name holds a newline and a directive.
    let evil = "opt/evil\nExecStartPre=+run";
    std::fs::copy("/usr/bin/true", t.root.join(evil)).unwrap();
    set_mode(&t.root.join(evil), 0o755);
    std::os::unix::fs::symlink(Path::new("/").join(evil), t.root.join("opt/link")).unwrap();
    let long = format!("{}x", "a".repeat(247));
    let plan = |name: &str, extra: serde_json::Value| {
        vec![
            "apply".to_string(),
            "--yes".into(),
            "--plan".into(),
            forged_plan(t, name, request(extra)),
        ]
    };
    vec![
        // Class 3: every value reaching a unit file is checked for the unit's syntax.
        (
            systemd(&["--writable", "/srv\nExecStartPre=+/bin/sh"]),
            "control character",
        ),
        (systemd(&["--writable", "/srv data"]), "contains ' '"),
        (systemd(&["--writable", "/srv\"x"]), "separator or quote"),
        (systemd(&["--writable", "/srv\\"]), "separator or quote"),
        (systemd(&["--writable", "srv"]), "not an absolute path"),
        (
            systemd(&["--arg", "-x\nExecStartPre=+/bin/sh"]),
            "control character",
        ),
        (systemd(&["--arg", "\u{1b}[2J"]), "control character"),
        (systemd(&["--arg", "a\rb"]), "control character"),
        (
            systemd(&["--state-directory", "../etc"]),
            "not a state directory",
        ),
        (
            systemd(&["--state-directory", "/var/lib/x"]),
            "not a state directory",
        ),
        (
            systemd(&["--state-directory", "a b"]),
            "not a state directory",
        ),
        (
            systemd(&["--profile", "fabio", "--config", "/etc/f\u{7}.properties"]),
            "control character",
        ),
        (
            strings(&[
                "plan",
                "--method",
                "systemd",
                "--binary",
                "/opt/link",
                "--port",
                "80",
            ]),
            "the binary's resolved path",
        ),
        // Class 10: unit names as systemd's unit_name_is_valid() has them.
        (systemd(&["--service", "@"]), "nothing comes before '@'"),
        (systemd(&["--service", "foo@"]), "a template"),
        (systemd(&["--service", "foo@.service"]), "a template"),
        (systemd(&["--service", "@x"]), "nothing comes before '@'"),
        (systemd(&["--service", "a@b@c"]), "more than one '@'"),
        (systemd(&["--service", "a/b"]), "is not allowed"),
        (systemd(&["--service", "a b"]), "is not allowed"),
        (systemd(&["--service", ".x"]), "must not start"),
        (systemd(&["--service", long.as_str()]), "at most 255 bytes"),
        (
            strings(&["verify", "--port", "80", "--service", "foo@"]),
            "a template",
        ),
        // Class 1: a saved plan's request passes exactly the command line's checks.
        (
            plan("args.json", json!({ "args": ["x\nExecStartPre=+/bin/sh"] })),
            "the plan's request is invalid",
        ),
        (
            plan("name.json", json!({ "name": "../../etc/evil" })),
            "is not allowed",
        ),
        (plan("at.json", json!({ "name": "foo@" })), "a template"),
        (
            plan("bin.json", json!({ "binary": "../x" })),
            "relative path",
        ),
        (
            plan("port0.json", json!({ "ports": [0] })),
            "0 is not a port",
        ),
        (
            plan("port2000.json", json!({ "ports": [2000] })),
            "needs no grant",
        ),
        (
            plan("user.json", json!({ "user": "root;id" })),
            "contains ';'",
        ),
        (
            plan(
                "writable.json",
                json!({ "writable": ["/srv\nExecStartPre=+/bin/sh"] }),
            ),
            "control character",
        ),
        (
            plan("dots.json", json!({ "writable": ["/srv/../etc"] })),
            "contains '..'",
        ),
        (
            plan("state.json", json!({ "state_directory": "../../etc" })),
            "not a state directory",
        ),
        // The plan says systemd, its request asks for setcap: edited, whichever was meant.
        (
            plan("two-methods.json", json!({ "method": "setcap" })),
            "names method systemd but its request asks for setcap",
        ),
        (
            // The method is a typed id: the plan's parser refuses any other spelling.
            plan("method.json", json!({ "method": "../x" })),
            "unknown variant `../x`",
        ),
    ]
}

/// What lowport finds on the host refuses these (exit 7): a plan file others could write, a
/// masked unit, an ACL that lets others run or replace the binary, a renamed interpreter.
fn refused_cases(t: &TestEnv, app: &str) -> Vec<(Vec<String>, &'static str)> {
    use std::os::unix::fs::chown;
    let writable = forged_plan(t, "writable-plan.json", request(json!({})));
    set_mode(Path::new(&writable), 0o666);
    let foreign = forged_plan(t, "foreign-plan.json", request(json!({})));
    chown(&foreign, Some(65534), None).unwrap();
    let units = t.root.join("etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    std::os::unix::fs::symlink("/dev/null", units.join("masked.service")).unwrap();
    let acl = |name: &str, entry: &str| -> String {
        let file: PathBuf = t.install(Path::new("/usr/bin/true"), &format!("opt/{name}"));
        let ok = std::process::Command::new("setfacl")
            .args(["-m", entry])
            .arg(t.host(&file))
            .status()
            .unwrap()
            .success();
        assert!(ok, "setfacl -m {entry}");
        file.to_str().unwrap().to_string()
    };
    let runs = acl("acl-x", "u:nobody:r-x");
    let writes = acl("acl-w", "u:nobody:rw-");
    let python = std::fs::canonicalize("/usr/bin/python3").unwrap();
    let renamed = t.install(&python, "opt/server");
    let setcap = |bin: &str, extra: &[&str]| -> Vec<String> {
        let mut v = strings(&[
            "plan", "--method", "setcap", "--binary", bin, "--port", "80",
        ]);
        v.extend(strings(extra));
        v
    };
    vec![
        (
            strings(&["apply", "--yes", "--plan", writable.as_str()]),
            "chmod go-w",
        ),
        (
            strings(&["apply", "--yes", "--plan", foreign.as_str()]),
            "owned by uid 65534",
        ),
        (
            strings(&[
                "plan",
                "--method",
                "systemd",
                "--binary",
                app,
                "--service",
                "masked",
                "--port",
                "80",
            ]),
            "is masked",
        ),
        (
            setcap(&runs, &["--group", "nogroup"]),
            "setfacl -x u:nobody",
        ),
        (setcap(&writes, &[]), "ACL entry user:nobody:rw-"),
        (
            setcap(renamed.to_str().unwrap(), &[]),
            "general-purpose interpreter python3",
        ),
    ]
}

#[test]
fn bad_inputs_are_refused_with_a_clear_message_and_change_nothing() {
    // Root-owned files, ACLs and a plan owned by another user need root.
    if !is_root_or_skip("bad_inputs_are_refused_with_a_clear_message_and_change_nothing") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    std::fs::create_dir_all(t.root.join("opt/dir")).unwrap();
    let a = app.to_str().unwrap().to_string();
    let junk = t.state.with_file_name("junk.json");
    std::fs::write(&junk, "this is not json").unwrap();
    let future = t.state.with_file_name("future.json");
    std::fs::write(&future, r#"{"format_version": 99}"#).unwrap();
    let (junk, future) = (
        junk.to_str().unwrap().to_string(),
        future.to_str().unwrap().to_string(),
    );
    let long = "u".repeat(33);
    let plan = |extra: &[&str]| -> Vec<String> {
        ["plan", "--method", "setcap", "--binary", a.as_str()]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let v = |args: &[&str]| -> Vec<String> { args.iter().map(|s| s.to_string()).collect() };
    let mut cases: Vec<(Vec<String>, &str)> = vec![
        (plan(&["--port", "0"]), "0 is not a port"),
        (plan(&["--port", "1024"]), "needs no grant"),
        (plan(&["--port", "65536"]), "out of range"),
        (plan(&["--port", "http"]), "is not a number"),
        (plan(&["--port=-1"]), "is not a number"),
        (plan(&["--port", "80:80"]), "privileged itself"),
        (plan(&["--port", "80:"]), "is not a number"),
        (plan(&["--port", ""]), "is not a number"),
        (plan(&["--port", "99999999999"]), "out of range"),
        (plan(&["--port", "80", "--user", "a b"]), "contains ' '"),
        (plan(&["--port", "80", "--user=-x"]), "starts with '-'"),
        (plan(&["--port", "80", "--user", "1000"]), "all digits"),
        (plan(&["--port", "80", "--user", "root;id"]), "contains ';'"),
        (
            plan(&["--port", "80", "--user", long.as_str()]),
            "longer than 32",
        ),
        (
            plan(&["--port", "80", "--group", "wheel:x"]),
            "contains ':'",
        ),
        (plan(&["--port", "80", "--group", ""]), "empty name"),
        (
            plan(&["--port", "80", "--user", "nosuchuser"]),
            "does not exist",
        ),
        (
            v(&[
                "plan", "--method", "setcap", "--port", "80", "--binary", "./app",
            ]),
            "relative path",
        ),
        (
            v(&[
                "plan", "--method", "setcap", "--port", "80", "--binary", "a;b",
            ]),
            "contains ';'",
        ),
        (
            v(&[
                "plan",
                "--method",
                "setcap",
                "--port",
                "80",
                "--binary",
                "/opt/../etc/passwd",
            ]),
            "contains '..'",
        ),
        (
            v(&[
                "plan",
                "--method",
                "setcap",
                "--port",
                "80",
                "--binary",
                "/nonexistent/app",
            ]),
            "cannot resolve",
        ),
        (
            v(&[
                "plan",
                "--method",
                "setcap",
                "--port",
                "80",
                "--binary",
                "no-such-command-xyz",
            ]),
            "not found on PATH",
        ),
        (
            v(&[
                "plan", "--method", "setcap", "--port", "80", "--binary", "/opt/dir",
            ]),
            "not a regular file",
        ),
        (
            v(&["plan", "--method", "nope", "--port", "80"]),
            "unknown method 'nope'",
        ),
        (
            v(&["plan", "--method", "setcap", "--port", "80"]),
            "--binary PATH",
        ),
        (v(&["plan", "--method", "sysctl"]), "the ports: --port N"),
        (plan(&["--port", "80:8080"]), "is a redirect"),
        (
            v(&["apply", "--plan", "/nonexistent/plan.json", "--yes"]),
            "cannot read plan",
        ),
        (
            v(&["apply", "--plan", junk.as_str(), "--yes"]),
            "is not a lowport plan",
        ),
        (
            v(&["apply", "--plan", future.as_str(), "--yes"]),
            "format_version 99",
        ),
        (
            v(&[
                "apply",
                "--method",
                "setcap",
                "--plan",
                junk.as_str(),
                "--yes",
            ]),
            "cannot be used with",
        ),
        (v(&["rollback", "--yes"]), "--last"),
        (v(&["rollback", "bad/id", "--yes"]), "is not a run id"),
        (
            v(&["rollback", "20990101T000000Z-ffff", "--yes"]),
            "no run '20990101T000000Z-ffff'",
        ),
        (v(&["verify", "--user", "nobody"]), "--port"),
        (v(&["verify", "--port", "80"]), "needs --user"),
        (
            v(&["verify", "--port", "80", "--user", "nosuchuser"]),
            "does not exist",
        ),
        (
            v(&["--binary", "/opt/app", "history"]),
            "belong to the interactive mode",
        ),
        (v(&["--yes", "--port", "80"]), "--yes needs --method"),
    ];
    cases.extend(trust_cases(&t, &a));
    // Refused by what lowport finds (exit 7) rather than by the value typed (exit 2).
    let refused = refused_cases(&t, &a);
    assert!(
        cases.len() + refused.len() >= 60,
        "{} cases",
        cases.len() + refused.len()
    );
    let before = tree(&t.root);
    let all = cases
        .iter()
        .map(|c| (c, 2))
        .chain(refused.iter().map(|c| (c, 7)));
    for ((args, message), code) in all {
        t.lowport().args(args).run().code(code).stderr_has(message);
        assert_same_tree(&tree(&t.root), &before, &format!("{args:?}"));
        assert!(!t.state.exists(), "{args:?} created the state directory");
    }
    // The global options are validated the same way.
    for (args, message) in [
        (
            v(&["--root", "relative/dir", "detect"]),
            "not an absolute path",
        ),
        (
            v(&["--root", "/nonexistent-lowport-root", "detect"]),
            "not a directory",
        ),
        (
            v(&["--state-dir", "state", "history"]),
            "not an absolute path",
        ),
    ] {
        Lowport::new().args(&args).run().code(2).stderr_has(message);
    }
    assert_eq!(getcap(&t.host(&app)), "");
}

/// What lowport reads of the tree it plans for, and the documents it is handed, are read only
/// as regular files of bounded size: a FIFO planted there (which would block an open or a read
/// for ever, under the lock for `apply --plan`) or a link to an endless device is refused with
/// a message, at once; so is a file too big for any configuration.
#[test]
fn a_fifo_device_or_huge_file_where_a_file_is_read_is_refused_at_once() {
    let t = TestEnv::new();
    // Any program: what is at stake is how lowport reads, and this test runs as any user (the
    // Go test server is built in cargo's root-owned target directory).
    let app = t.install(Path::new("/usr/bin/true"), "opt/bin/app");
    let dropins = t.root.join("etc/systemd/system/app.service.d");
    std::fs::create_dir_all(&dropins).unwrap();
    let fifo = |p: &Path| {
        let ok = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap();
        assert!(ok.success(), "mkfifo {}", p.display());
    };
    fifo(&dropins.join("50-lowport.conf"));
    fifo(&t.root.join("etc/fabio.properties"));
    // Sparse: as big as a device would be read, without the disk.
    let huge = std::fs::File::create(t.root.join("etc/huge.properties")).unwrap();
    huge.set_len(17 << 20).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let plan = outside.path().join("plan.json");
    fifo(&plan);
    // Within `timeout`, which exits 124 if lowport hangs.
    let run = |args: &[&str]| {
        let out = std::process::Command::new("timeout")
            .arg("20")
            .arg(BIN)
            .arg("--root")
            .arg(&t.root)
            .arg("--state-dir")
            .arg(&t.state)
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned();
        (out.status.code(), text)
    };
    let app = app.to_str().unwrap();
    let (code, text) = run(&[
        "plan", "--method", "systemd", "--binary", app, "--port", "80",
    ]);
    assert_ne!(code, Some(124), "plan hung on a FIFO drop-in");
    assert!(code.is_some(), "{text}");
    // The drop-in lowport would write for a unit there, as a sparse 1 GiB file: its snapshot
    // is refused, not read into memory and diffed.
    let unit = format!("[Service]\nExecStart={app}\n");
    std::fs::write(t.root.join("etc/systemd/system/app.service"), unit).unwrap();
    std::fs::remove_file(dropins.join("50-lowport.conf")).unwrap();
    let dropin = std::fs::File::create(dropins.join("50-lowport.conf")).unwrap();
    dropin.set_len(1 << 30).unwrap();
    let plan_app = [
        "plan", "--method", "systemd", "--binary", app, "--port", "80",
    ];
    let (code, text) = run(&plan_app);
    assert!(
        code != Some(0) && code != Some(124) && text.contains("more than lowport reads"),
        "a 1 GiB drop-in: {code:?} {}",
        &text[..text.len().min(2000)]
    );
    // The unit itself that large: nothing it says is known, so nothing is planned for it (not
    // a plan that takes it for a unit without [Install] or User=).
    std::fs::remove_file(dropins.join("50-lowport.conf")).unwrap();
    let unit = std::fs::File::create(t.root.join("etc/systemd/system/app.service")).unwrap();
    unit.set_len(1 << 30).unwrap();
    let (code, text) = run(&plan_app);
    assert!(
        code != Some(0) && text.contains("cannot be read") && !text.contains("[Install]"),
        "a 1 GiB unit: {code:?} {}",
        &text[..text.len().min(2000)]
    );
    for config in ["/etc/fabio.properties", "/etc/huge.properties"] {
        let (code, text) = run(&[
            "plan",
            "--method",
            "systemd",
            "--profile",
            "fabio",
            "--config",
            config,
        ]);
        assert_eq!(code, Some(2), "--config {config}: {text}");
        assert!(
            text.contains("not a regular file") || text.contains("more than lowport reads"),
            "--config {config}: {text}"
        );
    }
    let (code, text) = run(&["apply", "--plan", plan.to_str().unwrap(), "--yes"]);
    assert_eq!(code, Some(2), "apply --plan FIFO: {text}");
    assert!(text.contains("not a regular file"), "{text}");
}
