//! Benchmark (not a test): wall time of `lowport apply --method setcap` + `lowport rollback
//! --last` against the raw `setcap` / `getcap` / `setcap -r` commands on the same file, their
//! ratio (medians of rounds that alternate both), and lowport's peak memory. Needs root.
//! Run: `cargo bench --bench apply_rollback`. `LOWPORT_BENCH_ROUNDS` sets the number of rounds
//! (default 30); `LOWPORT_BENCH_BIN` times another build of lowport (e.g. an older commit).
//!
//! Beside them it times a floor: this benchmark's own binary, run as two processes like
//! lowport, doing only what lowport's journal rules make any journaled apply and rollback do
//! (the same writes, the same four syncs, a rename, the capability set and removed on the open
//! file) and nothing else: no options, facts, plan, checks or verification. What lowport costs
//! above it is its own work; what the floor costs above raw `setcap` is the price of the
//! journal on this disk.

// File capabilities are Linux's: elsewhere there is nothing to measure, and the rest goes unused.
#![cfg_attr(not(target_os = "linux"), allow(dead_code, unused_imports))]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lowport");

/// Runs argv, waits with wait4 to read its peak resident set (KiB); panics if it fails.
#[cfg(target_os = "linux")]
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which std cannot see
fn run(argv: &[&str]) -> i64 {
    let child = Command::new(argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut status = 0;
    // SAFETY: rusage is plain integers, for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: valid pointers to a live int and rusage; the pid is our own child, not yet waited.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{argv:?} failed"
    );
    usage.ru_maxrss
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the apply_rollback benchmark measures setcap, which is Linux's");
}

/// The first argument that makes this binary run one step of the floor instead.
#[cfg(target_os = "linux")]
const FLOOR: &str = "--floor";

/// One step of the floor, in this process: `apply DIR FILE ROUND` or `rollback DIR FILE ROUND`.
/// The records have about the sizes of lowport's own for this run (its start record carries the
/// plan), as read from one of its journals.
#[cfg(target_os = "linux")]
fn floor(args: &[String]) -> std::io::Result<()> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    use xattr::FileExt;
    let [step, dir, file, round] = args else {
        return Err(std::io::Error::other(format!(
            "{FLOOR}: bad arguments {args:?}"
        )));
    };
    let dir = Path::new(dir);
    let (new, open, closed) = (
        dir.join(format!(".new-{round}.jsonl")),
        dir.join(format!("{round}.open.jsonl")),
        dir.join(format!("{round}.jsonl")),
    );
    let sync_dir = || std::fs::File::open(dir)?.sync_all();
    let record = |n: usize| [vec![b'x'; n], b"\n".to_vec()].concat();
    // cap_net_bind_service=ep as a VFS_CAP_REVISION_2 value: revision with the effective flag,
    // then the permitted and inheritable words (bit 10 permitted).
    let cap = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let target = std::fs::File::open(file)?;
    if step == "apply" {
        let mut j = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&new)?;
        j.write_all(&[record(1813), record(219)].concat())?;
        j.sync_data()?;
        std::fs::rename(&new, &open)?;
        sync_dir()?;
        target.set_xattr("security.capability", &cap)?;
        j.write_all(&[record(237), record(34)].concat())?;
        j.sync_data()
    } else {
        let mut j = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(&open)?;
        j.read_to_end(&mut Vec::new())?;
        j.write_all(&record(73))?;
        j.sync_data()?;
        target.remove_xattr("security.capability")?;
        j.write_all(&[record(27), record(38)].concat())?;
        std::fs::rename(&open, &closed)
    }
}

#[cfg(target_os = "linux")]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(args) = args.strip_prefix(&[FLOOR.to_string()]) {
        if let Err(e) = floor(args) {
            eprintln!("{FLOOR}: {e}");
            std::process::exit(1);
        }
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("apply_rollback benchmark needs root (setcap); skipped");
        return;
    }
    let rounds: usize = std::env::var("LOWPORT_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
        .max(1);
    let bin = std::env::var("LOWPORT_BENCH_BIN").unwrap_or_else(|_| BIN.to_string());
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let app = dir.path().join("app");
    std::fs::copy("/usr/bin/true", &app).unwrap();
    let state = dir.path().join("state");
    let floor_dir = dir.path().join("floor");
    std::fs::create_dir(&floor_dir).unwrap();
    let me = std::env::current_exe().unwrap();
    let (a, s, b) = (app.to_str().unwrap(), state.to_str().unwrap(), bin.as_str());
    let (me, f) = (me.to_str().unwrap(), floor_dir.to_str().unwrap());
    let apply = [
        b,
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
    ];
    let rollback = [b, "--state-dir", s, "rollback", "--last", "--yes"];

    // Raw and lowport alternate round by round, so both see the same noise from the rest of
    // the machine; round 0 warms the page cache and creates the state directory.
    let (mut raw, mut ours, mut applies, mut rollbacks) = (vec![], vec![], vec![], vec![]);
    let mut floors = vec![];
    let mut peak = 0;
    for round in 0..=rounds {
        let start = Instant::now();
        run(&["setcap", "cap_net_bind_service=+ep", a]);
        run(&["getcap", a]);
        run(&["setcap", "-r", a]);
        let raw_done = Instant::now();
        peak = peak.max(run(&apply));
        let applied = Instant::now();
        peak = peak.max(run(&rollback));
        let end = Instant::now();
        let n = round.to_string();
        run(&[me, FLOOR, "apply", f, a, &n]);
        if round == 0 {
            // The floor does the real thing: the capability is there (round 0 is not timed).
            assert!(
                getcap(&app).contains("cap_net_bind_service"),
                "the floor set nothing"
            );
        }
        run(&[me, FLOOR, "rollback", f, a, &n]);
        let floor_end = Instant::now();
        if round > 0 {
            raw.push(raw_done - start);
            ours.push(end - raw_done);
            applies.push(applied - raw_done);
            rollbacks.push(end - applied);
            floors.push(floor_end - end);
        }
    }
    assert_eq!(getcap(&app), "", "a rollback left a capability");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (raw, ours, floor) = (median(raw), median(ours), median(floors));
    println!("binary: {bin}");
    println!("rounds: {rounds} (median per round)");
    println!("raw setcap + getcap + setcap -r : {:8.2} ms", ms(raw));
    println!(
        "lowport apply + rollback --last : {:8.2} ms (apply {:.2} ms, rollback {:.2} ms)",
        ms(ours),
        ms(median(applies)),
        ms(median(rollbacks))
    );
    println!(
        "ratio lowport / raw             : {:8.2}x (target <= 1.5x)",
        ms(ours) / ms(raw)
    );
    // The journal's writes, syncs and rename and the capability change, nothing else.
    println!(
        "floor (the journal's work only) : {:8.2} ms ({:.2}x raw; lowport's own work: {:.2} ms)",
        ms(floor),
        ms(floor) / ms(raw),
        ms(ours) - ms(floor)
    );
    println!(
        "lowport peak RSS                : {:8.2} MB (target < 20 MB)",
        peak as f64 / 1024.0
    );
}

fn getcap(p: &Path) -> String {
    let out = Command::new("getcap").arg(p).output().expect("getcap");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}
