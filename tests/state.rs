//! The state directory and its journals as untrusted, crash-proof input: an unsafe directory or
//! lock is refused with the fix, forged records never act, crash leftovers never wedge a
//! command, runs order by sequence, and a killed run's forked child never holds the lock.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::*;

fn setcap(app: &Path) -> Vec<String> {
    ["apply", "--method", "setcap", "--binary"]
        .iter()
        .map(|s| s.to_string())
        .chain([app.display().to_string()])
        .chain(["--port", "80", "--yes"].iter().map(|s| s.to_string()))
        .collect()
}

/// Applies setcap on `app` and returns the run id.
fn applied(t: &TestEnv, app: &Path) -> String {
    let out = t.lowport().args(setcap(app)).run().code(0);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Applied as run"))
        .expect("run id")
        .to_string();
    line.split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches('.')
        .to_string()
}

fn history(t: &TestEnv) -> Value {
    t.lowport().args(["history", "--json"]).run().code(0).json()
}

/// The status `history --json` gives run `id`.
fn status_of(t: &TestEnv, id: &str) -> Value {
    let h = history(t);
    let run = h["runs"].as_array().unwrap().iter().find(|r| r["id"] == id);
    run.unwrap_or_else(|| panic!("no run {id}: {h}"))["status"].clone()
}

/// The journal of a run that is not rolled back yet.
fn journal(t: &TestEnv, id: &str) -> PathBuf {
    t.state.join("runs").join(format!("{id}.open.jsonl"))
}

