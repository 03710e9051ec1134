//! Benchmark (not a test): wall time of `lowport apply --method setcap` + `lowport rollback
//! --last` against the raw `setcap` / `getcap` / `setcap -r` commands on the same file, their
//! ratio, and lowport's peak memory. Needs root. Run: `cargo bench --bench apply_rollback`.
//! `LOWPORT_BENCH_ROUNDS` sets the number of rounds (default 30).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lowport");

/// Runs argv, waits with wait4 to read its peak resident set (KiB); panics if it fails.
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which std cannot see
fn run(argv: &[&str]) -> i64 {
    let child = Command::new(argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter; the pid is our own unwaited child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{argv:?} failed"
    );
    usage.ru_maxrss
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("apply_rollback benchmark needs root (setcap); skipped");
        return;
    }
    let rounds: u32 = std::env::var("LOWPORT_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let app = dir.path().join("app");
    std::fs::copy("/usr/bin/true", &app).unwrap();
    let state = dir.path().join("state");
    let (a, s) = (app.to_str().unwrap(), state.to_str().unwrap());

    let raw = time(rounds, || {
        run(&["setcap", "cap_net_bind_service=+ep", a]);
        run(&["getcap", a]);
        run(&["setcap", "-r", a]);
    });
    let mut peak = 0;
    let lowport = time(rounds, || {
        peak = peak.max(run(&[
            BIN,
            "--state-dir",
            s,
            "apply",
            "--method",
            "setcap",
            "--binary",
            a,
            "--port",
            "80",
            "--yes",
        ]));
        peak = peak.max(run(&[BIN, "--state-dir", s, "rollback", "--last", "--yes"]));
    });
    assert!(
        !Path::new(&app).exists()
            || Command::new("getcap")
                .arg(&app)
                .output()
                .unwrap()
                .stdout
                .is_empty()
    );
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(rounds);
    println!("rounds: {rounds}");
    println!(
        "raw setcap + getcap + setcap -r : {:8.2} ms per round",
        per(raw)
    );
    println!(
        "lowport apply + rollback --last : {:8.2} ms per round",
        per(lowport)
    );
    println!(
        "ratio lowport / raw             : {:8.2}x (target <= 3x)",
        per(lowport) / per(raw)
    );
    println!(
        "lowport peak RSS                : {:8.2} MB (target < 20 MB)",
        peak as f64 / 1024.0
    );
}

fn time(rounds: u32, mut f: impl FnMut()) -> Duration {
    f(); // warm-up: page cache, first state-dir creation
    let start = Instant::now();
    for _ in 0..rounds {
        f();
    }
    start.elapsed()
}
