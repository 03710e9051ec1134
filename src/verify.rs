//! Verification: proof, not hope. Where a grant covers a user or the whole system, a forked
//! child drops to the target user and really binds the port. Where it is tied to a file (a file
//! capability only takes effect when that binary runs), every condition that decides the outcome
//! is checked, and the report says which kind of proof it is.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::facts::caps::{self, CAP_NET_BIND_SERVICE};
use crate::facts::users::{Account, UserDb};
use crate::facts::{Facts, binary::BinaryFacts};
pub use crate::plan::Target;

pub const FORMAT_VERSION: u32 = 1;

pub use crate::diagnose::{Check, Outcome};

/// What a report amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No check failed and at least one passed.
    Verified,
    /// A check failed, or nothing could be proven.
    NotVerified,
    /// A service's unit files are right, but no running systemd manages the root, so nothing
    /// was started and there is nothing to prove yet: neither a success nor a failure.
    NotStarted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub format_version: u32,
    pub target: Target,
    pub checks: Vec<Check>,
    /// True when no check failed and at least one passed (never for `NotStarted`).
    pub ok: bool,
    #[serde(default = "not_verified")]
    pub status: Verdict,
    /// Exactly what was proven, in one sentence.
    pub proved: String,
}

fn not_verified() -> Verdict {
    Verdict::NotVerified
}

/// The report's sentence for redirects whose service does not listen yet.
fn redirect_not_started(pairs: &[(u16, u16)]) -> String {
    let ports: Vec<String> = pairs.iter().map(|(l, h)| format!("{l}:{h}")).collect();
    format!(
        "the redirect is loaded, but nothing listens on the service port yet, so no client can \
         be served and nothing was proven; start the service, then check with `lowport verify \
         --port {}`",
        ports.join(" --port ")
    )
}

/// The report's sentence for a service that was written but not started.
pub fn not_started(service: &str) -> String {
    format!(
        "{service}.service is written and enabled, not started; it starts at the next boot — \
         check it then with `lowport verify --service {service}`"
    )
}

fn check(name: &str, pass: bool, ok: String, fail: String) -> Check {
    Check {
        name: name.into(),
        outcome: if pass { Outcome::Pass } else { Outcome::Fail },
        detail: if pass { ok } else { fail },
    }
}

fn file_checks(facts: &Facts, b: &BinaryFacts, user: Option<&Account>) -> Vec<Check> {
    let file = b.path.display();
    let mut out = Vec::new();
    let caps = b.capability.as_ref();
    out.push(check(
        "capability",
        caps.is_some_and(|c| c.grants(CAP_NET_BIND_SERVICE)),
        format!(
            "{file} carries {} in its permitted and effective sets",
            caps::name(10)
        ),
        format!(
            "{file} does not carry cap_net_bind_service=ep (it has: {})",
            caps.map_or("no capabilities".to_string(), |c| c.text.clone())
        ),
    ));
    if let Some(m) = &b.mount {
        out.push(check(
            "mount",
            !m.nosuid(),
            format!("{} is mounted without nosuid", m.mount_point.display()),
            format!(
                "{} is mounted nosuid: file capabilities are ignored",
                m.mount_point.display()
            ),
        ));
    }
    out.push(check(
        "kernel",
        !facts.kernel_no_file_caps,
        "the kernel honours file capabilities (no no_file_caps)".into(),
        "the kernel was booted with no_file_caps".into(),
    ));
    out.push(check(
        "bounding-set",
        facts.bounding_set_has_net_bind_service,
        "cap_net_bind_service is in the capability bounding set".into(),
        "cap_net_bind_service is not in the bounding set: exec would fail with EPERM".into(),
    ));
    let blocking: Vec<&str> = b
        .units
        .iter()
        .filter(|u| u.no_new_privileges)
        .map(|u| u.name.as_str())
        .collect();
    out.push(check(
        "units",
        blocking.is_empty(),
        "no systemd unit starts it with NoNewPrivileges=".into(),
        format!(
            "{} start(s) it with NoNewPrivileges=: the capability is ignored",
            blocking.join(", ")
        ),
    ));
    if let Some(u) = user {
        let m = b.mode;
        out.push(check(
            "execute",
            u.can_execute(b.uid, b.gid, m),
            format!(
                "user {} can execute {file} (mode {m:04o} {}:{})",
                u.name, b.owner, b.group
            ),
            format!(
                "user {} cannot execute {file} (mode {m:04o} {}:{})",
                u.name, b.owner, b.group
            ),
        ));
    }
    out
}

