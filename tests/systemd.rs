//! The systemd method against a real systemd: a throwaway container booted with systemd-nspawn
//! (the host's /usr read-only, a minimal /etc) runs the unit lowport wrote with `--root`; a probe
//! unit records what the service really is, then powers the container off.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::subjects::*;
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

    /// Copies the static Go test server into the root at /opt/testsrv/lowport-testsrv (outside
    /// /usr, which the container takes from the host) and returns that path.
    fn install_go(&self) -> &'static str {
        let dir = self.root.join("opt/testsrv");
        std::fs::create_dir_all(&dir).unwrap();
        set_mode(&self.root.join("opt"), 0o755);
        set_mode(&dir, 0o755);
        std::fs::copy(go_server(), dir.join("lowport-testsrv")).unwrap();
        set_mode(&dir.join("lowport-testsrv"), 0o755);
        "/opt/testsrv/lowport-testsrv"
    }

    /// Copies caddy into the root's /usr/bin so lowport can resolve it under --root (inside the
    /// container /usr is the host's, which has the same file).
    fn install_caddy(&self) {
        std::fs::copy(CADDY, self.root.join("usr/bin/caddy")).unwrap();
    }

    /// Writes `content` at `rel` in the root, mode 0644, every new directory 0755.
    fn put(&self, rel: &str, content: &str) {
        let path = self.root.join(rel);
        let mut dir = path.parent().unwrap();
        let mut made = Vec::new();
        while !dir.exists() {
            made.push(dir.to_path_buf());
            dir = dir.parent().unwrap();
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        for d in made {
            set_mode(&d, 0o755);
        }
        std::fs::write(&path, content).unwrap();
        set_mode(&path, 0o644);
    }

    /// Boots the container with a probe unit, ordered after `after`, that waits until the boot
    /// has finished (a condition, not a sleep), then runs the shell `script` with /out for
    /// results, lowport's own binary at /lowport/lowport and `get IP:PORT` (an HTTP GET that
    /// prints the body), `get_until IP:PORT` (polls `get` until it answers, for at most 10 s) and
    /// `started UNIT` (waits, at most 10 s, until the unit's main process has left systemd's
    /// forked child and runs its own program, so its ids and capabilities are final) and
    /// `failed UNIT` (waits, at most 10 s, until the unit has failed, and prints its state),
    /// then powers the container off, also when the script fails. The power-off is forced (every
    /// process killed, no orderly stop of units): under load an orderly stop sometimes hung past
    /// the deadline after the probe had finished, and everything the test reads is in /out or
    /// the root tree already.
    fn boot_with(&self, after: &str, script: &str) {
        let probe =
            format!("[Unit]\nAfter={after}\n[Service]\nType=simple\nExecStart=/bin/sh /probe.sh\n");
        std::fs::write(self.root.join("etc/systemd/system/probe.service"), probe).unwrap();
        let script = format!(
            "trap \"date +%s > /out/ended; systemctl --force poweroff\" EXIT\n\
             get() {{ perl -MIO::Socket::INET -e '{GET_SCRIPT}' \"$1\"; }}\n\
             get_until() {{ n=0; until B=$(get \"$1\") && [ -n \"$B\" ]; do n=$((n+1)); \
             [ $n -ge 200 ] && break; sleep 0.05; done; printf %s \"$B\"; }}\n\
             failed() {{ n=0; until [ \"$(systemctl is-failed \"$1\")\" = failed ] || \
             [ $n -ge 200 ]; do n=$((n+1)); sleep 0.05; done; systemctl is-failed \"$1\"; }}\n\
             started() {{ n=0; while P=$(systemctl show -p MainPID --value \"$1\"); \
             [ \"$P\" != 0 ] && [ $n -lt 200 ]; do case $(readlink /proc/$P/exe) in \
             */systemd) n=$((n+1)); sleep 0.05;; *) break;; esac; done; }}\n\
             systemctl is-system-running --wait > /out/system-state\n{script}\n"
        );
        std::fs::write(self.root.join("probe.sh"), script).unwrap();
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
        if !status.status.success() {
            // What the probe got to, to see where it hung.
            let wrote: Vec<String> = std::fs::read_dir(&self.out)
                .unwrap()
                .flatten()
                .map(|f| {
                    let text = std::fs::read_to_string(f.path()).unwrap_or_default();
                    let tail = &text[text.floor_char_boundary(text.len().saturating_sub(2000))..];
                    format!("--- {} (tail)\n{tail}", f.file_name().to_string_lossy())
                })
                .collect();
            panic!(
                "nspawn: {}\nthe probe wrote:\n{}",
                String::from_utf8_lossy(&status.stderr),
                wrote.join("\n")
            );
        }
        std::fs::remove_file(self.root.join("etc/systemd/system/probe.service")).unwrap();
        std::fs::remove_file(self.root.join("probe.sh")).unwrap();
    }

    /// A probe result. A file the probe never wrote is a failure, never an empty answer: a
    /// negative assertion must not pass because the probe did not run.
    #[track_caller]
    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.out.join(file))
            .unwrap_or_else(|e| panic!("the probe did not write /out/{file}: {e}"))
    }

    /// Boots the container and records `unit`'s state, its process's ids and ambient
    /// capabilities, and the listening sockets.
    fn boot(&self, unit: &str) -> (String, String, String) {
        self.boot_with(
            unit,
            &format!(
                "started {unit}; systemctl is-active {unit} > /out/active; \
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
        .stderr_has("not verified yet: echo80.service is written and enabled, not started");
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
    let fabio = |extra: &[&str]| {
        t.lowport()
            .args(["plan", "--method", "systemd", "--profile", "fabio"])
            .args(["--config", "/etc/fabio/fabio.properties"])
            .args(extra)
            .run()
    };
    // A --port the file contradicts is said, not silently preferred.
    fabio(&["--port", "81"])
        .code(0)
        .stderr_has("--port 81 differs from what /etc/fabio/fabio.properties makes fabio listen on below 1024 (80, 443)");
    // A configuration without a privileged port plans nothing.
    std::fs::write(
        t.root.join("etc/fabio/fabio.properties"),
        "proxy.addr = :80\nproxy.addr = :9999\n",
    )
    .unwrap();
    fabio(&[])
        .code(2)
        .stderr_has("names no port below 1024 in proxy.addr or ui.addr: there is nothing to grant");
}

#[test]
fn rollback_keeps_accounts_added_since_and_removes_only_its_own() {
    if !is_root_or_skip("rollback_keeps_accounts_added_since_and_removes_only_its_own") {
        return;
    }
    let c = Container::new();
    let doc = c
        .lowport()
        .args(apply_args())
        .arg("--json")
        .run()
        .code(0)
        .json();
    // Nothing was started under --root: a status of its own, never "verified".
    assert_eq!(doc["outcome"]["status"], "applied", "{doc:#}");
    assert_eq!(doc["verify"]["status"], "not_started", "{doc:#}");
    assert_eq!(doc["verify"]["ok"], false, "{doc:#}");
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
    let script = "L=/lowport/lowport; systemctl start vendor80.service; \
                  failed vendor80.service > /out/before-state; ss -ltnH > /out/before; \
                  $L --state-dir /var/lib/lowport apply --method systemd --service vendor80 --port 80 \
                  --yes > /out/apply.txt 2>&1; echo $? > /out/apply.rc; \
                  systemctl is-active vendor80.service > /out/active; \
                  $L --state-dir /var/lib/lowport rollback --last --yes > /out/rollback.txt 2>&1; \
                  echo $? > /out/rollback.rc; failed vendor80.service > /out/after-state; \
                  ss -ltnH > /out/after; \
                  ls /etc/systemd/system > /out/units";
    c.boot_with("multi-user.target", script);
    assert_eq!(
        c.read("before-state").trim(),
        "failed",
        "socat tried and failed"
    );
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
    assert_eq!(
        c.read("after-state").trim(),
        "failed",
        "restarted, and failed"
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
        "n=0; until journalctl -b -u echo80.service --no-pager | grep -q \"Permission denied\" \
         || [ $n -ge 200 ]; do n=$((n+1)); sleep 0.05; done; \
         journalctl -b -u echo80.service --no-pager > /out/log; ss -ltnH > /out/listen",
    );
    let log = c.read("log");
    assert!(
        log.contains("Permission denied"),
        "socat's bind is refused:\n{log}"
    );
    assert!(!c.read("listen").contains(":80 "), "{}", c.read("listen"));
}

/// One program under test as a service: how to apply it and what a client must read on :80.
struct Subject {
    name: &'static str,
    args: Vec<String>,
    body: String,
}

/// The static Go server (a fabio stand-in), caddy (a dynamically linked Go program that keeps
/// data under $HOME, given a state directory) and socat (C), each answering HTTP on :80.
fn subjects(c: &Container) -> Vec<Subject> {
    let go = c.install_go();
    c.install_caddy();
    c.put(
        "etc/caddy-test/Caddyfile",
        "{\n\tauto_https off\n\tadmin off\n}\n:80 {\n\trespond \"caddy on 80\"\n}\n",
    );
    c.put(
        "srv/response",
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsocat on 80\n",
    );
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let with_args = |binary: &str, args: &[&str]| {
        let mut v = words(&["--binary", binary]);
        for a in args {
            v.extend(words(&["--arg", a]));
        }
        v
    };
    let mut caddy = with_args(
        "/usr/bin/caddy",
        &["run", "--config", "/etc/caddy-test/Caddyfile"],
    );
    caddy.extend(words(&["--state-directory", "web"]));
    vec![
        Subject {
            name: "go",
            args: with_args(go, &[":80"]),
            body: go_body(80),
        },
        Subject {
            name: "caddy",
            args: caddy,
            body: "caddy on 80".into(),
        },
        Subject {
            name: "socat",
            args: with_args(
                "/usr/bin/socat",
                &[
                    "-U",
                    "TCP-LISTEN:80,fork,reuseaddr",
                    "OPEN:/srv/response,rdonly",
                ],
            ),
            body: "socat on 80".into(),
        },
    ]
}

#[test]
fn go_caddy_and_socat_serve_http_on_80_from_the_unit_enabled_at_boot() {
    if !is_root_or_skip("go_caddy_and_socat_serve_http_on_80_from_the_unit_enabled_at_boot") {
        return;
    }
    let c = Container::new();
    for s in subjects(&c) {
        c.lowport()
            .args(["apply", "--method", "systemd", "--port", "80"])
            .args(["--service", "web", "--user", "lpweb", "--yes"])
            .args(&s.args)
            .run()
            .code(0)
            .stderr_has("written and enabled, not started")
            .stderr_has("lowport verify --service web");
        let uid = std::fs::read_to_string(c.root.join("etc/passwd"))
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("lpweb:x:")
                    .map(|r| r.split(':').next().unwrap().to_string())
            })
            .expect("lpweb created in the container");
        c.boot_with(
            "web.service",
            "get_until 127.0.0.1:80 > /out/body; \
             P=$(systemctl show -p MainPID --value web.service); \
             grep -E \"^(Uid|CapAmb|CapEff|CapPrm)\" /proc/$P/status > /out/status; \
             systemctl show -p NRestarts -p ExecMainStatus --value web.service > /out/restarts; \
             ls -A /var/lib/web/.config/caddy > /out/caddy-config 2>&1; true",
        );
        let (body, status) = (c.read("body"), c.read("status"));
        assert_eq!(body.trim(), s.body, "{}: the client's answer", s.name);
        assert!(
            status.contains(&format!("Uid:\t{uid}\t{uid}\t{uid}\t{uid}")),
            "{}: {status}",
            s.name
        );
        assert!(
            status.contains("CapAmb:\t0000000000000400"),
            "{}: only cap_net_bind_service: {status}",
            s.name
        );
        assert_eq!(
            c.read("restarts").split_whitespace().next(),
            Some("0"),
            "{}: never restarted",
            s.name
        );
        if s.name == "caddy" {
            // caddy saved its configuration under the state directory's XDG_CONFIG_HOME.
            assert!(
                c.read("caddy-config").contains("autosave.json"),
                "{}",
                c.read("caddy-config")
            );
        }
        c.lowport()
            .args(["rollback", "--last", "--yes"])
            .run()
            .code(0);
    }
}

