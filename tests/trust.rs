//! Issue 11: nothing lowport reads can make it do, as root, what the operator did not review.
//! Symlinks in a `--root` tree, a masked unit, a saved plan's own text, a `PATH` that leads to
//! another user's programs, escape sequences in names, and more than 64 ports to prove.

use std::path::{Path, PathBuf};

use crate::subjects::go_server;
use crate::support::*;

/// `ROOT/etc/systemd` is a link out of the tree (absolute, then relative with more `..` than
/// the tree is deep): like a chroot, lowport follows it inside the root, so the unit and its
/// enable link stay in the tree, nothing lands where the link points on the host, and rollback
/// takes exactly that away again.
#[test]
fn links_in_the_root_keep_every_write_inside_it() {
    if !is_root_or_skip("links_in_the_root_keep_every_write_inside_it") {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let depth = outside.path().components().count() + 5;
    let relative = format!("{}{}", "../".repeat(depth), outside.path().display());
    for target in [outside.path().display().to_string(), relative] {
        let t = TestEnv::new();
        let app = t.install(Path::new("/usr/bin/true"), "opt/app");
        std::os::unix::fs::symlink(&target, t.root.join("etc/systemd")).unwrap();
        let before = tree(&t.root);
        t.lowport()
            .args(["apply", "--method", "systemd", "--dynamic-user", "--yes"])
            .arg("--binary")
            .arg(&app)
            .args(["--port", "80"])
            .run()
            .code(0);
        let empty: Vec<PathBuf> = Vec::new();
        let listing = |d: &Path| -> Vec<PathBuf> {
            std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect()
        };
        assert_eq!(listing(outside.path()), empty, "wrote outside the root");
        // Inside the root, where the link leads when taken as a chroot would.
        let inside = t
            .root
            .join(outside.path().strip_prefix("/").unwrap())
            .join("system");
        let unit = std::fs::read_to_string(inside.join("app.service")).unwrap();
        assert!(unit.contains("ExecStart=/opt/app"), "{unit}");
        let link = std::fs::read_link(inside.join("multi-user.target.wants/app.service"));
        assert_eq!(link.unwrap(), Path::new("/etc/systemd/system/app.service"));
        t.lowport()
            .args(["rollback", "--last", "--yes"])
            .run()
            .code(0);
        assert_same_tree(&tree(&t.root), &before, "after rollback");
        assert_eq!(listing(outside.path()), empty);
    }
}

/// A masked unit (`NAME.service -> /dev/null`) is reported and kept; `--unmask` replaces it, and
/// rollback puts the very same link back.
#[test]
fn a_masked_unit_is_kept_unless_unmasked_and_rollback_masks_it_again() {
    if !is_root_or_skip("a_masked_unit_is_kept_unless_unmasked_and_rollback_masks_it_again") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let units = t.root.join("etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    std::os::unix::fs::symlink("/dev/null", units.join("app.service")).unwrap();
    let before = tree(&t.root);
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["apply", "--method", "systemd", "--dynamic-user", "--yes"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(["--binary".into(), app.display().to_string()]);
        v.extend(["--port".into(), "80".into()]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    t.lowport()
        .args(args(&[]))
        .run()
        .code(7)
        .stderr_has("app.service is masked")
        .stderr_has("--unmask");
    assert_same_tree(&tree(&t.root), &before, "refused apply");
    t.lowport()
        .args(args(&["--unmask"]))
        .run()
        .code(0)
        .stdout_has("put back the symbolic link /etc/systemd/system/app.service -> /dev/null");
    let unit = units.join("app.service");
    assert!(std::fs::symlink_metadata(&unit).unwrap().is_file());
    t.lowport()
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(0);
    assert_eq!(std::fs::read_link(&unit).unwrap(), Path::new("/dev/null"));
    assert_same_tree(&tree(&t.root), &before, "after rollback");
}

/// `apply --plan` shows (and runs) the plan it makes now from the file's request: text edited
/// into the file's summaries, diffs and undo lines is never printed.
#[test]
fn apply_plan_shows_the_fresh_plan_never_the_files_text() {
    if !is_root_or_skip("apply_plan_shows_the_fresh_plan_never_the_files_text") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let plan = t.state.with_file_name("plan.json");
    t.lowport()
        .args(["plan", "--method", "setcap", "--port", "80", "--binary"])
        .arg(&app)
        .arg("--out")
        .arg(&plan)
        .run()
        .code(0);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    for step in doc["steps"].as_array_mut().unwrap() {
        step["summary"] = "FORGED SUMMARY".into();
        step["undo"] = "FORGED UNDO".into();
        step["diff"] = "+ExecStartPre=+/bin/sh FORGED".into();
        step["commands"] = serde_json::json!([["FORGED", "COMMAND"]]);
    }
    std::fs::write(&plan, doc.to_string()).unwrap();
    let out = t
        .lowport()
        .args(["apply", "--yes", "--dry-run", "--plan"])
        .arg(&plan)
        .run();
    assert!(!out.stdout.contains("FORGED"), "{}", out.stdout);
    out.code(0)
        .stdout_has("write security.capability = cap_net_bind_service=ep on /opt/app");
}

/// A directory any user can write, first in `PATH`, holding programs that would leave a marker:
/// the setcap apply (which writes the attribute itself, running no setcap) and its verification
/// run none of them, a plan shows the system path of the programs it would run, and the marker
/// never appears.
#[test]
fn programs_come_from_the_system_directories_whatever_path_says() {
    if !is_root_or_skip("programs_come_from_the_system_directories_whatever_path_says") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let fake = tempfile::tempdir().unwrap();
    set_mode(fake.path(), 0o777);
    let marker = fake.path().join("ran");
    for prog in ["setcap", "useradd", "systemctl", "systemd-analyze", "nft"] {
        let script = format!("#!/bin/sh\ntouch {}\nexit 0\n", marker.display());
        std::fs::write(fake.path().join(prog), script).unwrap();
        set_mode(&fake.path().join(prog), 0o755);
    }
    let path = format!(
        "{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        fake.path().display()
    );
    let applied = t
        .lowport()
        .env("PATH", &path)
        .args([
            "apply", "--method", "setcap", "--port", "80", "--yes", "--binary",
        ])
        .arg(&app)
        .run();
    assert!(!marker.exists(), "lowport ran a program from PATH");
    applied
        .code(0)
        .stdout_has("write security.capability = cap_net_bind_service=ep on /opt/app");
    assert!(getcap(&t.host(&app)).contains("cap_net_bind_service=ep"));
    t.lowport()
        .env("PATH", &path)
        .args(["plan", "--method", "systemd", "--port", "80", "--binary"])
        .arg(&app)
        .run()
        .code(0)
        .stdout_has("runs: /usr/sbin/useradd");
    assert!(!marker.exists(), "lowport ran a program from PATH");
}

/// Escape sequences in a name (here a symlink target a user chose) reach the terminal only as
/// visible text.
#[test]
fn control_characters_in_names_are_shown_escaped() {
    let t = TestEnv::new();
    let name = "opt/app\u{1b}]0;pwned\u{7}\u{1b}[2J";
    std::fs::create_dir_all(t.root.join("opt")).unwrap();
    std::fs::copy("/usr/bin/true", t.root.join(name)).unwrap();
    std::os::unix::fs::symlink(Path::new("/").join(name), t.root.join("opt/link")).unwrap();
    let out = t
        .lowport()
        .args(["detect", "--binary", "/opt/link"])
        .run()
        .code(0)
        .stdout_has("/opt/app\\u{1b}]0;pwned\\u{7}\\u{1b}[2J");
    assert!(!out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{7}'));
    // The same for a value the command line refuses, which the message quotes.
    let out = t
        .lowport()
        .args(["plan", "--method", "setcap", "--user", "a\rb"])
        .run()
        .code(2)
        .stderr_has("'a\\u{d}b'");
    assert!(!out.stderr.contains('\r'), "{}", out.stderr);
}

/// Sixty-five ports where only the last cannot be bound: verify must say so.
#[test]
fn verify_proves_every_port_past_the_64th() {
    if !is_root_or_skip("verify_proves_every_port_past_the_64th") {
        return;
    }
    let ns = Netns::new();
    let set = ns.exec(&["sysctl", "-w", "net.ipv4.ip_unprivileged_port_start=100"]);
    assert!(set.status.success());
    let mut ports: Vec<String> = (100..164).map(|p: u16| p.to_string()).collect();
    ports.push("99".into());
    let args: Vec<String> = ports
        .iter()
        .flat_map(|p| ["--port".into(), p.clone()])
        .collect();
    Lowport::new()
        .netns(&ns)
        .args(["verify", "--user", "nobody"])
        .args(&args)
        .run()
        .code(8)
        .stdout_has("user nobody may not bind port 99 (EACCES)")
        .stdout_has("user nobody bound port 163");
}

/// What stands where lowport would put its enable link, if it is not a link, is kept: the step
/// fails and everything is rolled back, the file untouched.
#[test]
fn a_file_where_the_enable_link_goes_is_kept() {
    if !is_root_or_skip("a_file_where_the_enable_link_goes_is_kept") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let wants = t.root.join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    std::fs::write(wants.join("app.service"), "an admin's file\n").unwrap();
    let before = tree(&t.root);
    t.lowport()
        .args([
            "apply",
            "--method",
            "systemd",
            "--dynamic-user",
            "--yes",
            "--port",
            "80",
        ])
        .arg("--binary")
        .arg(&app)
        .run()
        .code(4)
        .stderr_has("is not a symbolic link");
    assert_same_tree(&tree(&t.root), &before, "after the rolled-back apply");
}

/// A facts document is input from another host (or from someone who forged one): a program it
/// names must be where lowport finds its own, under its own name, and the host's name one line.
/// Otherwise `/tmp/evil` (or `/sbin/pfctl; rm -rf /`) would become the argv of a command an
/// exported script runs as root, and a host name with a line break a line of its own in a
/// YAML export's header.
#[test]
fn a_facts_documents_programs_and_names_are_checked_as_lowports_own() {
    let facts = crate::exports::scenarios().join("pf_freebsd_merges_pf_conf/facts.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&facts).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let forged = dir.path().join("facts.json");
    let plan = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut d = doc.clone();
        edit(&mut d);
        std::fs::write(&forged, d.to_string()).unwrap();
        Lowport::new()
            .args([
                "plan",
                "--method",
                "pf-freebsd",
                "--port",
                "80:8080",
                "--facts",
            ])
            .arg(&forged)
            .run()
    };
    plan(&|_| {}).code(0);
    for evil in [
        "/tmp/evil",
        "/sbin/pfctl; rm -rf /",
        "/sbin/sh",
        "pfctl",
        "/sbin/../tmp/pfctl",
    ] {
        plan(&|d| d["tools"]["pfctl"] = evil.into())
            .code(2)
            .stderr_has("lowport runs a program only by its own name");
    }
    plan(&|d| d["hostname"] = "web1\nbootcmd: [[touch, /tmp/pwned]]".into())
        .code(2)
        .stderr_has("host name");
    plan(&|d| d["os"]["pretty_name"] = "FreeBSD\u{202e}".into())
        .code(2)
        .stderr_has("OS name");
}

/// A saved plan handed to `export --plan` is input: a command step whose program is not one of
/// lowport's step programs in the system directories (a `/bin/sh -c …`, a `useradd` elsewhere)
/// is refused for every format, as a journal naming one is refused before a rollback.
#[test]
fn an_exported_plans_commands_run_only_lowports_step_programs() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let make = |scenario: &str, args: &[&str]| {
        Lowport::new()
            .arg("plan")
            .args(args)
            .arg("--facts")
            .arg(
                crate::exports::scenarios()
                    .join(scenario)
                    .join("facts.json"),
            )
            .arg("--out")
            .arg(&plan)
            .run()
            .code(0);
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&plan).unwrap()).unwrap()
    };
    let export = |p: &serde_json::Value, format: &str| {
        std::fs::write(&plan, p.to_string()).unwrap();
        Lowport::new()
            .args(["export", "--format", format, "--plan"])
            .arg(&plan)
            .run()
    };
    let pf = make(
        "pf_freebsd_merges_pf_conf",
        &["--method", "pf-freebsd", "--port", "80:8080"],
    );
    export(&pf, "sh").code(0);
    let last = pf["steps"].as_array().unwrap().len() - 1;
    for field in ["run", "undo"] {
        let mut p = pf.clone();
        p["steps"][last]["action"][field] =
            serde_json::json!([["/bin/sh", "-c", "id > /tmp/pwned"]]);
        export(&p, "sh")
            .code(2)
            .stderr_has("is not one of the programs lowport's steps run");
    }
    let unit = make(
        "systemd_new_unit_and_user",
        &[
            "--method",
            "systemd",
            "--binary",
            "/usr/local/bin/fabio",
            "--port",
            "80",
            "--port",
            "443",
            "--arg",
            "-cfg",
            "--arg",
            "/etc/fabio/fabio.properties",
        ],
    );
    for format in ["sh", "cloud-init"] {
        export(&unit, format).code(0);
    }
    let steps = unit["steps"].as_array().unwrap();
    let user = steps
        .iter()
        .position(|s| s["action"]["type"] == "create_user")
        .unwrap();
    let mut p = unit.clone();
    p["steps"][user]["commands"][0][0] = "/tmp/x/useradd".into();
    export(&p, "sh")
        .code(2)
        .stderr_has("\"/tmp/x/useradd\" is not one of the programs");
    let command = steps
        .iter()
        .position(|s| s["action"]["type"] == "run_commands")
        .unwrap();
    let mut p = unit.clone();
    p["steps"][command]["action"]["run"] = serde_json::json!([["/usr/bin/curl", "evil"]]);
    for format in ["sh", "cloud-init"] {
        export(&p, format).code(2);
    }
}

/// Every export's header names the plan's host and fingerprint; from a saved plan (input) a
/// line break in either would end the comment, and in cloud-init's user-data start a
/// `bootcmd:` the plan never showed. Each header line stays one comment line.
#[test]
fn a_saved_plans_host_name_cannot_leave_an_exports_header() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    Lowport::new()
        .args(["plan", "--method", "sysctl", "--port", "80", "--facts"])
        .arg(crate::exports::scenarios().join("sysctl_lowers_the_boundary/facts.json"))
        .arg("--out")
        .arg(&plan)
        .run()
        .code(0);
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    p["hostname"] = "web1\nbootcmd: [[touch, /tmp/pwned]]\r\n#".into();
    std::fs::write(&plan, p.to_string()).unwrap();
    for format in ["cloud-init", "kubernetes", "compose", "sh"] {
        let out = Lowport::new()
            .args(["export", "--format", format, "--plan"])
            .arg(&plan)
            .run()
            .code(0);
        assert!(
            !out.stdout.lines().any(|l| l.starts_with("bootcmd")),
            "{format}:\n{}",
            out.stdout
        );
        assert!(out.stdout.contains("web1\\u{a}bootcmd"), "{}", out.stdout);
    }
}

/// `export --out DIR`, `plan --out FILE` (and the wizard's exports, which write the same way)
/// run as root in directories others may share: a link planted at a file's name is replaced,
/// never written through; a linked subdirectory is refused; a file someone else made there
/// does not keep its owner and mode (they could change the script after lowport wrote it).
#[test]
fn exports_and_saved_plans_are_never_written_through_a_planted_link() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
    let facts = crate::exports::scenarios().join("sysctl_lowers_the_boundary/facts.json");
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("shadow");
    std::fs::write(&victim, "root:secret\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    symlink(&victim, out.join("lowport.sh")).unwrap();
    let export = |format: &str| {
        Lowport::new()
            .args([
                "export", "--format", format, "--method", "sysctl", "--port", "80",
            ])
            .arg("--facts")
            .arg(&facts)
            .arg("--out")
            .arg(&out)
            .run()
    };
    export("sh").code(0);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root:secret\n");
    let script = std::fs::symlink_metadata(out.join("lowport.sh")).unwrap();
    assert!(script.is_file() && script.mode() & 0o7777 == 0o755);
    // A subdirectory of the export that is a link out of it is refused.
    symlink(victim_dir.path(), out.join("tasks")).unwrap();
    export("ansible").code(2).stderr_has("is not a directory");
    assert_eq!(std::fs::read_dir(victim_dir.path()).unwrap().count(), 1);
    // plan --out FILE: the same.
    let plan = dir.path().join("plan.json");
    symlink(&victim, &plan).unwrap();
    Lowport::new()
        .args(["plan", "--method", "sysctl", "--port", "80", "--facts"])
        .arg(&facts)
        .arg("--out")
        .arg(&plan)
        .run()
        .code(0);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root:secret\n");
    assert!(std::fs::symlink_metadata(&plan).unwrap().is_file());
    if !is_root_or_skip("exports_and_saved_plans_are_never_written_through_a_planted_link") {
        return;
    }
    // Someone else's file, writable by everyone, under the script's name.
    let planted = out.join("lowport.sh");
    std::fs::remove_file(&planted).unwrap();
    std::fs::write(&planted, "").unwrap();
    std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o666)).unwrap();
    export("sh").code(0);
    let m = std::fs::metadata(&planted).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o755));
}