fn read_records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write_records(path: &Path, records: &[Value]) {
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn an_unsafe_state_directory_is_refused_with_the_fix() {
    if !is_root_or_skip("an_unsafe_state_directory_is_refused_with_the_fix") {
        return;
    }
    let mut t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    // The state directory in a folder of its own: opening up its parent must not open up the
    // root's too (that is refused for its own reason).
    let own = tempfile::tempdir().unwrap();
    set_mode(own.path(), 0o755);
    t.state = own.path().join("state");
    let parent = t.state.parent().unwrap().to_path_buf();
    let chmod = |p: &Path, m: u32| set_mode(p, m);
    std::fs::create_dir(&t.state).unwrap();
    type Setup = Box<dyn Fn()>;
    let state = t.state.clone();
    let (s1, s2, s3, p4) = (state.clone(), state.clone(), state.clone(), parent.clone());
    let cases: Vec<(&str, Setup, String)> = vec![
        (
            "world-writable",
            Box::new(move || chmod(&s1, 0o777)),
            format!("chmod go-w {}", state.display()),
        ),
        (
            "group-writable",
            Box::new(move || chmod(&s2, 0o770)),
            "writable by its group".into(),
        ),
        (
            "owned by nobody",
            Box::new(move || std::os::unix::fs::chown(&s3, Some(65534), None).unwrap()),
            format!("chown root {}", state.display()),
        ),
        (
            "parent writable",
            Box::new(move || chmod(&p4, 0o777)),
            format!("chmod go-w {}", parent.display()),
        ),
    ];
    for (what, setup, fix) in cases {
        setup();
        let before = tree(&t.root);
        for args in [
            vec!["history".to_string()],
            vec!["rollback".into(), "--last".into(), "--yes".into()],
            setcap(&app)
                .into_iter()
                .chain(["--dry-run".into()])
                .collect(),
            setcap(&app),
        ] {
            t.lowport()
                .args(&args)
                .run()
                .code(7)
                .stderr_has("refusing the state directory")
                .stderr_has(&fix)
                .stderr_has("Nothing was changed");
            assert_same_tree(&tree(&t.root), &before, &format!("{what}: {args:?}"));
        }
        assert!(
            std::fs::read_dir(&t.state).unwrap().next().is_none(),
            "{what}: nothing was created in the state directory"
        );
        // Put it right again for the next case.
        chmod(&t.state, 0o700);
        chmod(t.state.parent().unwrap(), 0o755);
        std::os::unix::fs::chown(&t.state, Some(0), None).unwrap();
    }
    assert_eq!(getcap(&t.host(&app)), "");
    // Safe again, it works.
    applied(&t, &app);
}

#[test]
fn the_lock_is_never_opened_through_a_link() {
    if !is_root_or_skip("the_lock_is_never_opened_through_a_link") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    std::fs::create_dir(&t.state).unwrap();
    let victim = t.state.with_file_name("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, t.state.join("lock")).unwrap();
    for extra in [&["--dry-run"][..], &[]] {
        t.lowport()
            .args(setcap(&app))
            .args(extra)
            .run()
            .code(7)
            .stderr_has(&t.state.join("lock").display().to_string())
            .stderr_has("remove it");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    }
    assert_eq!(getcap(&t.host(&app)), "");
}

#[test]
fn forged_journal_records_are_refused_and_nothing_runs() {
    if !is_root_or_skip("forged_journal_records_are_refused_and_nothing_runs") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let id = applied(&t, &app);
    let path = journal(&t, &id);
    let good = read_records(&path);
    let pwned = t.state.with_file_name("pwned");
    let shell = json!(["sh", "-c", format!("touch {}", pwned.display())]);
    type Forge = Box<dyn Fn(&mut Vec<Value>)>;
    let cases: Vec<(&str, Forge)> = vec![
        (
            "is not one lowport runs",
            Box::new(move |r| {
                // A second step whose undo runs a shell, and its snapshot.
                let steps = r[0]["plan"]["steps"].as_array_mut().unwrap();
                let mut step = steps[0].clone();
                step["action"] = json!({"type": "run_commands", "what": "x", "run": [],
                    "undo": [shell.clone()], "check": null});
                step["before"] = json!({"kind": "command", "in_place": null});
                steps.push(step);
                r.insert(
                    2,
                    json!({"event": "before", "step": 2, "snapshot": {
                        "state": {"kind": "command", "in_place": null},
                        "backups": {}, "created_dirs": []}}),
                );
            }),
        ),
        (
            "not an absolute path in normal form",
            Box::new(|r| r[0]["plan"]["steps"][0]["action"]["path"] = json!("/opt/../../etc/x")),
        ),
        (
            "is not hex",
            Box::new(|r| {
                r[1]["snapshot"]["state"]["xattrs"] = json!({"security.capability": "é0é0"})
            }),
        ),
        (
            "unknown variant",
            Box::new(|r| r[0]["plan"]["steps"][0]["action"]["type"] = json!("run_shell")),
        ),
        (
            "step 0 is not in the run's plan",
            Box::new(|r| r[1]["step"] = json!(0)),
        ),
        (
            "which the step does not write",
            Box::new(|r| r[1]["snapshot"]["backups"] = json!({"/etc/shadow": "step-1.0.backup"})),
        ),
        (
            "unknown variant",
            Box::new(|r| r.insert(1, json!({"event": "exec", "argv": ["sh"]}))),
        ),
        (
            "a second start record",
            Box::new(|r| {
                let start = r[0].clone();
                r.push(start)
            }),
        ),
    ];
    let cap = getcap(&t.host(&app));
    assert!(cap.contains("cap_net_bind_service"), "{cap}");
    for (why, forge) in cases {
        let mut records = good.clone();
        forge(&mut records);
        write_records(&path, &records);
        let before = tree(&t.root);
        for args in [
            vec!["rollback".to_string(), id.clone(), "--yes".into()],
            vec!["rollback".into(), "--last".into(), "--yes".into()],
        ] {
            t.lowport()
                .args(&args)
                .run()
                .code(7)
                .stderr_has(&path.display().to_string())
                .stderr_has("is not a valid lowport record")
                .stderr_has(why);
        }
        assert_same_tree(&tree(&t.root), &before, why);
        assert_eq!(getcap(&t.host(&app)), cap, "{why}: nothing was undone");
        assert!(!pwned.exists(), "{why}: the forged command ran");
        // history still lists everything else, and names the forged run's file.
        let out = t.lowport().arg("history").run().code(0);
        assert!(out.stderr.contains(&path.display().to_string()), "{why}");
    }
    // What rollback shows is derived from the action, not the text stored with it.
    let mut records = good.clone();
    records[0]["plan"]["steps"][0]["undo"] = json!("EVIL: nothing to see here");
    write_records(&path, &records);
    let out = t
        .lowport()
        .args(["rollback", &id, "--yes"])
        .run()
        .code(0)
        .stdout_has("remove the security.capability attribute");
    assert!(!out.stdout.contains("EVIL"), "{}", out.stdout);
    assert_eq!(getcap(&t.host(&app)), "");
}

#[test]
fn runs_in_one_second_roll_back_newest_first() {
    if !is_root_or_skip("runs_in_one_second_roll_back_newest_first") {
        return;
    }
    let t = TestEnv::new();
    let a = t.install(Path::new("/usr/bin/true"), "opt/a");
    let b = t.install(Path::new("/usr/bin/true"), "opt/b");
    // Two applies a few milliseconds apart share their second; with random tie-breaks a
    // misorder shows within these rounds with probability 15/16.
    for round in 0..4 {
        let first = applied(&t, &a);
        let second = applied(&t, &b);
        let ids: Vec<String> = history(&t)["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            ids[ids.len() - 2..],
            [first.clone(), second.clone()],
            "{round}"
        );
        t.lowport()
            .args(["rollback", "--last", "--yes"])
            .run()
            .code(0)
            .stdout_has(&format!("Run {second} rolled back"));
        assert_eq!(
            getcap(&t.host(&b)),
            "",
            "round {round}: the newer run is undone"
        );
        assert!(getcap(&t.host(&a)).contains("cap_net_bind_service"));
        t.lowport()
            .args(["rollback", "--last", "--yes"])
            .run()
            .code(0)
            .stdout_has(&format!("Run {first} rolled back"));
        assert_eq!(getcap(&t.host(&a)), "");
    }
}

#[test]
fn no_leftover_of_a_crash_wedges_history_rollback_or_apply() {
    if !is_root_or_skip("no_leftover_of_a_crash_wedges_history_rollback_or_apply") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let id = applied(&t, &app);
    let runs = t.state.join("runs");
    // What killed runs of earlier versions leave: a folder with an empty journal, one with
    // none, their open markers, a run folder never published, a stale marker; and of this one:
    // a journal never published, and the backups saved for it.
    for (dir, journal) in [
        ("20260101T000000Z-0001", Some("")),
        ("20260101T000000Z-0002", None),
    ] {
        std::fs::create_dir(runs.join(dir)).unwrap();
        if let Some(text) = journal {
            std::fs::write(runs.join(dir).join("journal.jsonl"), text).unwrap();
        }
        std::fs::write(runs.join(format!("{dir}.open")), "").unwrap();
    }
    std::fs::create_dir(runs.join(".new-99-20260101T000000Z")).unwrap();
    std::fs::write(runs.join(".new-99-20260101T000000Z/journal.jsonl"), "{\"ev").unwrap();
    std::fs::write(runs.join("98-20260101T000000Z.open"), "").unwrap();
    std::fs::write(runs.join(".new-97-20260101T000000Z.jsonl"), "{\"ev").unwrap();
    // A command killed while it kept its listings; and a name that is not lowport's.
    let listings_left = t.state.join(".listings.json.4194304");
    std::fs::write(&listings_left, "{").unwrap();
    std::fs::write(t.state.join(".listings.json.x"), "").unwrap();
    std::fs::create_dir(runs.join("97-20260101T000000Z.backups")).unwrap();
    std::fs::write(
        runs.join("97-20260101T000000Z.backups/step-1.0.backup"),
        "x",
    )
    .unwrap();
    // A record torn by a crash at the end of the real run's journal.
    let path = journal(&t, &id);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"event\":\"rollback_st").unwrap();
    drop(f);

    let out = t.lowport().arg("history").run().code(0);
    for s in ["never started", "20260101T000000Z-0002", "torn by a crash"] {
        assert!(
            out.stderr.contains(s),
            "history lacks {s:?}: {}",
            out.stderr
        );
    }
    assert!(out.stderr.contains(&path.display().to_string()));
    assert!(out.stdout.contains(&id), "{}", out.stdout);
    // The torn line is closed off, and the records after it are read.
    t.lowport()
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(0)
        .stdout_has(&format!("Run {id} rolled back"));
    assert_eq!(getcap(&t.host(&app)), "");
    assert_eq!(status_of(&t, &id), "rolled_back");
    // The lock holder tidied what never took effect.
    assert!(!runs.join(".new-99-20260101T000000Z").exists());
    assert!(!runs.join("98-20260101T000000Z.open").exists());
    assert!(!runs.join(".new-97-20260101T000000Z.jsonl").exists());
    assert!(!runs.join("97-20260101T000000Z.backups").exists());
    assert!(!listings_left.exists());
    assert!(t.state.join(".listings.json.x").exists());
    // And a new apply is not blocked by the markers of runs that never started.
    let again = applied(&t, &app);
    assert_ne!(again, id);
    t.lowport()
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(0)
        .stdout_has(&format!("Run {again} rolled back"));
}

/// A rollback's end record is not synced: a crash may lose it, with or without the closed name
/// given after it. Either way the run must read as what it is: rolled back when the name says so,
/// else a rollback to finish, which finishes without --force (every target is as it was).
#[test]
fn a_rollback_whose_end_record_a_crash_lost_reads_as_what_it_is() {
    if !is_root_or_skip("a_rollback_whose_end_record_a_crash_lost_reads_as_what_it_is") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let runs = t.state.join("runs");
    let drop_end = |path: &Path| {
        let mut records = read_records(path);
        assert_eq!(records.last().unwrap()["status"], "rolled_back");
        records.pop();
        write_records(path, &records);
    };

    // The name was kept, the record lost.
    let id = applied(&t, &app);
    t.lowport()
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(0);
    let closed = runs.join(format!("{id}.jsonl"));
    drop_end(&closed);
    assert_eq!(status_of(&t, &id), "rolled_back");
    let out = t.lowport().arg("history").run().code(0);
    assert!(
        out.stderr.contains("lost its last record"),
        "{}",
        out.stderr
    );
    t.lowport()
        .args(["rollback", &id, "--yes"])
        .run()
        .code(0)
        .stdout_has("already rolled back");

    // Both were lost: the journal is back under its open name without its end.
    let id = applied(&t, &app);
    t.lowport()
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(0);
    let closed = runs.join(format!("{id}.jsonl"));
    drop_end(&closed);
    std::fs::rename(&closed, journal(&t, &id)).unwrap();
    assert_ne!(status_of(&t, &id), "rolled_back");
    // An unfinished run blocks a new apply until it is finished.
    t.lowport()
        .args(setcap(&app))
        .run()
        .code(7)
        .stderr_has("unfinished");
    t.lowport()
        .args(["rollback", &id, "--yes"])
        .run()
        .code(0)
        .stdout_has(&format!("Run {id} rolled back"));
    assert_eq!(status_of(&t, &id), "rolled_back");
    assert_eq!(getcap(&t.host(&app)), "");
}

/// A journal closed by hand (renamed, restored from a copy) is read as its records say: only the
/// pattern a crash leaves (a synced rollback start, nothing after it) counts as rolled back. And a
/// journal that cannot be read fails `verify --all` rather than being passed over.
#[test]
fn a_journal_closed_by_hand_or_unreadable_is_never_passed_over() {
    if !is_root_or_skip("a_journal_closed_by_hand_or_unreadable_is_never_passed_over") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let id = applied(&t, &app);
    let closed = t.state.join("runs").join(format!("{id}.jsonl"));
    std::fs::rename(journal(&t, &id), &closed).unwrap();
    assert_eq!(status_of(&t, &id), "applied");
    t.lowport()
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(0)
        .stdout_has(&format!("Run {id} rolled back"));
    assert_eq!(getcap(&t.host(&app)), "");

    let id = applied(&t, &app);
    let mut records = read_records(&journal(&t, &id));
    records.push(json!({"event": "undone", "step": 7}));
    write_records(&journal(&t, &id), &records);
    t.lowport()
        .args(["verify", "--all"])
        .run()
        .code(7)
        .stderr_has(&id);
}

/// Moves a run of this version into the layout earlier versions wrote, as `as_id`: its journal
/// in `runs/ID/journal.jsonl` with its backups beside it, marked by `runs/ID.open` while it is
/// not rolled back (the journal's records hold no id, so any valid id of either form fits).
fn to_earlier_layout(t: &TestEnv, id: &str, as_id: &str) {
    let runs = t.state.join("runs");
    let folder = runs.join(as_id);
    std::fs::create_dir(&folder).unwrap();
    let journal = runs.join(format!("{id}.open.jsonl"));
    std::fs::rename(&journal, folder.join("journal.jsonl")).unwrap();
    let backups = runs.join(format!("{id}.backups"));
    if backups.exists() {
        for e in std::fs::read_dir(&backups).unwrap() {
            let e = e.unwrap();
            std::fs::rename(e.path(), folder.join(e.file_name())).unwrap();
        }
        std::fs::remove_dir(&backups).unwrap();
    }
    std::fs::write(runs.join(format!("{as_id}.open")), "").unwrap();
}

#[test]
fn runs_journaled_in_the_earlier_layout_are_read_and_rolled_back() {
    if !is_root_or_skip("runs_journaled_in_the_earlier_layout_are_read_and_rolled_back") {
        return;
    }
    let t = TestEnv::new();
    let ns = Netns::new();
    let lowport = || Lowport::new().netns(&ns).env_dirs(&t);
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let other = t.install(Path::new("/usr/bin/true"), "opt/other");
    let conf = t
        .root
        .join("etc/sysctl.d/60-lowport-unprivileged-ports.conf");
    std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
    std::fs::write(&conf, "# hand-written\n").unwrap();
    let (before, sysctl) = (tree(&t.root), ns.sysctl());
    let ids = |h: &Value| -> Vec<(String, String)> {
        h["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().into(),
                    r["status"].as_str().unwrap().into(),
                )
            })
            .collect()
    };

    // An applied setcap run with an id of the oldest form, an applied sysctl run that saved a
    // backup of the file it replaced, and a setcap run killed after its change.
    let first = applied(&t, &app);
    to_earlier_layout(&t, &first, "20261129T120000Z-abcd");
    lowport()
        .args([
            "apply",
            "--method",
            "sysctl",
            "--port",
            "80",
            "--yes",
            "--accept-risk",
        ])
        .run()
        .code(0);
    let sysctl_run = ids(&history(&t)).pop().unwrap().0;
    assert!(t.state.join(format!("runs/{sysctl_run}.backups")).is_dir());
    to_earlier_layout(&t, &sysctl_run, &sysctl_run);
    assert_ne!(std::fs::read_to_string(&conf).unwrap(), "# hand-written\n");
    t.lowport()
        .args(setcap(&other))
        .env("LOWPORT_TEST_FAULT", "kill-after:1")
        .run()
        .killed();
    let killed = ids(&history(&t)).pop().unwrap().0;
    to_earlier_layout(&t, &killed, &killed);
    assert_eq!(
        ids(&history(&t)),
        [
            ("20261129T120000Z-abcd".to_string(), "applied".to_string()),
            (sysctl_run.clone(), "applied".into()),
            (killed.clone(), "interrupted".into()),
        ]
    );
    assert!(
        t.state
            .join(format!("runs/{killed}/journal.jsonl"))
            .is_file()
    );

    // The interrupted one is found by its marker and blocks a new apply until rolled back.
    t.lowport()
        .args(setcap(&other))
        .run()
        .code(7)
        .stderr_has(&format!("run {killed} is unfinished"));
    for id in [&killed, &sysctl_run, &"20261129T120000Z-abcd".to_string()] {
        lowport()
            .args(["rollback", "--last", "--yes"])
            .run()
            .code(0)
            .stdout_has(&format!("Run {id} rolled back"));
        // Closed in place: its journal says so, and its marker is gone.
        let runs = t.state.join("runs");
        let records = read_records(&runs.join(id).join("journal.jsonl"));
        assert_eq!(records.last().unwrap()["status"], "rolled_back", "{id}");
        assert!(!runs.join(format!("{id}.open")).exists(), "{id}");
    }
    // The file came back from the backup in the earlier layout, the sysctl as it was.
    assert_same_tree(&tree(&t.root), &before, "every earlier-layout run undone");
    assert_eq!(ns.sysctl(), sysctl);
    lowport()
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(7)
        .stderr_has("no run left to roll back");
    // A new run comes after them all.
    let new = applied(&t, &app);
    assert_eq!(ids(&history(&t)).last().unwrap().0, new);
    assert!(id_after(&new, &killed), "{new} after {killed}");
}

