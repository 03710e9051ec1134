//! Benchmark (not a test): `lowport detect` and `lowport methods` with 9,000 established loopback
//! TCP connections against the same commands idle, in a private network namespace (the host's
//! sockets never count and nothing of the host changes). Target: loaded within 1.3x of idle.
//!
//! Two loads: the connections go to another port than the one asked about (what the issue
//! measured), and a busy server: the listener on the asked port owns every connection (fabio on
//! port 80), which also exercises the owner lookup. Needs root (a network namespace).
//! Run: `cargo bench --bench detect`. `LOWPORT_BENCH_RUNS` sets runs per figure (default 21,
//! median taken); `LOWPORT_BENCH_CONNECTIONS` the connections (default 9000); `LOWPORT_BENCH_BIN`
//! times another build of lowport (e.g. an older commit) instead of this one.

// Network namespaces are Linux's: elsewhere there is nothing to measure, and the helpers go unused.
#![cfg_attr(not(target_os = "linux"), allow(dead_code, unused_imports))]

use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use nix::sched::CloneFlags;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Wall time of one run of `bin args`; panics if it fails.
fn once(bin: &str, args: &[&str]) -> Duration {
    let start = Instant::now();
    let ok = Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn lowport")
        .success();
    assert!(ok, "{bin} {args:?} failed");
    start.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

/// A new network namespace with loopback up, kept by a descriptor. Made on a scratch thread
/// (namespaces belong to threads) so this one can enter each in turn with setns.
#[cfg(target_os = "linux")]
fn new_netns() -> OwnedFd {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).expect("unshare -n");
            let up = Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status();
            assert!(up.is_ok_and(|s| s.success()), "ip link set lo up");
            OwnedFd::from(std::fs::File::open("/proc/thread-self/ns/net").unwrap())
        })
        .join()
        .unwrap()
    })
}

#[cfg(target_os = "linux")]
fn enter(ns: &OwnedFd) {
    nix::sched::setns(ns, CloneFlags::CLONE_NEWNET).expect("setns");
}

/// The load, held by a child process (this benchmark run again with `LOWPORT_BENCH_HOLD=PORT:N`)
/// rather than by this one: a process with 18,000 descriptors forks and execs measurably slower,
/// which would be charged to lowport. The child listens on PORT, makes N connections to it,
/// keeps both ends open, says "ready" and waits for its stdin to close.
struct Load(std::process::Child);

impl Load {
    fn start(port: u16, n: usize) -> Load {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("LOWPORT_BENCH_HOLD", format!("{port}:{n}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the load");
        let mut line = String::new();
        let out = child.stdout.as_mut().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the load did not start");
        Load(child)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// The child's side of [`Load`].
#[cfg(target_os = "linux")]
fn hold(spec: &str) {
    let (port, n) = spec.split_once(':').expect("PORT:N");
    let n: usize = n.parse().unwrap();
    let want = (2 * n + 256) as u64;
    use nix::sys::resource::{Resource, setrlimit};
    setrlimit(Resource::RLIMIT_NOFILE, want, want).expect("raise RLIMIT_NOFILE");
    let listener = TcpListener::bind(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    let mut ends = Vec::with_capacity(2 * n);
    for _ in 0..n {
        ends.push(TcpStream::connect(listener.local_addr().unwrap()).expect("connect"));
        ends.push(listener.accept().expect("accept").0);
    }
    println!("ready");
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}

fn report(load: &str, what: &str, idle: Vec<Duration>, loaded: Vec<Duration>) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (i, l) = (ms(median(idle)), ms(median(loaded)));
    println!(
        "{load:<30} {what:<8}: idle {i:7.2} ms, loaded {l:7.2} ms, ratio {:5.2}x (target <= 1.3x)",
        l / i
    );
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the detect benchmark needs Linux network namespaces");
}

#[cfg(target_os = "linux")]
fn main() {
    if let Ok(spec) = std::env::var("LOWPORT_BENCH_HOLD") {
        return hold(&spec);
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("detect benchmark needs root (a private network namespace); skipped");
        return;
    }
    let runs: usize = env_or("LOWPORT_BENCH_RUNS", 21).max(1);
    let n: usize = env_or("LOWPORT_BENCH_CONNECTIONS", 9000);
    let bin = std::env::var("LOWPORT_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_lowport").to_string());
    println!("binary: {bin}");
    println!("runs per figure: {runs} (median), connections: {n}");
    let detect = ["detect", "--binary", "/usr/bin/true", "--port", "80"];
    let methods = ["methods", "--binary", "/usr/bin/true", "--port", "80"];
    let commands = [&detect, &methods];
    // Round 0 of each loop warms the page cache and is not counted.
    let mut times = vec![[Vec::new(), Vec::new()]; 2];

    // Port 80 free, 9,000 connections to port 8080: the two namespaces exist side by side and
    // each command runs in them alternately, so both figures see the same machine noise.
    let (empty, loaded) = (new_netns(), new_netns());
    enter(&loaded);
    let load = Load::start(8080, n);
    for round in 0..=runs {
        for (c, args) in commands.iter().enumerate() {
            for (k, ns) in [&empty, &loaded].into_iter().enumerate() {
                enter(ns);
                let t = once(&bin, *args);
                if round > 0 {
                    times[c][k].push(t);
                }
            }
        }
    }
    drop(load);
    for (c, [idle, busy]) in std::mem::take(&mut times).into_iter().enumerate() {
        report("connections to another port", commands[c][0], idle, busy);
    }

    // A busy server: the listener on port 80 holds every connection, so the owner lookup reads
    // its descriptors. The owner lookup scans every process's descriptors (as `ss -p` does), so
    // an idle and a busy server cannot coexist here: each round builds each afresh.
    let mut times = vec![[Vec::new(), Vec::new()]; 2];
    for round in 0..=runs {
        for (k, connections) in [0, n].into_iter().enumerate() {
            let ns = new_netns();
            enter(&ns);
            let _server = Load::start(80, connections);
            // Untimed: lets the machine settle after making the connections.
            for args in commands {
                let _ = once(&bin, args);
            }
            for (c, args) in commands.iter().enumerate() {
                let t = once(&bin, *args);
                if round > 0 {
                    times[c][k].push(t);
                }
            }
        }
    }
    for (c, [idle, busy]) in times.into_iter().enumerate() {
        report("the listener on :80 owns them", commands[c][0], idle, busy);
    }
}
