//! `lowport export`: every format made from every plannable golden scenario passes the real
//! validator for that format (ansible-playbook --syntax-check and ansible-lint, cloud-init
//! schema, kubernetes-validate, the Compose specification's JSON schema and docker-compose), and
//! the setcap and sysctl playbooks run for real: they change the host exactly as `lowport apply`
//! does, a second run changes nothing, and the undo playbook restores the state.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

pub(crate) fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

/// A validator installed by `.ci/run`: on PATH, or in the venv `.ci/run` makes. Missing, the
/// test says so and is skipped, except in CI, where it fails.
pub(crate) fn tool(test: &str, name: &str) -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/ci-venv/bin")
        .join(name);
    // Debian's python3, which has the yaml and jsonschema modules apt installed.
    let debian = Path::new("/usr/bin").join(name);
    let found = if name == "python3" {
        debian.exists().then_some(debian)
    } else {
        std::env::var("PATH")
            .unwrap_or_default()
            .split(':')
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
            .or_else(|| venv.exists().then_some(venv))
    };
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: {name} is not installed (.ci/run installs it)"
        );
        eprintln!("SKIPPED (needs {name}): {test}");
    }
    found
}

#[track_caller]
pub(crate) fn ok(out: std::process::Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// Every Linux scenario whose plan can be made, with its `plan` arguments: what the Linux
/// formats (Ansible, cloud-init, Kubernetes, Compose) export.
fn plannable() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(scenarios()).unwrap().flatten() {
        let d = e.path();
        let Ok(facts) = std::fs::read_to_string(d.join("facts.json")) else {
            continue;
        };
        let facts: serde_json::Value = serde_json::from_str(&facts).unwrap();
        if facts["os"]["family"] != "linux" {
            continue;
        }
        let Ok(golden) = std::fs::read_to_string(d.join("plan.txt")) else {
            continue;
        };
        if !(golden.starts_with("exit 0\n") || golden.starts_with("exit 9\n")) {
            continue;
        }
        let args = std::fs::read_to_string(d.join("args")).unwrap();
        let args = args
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "--json")
            .map(String::from)
            .collect();
        out.push((e.file_name().to_string_lossy().into_owned(), args));
    }
    out.sort();
    assert!(out.len() >= 10, "scenarios: {out:?}");
    out
}

/// Exports scenario `name` in `format` into `dir`.
fn export(name: &str, args: &[String], format: &str, dir: &Path) {
    Lowport::new()
        .args(["export", "--format", format, "--facts"])
        .arg(scenarios().join(name).join("facts.json"))
        .args(args)
        .arg("--out")
        .arg(dir)
        .env("LOWPORT_STATE_DIR", "/nonexistent/lowport-state")
        .run()
        .code(0);
}