/// Whether run id `a` has a higher sequence number than `b` (both of the `SEQ-…` form).
fn id_after(a: &str, b: &str) -> bool {
    let seq = |id: &str| id.split('-').next().unwrap().parse::<u64>().unwrap();
    seq(a) > seq(b)
}

#[test]
fn a_killed_run_never_leaves_its_lock_to_a_forked_child() {
    if !is_root_or_skip("a_killed_run_never_leaves_its_lock_to_a_forked_child") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let before = tree(&t.root);
    // Two steps on one file (owner and mode, then the capability). At the fifth journal write
    // (the start, step 1's snapshot and result, step 2's snapshot, then step 2's result: setcap
    // has run but no record says so) fork a child that lives on, as the bind probe does, and
    // die by SIGKILL.
    t.lowport()
        .args(setcap(&app))
        .args(["--group", "nogroup"])
        .env("LOWPORT_TEST_FAULT", "fork-kill:5")
        .run()
        .killed();
    assert!(getcap(&t.host(&app)).contains("cap_net_bind_service"));
    // The child is still alive (it sleeps 10 s), and the lock is free all the same. The
    // capability set by the unrecorded step is the run's own change, not an edit to refuse.
    t.lowport()
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(0)
        .stdout_has("rolled back");
    assert_same_tree(
        &tree(&t.root),
        &before,
        "owner, mode and capability restored",
    );
}

