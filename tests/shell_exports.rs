//! `lowport export --format sh|powershell` and `lowport facts-script`. Every script lowport can
//! make passes the validators each of which misses something the others catch: `dash -n` (the
//! grammar of a real POSIX shell), `shellcheck -s sh` (quoting and POSIX portability), and
//! Debian's `checkbashisms`; PowerShell parses with the tree-sitter-powershell grammar with no
//! ERROR or MISSING node. Then the shell scripts run for real here: apply, check, apply again,
//! undo leave the tree byte-identical; a change since the plan or since apply is refused; a
//! sysctl plan in a private network namespace; a file capability with which the static Go server
//! binds :80 as nobody. The facts script runs here too, and lowport reads its document.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::exports::{ok, scenarios, tool};
use crate::subjects::{Server, go_body, go_server};
use crate::support::*;

/// Every scenario of every OS whose plan can be made, with its `plan` arguments: a scenario
/// added for another OS is exported here as soon as it is merged.
fn plannable() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(scenarios()).unwrap().flatten() {
        let Ok(golden) = std::fs::read_to_string(e.path().join("plan.txt")) else {
            continue;
        };
        if !(golden.starts_with("exit 0\n") || golden.starts_with("exit 9\n")) {
            continue;
        }
        let args = std::fs::read_to_string(e.path().join("args")).unwrap();
        let args = args
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "--json")
            .map(String::from)
            .collect();
        out.push((e.file_name().to_string_lossy().into_owned(), args));
    }
    out.sort();
    out
}

/// The OS family of a scenario's facts document.
fn family(name: &str) -> String {
    let text = std::fs::read_to_string(scenarios().join(name).join("facts.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["os"]["family"].as_str().unwrap_or("linux").to_string()
}

/// The three shell validators on `script`; `what` names it in failures.
fn validate_sh(test: &str, script: &Path, what: &str) {
    let (Some(dash), Some(sc), Some(cb)) = (
        tool(test, "dash"),
        tool(test, "shellcheck"),
        tool(test, "checkbashisms"),
    ) else {
        return;
    };
    ok(
        Command::new(dash).arg("-n").arg(script).output().unwrap(),
        &format!("{what}: dash -n"),
    );
    // Every finding counts, down to style: the script is generated, so a finding is a bug.
    let said = ok(
        Command::new(sc)
            .args(["-s", "sh", "-f", "gcc"])
            .arg(script)
            .output()
            .unwrap(),
        &format!("{what}: shellcheck -s sh"),
    );
    assert!(said.is_empty(), "{what}: shellcheck:\n{said}");
    let said = ok(
        Command::new(cb).arg(script).output().unwrap(),
        &format!("{what}: checkbashisms"),
    );
    assert!(said.is_empty(), "{what}: checkbashisms:\n{said}");
}

/// Parses `script` with the tree-sitter-powershell grammar (in `.ci/run`'s venv); the nodes
/// that are ERROR or MISSING, as text.
fn powershell_errors(test: &str, script: &Path) -> Option<String> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-venv/bin/python");
    if !python.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: target/ci-venv lacks tree-sitter-powershell (.ci/run installs it)"
        );
        eprintln!("SKIPPED (needs target/ci-venv with tree-sitter-powershell): {test}");
        return None;
    }
    let check = "import sys, tree_sitter, tree_sitter_powershell as g\n\
        t = tree_sitter.Parser(tree_sitter.Language(g.language())).parse(open(sys.argv[1], 'rb').read().removeprefix(b'\\xef\\xbb\\xbf'))\n\
        bad = []\n\
        def walk(n):\n\
        \x20   if n.type == 'ERROR' or n.is_missing: bad.append('%s at %s: %r' % (n.type, n.start_point, n.text[:80]))\n\
        \x20   for c in n.children: walk(c)\n\
        walk(t.root_node)\n\
        bad and print('\\n'.join(bad))\n\
        print('statements', len(t.root_node.children))";
    let out = ok(
        Command::new(python)
            .args(["-c", check])
            .arg(script)
            .output()
            .unwrap(),
        "tree-sitter-powershell",
    );
    Some(out)
}

