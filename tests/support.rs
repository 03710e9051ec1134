//! The harness: a `#[must_use]` builder that runs the real binary, temporary roots, network
//! namespaces, and exact snapshots of file state (bytes, mode, owner, xattrs) to compare.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const BIN: &str = env!("CARGO_BIN_EXE_lowport");

/// Root-only tests call this first; without root they say so on the real stderr (which the test
/// harness does not capture) and return early, so a skip is never a silent pass.
pub fn is_root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED (needs root): {test}");
    false
}

#[must_use]
pub struct Lowport {
    prefix: Vec<OsString>,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
}

pub struct Output {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Lowport {
    pub fn new() -> Self {
        Lowport {
            prefix: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
        }
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, a: I) -> Self {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }

    pub fn arg(self, a: impl Into<OsString>) -> Self {
        self.args([a])
    }

    /// `--root DIR --state-dir STATE`.
    pub fn env_dirs(self, t: &TestEnv) -> Self {
        self.arg("--root")
            .arg(&t.root)
            .arg("--state-dir")
            .arg(&t.state)
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn stdin(mut self, s: &str) -> Self {
        self.stdin = Some(s.into());
        self
    }

    /// Runs inside the network namespace.
    pub fn netns(mut self, ns: &Netns) -> Self {
        self.prefix = ["ip", "netns", "exec", &ns.name]
            .iter()
            .map(OsString::from)
            .collect();
        self
    }

    pub fn run(self) -> Output {
        let mut cmd = match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.args(&self.args)
            .env_remove("LOWPORT_TEST_FAULT")
            .env_remove("LOWPORT_STATE_DIR");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn lowport");
        if let Some(s) = &self.stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        Output {
            code: out.status.code(),
            signal: out.status.signal(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Output {
    #[track_caller]
    pub fn code(self, want: i32) -> Self {
        assert_eq!(
            self.code,
            Some(want),
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn killed(self) -> Self {
        assert_eq!(
            self.signal,
            Some(9),
            "expected SIGKILL\n{}\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(self, s: &str) -> Self {
        assert!(
            self.stdout.contains(s),
            "stdout lacks {s:?}:\n{}",
            self.stdout
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(self, s: &str) -> Self {
        assert!(
            self.stderr.contains(s),
            "stderr lacks {s:?}:\n{}",
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// A temporary root (mode 0755, root-owned, with the host's passwd and group so users resolve)
/// and a separate state directory, so the root tree can be compared byte for byte.
pub struct TestEnv {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub state: PathBuf,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        set_mode(dir.path(), 0o755);
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        for f in ["passwd", "group"] {
            std::fs::copy(Path::new("/etc").join(f), root.join("etc").join(f)).unwrap();
        }
        let state = dir.path().join("state");
        TestEnv {
            _dir: dir,
            root,
            state,
        }
    }

    /// Copies `src` into the root at `rel` (e.g. "opt/app/bin/app"), root-owned, mode 0755,
    /// every directory 0755; returns its in-root absolute path.
    pub fn install(&self, src: &Path, rel: &str) -> PathBuf {
        let host = self.root.join(rel);
        std::fs::create_dir_all(host.parent().unwrap()).unwrap();
        std::fs::copy(src, &host).unwrap();
        set_mode(&host, 0o755);
        Path::new("/").join(rel)
    }

    /// The program with `--root` and `--state-dir` of this environment.
    pub fn lowport(&self) -> Lowport {
        Lowport::new().env_dirs(self)
    }

    pub fn host(&self, in_root: &Path) -> PathBuf {
        self.root.join(in_root.strip_prefix("/").unwrap())
    }

    /// How many runs the state directory records (its lock file is no record).
    pub fn runs(&self) -> usize {
        std::fs::read_dir(self.state.join("runs")).map_or(0, |d| d.count())
    }
}

/// Holds lowport's lock of `t` until the returned file is dropped. lowport takes a POSIX
/// (fcntl) lock, as lckpwdf does, so that a forked child never holds it; this test process
/// holding one is, to lowport, another run holding its lock. (`flock(1)` takes the other kind
/// of lock, which lowport does not see.)
pub fn hold_lock(t: &TestEnv) -> std::fs::File {
    std::fs::create_dir_all(&t.state).unwrap();
    let holder = std::fs::File::create(t.state.join("lock")).unwrap();
    // SAFETY: an all-zero flock is valid; the lock type is set below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    nix::fcntl::fcntl(&holder, nix::fcntl::FcntlArg::F_SETLK(&fl)).unwrap();
    holder
}

pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Everything lowport may change about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSnap {
    pub bytes: Option<Vec<u8>>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// Every entry under `dir`, by relative path.
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, FileSnap> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            let snap = FileSnap {
                bytes: m.is_file().then(|| std::fs::read(&p).unwrap()),
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
                xattrs: lowport::xattr::all(&p).unwrap(),
            };
            out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), snap);
        }
    }
    out
}

/// Asserts two trees are equal, naming only the entries that differ (the bytes can be large).
#[track_caller]
pub fn assert_same_tree(
    got: &BTreeMap<PathBuf, FileSnap>,
    want: &BTreeMap<PathBuf, FileSnap>,
    what: &str,
) {
    let differ: Vec<&PathBuf> = got
        .keys()
        .chain(want.keys())
        .filter(|k| got.get(*k) != want.get(*k))
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: these entries differ: {differ:?}"
    );
}

pub fn getcap(p: &Path) -> String {
    let out = Command::new("getcap").arg(p).output().expect("getcap");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace, deleted on drop: sysctl changes inside it never reach the host.
pub struct Netns {
    pub name: String,
}

static NETNS_SEQ: AtomicUsize = AtomicUsize::new(0);

impl Netns {
    pub fn new() -> Netns {
        let name = format!(
            "lowport-t{}-{}",
            std::process::id(),
            NETNS_SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip netns add {name}");
        let ns = Netns { name };
        // Loopback up, so binds on 127.0.0.1 work as on a host.
        assert!(ns.exec(&["ip", "link", "set", "lo", "up"]).status.success());
        ns
    }

    pub fn exec(&self, argv: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .output()
            .unwrap()
    }

    pub fn sysctl(&self) -> String {
        let out = self.exec(&["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Binds `port` as nobody inside the namespace with perl's socket calls: an independent
    /// check that does not go through lowport. Returns "ok", "EACCES" or the error text.
    pub fn bind_as_nobody(&self, port: u16) -> String {
        let script = format!(
            "socket(S, PF_INET, SOCK_STREAM, 0) or die; print bind(S, pack_sockaddr_in({port}, \
             INADDR_ANY)) ? 'ok' : ($!{{EACCES}} ? 'EACCES' : \"$!\")"
        );
        let out = self.exec(&[
            "setpriv",
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            "perl",
            "-MSocket",
            "-e",
            &script,
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