#[test]
fn yaml_quoting_round_trips_through_a_real_parser() {
    let Some(python) = tool("yaml_quoting_round_trips", "python3") else {
        return;
    };
    let samples = [
        "plain",
        "",
        "a: b # c",
        "- x",
        "{{ lookup('pipe', 'id') }}",
        "tab\there",
        "\"quoted\" and 'single' and \\back\\slash",
        "multi\nline\n",
        "  leading spaces\n\tand a tab line\n",
        "no trailing newline\nlast",
        "two trailing\n\n",
        "nul \u{0} bell \u{7} del \u{7f} nel \u{85} ls \u{2028} bom \u{feff} c1 \u{9b}",
        "emoji 🦀 and é",
        "line\n   \nwith a blank-only line\n",
        "cr\r\nlf\n",
        "---\n...\n",
        "@at `tick` %pct !bang &amp *star |pipe >gt",
        "table ip t {\n\tchain c {\n\t\ttcp dport 80 redirect to :8080\n\t}\n}\n",
        &format!("{}\n  {} \n", "x".repeat(130), " y".repeat(90)),
    ];
    let mut doc = String::from("quoted:\n");
    for s in samples {
        doc.push_str(&format!("  - {}\n", lowport::validate::yaml_quoted(s)));
    }
    doc.push_str("text:\n");
    for (n, s) in samples.iter().enumerate() {
        doc.push_str(&format!("  k{n}: {}", lowport::validate::yaml_text(s, 2)));
    }
    let script = "import sys, json, yaml\nprint(json.dumps(yaml.safe_load(sys.stdin.read())))";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = ok(
        child.wait_with_output().unwrap(),
        &format!("PyYAML on\n{doc}"),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for (n, s) in samples.iter().enumerate() {
        assert_eq!(v["quoted"][n], *s, "quoted sample {n}");
        assert_eq!(v["text"][format!("k{n}")], *s, "text sample {n}:\n{doc}");
    }
    // The multi-line samples that a literal block can carry are written as one.
    assert!(doc.contains("k7: |2\n    multi\n    line\n"), "{doc}");
}

#[test]
fn ansible_exports_pass_syntax_check_and_lint() {
    let test = "ansible_exports_pass_syntax_check_and_lint";
    let (Some(playbook), Some(lint)) = (tool(test, "ansible-playbook"), tool(test, "ansible-lint"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut lintables = Vec::new();
    for (name, args) in plannable() {
        let out = dir.path().join(&name);
        export(&name, &args, "ansible", &out);
        for pb in ["lowport.yml", "lowport-undo.yml"] {
            ok(
                Command::new(&playbook)
                    .args(["--syntax-check", "-i", "localhost,"])
                    .arg(out.join(pb))
                    .output()
                    .unwrap(),
                &format!("{name}: ansible-playbook --syntax-check {pb}"),
            );
        }
        for f in [
            "lowport.yml",
            "lowport-undo.yml",
            "vars.yml",
            "tasks/apply.yml",
            "tasks/undo.yml",
        ] {
            lintables.push(out.join(f));
        }
    }
    // One ansible-lint run for all of them: it takes seconds to start.
    let text = ok(
        Command::new(lint)
            .arg("--offline")
            .args(&lintables)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap(),
        "ansible-lint",
    );
    assert!(text.contains("0 failure(s), 0 warning(s)"), "{text}");
}

#[test]
fn cloud_init_exports_pass_the_schema() {
    let Some(cloud_init) = tool("cloud_init_exports_pass_the_schema", "cloud-init") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, args) in plannable() {
        let out = dir.path().join(&name);
        export(&name, &args, "cloud-init", &out);
        let file = out.join("user-data");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("#cloud-config\n"), "{name}");
        let said = ok(
            Command::new(&cloud_init)
                .args(["schema", "--config-file"])
                .arg(&file)
                .output()
                .unwrap(),
            &format!("{name}: cloud-init schema"),
        );
        assert!(said.contains("Valid cloud-config"), "{name}: {said}");
    }
}

#[test]
fn kubernetes_exports_validate() {
    let Some(validate) = tool("kubernetes_exports_validate", "kubernetes-validate") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, args) in plannable() {
        let out = dir.path().join(&name);
        export(&name, &args, "kubernetes", &out);
        let said = ok(
            Command::new(&validate)
                .arg("--strict")
                .arg(out.join("lowport.k8s.yaml"))
                .output()
                .unwrap(),
            &format!("{name}: kubernetes-validate"),
        );
        assert!(said.contains("passed for resource pod/"), "{name}: {said}");
        let text = std::fs::read_to_string(out.join("lowport.k8s.yaml")).unwrap();
        if name.starts_with("redirect") {
            assert!(said.contains("passed for resource service/"), "{name}");
            assert!(text.contains("port: 80\n      targetPort: 9999"), "{text}");
        } else if name.starts_with("sysctl") {
            assert!(text.contains("name: \"net.ipv4.ip_unprivileged_port_start\""));
        } else {
            assert!(text.contains("- \"NET_BIND_SERVICE\""), "{name}: {text}");
        }
    }
}