/// An environment where `useradd --root` works: the host's shadow files and login.defs.
fn accounts_env() -> TestEnv {
    let t = TestEnv::new();
    for f in ["shadow", "gshadow", "login.defs"] {
        std::fs::copy(Path::new("/etc").join(f), t.root.join("etc").join(f)).unwrap();
    }
    t
}

fn new_user(t: &TestEnv, bin: &str, user: &str) -> String {
    let app = t.install(Path::new("/usr/bin/true"), &format!("opt/{bin}"));
    let out = t
        .lowport()
        .args(["apply", "--method", "systemd", "--binary"])
        .arg(&app)
        .args(["--port", "80", "--user", user, "--yes"])
        .run()
        .code(0);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Applied as run"))
        .unwrap()
        .to_string();
    line.split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches('.')
        .to_string()
}

fn entries(t: &TestEnv, name: &str) -> Vec<String> {
    ["passwd", "group", "shadow", "gshadow"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(t.root.join("etc").join(f))
                .unwrap()
                .lines()
                .filter(|l| l.split(':').next() == Some(name))
                .map(|l| format!("{f}:{l}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn edit_shadow(t: &TestEnv, user: &str, password: &str) {
    let path = t.root.join("etc/shadow");
    let text: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(':').collect();
            if f[0] == user {
                f[1] = password;
            }
            f.join(":") + "\n"
        })
        .collect();
    std::fs::write(&path, text).unwrap();
}

#[test]
fn rolling_back_the_first_of_two_new_users_removes_only_its_own_entries() {
    if !is_root_or_skip("rolling_back_the_first_of_two_new_users_removes_only_its_own_entries") {
        return;
    }
    let t = accounts_env();
    let one = new_user(&t, "appone", "svcone");
    new_user(&t, "apptwo", "svctwo");
    assert_eq!(entries(&t, "svcone").len(), 4);
    let two = entries(&t, "svctwo");
    assert_eq!(two.len(), 4);
    // An admin sets an unrelated password meanwhile.
    edit_shadow(&t, "daemon", "$6$admin$set");
    let daemon = entries(&t, "daemon");
    t.lowport()
        .args(["rollback", &one, "--yes"])
        .run()
        .code(0)
        .stdout_has("remove the entries of svcone");
    assert_eq!(entries(&t, "svcone"), Vec::<String>::new());
    assert_eq!(entries(&t, "svctwo"), two, "the later run's user stays");
    assert_eq!(entries(&t, "daemon"), daemon, "the admin's change stays");
    assert!(
        t.root.join("etc/.pwd.lock").exists(),
        "shadow-utils' lock file is never removed"
    );
    let shadow = std::fs::metadata(t.root.join("etc/shadow")).unwrap();
    assert_eq!(shadow.permissions().mode() & 0o7777, 0o640);
}

#[test]
fn a_user_a_later_run_still_uses_is_not_removed() {
    if !is_root_or_skip("a_user_a_later_run_still_uses_is_not_removed") {
        return;
    }
    let t = accounts_env();
    let one = new_user(&t, "appone", "svcone");
    // A later service runs as the same (now existing) user.
    let two = new_user(&t, "apptwo", "svcone");
    let before = tree(&t.root);
    t.lowport()
        .args(["rollback", &one, "--yes"])
        .run()
        .code(7)
        .stderr_has(&format!("the account svcone, which the later run {two}"))
        .stderr_has("Roll that run back first");
    assert_same_tree(
        &tree(&t.root),
        &before,
        "a refused rollback changes nothing",
    );
    for id in [&two, &one] {
        t.lowport().args(["rollback", id, "--yes"]).run().code(0);
    }
    assert_eq!(entries(&t, "svcone"), Vec::<String>::new());
}

#[test]
fn a_changed_entry_of_the_new_user_is_named_as_the_cause() {
    if !is_root_or_skip("a_changed_entry_of_the_new_user_is_named_as_the_cause") {
        return;
    }
    let t = accounts_env();
    let one = new_user(&t, "appone", "svcone");
    edit_shadow(&t, "svcone", "$6$someone$set");
    let before = tree(&t.root);
    t.lowport()
        .args(["rollback", &one, "--yes"])
        .run()
        .code(7)
        .stderr_has("the entry of svcone in /etc/shadow changed since this run created the user")
        .stderr_has("Nothing was changed");
    assert_same_tree(
        &tree(&t.root),
        &before,
        "a refused rollback changes nothing",
    );
    // Put back as useradd left it, the user goes.
    edit_shadow(&t, "svcone", "!");
    t.lowport().args(["rollback", &one, "--yes"]).run().code(0);
    assert_eq!(entries(&t, "svcone"), Vec::<String>::new());
}

#[test]
fn removing_a_user_waits_for_the_account_file_lock() {
    if !is_root_or_skip("removing_a_user_waits_for_the_account_file_lock") {
        return;
    }
    let t = accounts_env();
    let one = new_user(&t, "appone", "svcone");
    // Hold /etc/.pwd.lock as vipw or passwd would (lckpwdf: a POSIX write lock) for a while.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(t.root.join("etc/.pwd.lock"))
        .unwrap();
    // SAFETY: an all-zero flock is valid; the lock type is set below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    nix::fcntl::fcntl(&lock, nix::fcntl::FcntlArg::F_SETLK(&fl)).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        drop(lock);
    });
    let start = std::time::Instant::now();
    t.lowport().args(["rollback", &one, "--yes"]).run().code(0);
    let waited = start.elapsed();
    release.join().unwrap();
    assert!(
        waited >= std::time::Duration::from_millis(1400),
        "the rollback did not wait for the lock ({waited:?})"
    );
    assert_eq!(entries(&t, "svcone"), Vec::<String>::new());
    assert!(t.root.join("etc/.pwd.lock").exists());
}