/// A capability mask from a `/proc/<pid>/status` line such as `CapAmb:`.
fn status_mask(status: &str, key: &str) -> Option<u64> {
    let v = status.lines().find_map(|l| l.strip_prefix(key))?;
    u64::from_str_radix(v.trim(), 16).ok()
}

/// True when a running systemd manages the root being checked, so a service can be started.
fn systemd_runs_here(facts: &Facts) -> bool {
    facts.init.systemd && facts.root().is_host()
}

fn service_checks(facts: &Facts, name: &str, ports: &[u16]) -> Vec<Check> {
    use crate::facts::binary::{unit_file, unit_setting, unit_texts, yes};
    let root = facts.root();
    let service = format!("{name}.service");
    let Some(path) = unit_file(&root, &service) else {
        return vec![check(
            "unit",
            false,
            String::new(),
            format!("no unit {service} found"),
        )];
    };
    let own = crate::facts::files::read_to_string(&root.host(&path)).unwrap_or_default();
    let texts = unit_texts(&root, &service, own);
    let get = |k| unit_setting(&texts, k).unwrap_or_default();
    let ambient = get("AmbientCapabilities");
    let bounding = get("CapabilityBoundingSet");
    let mut out =
        vec![
        check(
            "ambient",
            ambient.split_whitespace().any(|c| c == "CAP_NET_BIND_SERVICE"),
            format!("{service} sets AmbientCapabilities={ambient}"),
            format!("{service} does not put CAP_NET_BIND_SERVICE in AmbientCapabilities="),
        ),
        check(
            "bounding-set",
            bounding.is_empty() || bounding.split_whitespace().any(|c| c == "CAP_NET_BIND_SERVICE"),
            "the unit's bounding set keeps CAP_NET_BIND_SERVICE".into(),
            format!("CapabilityBoundingSet={bounding} drops CAP_NET_BIND_SERVICE"),
        ),
        check(
            "private-users",
            !yes(&get("PrivateUsers")),
            "PrivateUsers= is off, so the capability counts in the host's network namespace".into(),
            "PrivateUsers=yes puts the capability in a user namespace that cannot bind host ports"
                .into(),
        ),
    ];
    if !systemd_runs_here(facts) {
        out.push(Check {
            name: "running".into(),
            outcome: Outcome::Inconclusive,
            detail: format!(
                "no running systemd manages {}: checked the unit files only",
                root.dir().display()
            ),
        });
        return out;
    }
    let show = || {
        let Ok(mut cmd) = crate::programs::command("systemctl") else {
            return ("0".to_string(), String::new());
        };
        let out = cmd
            .args([
                "show",
                "-p",
                "MainPID",
                "-p",
                "ActiveState",
                "--value",
                &service,
            ])
            .output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mut lines = text.lines();
        let pid = lines.next().unwrap_or("0").to_string();
        (pid, lines.next().unwrap_or("").to_string())
    };
    // Right after a start, systemd may not have recorded the main process yet.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let (mut pid, _) = show();
    while pid == "0" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        pid = show().0;
    }
    // With Type=simple, `systemctl restart` returns once the process is forked, before systemd
    // has set its credentials and executed the binary: give it a moment to get there.
    let ambient = || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status_mask(&status, "CapAmb:")
    };
    let has = |a: u64| a & (1 << CAP_NET_BIND_SERVICE) != 0;
    let mut amb = ambient();
    while amb.is_some_and(|a| !has(a)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        amb = ambient();
    }
    // "active" is reported as soon as a simple service is forked: only a process that is still
    // the same main process a moment later really runs.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (pid_after, state) = show();
    out.push(check(
        "running",
        state == "active" && pid != "0" && pid_after == pid,
        format!("{service} is active and its main process {pid} kept running"),
        format!(
            "{service} is not running steadily (state {state}, main process {pid} then {pid_after})"
        ),
    ));
    out.push(match amb {
        Some(a) => check(
            "process",
            has(a),
            format!(
                "process {pid} holds cap_net_bind_service in its ambient set (CapAmb {a:016x})"
            ),
            format!("process {pid} lacks cap_net_bind_service (CapAmb {a:016x})"),
        ),
        None => check(
            "process",
            false,
            String::new(),
            format!("process {pid} exited before it could be checked"),
        ),
    });
    // A service that did not come up explains itself: how it ended, its log, the likely fix.
    if out.iter().any(|c| c.outcome == Outcome::Fail) {
        out.extend(crate::diagnose::service(&service, ports));
    }
    out
}

