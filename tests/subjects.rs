//! The programs the real tests run as services, chosen to behave like the ones operators run:
//! a static Go HTTP server built here from `tests/go/lowport-testsrv` (a fabio stand-in: fabio's
//! releases are static Go binaries), Debian's `caddy` (a dynamically linked Go program that needs a
//! data directory), and socat (C). An HTTP GET through the port judges each of them.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::Netns;

/// The body the Go test server answers on `port`.
pub fn go_body(port: u16) -> String {
    format!("lowport-testsrv on {port}")
}

/// The static Go test server, built once per test run with Debian's `golang-go` (offline:
/// standard library only). The build cache lives in cargo's per-target temporary directory, so a
/// second run rebuilds in seconds.
pub fn go_server() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go");
        std::fs::create_dir_all(&tmp).unwrap();
        let out = tmp.join("lowport-testsrv");
        let partial = tmp.join("lowport-testsrv.partial");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/lowport-testsrv");
        let build = Command::new("go")
            // No VCS stamp: it needs git to trust the checkout, which fails for a non-root user
            // in a root-owned clone ("dubious ownership"), and the test server needs none.
            .args(["build", "-trimpath", "-buildvcs=false", "-o"])
            .arg(&partial)
            .arg(".")
            .current_dir(&src)
            .env("CGO_ENABLED", "0")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOCACHE", tmp.join("cache"))
            .env("GOPATH", tmp.join("gopath"))
            .env("HOME", &tmp)
            .output()
            .expect("go (Debian package golang-go)");
        assert!(
            build.status.success(),
            "go build: {}",
            String::from_utf8_lossy(&build.stderr)
        );
        std::fs::rename(&partial, &out).unwrap();
        out
    })
}

/// Debian's caddy, a dynamically linked Go program.
pub const CADDY: &str = "/usr/bin/caddy";

/// The argv (after the binary) that makes caddy answer "caddy on PORT" on `:PORT`, HTTP only.
pub fn caddy_args(port: u16) -> Vec<String> {
    let (listen, body) = (format!(":{port}"), format!("caddy on {port}"));
    ["respond", "--listen", &listen, "--body", &body]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Writes a fixed HTTP response ("socat on PORT") to `dir/response` (readable by every user; `dir`
/// must be reachable by them) and returns socat's argv for answering it on `port`, forking per
/// connection: socat (C) as an HTTP server.
pub fn socat_http(dir: &Path, port: u16) -> Vec<String> {
    let response = dir.join("response");
    std::fs::write(
        &response,
        format!("HTTP/1.0 200 OK\r\n\r\nsocat on {port}\n"),
    )
    .unwrap();
    crate::support::set_mode(&response, 0o644);
    vec![
        "-U".into(),
        format!("TCP-LISTEN:{port},fork,reuseaddr"),
        format!("OPEN:{},rdonly", response.display()),
    ]
}

/// A program serving in a network namespace as nobody, in its own process group (so children
/// end with it); stopped on drop.
pub struct Server {
    child: Child,
}

impl Server {
    /// Starts `program args…` as nobody in `ns`, with HOME=/nonexistent as for a system user.
    pub fn start(ns: &Netns, program: &Path, args: &[String]) -> Server {
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "setpriv", "--reuid", "nobody"])
            .args(["--regid", "nogroup", "--clear-groups", "env", "-i"])
            .args(["HOME=/nonexistent", "PATH=/usr/bin:/bin"])
            .arg(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        Server { child }
    }

    /// Waits until a GET on ip:port in `ns` answers `want` (at most 10 s); on failure, what the
    /// client saw and what the server said.
    #[track_caller]
    pub fn assert_serves(&mut self, ns: &Netns, ip: &str, port: u16, want: &str) {
        let got = wait_for_body(|| http_get(ns, ip, port), want, 10);
        if got != want {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut err);
            panic!("GET {ip}:{port} answered {got:?}, want {want:?}; the server said:\n{err}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// A perl one-liner that GETs `/` from its argument (`IP:PORT`) over HTTP/1.0 and prints the
/// body; it exits 1 when nothing answers. perl is independent of the programs under test and
/// needs no stdin, so the same argv runs in a namespace or inside a container's probe.
pub const GET_SCRIPT: &str = "$s = IO::Socket::INET->new(PeerAddr => $ARGV[0], Timeout => 2) \
    or exit 1; print $s \"GET / HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n\"; local $/; \
    $r = <$s> // \"\"; $r =~ s/^.*?\\r\\n\\r\\n//s; print $r";

/// What a client in `ns` gets from an HTTP GET on ip:port: the trimmed body, or "" when nothing
/// answered.
pub fn http_get(ns: &Netns, ip: &str, port: u16) -> String {
    let addr = format!("{ip}:{port}");
    let out = ns.exec(&["perl", "-MIO::Socket::INET", "-e", GET_SCRIPT, &addr]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Polls `get` until it returns `want` or `secs` pass; returns the last answer.
pub fn wait_for_body(mut get: impl FnMut() -> String, want: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = get();
        if got == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