/// An alternate root that someone other than root could replace (a directory above it is
/// theirs) is refused before anything changes: they could swap the whole tree, with links to
/// the host's own files in it, between lowport's checks and its writes. And a rollback changes
/// owner and mode through the file itself, never through a link planted where it was.
#[test]
fn a_root_others_can_replace_is_refused_and_rollback_never_follows_a_planted_link() {
    if !is_root_or_skip(
        "a_root_others_can_replace_is_refused_and_rollback_never_follows_a_planted_link",
    ) {
        return;
    }
    use std::os::unix::fs::{PermissionsExt, chown};
    let t = TestEnv::new();
    let app = t.install(go_server(), "opt/bin/app");
    let above = t.root.parent().unwrap();
    let apply = || {
        t.lowport()
            .args([
                "apply", "--method", "setcap", "--group", "daemon", "--port", "80",
            ])
            .arg("--binary")
            .arg(&app)
            .arg("--yes")
            .run()
    };
    chown(above, Some(65534), Some(65534)).unwrap();
    let before = tree(&t.root);
    // setcap sees it in the binary's facts (whoever can swap the tree can swap the program);
    // every other method is refused by the runner, before the lock and the journal.
    apply().code(7).stderr_has(&format!(
        "directory {} is owned by nobody, who can replace it",
        above.display()
    ));
    // A state directory elsewhere, which nobody cannot touch: the root alone is at stake.
    let state = tempfile::tempdir().unwrap();
    let systemd_at = |root: &Path| {
        Lowport::new()
            .arg("--root")
            .arg(root)
            .arg("--state-dir")
            .arg(state.path().join("state"))
            .args([
                "apply",
                "--method",
                "systemd",
                "--dynamic-user",
                "--port",
                "80",
            ])
            .arg("--binary")
            .arg(&app)
            .arg("--yes")
            .run()
            .code(7)
            .stderr_has("can be replaced by someone other than root")
    };
    systemd_at(&t.root).stderr_has("is owned by nobody");
    assert_same_tree(&tree(&t.root), &before, "after the refusals");
    assert_eq!(getcap(&t.host(&app)), "");
    assert_eq!(t.runs(), 0, "a run was started");
    assert!(
        !state.path().join("state/runs").exists(),
        "a run was started"
    );
    // The same tree reached through a link, root's, in a folder only root can change: the
    // folders where the tree really is decide. And a link nobody owns, in a sticky folder, is
    // theirs to point elsewhere.
    let links = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&t.root, links.path().join("root")).unwrap();
    let sticky = links.path().join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    set_mode(&sticky, 0o1777);
    let theirs = sticky.join("root");
    std::os::unix::fs::symlink(&t.root, &theirs).unwrap();
    std::os::unix::fs::lchown(&theirs, Some(65534), Some(65534)).unwrap();
    // Links met inside a link's target count too: a root-owned link to a link in nobody's
    // folder, and a root-owned link whose target steps through nobody's folder with `..`
    // (where they may put a link later).
    let evil = links.path().join("evil");
    std::fs::create_dir_all(evil.join("sub")).unwrap();
    std::os::unix::fs::symlink(&t.root, evil.join("x")).unwrap();
    std::os::unix::fs::symlink(evil.join("x"), links.path().join("via")).unwrap();
    let dotdot = links.path().join("dotdot");
    std::os::unix::fs::symlink(&t.root, links.path().join("real")).unwrap();
    let through = format!("{}/sub/../../real", evil.display());
    std::os::unix::fs::symlink(through, &dotdot).unwrap();
    for d in [evil.clone(), evil.join("sub")] {
        chown(&d, Some(65534), Some(65534)).unwrap();
    }
    let replace = "is owned by nobody, who can replace it";
    for (root, said) in [
        (links.path().join("root"), replace),
        (
            theirs.clone(),
            "is owned by nobody, who can point it elsewhere",
        ),
        (links.path().join("via"), replace),
        (dotdot.clone(), replace),
    ] {
        if said.contains("point") {
            chown(above, Some(0), Some(0)).unwrap();
        }
        systemd_at(&root).stderr_has(said);
    }
    assert_same_tree(&tree(&t.root), &before, "after the refusals through links");
    chown(above, Some(0), Some(0)).unwrap();

    apply().code(0);
    let victim = tempfile::NamedTempFile::new().unwrap();
    set_mode(victim.path(), 0o600);
    std::fs::remove_file(t.host(&app)).unwrap();
    std::os::unix::fs::symlink(victim.path(), t.host(&app)).unwrap();
    // Forced past the warning that the file changed: what is there now is not lowport's, and
    // the rollback says what it could not reach.
    t.lowport()
        .args(["rollback", "--last", "--yes", "--force"])
        .run()
        .stderr_has("is no longer the file this run changed");
    let mode = std::fs::metadata(victim.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o7777,
        0o600,
        "the rollback changed the file the link points at"
    );
}

/// A FIFO where an account file is (`etc/passwd` of the tree) never reaches useradd, which
/// would block opening it while lowport holds its lock: the step is refused before it runs.
#[test]
fn a_fifo_for_an_account_file_is_refused_before_useradd_runs() {
    if !is_root_or_skip("a_fifo_for_an_account_file_is_refused_before_useradd_runs") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/bin/app");
    let passwd = t.root.join("etc/passwd");
    std::fs::remove_file(&passwd).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&passwd)
        .status()
        .unwrap();
    assert!(made.success());
    let out = std::process::Command::new("timeout")
        .arg("30")
        .arg(BIN)
        .arg("--root")
        .arg(&t.root)
        .arg("--state-dir")
        .arg(&t.state)
        .args([
            "apply", "--method", "systemd", "--user", "svc-fifo", "--port", "80", "--yes",
        ])
        .arg("--binary")
        .arg(&app)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned();
    assert_ne!(
        out.status.code(),
        Some(124),
        "apply hung on a FIFO passwd: {text}"
    );
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("is not a regular file"), "{text}");
    assert!(!text.contains("INCOMPLETE"), "{text}");
}
