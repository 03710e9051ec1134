//! Fault injection at every step of every plan: a failing step, a SIGTERM after a step, a SIGKILL
//! before a step runs and a SIGKILL after it is journaled. Each time, the whole affected state (file bytes, mode, owner,
//! xattrs, the live sysctl) must equal what it was before, immediately for a failure, after
//! `lowport rollback` for a kill.

use std::path::{Path, PathBuf};

use crate::support::*;

const FAULTS: [&str; 4] = ["fail-after", "signal-after", "kill-before", "kill-after"];

struct Scenario {
    t: TestEnv,
    ns: Netns,
    apply: Vec<String>,
    /// A read-only command showing live state the plan changes (a firewall ruleset), if any.
    live: &'static [&'static str],
}

impl Scenario {
    /// `lowport apply ARGS` in a fresh network namespace over `t`.
    fn new(t: TestEnv, args: &[&str], live: &'static [&'static str]) -> Scenario {
        let apply = std::iter::once("apply")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        Scenario {
            t,
            ns: Netns::new(),
            apply,
            live,
        }
    }

    /// Everything the scenario's plan can touch: files, the sysctl, and the live state.
    fn state(&self) -> (std::collections::BTreeMap<PathBuf, FileSnap>, String) {
        let mut live = self.ns.sysctl();
        if !self.live.is_empty() {
            let out = String::from_utf8_lossy(&self.ns.exec(self.live).stdout).into_owned();
            // iptables-save stamps its output with the time: not state.
            live += &out
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n");
        }
        let mut files = tree(&self.t.root);
        // shadow-utils' lock file: useradd makes it, and nothing ever removes it.
        files.remove(Path::new("etc/.pwd.lock"));
        (files, live)
    }

    fn run_fault(&self, fault: &str, step: usize) {
        let before = self.state();
        let spec = format!("{fault}:{step}");
        let out = Lowport::new()
            .netns(&self.ns)
            .env_dirs(&self.t)
            .args(&self.apply)
            .env("LOWPORT_TEST_FAULT", &spec)
            .run();
        if fault == "fail-after" {
            let out = out
                .code(4)
                .stderr_has("injected fault")
                .stderr_has("undone");
            assert!(
                out.stdout.contains("every change was rolled back"),
                "{spec}"
            );
        } else if fault == "signal-after" {
            out.code(4)
                .stderr_has("rolling back (interrupted by a signal)")
                .stderr_has("undone");
        } else {
            out.killed();
            if (fault, step) != ("kill-before", 1) {
                assert_ne!(
                    self.state(),
                    before,
                    "{spec}: the kill left a change to undo"
                );
            }
            // An interrupted run blocks new applies until it is rolled back.
            Lowport::new()
                .netns(&self.ns)
                .env_dirs(&self.t)
                .args(&self.apply)
                .run()
                .code(7)
                .stderr_has("unfinished");
            Lowport::new()
                .netns(&self.ns)
                .env_dirs(&self.t)
                .args(["rollback", "--last", "--yes"])
                .run()
                .code(0);
        }
        let after = self.state();
        assert_same_tree(&after.0, &before.0, &format!("{spec}: files restored"));
        assert_eq!(after.1, before.1, "{spec}: sysctl restored");
    }

    fn run_all(&self, steps: usize) {
        for step in 1..=steps {
            for fault in FAULTS {
                self.run_fault(fault, step);
            }
        }
        let history = self.t.lowport().args(["history", "--json"]).run().code(0);
        let runs = history.json()["runs"].as_array().unwrap().len();
        assert_eq!(runs, steps * FAULTS.len(), "one journaled run per fault");
    }
}

fn setxattr(p: &Path, name: &str, value: &[u8]) {
    lowport::xattr::set(p, name, value).unwrap();
}

#[test]
fn setcap_with_group_restores_everything_at_every_step() {
    if !is_root_or_skip("setcap_with_group_restores_everything_at_every_step") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "srv/bin/app");
    setxattr(&t.host(&app), "user.origin", b"vendor");
    Scenario::new(
        t,
        &[
            "--method",
            "setcap",
            "--binary",
            app.to_str().unwrap(),
            "--port",
            "80",
            "--group",
            "nogroup",
            "--yes",
        ],
        &[],
    )
    .run_all(2);
}

#[test]
fn sysctl_replacing_a_file_restores_everything_at_every_step() {
    if !is_root_or_skip("sysctl_replacing_a_file_restores_everything_at_every_step") {
        return;
    }
    let t = TestEnv::new();
    // A pre-existing file with odd content, mode, owner and an xattr: all must come back.
    let dir = t.root.join("etc/sysctl.d");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("60-lowport-unprivileged-ports.conf");
    std::fs::write(
        &file,
        "# hand-written\nnet.ipv4.ip_unprivileged_port_start = 900\n",
    )
    .unwrap();
    set_mode(&file, 0o640);
    std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
    setxattr(&file, "user.note", b"keep me");
    Scenario::new(
        t,
        &[
            "--method",
            "sysctl",
            "--port",
            "80",
            "--yes",
            "--accept-risk",
        ],
        &[],
    )
    .run_all(2);
}

#[test]
fn systemd_unit_with_a_new_user_restores_everything_at_every_step() {
    if !is_root_or_skip("systemd_unit_with_a_new_user_restores_everything_at_every_step") {
        return;
    }
    let t = TestEnv::new();
    for f in ["shadow", "gshadow", "login.defs"] {
        std::fs::copy(Path::new("/etc").join(f), t.root.join("etc").join(f)).unwrap();
    }
    let app = t.install(Path::new("/usr/bin/true"), "usr/local/bin/app");
    // useradd, the unit, its enable link: three steps, every account file restored exactly.
    Scenario::new(
        t,
        &[
            "--method",
            "systemd",
            "--binary",
            app.to_str().unwrap(),
            "--port",
            "80",
            "--user",
            "lpfault",
            "--yes",
        ],
        &[],
    )
    .run_all(3);
}

fn redirect_scenario(method: &str, live: &'static [&'static str], steps: usize) {
    let t = TestEnv::new();
    Scenario::new(
        t,
        &[
            "--method", method, "--port", "80:8080", "--port", "443:8443", "--yes",
        ],
        live,
    )
    .run_all(steps);
}

#[test]
fn redirect_nft_restores_everything_at_every_step() {
    if !is_root_or_skip("redirect_nft_restores_everything_at_every_step") {
        return;
    }
    // The rules file, loading them, the boot unit and its link.
    redirect_scenario("redirect-nft", &["nft", "list", "ruleset"], 4);
}

#[test]
fn redirect_iptables_restores_everything_at_every_step() {
    if !is_root_or_skip("redirect_iptables_restores_everything_at_every_step") {
        return;
    }
    // Two pairs x two tools x two chains, then the boot unit and its link.
    redirect_scenario(
        "redirect-iptables",
        &["sh", "-c", "iptables-save -t nat; ip6tables-save -t nat"],
        10,
    );
}

#[test]
fn authbind_restores_everything_at_every_step() {
    if !is_root_or_skip("authbind_restores_everything_at_every_step") {
        return;
    }
    let t = TestEnv::new();
    t.install(Path::new("/usr/bin/socat"), "usr/bin/socat");
    Scenario::new(
        t,
        &[
            "--method",
            "authbind",
            "--binary",
            "/usr/bin/socat",
            "--user",
            "nobody",
            "--port",
            "80",
            "--port",
            "873",
            "--yes",
        ],
        &[],
    )
    .run_all(2);
}
