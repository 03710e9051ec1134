//! The systemd method against a real systemd: a throwaway container booted with systemd-nspawn
//! (the host's /usr read-only, a minimal /etc) runs the unit lowport wrote with `--root`; a probe
//! unit records what the service really is, then powers the container off.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// A container root laid out as systemd-nspawn needs it (mode 0755, merged /usr, os-release, a
/// minimal /etc), with the host's socat at /usr/bin/socat so lowport can resolve the binary.
struct Container {
    _dir: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
    out: PathBuf,
}

impl Container {
    fn new() -> Container {
        let dir = tempfile::tempdir().unwrap();
        set_mode(dir.path(), 0o755);
        let root = dir.path().join("root");
        for d in [
            "usr/lib",
            "usr/bin",
            "etc/systemd/system",
            "var",
            "tmp",
            "root",
            "run",
            "proc",
            "sys",
            "dev",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        set_mode(&root, 0o755);
        set_mode(&root.join("tmp"), 0o1777);
        for (link, target) in [
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ] {
            std::os::unix::fs::symlink(target, root.join(link)).unwrap();
        }
        std::fs::copy("/usr/lib/os-release", root.join("usr/lib/os-release")).unwrap();
        std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
        for f in [
            "passwd",
            "group",
            "shadow",
            "gshadow",
            "nsswitch.conf",
            "login.defs",
        ] {
            std::fs::copy(Path::new("/etc").join(f), root.join("etc").join(f)).unwrap();
        }
        std::fs::write(root.join("etc/machine-id"), "").unwrap();
        std::fs::copy("/usr/bin/socat", root.join("usr/bin/socat")).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let state = dir.path().join("state");
        Container {
            _dir: dir,
            root,
            state,
            out,
        }
    }

    fn lowport(&self) -> Lowport {
        Lowport::new()
            .arg("--root")
            .arg(&self.root)
            .arg("--state-dir")
            .arg(&self.state)
    }

    /// Boots the container with a probe unit, ordered after `after`, that runs `script` (no
    /// single quotes) with /out for results and lowport's own binary at /lowport/lowport, then
    /// powers the container off.
    fn boot_with(&self, after: &str, script: &str) {
        let probe = format!(
            "[Unit]\nAfter={after}\n[Service]\nType=oneshot\nExecStart=/bin/sh -c '{script}'\n\
             ExecStartPost=/bin/systemctl --no-block poweroff\n"
        );
        std::fs::write(self.root.join("etc/systemd/system/probe.service"), probe).unwrap();
        for f in std::fs::read_dir(&self.out).unwrap().flatten() {
            std::fs::remove_file(f.path()).unwrap();
        }
        let bin_dir = Path::new(BIN).parent().unwrap();
        let status = Command::new("timeout")
            .args(["60", "systemd-nspawn", "-D"])
            .arg(&self.root)
            .args([
                "--bind-ro=/usr",
                "--register=no",
                "--keep-unit",
                "--private-network",
                "-q",
            ])
            .arg(format!("--bind={}:/out", self.out.display()))
            .arg(format!("--bind-ro={}:/lowport", bin_dir.display()))
            .args([
                "-b",
                "systemd.unit=multi-user.target",
                "systemd.wants=probe.service",
            ])
            .output()
            .expect("systemd-nspawn (package systemd-container)");
        assert!(
            status.status.success(),
            "nspawn: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        std::fs::remove_file(self.root.join("etc/systemd/system/probe.service")).unwrap();
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.out.join(file)).unwrap_or_default()
    }

    /// Boots the container and records `unit`'s state, its process's ids and ambient
    /// capabilities, and the listening sockets.
    fn boot(&self, unit: &str) -> (String, String, String) {
        self.boot_with(
            unit,
            &format!(
                "sleep 0.5; systemctl is-active {unit} > /out/active; \
                 P=$(systemctl show -p MainPID --value {unit}); \
                 grep -E \"^(Uid|CapAmb)\" /proc/$P/status > /out/status; ss -ltnH > /out/listen"
            ),
        );
        (
            self.read("active"),
            self.read("status"),
            self.read("listen"),
        )
    }
}

const UNIT: &str = "echo80.service";

fn apply_args() -> Vec<&'static str> {
    vec![
        "apply",
        "--method",
        "systemd",
        "--binary",
        "/usr/bin/socat",
        "--arg",
        "TCP-LISTEN:80,fork,reuseaddr",
        "--arg",
        "EXEC:/bin/cat",
        "--port",
        "80",
        "--service",
        "echo80",
        "--user",
        "lpsvc",
        "--yes",
    ]
}