#[test]
fn every_plannable_scenario_exports_a_script_that_passes_dash_shellcheck_and_checkbashisms() {
    let test =
        "every_plannable_scenario_exports_a_script_that_passes_dash_shellcheck_and_checkbashisms";
    let dir = tempfile::tempdir().unwrap();
    let mut shells = 0;
    for (name, args) in plannable() {
        // Windows plans export as PowerShell, and the sh export says so.
        let format = if family(&name) == "windows" {
            "powershell"
        } else {
            "sh"
        };
        let out = Lowport::new()
            .args(["export", "--format", format, "--facts"])
            .arg(scenarios().join(&name).join("facts.json"))
            .args(&args)
            .env("LOWPORT_STATE_DIR", "/nonexistent/lowport-state")
            .run()
            .code(0);
        let file = dir.path().join(format!("{name}.{format}"));
        std::fs::write(&file, &out.stdout).unwrap();
        if format == "powershell" {
            if let Some(errors) = powershell_errors(test, &file) {
                assert!(errors.starts_with("statements"), "{name}: {errors}");
            }
            Lowport::new()
                .args(["export", "--format", "sh", "--facts"])
                .arg(scenarios().join(&name).join("facts.json"))
                .args(&args)
                .run()
                .code(2)
                .stderr_has("--format powershell");
            continue;
        }
        shells += 1;
        assert!(out.stdout.starts_with("#!/bin/sh\n"), "{name}");
        validate_sh(test, &file, &name);
    }
    assert!(shells >= 10, "{shells} shell exports");
}

/// A saved plan of this host made Windows', with awkward command words: quotes of every kind,
/// `$`, backticks, spaces, a list argument.
fn windows_plan(dir: &Path) -> PathBuf {
    let facts = scenarios().join("sysctl_lowers_the_boundary/facts.json");
    let plan = dir.join("plan.json");
    Lowport::new()
        .args(["plan", "--method", "sysctl", "--port", "80", "--facts"])
        .arg(&facts)
        .arg("--out")
        .arg(&plan)
        .run()
        .code(0);
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    p["family"] = "windows".into();
    let netsh = r"C:\Windows\System32\netsh.exe";
    let rule = "name=lowport fabio's $env:USERNAME `whoami` \u{2019}x\u{2018}";
    let step = |what: &str, run: Vec<Vec<&str>>, undo: Vec<Vec<&str>>, check: Option<Vec<&str>>| {
        serde_json::json!({
            "action": {"type": "run_commands", "what": what, "run": run, "undo": undo, "check": check},
            "before": {"kind": "command", "in_place": false}, "in_place": false, "summary": what,
            "commands": run, "diff": null, "exposure": null, "undo": "",
        })
    };
    p["steps"] = serde_json::json!([
        step(
            "firewall: allow 'fabio' $HOME `t` on 80, 443",
            vec![vec![
                netsh,
                "advfirewall",
                "firewall",
                "add",
                "rule",
                rule,
                "dir=in",
                "action=allow",
                "protocol=TCP",
                "localport=80,443",
            ]],
            vec![vec![
                netsh,
                "advfirewall",
                "firewall",
                "delete",
                "rule",
                rule
            ]],
            Some(vec![netsh, "advfirewall", "firewall", "show", "rule", rule]),
        ),
        step(
            "a service (no check)",
            vec![vec![
                r"C:\Program Files\WinSW\winsw.exe",
                "install",
                r"C:\fabio\fabio service.xml",
            ]],
            vec![vec![r"C:\Program Files\WinSW\winsw.exe", "uninstall"]],
            None,
        ),
    ]);
    std::fs::write(&plan, serde_json::to_string_pretty(&p).unwrap()).unwrap();
    plan
}

