//! The wizard in a real terminal: tmux runs the real binary, keys go in with send-keys, and the
//! screen is read with capture-pane. Every wait is on screen content (polled, bounded in time).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `argv` in an 80x24 pane; when it ends, the shell prints its exit code and the
    /// terminal's line discipline, so tests can check the terminal was restored.
    fn start(argv: &[String]) -> Tmux {
        let socket = format!(
            "lowport-test-{}-{}",
            std::process::id(),
            argv.len() + rand_suffix()
        );
        let quoted: Vec<String> = argv.iter().map(|a| format!("'{a}'")).collect();
        let script = format!(
            "{}; echo \"EXIT=$?\"; stty -a | tr ' ;' '\\n\\n' | grep -x -e '-*icanon' -e '-*echo'; sleep 600",
            quoted.join(" ")
        );
        let ok = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "80",
                "-y",
                "24",
                "sh",
                "-c",
                &script,
            ])
            .env("TERM", "xterm-256color")
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session");
        Tmux { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until every text is on the screen at once; fails with the screen after 10 s.
    #[track_caller]
    fn wait(&self, texts: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if texts.iter().all(|t| s.contains(t)) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "waited for {texts:?}, screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let ok = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys"])
            .args(keys)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

fn rand_suffix() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn lowport(t: &TestEnv, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![BIN.into(), "--root".into(), t.root.display().to_string()];
    v.extend(["--state-dir".into(), t.state.display().to_string()]);
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

#[test]
fn setcap_walk_through_then_roll_back_from_history() {
    if !is_root_or_skip("setcap_walk_through_then_roll_back_from_history") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let tm = Tmux::start(&lowport(&t, &["--binary", "/opt/app", "--port", "80"]));
    tm.wait(&["Read-only detection", "Binary /opt/app", "Port 80: free"]);
    tm.keys(&["Enter"]);
    tm.wait(&[
        "Approaches",
        "★ [low ] systemd",
        "[med ] setcap",
        "recommended here",
    ]);
    tm.keys(&["Down", "Enter"]);
    tm.wait(&["Method: setcap", "Binary: /opt/app", "Ports: 80"]);
    tm.keys(&["Enter"]);
    tm.wait(&[
        "Nothing has changed on this host yet",
        "runs: /usr/sbin/setcap 'cap_net_bind_service=+ep'",
    ]);
    assert_eq!(getcap(&t.host(&app)), "", "preview changes nothing");
    tm.keys(&["Enter"]);
    tm.wait(&["Confirm apply", "y: yes"]);
    tm.keys(&["y"]);
    tm.wait(&["Applied and verified as run", "verified: proved"]);
    assert!(getcap(&t.host(&app)).contains("cap_net_bind_service=ep"));
    tm.keys(&["h"]);
    tm.wait(&["History", "setcap   applied", "Enter rolls back"]);
    tm.keys(&["Enter"]);
    tm.wait(&["Confirm rollback"]);
    tm.keys(&["y"]);
    tm.wait(&["rolled back (requested by root)"]);
    assert_eq!(
        getcap(&t.host(&app)),
        "",
        "rolled back from the History screen"
    );
    tm.keys(&["q"]);
    tm.wait(&["EXIT=0"]);
}

#[test]
fn high_risk_apply_is_impossible_until_acknowledged() {
    if !is_root_or_skip("high_risk_apply_is_impossible_until_acknowledged") {
        return;
    }
    let t = TestEnv::new();
    let ns = Netns::new();
    let mut argv: Vec<String> = ["ip", "netns", "exec", &ns.name]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.extend(lowport(&t, &["--port", "80"]));
    let tm = Tmux::start(&argv);
    tm.wait(&["Read-only detection", "No binary given yet"]);
    tm.keys(&["Enter"]);
    tm.wait(&["[HIGH] sysctl"]);
    // sysctl is next to last: the catalog lists methods safest first, socket activation last.
    tm.keys(&["End", "Up"]);
    tm.keys(&["Enter"]);
    tm.wait(&["Method: sysctl"]);
    tm.keys(&["Enter"]);
    tm.wait(&[
        "Nothing has changed on this host yet",
        "High risk: Enter opens a guided review",
    ]);
    tm.keys(&["Enter"]);
    tm.wait(&[
        "HIGH RISK",
        "What becomes possible, for whom",
        "Safer alternatives here",
        "Apply stays impossible",
    ]);
    tm.keys(&["Enter"]);
    let s = tm.wait(&["type exactly: sysctl"]);
    assert!(!s.contains("Confirm apply"));
    tm.keys(&["-l", "sysctI"]);
    tm.keys(&["Enter"]);
    tm.wait(&["type exactly: sysctl"]);
    assert_eq!(
        ns.sysctl(),
        "1024",
        "nothing applied without the acknowledgement"
    );
    tm.keys(&["BSpace"]);
    tm.keys(&["-l", "l"]);
    tm.keys(&["Enter"]);
    tm.wait(&["Confirm apply"]);
    tm.keys(&["y"]);
    tm.wait(&["Applied and verified as run", "user nobody bound port 80"]);
    assert_eq!(ns.sysctl(), "80");
    tm.keys(&["q"]);
    tm.wait(&["EXIT=0"]);
}

#[test]
fn quitting_mid_flow_restores_the_terminal() {
    let t = TestEnv::new();
    let tm = Tmux::start(&lowport(&t, &["--port", "80"]));
    tm.wait(&["Read-only detection"]);
    tm.keys(&["Enter"]);
    tm.wait(&["Approaches"]);
    tm.keys(&["q"]);
    // Left without carrying anything out: declined, nothing changed.
    let s = tm.wait(&["EXIT=3", "icanon", "echo"]);
    assert!(
        !s.contains("Approaches"),
        "the wizard's screen is gone:\n{s}"
    );
    assert!(
        !s.contains("-icanon") && !s.contains("-echo"),
        "raw mode was left on:\n{s}"
    );
}

#[test]
fn a_too_small_terminal_says_so_and_redraws_on_resize() {
    let t = TestEnv::new();
    let tm = Tmux::start(&lowport(&t, &["--port", "80"]));
    tm.wait(&["Read-only detection"]);
    let resize = |w: &str, h: &str| {
        let ok = Command::new("tmux")
            .args(["-L", &tm.socket, "resize-window", "-x", w, "-y", h])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    resize("50", "12");
    tm.wait(&["Terminal too small: 50x12"]);
    resize("80", "24");
    tm.wait(&["Read-only detection"]);
    tm.keys(&["q"]);
    tm.wait(&["EXIT=3"]);
}

#[test]
fn plain_prompts_in_a_real_terminal() {
    if !is_root_or_skip("plain_prompts_in_a_real_terminal") {
        return;
    }
    let t = TestEnv::new();
    let app = t.install(Path::new("/usr/bin/true"), "opt/app");
    let tm = Tmux::start(&lowport(
        &t,
        &["--plain", "--binary", "/opt/app", "--port", "80"],
    ));
    tm.wait(&["Approach", "setcap - File capability on the binary"]);
    tm.keys(&["Down", "Enter"]);
    for prompt in ["Binary", "Ports", "User", "Group"] {
        tm.wait(&[prompt]);
        tm.keys(&["Enter"]);
    }
    tm.wait(&["Type 'yes' to continue"]);
    tm.keys(&["-l", "yes"]);
    tm.keys(&["Enter"]);
    tm.wait(&["Applied as run", "EXIT=0"]);
    assert!(getcap(&t.host(&app)).contains("cap_net_bind_service=ep"));
}