#[test]
fn the_unit_runs_as_the_user_with_only_cap_net_bind_service_then_rolls_back() {
    if !is_root_or_skip("the_unit_runs_as_the_user_with_only_cap_net_bind_service_then_rolls_back")
    {
        return;
    }
    let c = Container::new();
    let passwd = std::fs::read(c.root.join("etc/passwd")).unwrap();
    c.lowport()
        .args(apply_args())
        .run()
        .code(0)
        .stdout_has("useradd --root")
        .stdout_has("security: Overall exposure level for echo80.service: 1.5")
        .stderr_has("verified");
    let uid = std::fs::read_to_string(c.root.join("etc/passwd"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("lpsvc:x:")
                .map(|r| r.split(':').next().unwrap().to_string())
        })
        .expect("lpsvc created in the container");
    let (active, status, listen) = c.boot(UNIT);
    assert_eq!(active.trim(), "active", "{status}");
    assert!(
        status.contains(&format!("Uid:\t{uid}\t{uid}\t{uid}\t{uid}")),
        "{status}"
    );
    assert!(
        status.contains("CapAmb:\t0000000000000400"),
        "only cap_net_bind_service: {status}"
    );
    assert!(listen.contains("0.0.0.0:80 "), "{listen}");

    c.lowport()
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(0);
    assert!(!c.root.join("etc/systemd/system").join(UNIT).exists());
    assert!(
        !c.root
            .join("etc/systemd/system/multi-user.target.wants")
            .exists()
    );
    assert_eq!(
        std::fs::read(c.root.join("etc/passwd")).unwrap(),
        passwd,
        "user removed"
    );
    let (active, _, listen) = c.boot(UNIT);
    assert_ne!(active.trim(), "active");
    assert!(!listen.contains(":80 "), "{listen}");
}

#[test]
fn every_unit_variant_scores_at_most_1_5_and_passes_verify() {
    // lowport refuses binaries and trees a non-root user owns: this needs root-owned files.
    if !is_root_or_skip("every_unit_variant_scores_at_most_1_5_and_passes_verify") {
        return;
    }
    let c = Container::new();
    let base = [
        "plan",
        "--method",
        "systemd",
        "--binary",
        "/usr/bin/socat",
        "--port",
        "80",
        "--json",
    ];
    let variants: [&[&str]; 4] = [
        &["--user", "lpsvc"],
        &["--dynamic-user"],
        &[
            "--dynamic-user",
            "--writable",
            "/var/lib/socat",
            "--state-directory",
            "socat",
        ],
        &[
            "--allow-jit",
            "--arg",
            "TCP-LISTEN:443",
            "--arg",
            "EXEC:/bin/cat",
        ],
    ];
    for extra in variants {
        let out = c.lowport().args(base).args(extra).run().code(0);
        let plan = out.json();
        let step = plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["exposure"].is_string())
            .unwrap();
        let exposure = step["exposure"].as_str().unwrap();
        let score: f64 = exposure
            .split("socat.service: ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no score in {exposure}"));
        assert!(score <= 1.5, "{extra:?} scores {score}:\n{exposure}");
        let dir = tempfile::tempdir().unwrap();
        let unit = dir.path().join("socat.service");
        std::fs::write(&unit, step["action"]["content"].as_str().unwrap()).unwrap();
        let verify = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&unit)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&verify.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&verify.stderr).contains("Unknown"),
            "{extra:?}"
        );
    }
}

#[test]
fn an_existing_unit_gets_a_drop_in_and_keeps_its_file() {
    // lowport refuses binaries and trees a non-root user owns: this needs root-owned files.
    if !is_root_or_skip("an_existing_unit_gets_a_drop_in_and_keeps_its_file") {
        return;
    }
    let c = Container::new();
    let vendor = c.root.join("usr/lib/systemd/system");
    std::fs::create_dir_all(&vendor).unwrap();
    let original = "[Service]\nExecStart=/usr/bin/socat TCP-LISTEN:80 EXEC:/bin/cat\nUser=nobody\n";
    std::fs::write(vendor.join("echo80.service"), original).unwrap();
    let out = c
        .lowport()
        .args([
            "plan",
            "--method",
            "systemd",
            "--service",
            "echo80",
            "--port",
            "80",
            "--json",
        ])
        .run()
        .code(0);
    let plan = out.json();
    let paths: Vec<String> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["action"]["path"].as_str().map(String::from))
        .collect();
    assert_eq!(
        paths,
        ["/etc/systemd/system/echo80.service.d/50-lowport.conf"]
    );
    let content = plan["steps"][0]["action"]["content"].as_str().unwrap();
    assert!(
        content.contains("AmbientCapabilities=CAP_NET_BIND_SERVICE"),
        "{content}"
    );
    assert!(
        !content.contains("User="),
        "the vendor unit's user stays: {content}"
    );
    assert!(
        plan["warnings"]
            .to_string()
            .contains("leaves that file as it is")
    );
}