#[test]
fn a_windows_plan_exports_powershell_that_the_grammar_parses_and_others_are_refused() {
    let test = "a_windows_plan_exports_powershell_that_the_grammar_parses_and_others_are_refused";
    let dir = tempfile::tempdir().unwrap();
    let plan = windows_plan(dir.path());
    let out = Lowport::new()
        .args(["export", "--format", "powershell", "--plan"])
        .arg(&plan)
        .run()
        .code(0);
    let text = out.stdout;
    for want in [
        "$ErrorActionPreference = 'Stop'",
        "[ValidateSet('check', 'apply', 'undo')]",
        // Each word single-quoted, `'` and the typographic quotes doubled, nothing expanded.
        "{ & 'C:\\Windows\\System32\\netsh.exe' 'advfirewall' 'firewall' 'add' 'rule' \
         'name=lowport fabio''s $env:USERNAME `whoami` \u{2019}\u{2019}x\u{2018}\u{2018}' 'dir=in'",
        "'C:\\Program Files\\WinSW\\winsw.exe' 'install' 'C:\\fabio\\fabio service.xml'",
        "if ($code -ne 0) {",
        "$LASTEXITCODE",
    ] {
        assert!(text.contains(want), "lacks {want:?}:\n{text}");
    }
    let file = dir.path().join("lowport.ps1");
    std::fs::write(&file, &text).unwrap();
    if let Some(errors) = powershell_errors(test, &file) {
        assert!(errors.starts_with("statements"), "{errors}\n{text}");
    }
    // The grammar is not lenient: an unquoted word that PowerShell would expand is an error.
    let broken = dir.path().join("broken.ps1");
    std::fs::write(&broken, text.replace("'dir=in'", "'dir=in' 'x")).unwrap();
    if let Some(errors) = powershell_errors(test, &broken) {
        assert!(!errors.starts_with("statements"), "a broken script parsed");
    }
    // Words Windows PowerShell 5.1 would pass changed are refused; a Linux plan is not a
    // Windows one.
    let t = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(&plan, t.replace("dir=in", "dir=\\\"in\\\"")).unwrap();
    Lowport::new()
        .args(["export", "--format", "powershell", "--plan"])
        .arg(&plan)
        .run()
        .code(2)
        .stderr_has("contains a double quote");
    Lowport::new()
        .args(["export", "--format", "powershell", "--facts"])
        .arg(scenarios().join("setcap_fabio/facts.json"))
        .args([
            "--method",
            "setcap",
            "--binary",
            "/usr/local/bin/fabio",
            "--port",
            "80",
        ])
        .run()
        .code(2)
        .stderr_has("PowerShell exports are for Windows plans");
}

/// Windows PowerShell 5.1 reads a script without a byte order mark in the ANSI code page
/// (Windows-1252): a value holding U+0451 (`ё`, bytes D1 91) would read as `Ñ‘`, and `‘` is a
/// quote to PowerShell, so the value's single-quoted string would end there and the rest run
/// (`$(…)` at parse time of the step table, in check mode too). The script is marked UTF-8.
#[test]
fn a_powershell_export_is_marked_utf8_so_no_byte_reads_as_a_quote() {
    let dir = tempfile::tempdir().unwrap();
    let plan = windows_plan(dir.path());
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    p["steps"][0]["action"]["what"] = "a\u{451} + $(calc.exe) #".into();
    std::fs::write(&plan, p.to_string()).unwrap();
    let out = Lowport::new()
        .args(["export", "--format", "powershell", "--plan"])
        .arg(&plan)
        .run()
        .code(0);
    assert!(
        out.stdout.starts_with('\u{feff}'),
        "no BOM:\n{}",
        out.stdout
    );
    assert!(out.stdout.contains("What = 'a\u{451} + $(calc.exe) #'"));
    // One BOM, at the start only.
    assert_eq!(out.stdout.matches('\u{feff}').count(), 1);
}

/// Runs the exported script `script MODE` (with `env`), inside `ns` when given.
fn sh(script: &Path, mode: &str, env: &[(&str, &str)], ns: Option<&Netns>) -> (i32, String) {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &ns.name, "sh"]);
            c
        }
        None => Command::new("sh"),
    };
    cmd.arg(script).arg(mode);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[track_caller]
fn run_ok(script: &Path, mode: &str, want: i32, ns: Option<&Netns>) -> String {
    let (code, text) = sh(script, mode, &[], ns);
    assert_eq!(code, want, "sh lowport.sh {mode}:\n{text}");
    text
}

/// Exports the plan lowport makes here for `args` into `dir/lowport.sh`, inside `ns` if given.
fn export_here(t: &TestEnv, args: &[&str], dir: &Path, ns: Option<&Netns>) -> PathBuf {
    let out = dir.join("out");
    let mut l = t
        .lowport()
        .args(["export", "--format", "sh", "--out"])
        .arg(&out)
        .args(args);
    if let Some(ns) = ns {
        l = l.netns(ns);
    }
    l.run().code(0);
    let script = out.join("lowport.sh");
    assert_eq!(
        std::fs::metadata(&script).unwrap().permissions().mode() & 0o777,
        0o755
    );
    validate_sh("export_here", &script, "the exported script");
    script
}