#[test]
fn compose_exports_pass_the_compose_spec_schema() {
    let test = "compose_exports_pass_the_compose_spec_schema";
    let (Some(compose), Some(python)) = (tool(test, "docker-compose"), tool(test, "python3"))
    else {
        return;
    };
    // Debian's docker-compose ships the Compose specification's JSON schema and checks files
    // against it; the schema is also applied directly, so a pass cannot come from leniency.
    let schema = "/usr/lib/python3/dist-packages/compose/config/compose_spec.json";
    let dir = tempfile::tempdir().unwrap();
    for (name, args) in plannable() {
        let out = dir.path().join(&name);
        export(&name, &args, "compose", &out);
        let file = out.join("compose.yaml");
        ok(
            Command::new(&compose)
                .arg("-f")
                .arg(&file)
                .args(["config", "-q"])
                .output()
                .unwrap(),
            &format!("{name}: docker-compose config"),
        );
        let check = "import sys, json, yaml, jsonschema\n\
                     jsonschema.validate(yaml.safe_load(open(sys.argv[2])), json.load(open(sys.argv[1])))";
        ok(
            Command::new(&python)
                .args(["-c", check, schema])
                .arg(&file)
                .output()
                .unwrap(),
            &format!("{name}: compose_spec.json"),
        );
    }
}

#[test]
fn a_plan_that_cannot_be_trusted_is_not_exported() {
    let dir = tempfile::tempdir().unwrap();
    let (name, args) = plannable()
        .into_iter()
        .find(|(n, _)| n == "sysctl_lowers_the_boundary")
        .unwrap();
    let plan = dir.path().join("plan.json");
    Lowport::new()
        .args(["plan", "--facts"])
        .arg(scenarios().join(&name).join("facts.json"))
        .args(&args)
        .arg("--out")
        .arg(&plan)
        .env("LOWPORT_STATE_DIR", "/nonexistent/lowport-state")
        .run();
    let text = std::fs::read_to_string(&plan).unwrap();
    // A saved plan is input: a key that is no sysctl key is refused, and nothing is written.
    let bad = text.replace(
        "\"key\": \"net.ipv4.ip_unprivileged_port_start\"",
        "\"key\": \"kernel.x; reboot\"",
    );
    assert_ne!(bad, text);
    std::fs::write(&plan, bad).unwrap();
    let out = dir.path().join("out");
    Lowport::new()
        .args(["export", "--format", "ansible", "--plan"])
        .arg(&plan)
        .arg("--out")
        .arg(&out)
        .run()
        .code(2)
        .stderr_has("is not a sysctl setting");
    assert!(!out.exists());
    // Several files need a directory.
    Lowport::new()
        .args(["export", "--format", "ansible", "--facts"])
        .arg(scenarios().join(&name).join("facts.json"))
        .args(&args)
        .env("LOWPORT_STATE_DIR", "/nonexistent/lowport-state")
        .run()
        .code(2)
        .stderr_has("give --out DIR");
}

/// Runs `argv` in network namespace `ns` with `binds` (host directory, mount point) bound in a
/// private mount namespace, so nothing outside the namespaces changes.
fn in_ns(ns: &Netns, binds: &[(&Path, &str)], argv: &[&str], cwd: &Path) -> std::process::Output {
    let script = "set -e; while [ \"$1\" != -- ]; do mount --bind \"$1\" \"$2\"; shift 2; done; \
                  shift; exec \"$@\"";
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, "unshare", "--mount", "--"])
        .args(["sh", "-c", script, "sh"]);
    for (from, to) in binds {
        cmd.arg(from).arg(to);
    }
    cmd.arg("--")
        .args(argv)
        .current_dir(cwd)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCALHOST_WARNING", "false");
    cmd.output().unwrap()
}

/// The `changed=N` of the play recap.
fn changed(text: &str) -> u32 {
    let recap = text
        .lines()
        .find(|l| l.starts_with("localhost") && l.contains("changed="))
        .unwrap_or_else(|| panic!("no play recap:\n{text}"));
    assert!(recap.contains("failed=0"), "{text}");
    recap
        .split_whitespace()
        .find_map(|w| w.strip_prefix("changed="))
        .unwrap()
        .parse()
        .unwrap()
}