#[test]
fn inside_a_running_systemd_a_service_that_dies_explains_why() {
    if !is_root_or_skip("inside_a_running_systemd_a_service_that_dies_explains_why") {
        return;
    }
    let c = Container::new();
    let go = c.install_go();
    // A unit written by hand with the filter lowport used to write: the Go runtime's setrlimit at
    // start is forbidden and the default action kills it.
    c.put(
        "etc/systemd/system/gosys.service",
        &format!(
            "[Service]\nExecStart={go} :80\nUser=nobody\nSystemCallFilter=@system-service\n\
             SystemCallFilter=~@privileged @resources\n[Install]\nWantedBy=multi-user.target\n"
        ),
    );
    let script = format!(
        "L=/lowport/lowport; \
         $L --state-dir /var/lib/lowport apply --method systemd --service gosys --port 80 --yes \
         --json > /out/sigsys.json 2> /out/sigsys.err; echo $? > /out/sigsys.rc; \
         socat TCP-LISTEN:80,fork,reuseaddr EXEC:/bin/cat & S=$!; \
         n=0; until ss -ltnH | grep -q \":80 \" || [ $n -ge 100 ]; do n=$((n+1)); sleep 0.05; done; \
         $L --state-dir /var/lib/lowport apply --method systemd --binary {go} --arg :80 --port 80 \
         --service busy --user lpbusy --yes > /out/busy.txt 2>&1; echo $? > /out/busy.rc; \
         kill $S; wait $S; \
         $L --state-dir /var/lib/lowport apply --method systemd --binary /bin/sh --arg -c \
         --arg \"mkdir /var/lib/appdata && exec {go} :80\" --port 80 --service rofs \
         --user lprofs --yes > /out/rofs.txt 2>&1; echo $? > /out/rofs.rc"
    );
    c.boot_with("multi-user.target", &script);
    assert_eq!(c.read("sigsys.rc").trim(), "4", "{}", c.read("sigsys.err"));
    let doc: serde_json::Value = serde_json::from_str(&c.read("sigsys.json")).unwrap();
    assert_eq!(doc["outcome"]["status"], "rolled_back", "{doc:#}");
    let checks = doc["verify"]["checks"].as_array().unwrap();
    let detail = |name: &str| -> Vec<String> {
        checks
            .iter()
            .filter(|c| c["name"] == name)
            .map(|c| c["detail"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        detail("exit")[0].contains("killed by signal 31 (SIGSYS"),
        "{doc:#}"
    );
    assert!(
        detail("log")[0].contains("status=31/SYS"),
        "systemd's own line is in the log: {doc:#}"
    );
    assert!(
        detail("cause")[0].contains("the system-call filter killed it")
            && detail("cause")[0].contains("SystemCallErrorNumber=EPERM"),
        "{doc:#}"
    );

    let busy = c.read("busy.txt");
    assert_eq!(c.read("busy.rc").trim(), "4", "{busy}");
    assert!(busy.contains("bind: address already in use"), "{busy}");
    assert!(
        busy.contains("port 80 is already in use by socat (pid "),
        "{busy}"
    );
    assert!(busy.contains("every change was rolled back"), "{busy}");

    // A program that writes outside the sandbox's writable paths: the read-only path and the fix.
    let rofs = c.read("rofs.txt");
    assert_eq!(c.read("rofs.rc").trim(), "4", "{rofs}");
    assert!(rofs.contains("Read-only file system"), "{rofs}");
    assert!(
        rofs.contains("it cannot write /var/lib/appdata")
            && rofs.contains("--writable /var/lib/appdata"),
        "{rofs}"
    );
}

#[test]
fn a_drop_in_enables_a_disabled_unit_so_the_go_server_serves_after_boot() {
    if !is_root_or_skip("a_drop_in_enables_a_disabled_unit_so_the_go_server_serves_after_boot") {
        return;
    }
    let c = Container::new();
    let go = c.install_go();
    // An admin's unit, installed but never enabled.
    c.put(
        "etc/systemd/system/gosrv.service",
        &format!(
            "[Service]\nExecStart={go} :80\nUser=nobody\n[Install]\nWantedBy=multi-user.target\n"
        ),
    );
    let plan = c
        .lowport()
        .args(["plan", "--method", "systemd", "--service", "gosrv"])
        .args(["--port", "80", "--json"])
        .run()
        .code(0)
        .json();
    let paths: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["action"]["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "/etc/systemd/system/gosrv.service.d/50-lowport.conf",
            "/etc/systemd/system/multi-user.target.wants/gosrv.service"
        ]
    );
    c.lowport()
        .args(["apply", "--method", "systemd", "--service", "gosrv"])
        .args(["--port", "80", "--yes"])
        .run()
        .code(0);
    c.boot_with("gosrv.service", "get_until 127.0.0.1:80 > /out/body");
    assert_eq!(c.read("body"), go_body(80));
}

#[test]
fn debian_caddy_unit_already_grants_the_capability_and_is_only_enabled() {
    if !is_root_or_skip("debian_caddy_unit_already_grants_the_capability_and_is_only_enabled") {
        return;
    }
    let vendor = Path::new("/usr/lib/systemd/system/caddy.service");
    let c = Container::new();
    c.install_caddy();
    c.put(
        "usr/lib/systemd/system/caddy.service",
        &std::fs::read_to_string(vendor).expect("Debian's caddy package"),
    );
    // The package's user (the container starts from the host's passwd, which has it when
    // caddy is installed) and its home, as the package's postinst makes them.
    let passwd = || std::fs::read_to_string(c.root.join("etc/passwd")).unwrap();
    if !passwd().contains("\ncaddy:") {
        let added = Command::new("useradd")
            .arg("--root")
            .arg(&c.root)
            .args([
                "--system",
                "--user-group",
                "--home-dir",
                "/var/lib/caddy",
                "caddy",
            ])
            .status()
            .unwrap();
        assert!(added.success());
    }
    let ids: Vec<u32> = passwd()
        .lines()
        .find_map(|l| l.strip_prefix("caddy:x:"))
        .unwrap()
        .split(':')
        .take(2)
        .map(|n| n.parse().unwrap())
        .collect();
    let home = c.root.join("var/lib/caddy");
    std::fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(ids[0]), Some(ids[1])).unwrap();
    c.put(
        "etc/caddy/Caddyfile",
        "{\n\tauto_https off\n\tadmin off\n}\n:80 {\n\trespond \"caddy on 80\"\n}\n",
    );
    let out = c
        .lowport()
        .args(["plan", "--method", "systemd", "--service", "caddy"])
        .args(["--port", "80", "--json"])
        .run()
        .code(0);
    let plan = out.json();
    assert!(
        plan["warnings"].to_string().contains("already in place"),
        "{plan:#}"
    );
    let paths: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["action"]["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        ["/etc/systemd/system/multi-user.target.wants/caddy.service"],
        "no drop-in, only the enable link"
    );
    c.lowport()
        .args(["apply", "--method", "systemd", "--service", "caddy"])
        .args(["--port", "80", "--yes"])
        .run()
        .code(0);
    c.lowport()
        .args(["apply", "--method", "systemd", "--service", "caddy"])
        .args(["--port", "80", "--yes"])
        .run()
        .code(0)
        .stdout_has("Nothing to do");
    c.boot_with("caddy.service", "get_until 127.0.0.1:80 > /out/body");
    assert_eq!(c.read("body"), "caddy on 80");
}