use std::os::unix::fs::PermissionsExt;

/// A root whose /var/lib exists, as on every host (the state directory goes below it).
fn env_with_var_lib() -> TestEnv {
    let t = TestEnv::new();
    std::fs::create_dir_all(t.root.join("var/lib")).unwrap();
    t
}

#[test]
fn the_setcap_script_applies_binds_80_as_nobody_and_undoes_exactly() {
    let test = "the_setcap_script_applies_binds_80_as_nobody_and_undoes_exactly";
    if !is_root_or_skip(test) {
        return;
    }
    let t = env_with_var_lib();
    let app = t.install(go_server(), "opt/app/bin/server");
    let dir = tempfile::tempdir().unwrap();
    let script = export_here(
        &t,
        &[
            "--method",
            "setcap",
            "--binary",
            app.to_str().unwrap(),
            "--port",
            "80",
        ],
        dir.path(),
        None,
    );
    let before = tree(&t.root);
    assert!(run_ok(&script, "check", 1, None).contains("step 1: to do"));
    assert_eq!(tree(&t.root), before, "check changes nothing");
    run_ok(&script, "apply", 0, None);
    assert_eq!(
        getcap(&t.host(&app)).split_whitespace().last(),
        Some("cap_net_bind_service=ep")
    );
    assert!(run_ok(&script, "check", 0, None).contains("Every step is in place."));
    let applied = tree(&t.root);
    assert!(run_ok(&script, "apply", 0, None).contains("in place, skipped"));
    assert_same_tree(&tree(&t.root), &applied, "a second apply changes nothing");
    // The capability works: the static Go server binds :80 as nobody.
    let ns = Netns::new();
    Server::start(&ns, &t.host(&app), &[":80".into()]).assert_serves(
        &ns,
        "127.0.0.1",
        80,
        &go_body(80),
    );
    run_ok(&script, "undo", 0, None);
    assert_same_tree(&tree(&t.root), &before, "undo restores the tree");
    assert_eq!(getcap(&t.host(&app)), "");
    // Nothing to undo twice.
    assert!(run_ok(&script, "undo", 0, None).contains("Nothing to undo"));
}

#[test]
fn a_script_refuses_a_host_changed_since_the_plan_and_undo_one_changed_since_apply() {
    let test = "a_script_refuses_a_host_changed_since_the_plan_and_undo_one_changed_since_apply";
    if !is_root_or_skip(test) {
        return;
    }
    let t = env_with_var_lib();
    let app = t.install(go_server(), "opt/app/bin/server");
    let dir = tempfile::tempdir().unwrap();
    let script = export_here(
        &t,
        &[
            "--method",
            "setcap",
            "--binary",
            app.to_str().unwrap(),
            "--port",
            "80",
            "--group",
            "daemon",
        ],
        dir.path(),
        None,
    );
    // Changed after the export: the binary's mode. apply refuses and changes nothing.
    set_mode(&t.host(&app), 0o700);
    let before = tree(&t.root);
    let (code, text) = sh(&script, "apply", &[], None);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("the host changed since the plan"), "{text}");
    assert_same_tree(&tree(&t.root), &before, "a refused apply");
    assert!(run_ok(&script, "check", 1, None).contains("CHANGED SINCE THE PLAN"));
    // As planned again: owner, mode and the capability change, and undo puts all back.
    set_mode(&t.host(&app), 0o755);
    let before = tree(&t.root);
    run_ok(&script, "apply", 0, None);
    let m = std::fs::metadata(t.host(&app)).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o750);
    // Changed after apply: undo refuses, unless forced.
    set_mode(&t.host(&app), 0o755);
    let (code, text) = sh(&script, "undo", &[], None);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("changed since apply"), "{text}");
    let (code, text) = sh(&script, "undo", &[("LOWPORT_FORCE", "1")], None);
    assert_eq!(code, 0, "{text}");
    assert_same_tree(&tree(&t.root), &before, "a forced undo");
}