/// The commands lowport prints for later (apply a saved plan, undo a run) carry the `--root`
/// and `--state-dir` they were made with: run exactly as printed, they act on the same tree
/// and the same journals.
#[test]
fn the_commands_lowport_prints_for_later_run_as_printed() {
    if !is_root_or_skip("the_commands_lowport_prints_for_later_run_as_printed") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(crate::subjects::go_server(), "opt/bin/app");
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("plan.json");
    // The text after `marker` on its line, as a command: `lowport` is this build.
    let command = |out: &Output, marker: &str| -> Vec<String> {
        let line = out.stdout.lines().find_map(|l| l.split_once(marker));
        let text = line
            .unwrap_or_else(|| panic!("no {marker:?} in {}", out.stdout))
            .1;
        let mut argv = shell_words::split(text).unwrap();
        if argv[0] == "lowport" {
            argv[0] = BIN.into();
        }
        argv
    };
    let run = |argv: &[String]| Lowport::new().args(&argv[1..]).run();
    let planned = t
        .lowport()
        .args(["plan", "--method", "setcap", "--port", "80", "--binary"])
        .arg(&app)
        .arg("--out")
        .arg(&saved)
        .run()
        .code(0);
    let apply = command(&planned, "apply it with: ");
    assert_eq!(apply[0], BIN, "{apply:?}");
    // The command is bound to the bytes written: the same plan with one byte more (still valid
    // JSON, still root's) is not what was reviewed.
    let written = std::fs::read(&saved).unwrap();
    std::fs::write(&saved, [&written[..], b" "].concat()).unwrap();
    run(&[apply.clone(), vec!["--yes".into()]].concat())
        .code(7)
        .stderr_has("is not the plan that was reviewed");
    std::fs::write(&saved, &written).unwrap();
    // A dry run changes nothing, not even by making the state directory.
    run(&[apply.clone(), vec!["--dry-run".into()]].concat())
        .code(0)
        .stdout_has("Nothing was changed");
    assert!(!t.state.exists(), "a dry run made the state directory");
    let applied = run(&[apply, vec!["--yes".into()]].concat()).code(0);
    assert!(getcap(&t.host(&app)).contains("cap_net_bind_service"));
    let undo = command(&applied, "Undo it any time with: ");
    // As an operator would type it, answering its question.
    Lowport::new()
        .args(&undo[1..])
        .stdin("yes\n")
        .run()
        .code(0)
        .stdout_has("rolled back");
    assert_eq!(getcap(&t.host(&app)), "");
    assert_eq!(t.runs(), 1);
}

