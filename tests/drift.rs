//! `verify --all`: real changes made behind lowport's back after an apply (a binary replaced,
//! a written file edited, a sysctl reset, an nftables table deleted) are found, exit 10, and
//! the printed fix really puts the run back in place.

use std::path::Path;

use crate::support::*;

const SYSCTL_KEY: &str = "net.ipv4.ip_unprivileged_port_start";
const DROP_IN: &str = "etc/sysctl.d/60-lowport-unprivileged-ports.conf";

/// `verify --all --json` in `ns` (or on the host), its exit code checked.
fn verify_all(t: &TestEnv, ns: Option<&Netns>, code: i32) -> serde_json::Value {
    let l = match ns {
        Some(ns) => Lowport::new().netns(ns),
        None => Lowport::new(),
    };
    let doc = l
        .env_dirs(t)
        .args(["verify", "--all", "--json"])
        .run()
        .code(code)
        .json();
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["in_place"], code == 0);
    doc
}

/// The one run's lost targets, as (target, detail).
fn lost(doc: &serde_json::Value) -> Vec<(String, String)> {
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{doc:#}");
    runs[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["in_place"] == false)
        .map(|s| {
            (
                s["target"].as_str().unwrap().to_string(),
                s["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Runs the fix the report gives, exactly (its first word is `lowport`).
fn run_fix(doc: &serde_json::Value, ns: Option<&Netns>) {
    let fix: Vec<String> = serde_json::from_value(doc["runs"][0]["fix"].clone()).unwrap();
    assert_eq!(fix[0], "lowport");
    let l = match ns {
        Some(ns) => Lowport::new().netns(ns),
        None => Lowport::new(),
    };
    l.args(&fix[1..]).run().code(0);
}

#[test]
fn a_replaced_binary_loses_its_capability_and_the_fix_restores_it() {
    if !is_root_or_skip("a_replaced_binary_loses_its_capability_and_the_fix_restores_it") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new(BIN), "opt/app/bin/app");
    let host = t.host(&app);
    t.lowport()
        .args(["verify", "--all"])
        .run()
        .code(0)
        .stdout_has("No applied runs to check.");
    t.lowport()
        .args(["apply", "--method", "setcap", "--binary"])
        .arg(&app)
        .args(["--port", "80", "--user", "nobody", "--yes"])
        .run()
        .code(0);
    let doc = verify_all(&t, None, 0);
    assert_eq!(doc["runs"][0]["verify"]["ok"], true, "{doc:#}");
    assert!(doc["runs"][0]["fix"].is_null());
    let first = doc["runs"][0]["id"].as_str().unwrap().to_string();

    // An upgrade as a package manager does it: a new file renamed over the old one.
    let new = host.with_extension("new");
    std::fs::copy(BIN, &new).unwrap();
    set_mode(&new, 0o755);
    std::fs::rename(&new, &host).unwrap();
    assert_eq!(getcap(&host), "");

    let doc = verify_all(&t, None, 10);
    let lost = lost(&doc);
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].0, "/opt/app/bin/app");
    assert!(
        lost[0].1.contains("no longer carries cap_net_bind_service"),
        "{lost:?}"
    );
    assert_eq!(doc["runs"][0]["verify"]["ok"], false);
    let fix = doc["runs"][0]["fix"].to_string();
    assert!(
        fix.contains(r#""apply","--method","setcap","--binary","/opt/app/bin/app","--port","80","--user","nobody","--yes""#),
        "{fix}"
    );
    t.lowport()
        .args(["verify", "--all"])
        .run()
        .code(10)
        .stdout_has("LOST step 1")
        .stdout_has("fix: lowport --root ")
        .stdout_has("1 of 1 run(s) drifted.");

    run_fix(&doc, None);
    assert!(getcap(&host).contains("cap_net_bind_service=ep"));
    let doc = verify_all(&t, None, 0);
    let ids: Vec<&str> = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    let fix_run = ids.iter().find(|id| **id != first).unwrap();

    // Rolled-back runs are history, not drift. Each run is named by its id; the first run's
    // binary was replaced since it ran, hence --force.
    t.lowport()
        .args(["rollback", fix_run, "--yes"])
        .run()
        .code(0);
    t.lowport()
        .args(["rollback", &first, "--yes", "--force"])
        .run()
        .code(0);
    let doc = verify_all(&t, None, 0);
    assert_eq!(doc["runs"], serde_json::json!([]));
}

#[test]
fn a_reset_sysctl_is_drift_and_the_fix_lowers_it_again() {
    if !is_root_or_skip("a_reset_sysctl_is_drift_and_the_fix_lowers_it_again") {
        return;
    }
    let t = TestEnv::new();
    let ns = Netns::new();
    Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args(["apply", "--method", "sysctl", "--port", "80"])
        .args(["--yes", "--accept-risk"])
        .run()
        .code(0);
    verify_all(&t, Some(&ns), 0);

    let reset = ns.exec(&["sysctl", "-w", &format!("{SYSCTL_KEY}=1024")]);
    assert!(reset.status.success());
    let doc = verify_all(&t, Some(&ns), 10);
    assert_eq!(
        lost(&doc),
        vec![(
            SYSCTL_KEY.to_string(),
            format!("{SYSCTL_KEY} is 1024, lowport set 80")
        )]
    );
    assert_eq!(doc["runs"][0]["verify"]["ok"], false, "the real bind fails");
    let fix: Vec<String> = serde_json::from_value(doc["runs"][0]["fix"].clone()).unwrap();
    assert_eq!(fix.last().unwrap(), "--accept-risk", "{fix:?}");

    run_fix(&doc, Some(&ns));
    assert_eq!(ns.sysctl(), "80");
    assert_eq!(ns.bind_as_nobody(80), "ok");
    verify_all(&t, Some(&ns), 0);
}

#[test]
fn an_edited_file_is_drift_even_while_the_grant_still_works() {
    if !is_root_or_skip("an_edited_file_is_drift_even_while_the_grant_still_works") {
        return;
    }
    let t = TestEnv::new();
    let ns = Netns::new();
    Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args(["apply", "--method", "sysctl", "--port", "80"])
        .args(["--yes", "--accept-risk"])
        .run()
        .code(0);
    // Someone comments the setting out: the live value holds until the next boot.
    let file = t.root.join(DROP_IN);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace(SYSCTL_KEY, &format!("# {SYSCTL_KEY}"))).unwrap();

    let doc = verify_all(&t, Some(&ns), 10);
    assert_eq!(
        lost(&doc),
        vec![(
            format!("/{DROP_IN}"),
            format!("/{DROP_IN} was edited: its content is not what lowport wrote")
        )]
    );
    assert_eq!(doc["runs"][0]["verify"]["ok"], true, "the live value holds");
    run_fix(&doc, Some(&ns));
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains(&format!("\n{SYSCTL_KEY} = 80\n"))
    );
    verify_all(&t, Some(&ns), 0);
}

#[test]
fn a_deleted_nft_table_is_drift_and_the_fix_loads_it_again() {
    if !is_root_or_skip("a_deleted_nft_table_is_drift_and_the_fix_loads_it_again") {
        return;
    }
    let t = TestEnv::new();
    let ns = Netns::new();
    Lowport::new()
        .netns(&ns)
        .env_dirs(&t)
        .args([
            "apply",
            "--method",
            "redirect-nft",
            "--port",
            "80:8080",
            "--yes",
        ])
        .run()
        .code(0);
    verify_all(&t, Some(&ns), 0);
    let gone = ns.exec(&["nft", "delete", "table", "ip", "lowport_redirect"]);
    assert!(gone.status.success());

    let doc = verify_all(&t, Some(&ns), 10);
    let lost = lost(&doc);
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert!(
        lost[0]
            .1
            .contains("list table ip lowport_redirect` fails now"),
        "{lost:?}"
    );
    assert_eq!(
        doc["runs"][0]["verify"]["ok"], false,
        "no rule redirects 80"
    );
    run_fix(&doc, Some(&ns));
    let listed = ns.exec(&["nft", "list", "table", "ip", "lowport_redirect"]);
    assert!(listed.status.success());
    verify_all(&t, Some(&ns), 0);
}

/// A binary written to while it kept its capability (a write through a shared mapping does not
/// clear it; here only its mtime moves, which no more clears it) is still in place, and said to
/// need a look: its content may not be the reviewed file's.
#[test]
fn a_binary_written_while_it_kept_its_capability_is_pointed_out() {
    if !is_root_or_skip("a_binary_written_while_it_kept_its_capability_is_pointed_out") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(crate::subjects::go_server(), "opt/bin/app");
    t.lowport()
        .args([
            "apply", "--method", "setcap", "--port", "80", "--yes", "--binary",
        ])
        .arg(&app)
        .run()
        .code(0);
    let touched = std::process::Command::new("touch")
        .args(["-d", "2020-01-01"])
        .arg(t.host(&app))
        .status()
        .unwrap();
    assert!(touched.success());
    assert!(getcap(&t.host(&app)).contains("cap_net_bind_service"));
    let doc = verify_all(&t, None, 0);
    let detail = doc["runs"][0]["steps"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("find out who wrote it"), "{doc:#}");
}