#[test]
fn the_sysctl_script_runs_in_a_private_network_namespace_and_undoes_exactly() {
    let test = "the_sysctl_script_runs_in_a_private_network_namespace_and_undoes_exactly";
    if !is_root_or_skip(test) {
        return;
    }
    let t = env_with_var_lib();
    let ns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    let script = export_here(
        &t,
        &["--method", "sysctl", "--port", "80", "--port", "443"],
        dir.path(),
        Some(&ns),
    );
    let before = tree(&t.root);
    assert_eq!(ns.sysctl(), "1024");
    // Another namespace is not the one the plan changes.
    let (code, text) = sh(&script, "apply", &[], None);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("network namespace"), "{text}");
    run_ok(&script, "apply", 0, Some(&ns));
    assert_eq!(ns.sysctl(), "80");
    assert_eq!(ns.bind_as_nobody(80), "ok");
    let conf = t
        .root
        .join("etc/sysctl.d/60-lowport-unprivileged-ports.conf");
    assert!(conf.is_file());
    run_ok(&script, "check", 0, Some(&ns));
    let applied = tree(&t.root);
    run_ok(&script, "apply", 0, Some(&ns));
    assert_same_tree(&tree(&t.root), &applied, "a second apply");
    // The file edited since apply: undo refuses.
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{text}# mine\n")).unwrap();
    let (code, out) = sh(&script, "undo", &[], Some(&ns));
    assert_eq!((code, ns.sysctl().as_str()), (3, "80"), "{out}");
    std::fs::write(&conf, text).unwrap();
    run_ok(&script, "undo", 0, Some(&ns));
    assert_eq!(ns.sysctl(), "1024");
    assert_eq!(ns.bind_as_nobody(80), "EACCES");
    assert_same_tree(&tree(&t.root), &before, "undo restores the tree");
    // Created after the export, the file the plan found absent is not overwritten.
    std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
    std::fs::write(&conf, "net.ipv4.ip_unprivileged_port_start = 1\n").unwrap();
    let before = tree(&t.root);
    let (code, out) = sh(&script, "apply", &[], Some(&ns));
    assert_eq!((code, ns.sysctl().as_str()), (3, "1024"), "{out}");
    assert!(out.contains("exists; the plan found none"), "{out}");
    assert_same_tree(&tree(&t.root), &before, "a refused apply");
}

/// Every byte sequence a file may hold that is hard to carry: quotes, `$`, backticks,
/// backslashes, a line that is the here-document's delimiter, tabs, CR, control bytes,
/// non-ASCII, and no final newline.
const AWKWARD: &str = "a 'single' \"double\" $HOME `id` \\back\\ $(reboot)\nLOWPORT_EOF\n\
                       \ttab\r\n\u{1}\u{1b}[2J\u{7f} é 🦀 \u{2028}\nlast line without newline";