#[test]
fn a_unit_in_usr_local_lib_gets_a_drop_in_not_a_shadowing_unit() {
    if !is_root_or_skip("a_unit_in_usr_local_lib_gets_a_drop_in_not_a_shadowing_unit") {
        return;
    }
    let c = Container::new();
    c.put(
        "usr/local/lib/systemd/system/adm.service",
        "[Service]\nExecStart=/usr/bin/socat TCP-LISTEN:80 EXEC:/bin/cat\nUser=nobody\n\
         Environment=MODE=prod\n",
    );
    let plan = c
        .lowport()
        .args(["plan", "--method", "systemd", "--service", "adm"])
        .args(["--port", "80", "--json"])
        .run()
        .code(0)
        .json();
    let paths: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["action"]["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        ["/etc/systemd/system/adm.service.d/50-lowport.conf"],
        "{plan:#}"
    );
    assert!(
        plan["warnings"]
            .to_string()
            .contains("/usr/local/lib/systemd/system/adm.service"),
        "{plan:#}"
    );
    assert!(
        plan["warnings"]
            .to_string()
            .contains("systemd ORs repeated lines, so a unit that lists capabilities keeps them"),
        "{plan:#}"
    );
    assert!(
        !plan["warnings"].to_string().contains("runs as root"),
        "it has User=nobody"
    );
    // A unit without User= runs as root: the plan says so and how to change it.
    c.put(
        "usr/local/lib/systemd/system/adm.service",
        "[Service]\nExecStart=/usr/bin/socat TCP-LISTEN:80 EXEC:/bin/cat\n",
    );
    let plan = c
        .lowport()
        .args(["plan", "--method", "systemd", "--service", "adm"])
        .args(["--port", "80", "--json"])
        .run()
        .code(0)
        .json();
    let warnings = plan["warnings"].to_string();
    assert!(
        warnings.contains("adm.service sets no User=: it runs as root")
            && warnings.contains("--dynamic-user"),
        "{plan:#}"
    );
}