#[test]
fn the_fabio_profile_reads_its_ports_and_passes_its_config() {
    let t = TestEnv::new();
    t.install(Path::new("/usr/bin/true"), "usr/local/bin/fabio");
    std::fs::create_dir_all(t.root.join("etc/fabio")).unwrap();
    std::fs::write(
        t.root.join("etc/fabio/fabio.properties"),
        "proxy.addr = :80;proto=http,:443;proto=https;cs=web\nui.addr = :9998\n",
    )
    .unwrap();
    let out = t
        .lowport()
        .args([
            "plan",
            "--method",
            "systemd",
            "--profile",
            "fabio",
            "--config",
            "/etc/fabio/fabio.properties",
        ])
        .arg("--json")
        .run()
        .code(0)
        .stderr_has("sets proxy.addr = :443;proto=https;cs=web: port 443");
    let plan = out.json();
    assert_eq!(plan["request"]["ports"], serde_json::json!([80, 443]));
    assert_eq!(plan["request"]["binary"], "fabio");
    let unit = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|s| s["action"]["content"].as_str())
        .unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/fabio -cfg /etc/fabio/fabio.properties\n"),
        "{unit}"
    );
    assert!(unit.contains("User=fabio\n"), "{unit}");
    t.lowport()
        .args(["plan", "--method", "systemd", "--profile", "nginx"])
        .run()
        .code(2)
        .stderr_has("unknown profile 'nginx'");
}

#[test]
fn rollback_keeps_accounts_added_since_and_removes_only_its_own() {
    if !is_root_or_skip("rollback_keeps_accounts_added_since_and_removes_only_its_own") {
        return;
    }
    let c = Container::new();
    c.lowport().args(apply_args()).run().code(0);
    // Someone adds another account after lowport created lpsvc.
    let status = Command::new("useradd")
        .arg("--root")
        .arg(&c.root)
        .args(["--system", "--no-create-home", "later"])
        .status()
        .unwrap();
    assert!(status.success());
    c.lowport()
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(0);
    let passwd = std::fs::read_to_string(c.root.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("\nlater:") && !passwd.contains("\nlpsvc:"),
        "only the run's own user is removed:\n{passwd}"
    );
}

#[test]
fn inside_a_running_systemd_it_reloads_starts_verifies_the_process_and_rolls_back() {
    if !is_root_or_skip(
        "inside_a_running_systemd_it_reloads_starts_verifies_the_process_and_rolls_back",
    ) {
        return;
    }
    let c = Container::new();
    // lowport itself runs inside the booted container, where systemd is PID 1: the live path.
    let apply: Vec<&str> = apply_args().into_iter().filter(|a| *a != "--yes").collect();
    let script = format!(
        "L=/lowport/lowport; $L --state-dir /var/lib/lowport {} --yes > /out/apply.txt 2>&1; \
         echo $? > /out/apply.rc; systemctl is-active echo80.service > /out/active; \
         P=$(systemctl show -p MainPID --value echo80.service); grep CapAmb /proc/$P/status > /out/status; \
         $L --state-dir /var/lib/lowport rollback --last --yes > /out/rollback.txt 2>&1; \
         echo $? > /out/rollback.rc; systemctl is-active echo80.service > /out/after; \
         ls /etc/systemd/system > /out/units",
        apply.join(" ")
    );
    c.boot_with("multi-user.target", &script);
    let applied = c.read("apply.txt");
    assert_eq!(c.read("apply.rc").trim(), "0", "{applied}");
    assert!(
        applied.contains("runs: /usr/bin/systemctl restart echo80.service"),
        "{applied}"
    );
    assert!(applied.contains("ok   running"), "{applied}");
    assert!(
        applied.contains("holds cap_net_bind_service in its ambient set"),
        "{applied}"
    );
    assert_eq!(c.read("active").trim(), "active");
    assert!(c.read("status").contains("CapAmb:\t0000000000000400"));
    assert_eq!(
        c.read("rollback.rc").trim(),
        "0",
        "{}",
        c.read("rollback.txt")
    );
    assert_ne!(c.read("after").trim(), "active", "stopped by the rollback");
    assert!(
        !c.read("units").contains("echo80.service"),
        "{}",
        c.read("units")
    );
}