#[test]
fn a_plan_with_a_new_user_files_links_and_commands_applies_and_undoes_exactly() {
    let test = "a_plan_with_a_new_user_files_links_and_commands_applies_and_undoes_exactly";
    if !is_root_or_skip(test) {
        return;
    }
    let t = env_with_var_lib();
    // A root as a host has it: shadow files, their `-` copies, the account-file lock.
    for f in ["shadow", "gshadow"] {
        std::fs::write(t.root.join("etc").join(f), "root:*::\n").unwrap();
        set_mode(&t.root.join("etc").join(f), 0o640);
    }
    for f in ["passwd-", "group-", ".pwd.lock"] {
        std::fs::write(t.root.join("etc").join(f), "").unwrap();
    }
    let app = t.install(go_server(), "opt/app/bin/server");
    let conf = t.root.join("etc/app.conf");
    std::fs::write(&conf, "old text\n").unwrap();
    set_mode(&conf, 0o600);
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    // lowport's plan for the binary (owner, mode, capability), then the steps the other
    // methods are made of, each planned against what is there now.
    t.lowport()
        .args([
            "plan",
            "--method",
            "setcap",
            "--binary",
            app.to_str().unwrap(),
        ])
        .args(["--port", "80", "--group", "daemon", "--out"])
        .arg(&plan)
        .run()
        .code(0);
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let root = t.root.display().to_string();
    let user = "svc-lowport-t";
    let useradd = [
        "/usr/sbin/useradd",
        "--root",
        &root,
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        "--",
        user,
    ];
    let absent = serde_json::json!({"kind": "file", "exists": false, "sha256": null,
        "identity": null, "uid": null, "gid": null, "xattrs": {}});
    // Command steps run lowport's step programs only: systemctl, on the tree (`--root`).
    std::fs::create_dir_all(t.root.join("etc/systemd/system")).unwrap();
    let marker = t.root.join("etc/systemd/system/lowport-t.service");
    let systemctl = |args: &[&str]| -> Vec<String> {
        ["/usr/bin/systemctl", "--root", &root]
            .iter()
            .chain(args)
            .map(|w| w.to_string())
            .collect()
    };
    let old = std::fs::read(&conf).unwrap();
    let step =
        |action: serde_json::Value, before: serde_json::Value, commands: serde_json::Value| {
            serde_json::json!({"action": action, "before": before, "in_place": false,
            "summary": format!("{} step", action["type"]), "commands": commands, "diff": null,
            "exposure": null, "undo": ""})
        };
    let steps = p["steps"].as_array_mut().unwrap();
    steps.extend([
        step(
            serde_json::json!({"type": "create_user", "name": user}),
            serde_json::json!({"kind": "files", "files": {}, "user_exists": false}),
            serde_json::json!([useradd]),
        ),
        step(
            serde_json::json!({"type": "write_file", "path": "/etc/app/new.d/unit.conf",
                "content": "[x]\n", "mode": "0640", "owner": "root", "group": user}),
            absent.clone(),
            serde_json::json!([]),
        ),
        step(
            serde_json::json!({"type": "symlink", "path": "/etc/app/wants/unit.conf",
                "target": "/etc/app/new.d/unit.conf"}),
            serde_json::json!({"kind": "link", "target": null}),
            serde_json::json!([]),
        ),
        step(
            serde_json::json!({"type": "run_commands", "what": "a 'marker' $HOME",
                "run": [systemctl(&["mask", "lowport-t.service"])],
                "undo": [systemctl(&["unmask", "lowport-t.service"])],
                "check": systemctl(&["list-unit-files", "--state=masked", "lowport-t.service"])}),
            serde_json::json!({"kind": "command", "in_place": false}),
            serde_json::json!([systemctl(&["mask", "lowport-t.service"])]),
        ),
        step(
            serde_json::json!({"type": "run_commands", "what": "only on undo", "run": [],
                "undo": [["/usr/bin/systemctl", "--version"]], "check": null}),
            serde_json::json!({"kind": "command", "in_place": null}),
            serde_json::json!([]),
        ),
        step(
            serde_json::json!({"type": "write_file", "path": "/etc/app.conf", "content": AWKWARD,
                "mode": "0640", "owner": "root", "group": "daemon"}),
            serde_json::json!({"kind": "file", "exists": true,
                "sha256": lowport::plan::action::sha256(&old), "identity": null, "mode": "0600",
                "uid": 0, "gid": 0, "xattrs": {}}),
            serde_json::json!([]),
        ),
    ]);
    std::fs::write(&plan, serde_json::to_string_pretty(&p).unwrap()).unwrap();
    let out = dir.path().join("out");
    Lowport::new()
        .args(["export", "--format", "sh", "--plan"])
        .arg(&plan)
        .arg("--out")
        .arg(&out)
        .run()
        .code(0);
    let script = out.join("lowport.sh");
    validate_sh(test, &script, "the script");
    let before = tree(&t.root);
    run_ok(&script, "apply", 0, None);
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        AWKWARD,
        "exact bytes"
    );
    let passwd = std::fs::read_to_string(t.root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("\nsvc-lowport-t:"), "{passwd}");
    assert!(marker.is_symlink(), "the command step ran");
    assert_eq!(
        std::fs::read_link(t.root.join("etc/app/wants/unit.conf")).unwrap(),
        Path::new("/etc/app/new.d/unit.conf")
    );
    assert!(run_ok(&script, "check", 0, None).contains("Every step is in place."));
    let applied = tree(&t.root);
    run_ok(&script, "apply", 0, None);
    assert_same_tree(&tree(&t.root), &applied, "a second apply");
    run_ok(&script, "undo", 0, None);
    assert_same_tree(&tree(&t.root), &before, "undo restores the tree");
}

/// Text a facts document must carry exactly, and what lowport reads of it: every awkward byte,
/// invalid UTF-8 (a lone 0xff, a sequence cut short) and NUL included.
fn awkward_bytes() -> Vec<u8> {
    let mut b = AWKWARD.as_bytes().to_vec();
    b.extend(b"\n\xff mid \xe2\x82 cut\0nul \xf0\x9f\xa6");
    b
}