#[test]
fn the_hardened_redirect_boot_units_load_their_rules_at_boot() {
    if !is_root_or_skip("the_hardened_redirect_boot_units_load_their_rules_at_boot") {
        return;
    }
    for method in ["redirect-nft", "redirect-iptables"] {
        let c = Container::new();
        let go = c.install_go();
        // Debian's iptables is an alternatives link through /etc: the minimal /etc needs it.
        std::fs::create_dir_all(c.root.join("etc/alternatives")).unwrap();
        for e in std::fs::read_dir("/etc/alternatives").unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("iptables") || name.starts_with("ip6tables") {
                let target = std::fs::read_link(e.path()).unwrap();
                std::os::unix::fs::symlink(target, c.root.join("etc/alternatives").join(name))
                    .unwrap();
            }
        }
        // lowport applies inside a throwaway network namespace: its live rules land there, its
        // files (rules, the boot unit) in the container's tree.
        let ns = Netns::new();
        c.lowport()
            .netns(&ns)
            .args(["apply", "--method", method, "--port", "80:8080", "--yes"])
            .run()
            .code(0);
        let unit = format!("lowport-{method}.service");
        c.boot_with(
            &unit,
            &format!(
                "systemctl is-active {unit} > /out/active; \
                 journalctl -b -u {unit} --no-pager > /out/log; {go} :8080 & \
                 get_until 127.0.0.1:80 > /out/body; kill $!"
            ),
        );
        assert_eq!(
            c.read("active").trim(),
            "active",
            "{method}: {}",
            c.read("log")
        );
        assert_eq!(c.read("body"), go_body(8080), "{method}: 80 reaches 8080");
    }
}

#[test]
fn where_systemd_is_not_the_init_the_method_is_not_offered_for_this_host() {
    let t = TestEnv::new();
    let mut facts = t.lowport().args(["detect", "--json"]).run().code(0).json();
    // A container whose PID 1 is tini, planned for itself (not an image under --root).
    facts["root"] = "/".into();
    facts["init"] =
        serde_json::json!({ "pid1": "tini", "systemd": false, "systemd_version": null });
    facts["tools"]["systemctl"] = "/usr/bin/systemctl".into();
    let file = t.state.with_file_name("tini-host.json");
    std::fs::write(&file, facts.to_string()).unwrap();
    let list = t
        .lowport()
        .args(["methods", "--port", "80", "--json", "--facts"])
        .arg(&file)
        .run()
        .code(0)
        .json();
    let systemd = list["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "systemd")
        .unwrap()
        .clone();
    assert_eq!(systemd["available"], false, "{systemd:#}");
    assert!(
        systemd["blockers"]
            .to_string()
            .contains("systemd is not running here (PID 1 is tini)"),
        "{systemd:#}"
    );
}