/// authbind proof: each byport file lets the user in, and on the running host (authbind's helper
/// reads the host's /etc/authbind, never a `--root` tree) a real bind through `authbind --deep`
/// as that user.
fn authbind_checks(facts: &Facts, user: &Account, target: &Target) -> Vec<Check> {
    use crate::os::MetadataExt;
    let root = facts.root();
    let mut out = Vec::new();
    let ports = &target.ports;
    for (port, file) in ports.iter().zip(&target.byport) {
        let meta = std::fs::metadata(root.host(file));
        out.push(check(
            &format!("byport:{port}"),
            meta.as_ref().is_ok_and(|m| {
                m.uid() == 0
                    && m.mode() & 0o022 == 0
                    && user.can_execute(m.uid(), m.gid(), m.mode())
            }),
            format!(
                "{} is executable by {} and only root may change it",
                file.display(),
                user.name
            ),
            format!(
                "{} is missing, not executable by {}, or not owned by root alone",
                file.display(),
                user.name
            ),
        ));
    }
    if !root.is_host() || !facts.is_root {
        out.push(Check {
            name: "bind".into(),
            outcome: Outcome::Inconclusive,
            detail: "authbind's helper reads the running host's /etc/authbind (and switching user \
                     needs root): no bind tried"
                .into(),
        });
        return out;
    }
    let Ok(me) = std::env::current_exe() else {
        return out;
    };
    let mut cmd = match crate::programs::command("authbind") {
        Ok(c) => c,
        Err(e) => {
            out.push(check("bind", false, String::new(), e));
            return out;
        }
    };
    cmd.arg("--deep")
        .arg(&me)
        .arg("__bind")
        .args(ports.iter().map(u16::to_string));
    if let Err(e) = crate::os::run_as(&mut cmd, user.uid, user.gid) {
        out.push(check("bind", false, String::new(), e.to_string()));
        return out;
    }
    cmd.stdin(std::process::Stdio::null());
    let result = cmd.output();
    let text = result
        .as_ref()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for port in ports {
        let said = text.lines().find(|l| l.starts_with(&format!("{port} ")));
        if said.is_some_and(|l| l.contains("Address already in use")) {
            // The old service still holds it: nothing proven, nothing wrong either.
            out.push(Check {
                name: format!("bind:{port}"),
                outcome: Outcome::Inconclusive,
                detail: format!(
                    "inconclusive: port {port} is busy{}",
                    crate::diagnose::held_by(*port)
                ),
            });
            continue;
        }
        out.push(check(
            &format!("bind:{port}"),
            said == Some(format!("{port} ok").as_str()),
            format!(
                "user {} bound port {port} through authbind --deep",
                user.name
            ),
            format!(
                "user {} could not bind port {port} through authbind: {}",
                user.name,
                text.trim()
            ),
        ));
    }
    out
}