#[test]
fn facts_scripts_pass_the_three_validators_for_every_family() {
    let test = "facts_scripts_pass_the_three_validators_for_every_family";
    let dir = tempfile::tempdir().unwrap();
    for family in [
        "freebsd", "openbsd", "netbsd", "illumos", "solaris", "macos",
    ] {
        let out = Lowport::new()
            .args([
                "facts-script",
                "--os",
                family,
                "--binary",
                "fabio",
                "--port",
                "80",
            ])
            .args(["--port", "443:8443", "--user", "fabio", "--group", "www"])
            .run()
            .code(0);
        let file = dir.path().join(format!("{family}.sh"));
        std::fs::write(&file, &out.stdout).unwrap();
        validate_sh(test, &file, &format!("facts-script --os {family}"));
        // With every kind of need (the methods of each OS add theirs as they are built).
        let needs = lowport::facts::platform::Wanted {
            files: vec!["/etc/rc.conf", "/boot/loader.conf"],
            sysctls: vec!["net.inet.ip.portrange.reservedhigh"],
            modules: vec!["mac_portacl"],
            programs: vec!["pfctl", "sysctl"],
        };
        let want = lowport::request::Want {
            binary: Some("/usr/local/bin/fabio".into()),
            user: Some("fabio".into()),
            ..Default::default()
        };
        let text = lowport::export::facts_script::script(family, &want, &needs).unwrap();
        std::fs::write(&file, text).unwrap();
        validate_sh(
            test,
            &file,
            &format!("the {family} collector with every need"),
        );
    }
    Lowport::new()
        .args(["facts-script", "--os", "linux"])
        .run()
        .code(2);
}

