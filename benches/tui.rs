//! Benchmark (not a test): the wizard's time to first frame, time until the detected host is on
//! screen, and the CPU it uses while idle for 10 s, measured on a real pseudo-terminal.
//! Run: `cargo bench --bench tui`. Targets: first frame within 50 ms, at most 20 ms CPU idle.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::pty::{Winsize, openpty};

const BIN: &str = env!("CARGO_BIN_EXE_lowport");

/// CPU time of every thread of `pid`, from /proc/<pid>/task/*/schedstat (nanoseconds).
fn cpu_ns(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Reads from the terminal until `text` appeared; returns when it did.
fn until(master: &mut std::fs::File, seen: &mut Vec<u8>, text: &str, start: Instant) -> Duration {
    let mut buf = [0u8; 65536];
    while !String::from_utf8_lossy(seen).contains(text) {
        let n = master.read(&mut buf).expect("read pty");
        seen.extend_from_slice(&buf[..n]);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no {text:?} after 10 s"
        );
    }
    start.elapsed()
}

fn main() {
    let size = Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(Some(&size), None).expect("openpty");
    let state = tempfile::tempdir().unwrap();
    let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args([
            "--state-dir",
            state.path().to_str().unwrap(),
            "--port",
            "80",
        ])
        .env("TERM", "xterm-256color")
        .stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave))
        .spawn()
        .expect("spawn lowport");
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let mut seen = Vec::new();
    let first = until(&mut master, &mut seen, "lowport", start);
    // Only drawn once detection has reported (a text without spaces: ratatui skips cells that
    // are already blank, so spaces never reach the terminal).
    let host = until(&mut master, &mut seen, "ip_unprivileged_port_start", start);
    // Let the detection threads finish, then measure a quiet interval.
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ns(child.id());
    std::thread::sleep(Duration::from_secs(10));
    let idle = cpu_ns(child.id()) - before;
    assert!(before > 0, "schedstat reads no CPU time at all");
    master.write_all(b"q").unwrap();
    child.wait().unwrap();
    println!(
        "time to first frame      : {:8.2} ms (target <= 50 ms)",
        first.as_secs_f64() * 1000.0
    );
    println!(
        "time to detected host    : {:8.2} ms",
        host.as_secs_f64() * 1000.0
    );
    println!(
        "CPU while idle for 10 s  : {:8.2} ms (target <= 20 ms)",
        idle as f64 / 1e6
    );
}