fn playbook(ns: &Netns, binds: &[(&Path, &str)], dir: &Path, args: &[&str]) -> u32 {
    let mut argv = vec!["ansible-playbook", "-i", "localhost,", "-c", "local"];
    argv.extend(args);
    let out = in_ns(ns, binds, &argv, dir);
    changed(&ok(out, &format!("ansible-playbook {args:?}")))
}

/// A directory for a bind mount: root-owned 0755 (lowport refuses binaries under a directory
/// non-root users can write).
fn private_dir(parent: &Path, name: &str) -> PathBuf {
    let d = parent.join(name);
    std::fs::create_dir_all(&d).unwrap();
    set_mode(&d, 0o755);
    d
}

#[test]
fn the_setcap_playbook_changes_the_binary_as_apply_does() {
    let test = "the_setcap_playbook_changes_the_binary_as_apply_does";
    if !is_root_or_skip(test) || tool(test, "ansible-playbook").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    set_mode(tmp.path(), 0o755);
    let ns = Netns::new();
    // Two identical copies of a real binary, each bound at /mnt/app in its own mount namespace.
    let (a, b) = (private_dir(tmp.path(), "a"), private_dir(tmp.path(), "b"));
    for d in [&a, &b] {
        std::fs::copy("/bin/sleep", d.join("fabio")).unwrap();
        set_mode(&d.join("fabio"), 0o755);
    }
    let state = tmp.path().join("state");
    let state = state.to_str().unwrap();
    let bind_a = [(a.as_path(), "/mnt")];
    let bind_b = [(b.as_path(), "/mnt")];
    let lowport = |binds: &[(&Path, &str)], args: &[&str]| {
        let mut argv = vec![BIN, "--state-dir", state];
        argv.extend(args);
        in_ns(&ns, binds, &argv, tmp.path())
    };
    let grant = [
        "--binary",
        "/mnt/fabio",
        "--port",
        "80",
        "--group",
        "daemon",
    ];
    let mut apply = vec!["apply", "--method", "setcap", "--yes"];
    apply.extend(grant);
    ok(lowport(&bind_a, &apply), "lowport apply");

    let pb = tmp.path().join("playbook");
    let mut export = vec!["export", "--format", "ansible", "--method", "setcap"];
    export.extend(grant);
    export.extend(["--out", pb.to_str().unwrap()]);
    ok(lowport(&bind_b, &export), "lowport export");

    let before = tree(&b);
    // Check mode predicts the owner and mode change (setcap is a command: Ansible skips it).
    assert!(playbook(&ns, &bind_b, &pb, &["lowport.yml", "--check", "--diff"]) >= 1);
    assert_eq!(tree(&b), before, "check mode changes nothing");
    let first = playbook(&ns, &bind_b, &pb, &["lowport.yml"]);
    assert!(first >= 2, "first run changed={first}");
    assert_eq!(
        tree(&b),
        tree(&a),
        "the playbook leaves the binary as lowport apply does"
    );
    assert_eq!(
        getcap(&b.join("fabio")).split_whitespace().last(),
        Some("cap_net_bind_service=ep")
    );
    assert_eq!(
        playbook(&ns, &bind_b, &pb, &["lowport.yml"]),
        0,
        "second run"
    );
    assert!(playbook(&ns, &bind_b, &pb, &["lowport-undo.yml"]) >= 2);
    assert_eq!(tree(&b), before, "the undo playbook restores the binary");
    ok(
        lowport(&bind_a, &["rollback", "--last", "--yes"]),
        "lowport rollback",
    );
    assert_eq!(
        tree(&a),
        before,
        "and lowport's rollback restores its copy the same way"
    );
    eprintln!("{test}: first run changed={first}, second run changed=0, undo restored");
}