#[test]
fn the_facts_script_runs_here_and_lowport_plans_from_its_document() {
    let test = "the_facts_script_runs_here_and_lowport_plans_from_its_document";
    if !is_root_or_skip(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    set_mode(dir.path(), 0o755);
    // The awkward file, and a binary reached through a symlink in a group-writable directory.
    let awkward = dir.path().join("awkward.conf");
    std::fs::write(&awkward, awkward_bytes()).unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::copy(go_server(), bin.join("server")).unwrap();
    set_mode(&bin.join("server"), 0o755);
    nix::unistd::chown(&bin, None, Some(nix::unistd::Gid::from_raw(1))).unwrap();
    set_mode(&bin, 0o775);
    std::os::unix::fs::symlink("bin/server", dir.path().join("link")).unwrap();
    let link = dir.path().join("link").display().to_string();
    let absent = dir.path().join("absent.conf").display().to_string();
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let needs = lowport::facts::platform::Wanted {
        files: vec![leak(awkward.display().to_string()), leak(absent.clone())],
        sysctls: vec!["kernel.ostype", "no.such.key"],
        modules: vec![],
        programs: vec!["ls", "lowport-no-such-program"],
    };
    let want = lowport::request::Want {
        binary: Some(link.clone()),
        user: Some("nobody".into()),
        group: Some("nogroup".into()),
        ports: vec![lowport::validate::port_arg("80").unwrap()],
        ..Default::default()
    };
    // FreeBSD's collector, whose commands exist here (od, awk, ls, id, uname, sysctl) but for
    // its sha256 and route.
    let script = dir.path().join("facts.sh");
    std::fs::write(
        &script,
        lowport::export::facts_script::script("freebsd", &want, &needs).unwrap(),
    )
    .unwrap();
    let out = ok(
        Command::new("sh").arg(&script).output().unwrap(),
        "the facts script",
    );
    let doc = dir.path().join("facts.json");
    std::fs::write(&doc, &out).unwrap();
    let facts = lowport::facts::Facts::from_json(&out, "the script's document").unwrap();
    let bytes = awkward_bytes();
    // The text exactly as lowport reads a file (lossy UTF-8), and the absent file absent.
    assert_eq!(
        facts.platform.file(&awkward.display().to_string()),
        Some(Some(String::from_utf8_lossy(&bytes).as_ref()))
    );
    assert_eq!(facts.platform.file(&absent), Some(None));
    assert_eq!(facts.platform.sysctl("kernel.ostype"), Some(Some("Linux")));
    assert_eq!(facts.platform.sysctl("no.such.key"), Some(None));
    assert_eq!(
        facts.tool("ls"),
        Some(lowport::programs::find("ls").unwrap().as_path())
    );
    assert_eq!(facts.tools.get("lowport-no-such-program"), Some(&None));
    // The file's state, for the exported script's drift guard (no sha256 tool of FreeBSD's
    // here: unknown, not guessed).
    let state = &facts.host.files[&awkward];
    assert!(state.exists && state.mode == Some(0o644) && state.uid == Some(0));
    assert_eq!(state.sha256, None);
    // Accounts and the binary as lowport itself detects them on this host, for every field a
    // portable script fills.
    let detected = Lowport::new()
        .args(["detect", "--json", "--binary", &link, "--user", "nobody"])
        .args(["--group", "nogroup", "--port", "80"])
        .run()
        .code(0)
        .json();
    let script_doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(script_doc["accounts"], detected["accounts"]);
    for k in [
        "requested",
        "path",
        "symlinks",
        "exec",
        "interpreter",
        "uid",
        "gid",
        "owner",
        "group",
        "mode",
        "writable_by_non_root",
    ] {
        assert_eq!(script_doc["binary"][k], detected["binary"][k], "binary.{k}");
    }
    assert_eq!(
        script_doc["binary"]["writable_by_non_root"][0],
        format!("directory {} is writable by group daemon", bin.display())
    );
    // lowport reads the document and plans from it.
    let said = Lowport::new()
        .args(["methods", "--facts"])
        .arg(&doc)
        .args([
            "--binary", &link, "--user", "nobody", "--group", "nogroup", "--port", "80",
        ])
        .run()
        .code(0);
    assert!(said.stdout.contains("freebsd-portacl"), "{}", said.stdout);
    let planned = Lowport::new()
        .args(["plan", "--method", "freebsd-portacl", "--facts"])
        .arg(&doc)
        .args([
            "--binary", &link, "--user", "nobody", "--group", "nogroup", "--port", "80",
        ])
        .run();
    // The method may still want what these test needs do not collect; the document itself is
    // read and covers the request.
    for refusal in ["is not a lowport facts document", "does not hold the"] {
        assert!(!planned.stderr.contains(refusal), "{}", planned.stderr);
    }
    assert!(planned.code.is_some_and(|c| [0, 2, 7, 9].contains(&c)));
}

#[test]
fn a_file_the_plan_did_not_see_is_made_where_none_is_and_never_overwritten() {
    let test = "a_file_the_plan_did_not_see_is_made_where_none_is_and_never_overwritten";
    if !is_root_or_skip(test) {
        return;
    }
    let t = env_with_var_lib();
    let app = t.install(go_server(), "opt/app/bin/server");
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    t.lowport()
        .args([
            "plan",
            "--method",
            "setcap",
            "--binary",
            app.to_str().unwrap(),
        ])
        .args(["--port", "80", "--out"])
        .arg(&plan)
        .run()
        .code(0);
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    // As a plan from a representative document has it: the file's state unknown.
    p["steps"].as_array_mut().unwrap().push(serde_json::json!({
        "action": {"type": "write_file", "path": "/etc/unseen.conf", "content": "planned\n",
                   "mode": "0644", "owner": "root", "group": "root"},
        "before": {"kind": "unknown"}, "in_place": false, "summary": "write /etc/unseen.conf",
        "commands": [], "diff": null, "exposure": null, "undo": "",
    }));
    std::fs::write(&plan, serde_json::to_string_pretty(&p).unwrap()).unwrap();
    let out = dir.path().join("out");
    Lowport::new()
        .args(["export", "--format", "sh", "--plan"])
        .arg(&plan)
        .arg("--out")
        .arg(&out)
        .run()
        .code(0);
    let script = out.join("lowport.sh");
    let before = tree(&t.root);
    assert!(run_ok(&script, "check", 1, None).contains("the plan did not know its state"));
    run_ok(&script, "apply", 0, None);
    assert_eq!(
        std::fs::read_to_string(t.root.join("etc/unseen.conf")).unwrap(),
        "planned\n"
    );
    run_ok(&script, "undo", 0, None);
    assert_same_tree(&tree(&t.root), &before, "undo");
    std::fs::write(t.root.join("etc/unseen.conf"), "the host's own\n").unwrap();
    let before = tree(&t.root);
    let (code, text) = sh(&script, "apply", &[], None);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("the plan did not know it"), "{text}");
    assert_same_tree(&tree(&t.root), &before, "a refused apply");
}