/// Redirect proof: the rule is loaded (nft or iptables shows it), no input filter drops the
/// redirected packets (after the redirect they arrive on the service's port: a chain that drops
/// by default and accepts only the client port lets remote clients time out), and when something
/// listens on the service's port, a local connection to the client port really reaches it.
/// Also says whether every service port had a listener (false: not started yet).
fn redirect_checks(facts: &Facts, pairs: &[(u16, u16)]) -> (Vec<Check>, bool) {
    let listing = |argv: &[&str]| -> String {
        crate::programs::command(argv[0])
            .ok()
            .and_then(|mut c| c.args(&argv[1..]).output().ok())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let (mut rules, mut ruleset, mut input, mut nat) =
        (String::new(), String::new(), String::new(), String::new());
    if facts.tool("nft").is_some() {
        rules += &listing(&["nft", "list", "table", "ip", "lowport_redirect"]);
        ruleset = listing(&["nft", "list", "ruleset"]);
    }
    if facts.tool("iptables").is_some() {
        nat = listing(&["iptables", "-t", "nat", "-S", "PREROUTING"]);
        rules += &nat;
        input = listing(&["iptables", "-S", "INPUT"]);
    }
    let mut out = Vec::new();
    let mut listening = true;
    for (low, high) in pairs {
        let nft = format!("tcp dport {low} redirect to :{high}");
        let ipt =
            format!("--dport {low} -m comment --comment lowport -j REDIRECT --to-ports {high}");
        out.push(check(
            &format!("rule:{low}"),
            rules.contains(&nft) || rules.contains(&ipt),
            format!("a rule redirects port {low} to {high}"),
            format!("no lowport rule redirects port {low} to {high}"),
        ));
        let before = crate::methods::nat_before(&ruleset, &nat, *low, *high);
        out.push(check(
            &format!("nat:{low}"),
            before.is_empty(),
            format!("no other NAT rule takes port {low} before lowport's"),
            format!(
                "{} rewrite(s) port {low} before lowport's rule: clients are sent there, not \
                 to {high}. Remove or reorder that rule",
                before.join(", ")
            ),
        ));
        let drops = crate::methods::input_drops(&ruleset, &input, *high);
        out.push(check(
            &format!("filter:{low}"),
            drops.is_empty(),
            format!(
                "no input filter drops the redirected packets (port {high}): clients from \
                 anywhere get through"
            ),
            format!(
                "{} drop(s) by default and never accept port {high}: after the redirect, \
                 clients' packets arrive on {high} and are dropped (remote clients time out). \
                 Accept tcp dport {high} there",
                drops.join(", ")
            ),
        ));
        let connect = |port: u16| {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).is_ok()
        };
        let up = connect(*high);
        listening &= up;
        out.push(if !up {
            Check {
                name: format!("connect:{low}"),
                outcome: Outcome::Inconclusive,
                detail: format!("nothing listens on {high} yet, so no connection could be tried"),
            }
        } else {
            check(
                &format!("connect:{low}"),
                connect(*low),
                format!("a connection to 127.0.0.1:{low} reached the service on {high}"),
                format!("the service listens on {high} but 127.0.0.1:{low} does not reach it"),
            )
        });
    }
    (out, listening)
}