/// A journal damaged in the middle (its snapshot line unreadable, the step's `done` after it) is
/// no crash's tear: lowport cannot undo that step, and says so everywhere instead of calling
/// the run rolled back, or in place, without touching it.
#[test]
fn a_step_whose_snapshot_line_is_damaged_is_never_passed_over() {
    if !is_root_or_skip("a_step_whose_snapshot_line_is_damaged_is_never_passed_over") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(crate::subjects::go_server(), "opt/bin/app");
    let id = applied(&t, &app);
    let path = journal(&t, &id);
    let text = std::fs::read_to_string(&path).unwrap();
    let n = text
        .lines()
        .position(|l| l.starts_with(r#"{"event":"before""#));
    let n = n.expect("a snapshot record");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[n].replace_range(4..5, "\0");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let said = "is recorded as carried out or undone, but no snapshot of it is";
    t.lowport()
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(7)
        .stderr_has(said);
    for args in [&["verify", "--all"][..], &["history"]] {
        let out = t.lowport().args(args).run();
        let shown = format!("{}{}", out.stdout, out.stderr);
        assert!(shown.contains(said), "{args:?} hides it: {shown}");
        if args[0] == "verify" {
            assert_ne!(out.code, Some(0), "verify --all passed it: {shown}");
        }
    }
    assert!(getcap(&t.host(&app)).contains("cap_net_bind_service"));
}

/// What a killed lowport leaves of a file it was writing (`.NAME.lowport-PID` beside it, a file
/// or a link) is removed by the rollback of its run, by name and never followed; a name that
/// is not that pattern stays, and with it the folder it is in.
#[test]
fn a_rollback_removes_the_temporaries_a_killed_run_left() {
    if !is_root_or_skip("a_rollback_removes_the_temporaries_a_killed_run_left") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(crate::subjects::go_server(), "opt/bin/app");
    let before = tree(&t.root);
    let apply = || {
        t.lowport()
            .args([
                "apply",
                "--method",
                "systemd",
                "--dynamic-user",
                "--port",
                "80",
                "--yes",
            ])
            .arg("--binary")
            .arg(&app)
            .run()
            .code(0)
    };
    let rollback = || {
        t.lowport()
            .args(["rollback", "--last", "--yes"])
            .run()
            .code(0)
    };
    apply();
    let units = t.root.join("etc/systemd/system");
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(units.join(".app.service.lowport-4194304"), "[Service]\n").unwrap();
    std::os::unix::fs::symlink(outside.path(), units.join(".app.service.lowport-77")).unwrap();
    rollback();
    assert_same_tree(&tree(&t.root), &before, "after rollback");
    assert!(outside.path().exists(), "the link was followed");

    apply();
    std::fs::write(units.join(".app.service.lowport-9"), "x").unwrap();
    std::fs::write(units.join(".app.service.lowport-x"), "not lowport's").unwrap();
    // Its name, but not what lowport makes: someone else's file, another name of a file.
    let foreign = units.join(".app.service.lowport-5");
    std::fs::write(&foreign, "nobody's").unwrap();
    std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
    std::fs::hard_link(
        t.root.join("etc/passwd"),
        units.join(".app.service.lowport-6"),
    )
    .unwrap();
    rollback();
    let mut left: Vec<_> = std::fs::read_dir(&units)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    let kept = [
        ".app.service.lowport-5",
        ".app.service.lowport-6",
        ".app.service.lowport-x",
    ];
    assert_eq!(left, kept, "{left:?}");
}