#[test]
fn inside_a_running_systemd_a_service_that_does_not_start_is_rolled_back() {
    if !is_root_or_skip("inside_a_running_systemd_a_service_that_does_not_start_is_rolled_back") {
        return;
    }
    let c = Container::new();
    let passwd = std::fs::read(c.root.join("etc/passwd")).unwrap();
    // socat refuses an unknown address type and exits at once.
    let script = "/lowport/lowport --state-dir /var/lib/lowport apply --method systemd \
                  --binary /usr/bin/socat --arg NOSUCH:1 --arg STDOUT --port 80 --service broken \
                  --user lpsvc --yes > /out/apply.txt 2>&1; echo $? > /out/apply.rc; \
                  ls /etc/systemd/system > /out/units";
    c.boot_with("multi-user.target", script);
    let applied = c.read("apply.txt");
    assert_eq!(c.read("apply.rc").trim(), "4", "{applied}");
    assert!(applied.contains("FAIL running"), "{applied}");
    assert!(
        applied.contains("every change was rolled back"),
        "{applied}"
    );
    assert!(!c.read("units").contains("broken.service"));
    assert_eq!(
        std::fs::read(c.root.join("etc/passwd")).unwrap(),
        passwd,
        "user removed again"
    );
}

#[test]
fn inside_a_running_systemd_a_drop_in_lets_an_existing_unit_bind_80() {
    if !is_root_or_skip("inside_a_running_systemd_a_drop_in_lets_an_existing_unit_bind_80") {
        return;
    }
    let c = Container::new();
    // A unit someone else wrote: socat as nobody on port 80, which fails without a grant.
    let unit = "[Unit]\nDescription=vendor echo\n[Service]\nExecStart=/usr/bin/socat TCP-LISTEN:80,fork,reuseaddr EXEC:/bin/cat\nUser=nobody\n[Install]\nWantedBy=multi-user.target\n";
    std::fs::write(c.root.join("etc/systemd/system/vendor80.service"), unit).unwrap();
    // Whether something listens on :80 is what counts ("active" flickers around a failure).
    let script = "L=/lowport/lowport; systemctl start vendor80.service; sleep 0.3; \
                  ss -ltnH > /out/before; \
                  $L --state-dir /var/lib/lowport apply --method systemd --service vendor80 --port 80 \
                  --yes > /out/apply.txt 2>&1; echo $? > /out/apply.rc; \
                  systemctl is-active vendor80.service > /out/active; \
                  $L --state-dir /var/lib/lowport rollback --last --yes > /out/rollback.txt 2>&1; \
                  echo $? > /out/rollback.rc; sleep 0.3; ss -ltnH > /out/after; \
                  ls /etc/systemd/system > /out/units";
    c.boot_with("multi-user.target", script);
    assert!(
        !c.read("before").contains(":80 "),
        "no grant: nothing listens on 80"
    );
    let applied = c.read("apply.txt");
    assert_eq!(c.read("apply.rc").trim(), "0", "{applied}");
    assert!(
        applied.contains("vendor80.service.d/50-lowport.conf"),
        "{applied}"
    );
    assert!(
        applied.contains("holds cap_net_bind_service in its ambient set"),
        "{applied}"
    );
    assert_eq!(c.read("active").trim(), "active");
    assert_eq!(
        c.read("rollback.rc").trim(),
        "0",
        "{}",
        c.read("rollback.txt")
    );
    assert!(
        !c.read("after").contains(":80 "),
        "without the drop-in it fails again"
    );
    assert!(
        !c.read("units").contains("vendor80.service.d"),
        "{}",
        c.read("units")
    );
    let kept = std::fs::read_to_string(c.root.join("etc/systemd/system/vendor80.service")).unwrap();
    assert_eq!(kept, unit, "the vendor file was never touched");
}

#[test]
fn private_users_really_breaks_the_bind_and_verify_says_so() {
    if !is_root_or_skip("private_users_really_breaks_the_bind_and_verify_says_so") {
        return;
    }
    let c = Container::new();
    c.lowport().args(apply_args()).run().code(0);
    // An operator adds PrivateUsers=yes in a drop-in of their own.
    let dropin = c.root.join("etc/systemd/system/echo80.service.d");
    std::fs::create_dir_all(&dropin).unwrap();
    std::fs::write(
        dropin.join("90-operator.conf"),
        "[Service]\nPrivateUsers=yes\n",
    )
    .unwrap();
    c.lowport()
        .args(["verify", "--service", "echo80", "--port", "80"])
        .run()
        .code(8)
        .stdout_has("FAIL private-users");
    // "active" flickers while the unit restarts after each failure: the service's own log and
    // the sockets are what show it cannot bind.
    c.boot_with(
        UNIT,
        "sleep 0.5; journalctl -b -u echo80.service --no-pager > /out/log; ss -ltnH > /out/listen",
    );
    let log = c.read("log");
    assert!(
        log.contains("Permission denied"),
        "socat's bind is refused:\n{log}"
    );
    assert!(!c.read("listen").contains(":80 "), "{}", c.read("listen"));
}