/// The bind probe: per port, 0 or the errno of a bind made as `user`.
#[cfg(unix)]
mod probe {
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, bind, setsockopt, socket, sockopt,
    };

    use crate::error::Result;
    use crate::facts::users::Account;

    /// A forked child drops to the user (when lowport is not already that user) and binds.
    pub fn bind_as(user: &Account, ports: &[u16]) -> Result<Vec<i32>> {
        use nix::unistd::{ForkResult, fork};
        let switch = crate::os::euid() != user.uid;
        let (rd, wr) = nix::unistd::pipe().map_err(|e| anyhow::anyhow!("pipe: {e}"))?;
        let ports: Vec<u16> = ports.to_vec();
        // One result per port, allocated before the fork: the child may not allocate.
        let mut results = vec![0i32; ports.len()];
        let size = results.len() * 4;
        // SAFETY: the child only makes async-signal-safe calls (setgroups, setgid, setuid,
        // socket, setsockopt, bind, close, write, _exit) on memory prepared before the fork,
        // and never returns.
        match unsafe { fork() }.map_err(|e| anyhow::anyhow!("fork: {e}"))? {
            ForkResult::Child => unsafe {
                let gid = user.gid;
                // Already that user (lowport run as the service user): bind as we are.
                let ok = !switch
                    || (libc::setgroups(1, &gid) == 0
                        && libc::setgid(user.gid) == 0
                        && libc::setuid(user.uid) == 0);
                for (r, port) in results.iter_mut().zip(&ports) {
                    *r = if ok { try_bind(*port) } else { -1 };
                }
                let bytes = std::slice::from_raw_parts(results.as_ptr().cast::<u8>(), size);
                libc::write(wr.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
                libc::_exit(0);
            },
            ForkResult::Parent { child } => {
                drop(wr);
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::fs::File::from(rd), &mut buf)?;
                nix::sys::wait::waitpid(child, None).map_err(|e| anyhow::anyhow!("wait: {e}"))?;
                if buf.len() != size {
                    return Err(anyhow::anyhow!("the bind probe child died").into());
                }
                Ok(buf
                    .chunks(4)
                    .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                    .collect())
            }
        }
    }

    /// Binds as a service does, on the wildcard address with SO_REUSEADDR (without listening,
    /// so no connection is ever accepted): a process on any of the host's addresses makes it
    /// fail with EADDRINUSE, as it would make the service fail. Returns 0 or the errno. Only
    /// thin wrappers of socket calls that allocate nothing, so a forked child may use it; the
    /// socket is closed when it is dropped. nix builds the address with the `sin_len` the BSDs
    /// and macOS have.
    fn try_bind(port: u16) -> i32 {
        let fd = match socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::empty(),
            None,
        ) {
            Ok(fd) => fd,
            Err(e) => return e as i32,
        };
        let _ = setsockopt(&fd, sockopt::ReuseAddr, &true);
        match bind(fd.as_raw_fd(), &SockaddrIn::new(0, 0, 0, 0, port)) {
            Ok(()) => 0,
            Err(e) => e as i32,
        }
    }
}

/// The bind probe: switching to another user for it needs fork and setuid.
#[cfg(windows)]
mod probe {
    use crate::error::{Error, Refusal, Result};
    use crate::facts::users::Account;

    pub fn bind_as(user: &Account, _ports: &[u16]) -> Result<Vec<i32>> {
        Err(Error::refused(
            Refusal::NotOnThisOs,
            format!(
                "a bind as user {} is proven on the unixes only (it needs fork and setuid)",
                user.name
            ),
        ))
    }
}

fn bind_checks(facts: &Facts, user: &Account, ports: &[u16]) -> Result<Vec<Check>> {
    if !facts.is_root && facts.euid != user.uid {
        return Ok(vec![Check {
            name: "bind".into(),
            outcome: Outcome::Inconclusive,
            detail: format!("only root can switch to user {} to try the bind", user.name),
        }]);
    }
    let results = probe::bind_as(user, ports)?;
    Ok(ports
        .iter()
        .zip(results)
        .map(|(port, errno)| {
            let (outcome, detail) = match errno {
                0 => (
                    Outcome::Pass,
                    format!("user {} bound port {port}", user.name),
                ),
                libc::EACCES => (
                    Outcome::Fail,
                    format!("user {} may not bind port {port} (EACCES)", user.name),
                ),
                libc::EADDRINUSE => (
                    Outcome::Inconclusive,
                    format!(
                        "inconclusive: port {port} is busy{}, so a bind cannot prove anything \
                         (the service would fail the same way)",
                        crate::diagnose::held_by(*port)
                    ),
                ),
                -1 => (
                    Outcome::Inconclusive,
                    format!("could not switch to user {}", user.name),
                ),
                e => (
                    Outcome::Inconclusive,
                    format!(
                        "bind on port {port} failed: {}",
                        std::io::Error::from_raw_os_error(e)
                    ),
                ),
            };
            Check {
                name: format!("bind:{port}"),
                outcome,
                detail,
            }
        })
        .collect())
}