#[test]
fn the_sysctl_playbook_changes_the_namespace_as_apply_does() {
    let test = "the_sysctl_playbook_changes_the_namespace_as_apply_does";
    if !is_root_or_skip(test) || tool(test, "ansible-playbook").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    set_mode(tmp.path(), 0o755);
    // Each side has its own network namespace (its own live value) and its own sysctl.d.
    let (ns_a, ns_b) = (Netns::new(), Netns::new());
    let (a, b) = (private_dir(tmp.path(), "a"), private_dir(tmp.path(), "b"));
    let bind_a = [(a.as_path(), "/etc/sysctl.d")];
    let bind_b = [(b.as_path(), "/etc/sysctl.d")];
    let state = tmp.path().join("state");
    let state = state.to_str().unwrap();
    let lowport = |ns: &Netns, binds: &[(&Path, &str)], args: &[&str]| {
        let mut argv = vec![BIN, "--state-dir", state];
        argv.extend(args);
        in_ns(ns, binds, &argv, tmp.path())
    };
    let grant = ["--port", "80", "--port", "443"];
    let mut apply = vec!["apply", "--method", "sysctl", "--yes", "--accept-risk"];
    apply.extend(grant);
    ok(lowport(&ns_a, &bind_a, &apply), "lowport apply");
    assert_eq!(ns_a.sysctl(), "80");

    let pb = tmp.path().join("playbook");
    let mut export = vec!["export", "--format", "ansible", "--method", "sysctl"];
    export.extend(grant);
    export.extend(["--out", pb.to_str().unwrap()]);
    ok(lowport(&ns_b, &bind_b, &export), "lowport export");

    let before = tree(&b);
    assert_eq!(ns_b.sysctl(), "1024");
    assert!(playbook(&ns_b, &bind_b, &pb, &["lowport.yml", "--check", "--diff"]) >= 1);
    assert_eq!(
        (ns_b.sysctl().as_str(), tree(&b)),
        ("1024", before.clone()),
        "check mode"
    );
    let first = playbook(&ns_b, &bind_b, &pb, &["lowport.yml"]);
    assert_eq!(first, 2, "the live value and the file");
    assert_eq!(ns_b.sysctl(), ns_a.sysctl());
    assert_eq!(
        tree(&b),
        tree(&a),
        "the sysctl.d file is lowport's, byte for byte"
    );
    assert_eq!(ns_b.bind_as_nobody(80), "ok");
    assert_eq!(
        playbook(&ns_b, &bind_b, &pb, &["lowport.yml"]),
        0,
        "second run"
    );
    assert_eq!(playbook(&ns_b, &bind_b, &pb, &["lowport-undo.yml"]), 2);
    assert_eq!(ns_b.sysctl(), "1024");
    assert_eq!(tree(&b), before, "the undo playbook removes the file");
    assert_eq!(ns_b.bind_as_nobody(80), "EACCES");
    ok(
        lowport(&ns_a, &bind_a, &["rollback", "--last", "--yes"]),
        "lowport rollback",
    );
    assert_eq!((ns_a.sysctl().as_str(), tree(&a)), ("1024", before));
    eprintln!("{test}: first run changed={first}, second run changed=0, undo restored");
}

/// The Linux formats refuse a plan for another OS family (exit 2, nothing written) and name
/// the format that carries it out there.
#[test]
fn linux_formats_refuse_other_families() {
    let t = TestEnv::new();
    for format in ["ansible", "cloud-init", "kubernetes", "compose"] {
        let out = t.state.with_file_name(format!("out-{format}"));
        Lowport::new()
            .args(["export", "--format", format, "--facts"])
            .arg(scenarios().join("freebsd_reservedhigh_fresh/facts.json"))
            .args(["--method", "freebsd-reservedhigh", "--port", "80", "--out"])
            .arg(&out)
            .env("LOWPORT_STATE_DIR", "/nonexistent/lowport-state")
            .run()
            .code(2)
            .stderr_has("a freebsd plan is exported with --format sh");
        assert!(!out.exists(), "{format} wrote {}", out.display());
    }
}
