//! Bad input is refused with exit code 2 and a message naming what was wrong, before anything on
//! the host is read for writing or changed: no state directory, no file touched.

use std::path::Path;

use crate::support::*;

#[test]
fn bad_inputs_are_refused_with_a_clear_message_and_change_nothing() {
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
    let cases: Vec<(Vec<String>, &str)> = vec![
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
    assert!(cases.len() >= 30);
    let before = tree(&t.root);
    for (args, message) in &cases {
        t.lowport().args(args).run().code(2).stderr_has(message);
        assert_eq!(tree(&t.root), before, "{args:?} changed the root");
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