/// Runs every check for `target` against `facts` (whose binary must be the target's, if any).
pub fn run(facts: &Facts, target: &Target) -> Result<Report> {
    let db = UserDb::new(&facts.root());
    let user = match &target.user {
        Some(u) => Some(db.user(u).ok_or_else(|| {
            Error::Invalid(format!(
                "user '{u}' does not exist; give an existing user with --user"
            ))
        })?),
        None => None,
    };
    // The binary's file capability is the proof only where the target names the binary (setcap):
    // a method that grants a user (sysctl) is proven by a bind even when --binary was given.
    let binary = target.binary.as_ref().and(facts.binary.as_ref());
    // Set where the grant is in place but what would use it is not running yet: nothing to
    // prove, and nothing wrong.
    let mut pending = None;
    let (checks, proved) = match (&target.service, binary) {
        _ if target.authbind => {
            let Some(user) = &user else {
                return Err(Error::Invalid("authbind verification needs --user".into()));
            };
            if target.byport.len() != target.ports.len() {
                return Err(Error::Invalid(
                    "authbind verification needs the byport file of every port".into(),
                ));
            }
            let ports: Vec<String> = target.ports.iter().map(u16::to_string).collect();
            (
                authbind_checks(facts, user, target),
                format!(
                    "user {} may bind port(s) {} through authbind",
                    user.name,
                    ports.join(", ")
                ),
            )
        }
        _ if !target.redirects.is_empty() => {
            let (checks, listening) = redirect_checks(facts, &target.redirects);
            if !listening {
                pending = Some(redirect_not_started(&target.redirects));
            }
            (
                checks,
                "the redirect rules are loaded, no input filter drops the redirected packets, \
                 and a real connection went through"
                    .to_string(),
            )
        }
        (Some(name), _) => {
            if !systemd_runs_here(facts) {
                pending = Some(not_started(name));
            }
            (
                service_checks(facts, name, &target.ports),
                format!("the {name} service is granted cap_net_bind_service by its unit"),
            )
        }
        (None, Some(b)) => {
            let checks = file_checks(facts, b, user.as_ref());
            let proved = format!(
                "{} will be able to bind ports below 1024 when it runs{}: the capability is in \
                 the file and nothing on this host makes the kernel ignore it (the file itself \
                 was not run)",
                b.path.display(),
                user.as_ref()
                    .map(|u| format!(" as {}", u.name))
                    .unwrap_or_default()
            );
            (checks, proved)
        }
        (None, None) => {
            let Some(user) = &user else {
                return Err(Error::Invalid(
                    "verify needs --user (who must be able to bind) or --binary (what carries \
                     the grant)"
                        .into(),
                ));
            };
            let checks = bind_checks(facts, user, &target.ports)?;
            let bound: Vec<String> = target
                .ports
                .iter()
                .zip(&checks)
                .filter(|(_, c)| c.outcome == Outcome::Pass)
                .map(|(p, _)| p.to_string())
                .collect();
            let proved = format!(
                "user {} really bound port(s) {} in this network namespace",
                user.name,
                bound.join(", ")
            );
            (checks, proved)
        }
    };
    let failed = checks.iter().any(|c| c.outcome == Outcome::Fail);
    let passed = checks.iter().any(|c| c.outcome == Outcome::Pass);
    let status = pending
        .filter(|_| !failed)
        .map(|p| (Verdict::NotStarted, p));
    let open = checks.iter().any(|c| c.outcome == Outcome::Inconclusive);
    let (status, proved) = status.unwrap_or(if !failed && passed {
        let rest = if open {
            "; not proven: the inconclusive checks above"
        } else {
            ""
        };
        (Verdict::Verified, format!("{proved}{rest}"))
    } else {
        (
            Verdict::NotVerified,
            "nothing: see the failed or inconclusive checks".into(),
        )
    });
    Ok(Report {
        format_version: FORMAT_VERSION,
        target: target.clone(),
        proved,
        ok: status == Verdict::Verified,
        status,
        checks,
    })
}
