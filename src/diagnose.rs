//! Why a service did not come up, from the evidence a running systemd keeps: how its main process
//! ended (exit status or signal), the unit's last log lines, and the likely fix for the causes we
//! know (the system-call filter, a read-only or forbidden path, a port someone else holds).
//! Everything read here is the service's own output: untrusted, so control characters are dropped
//! before it is shown.

use serde::{Deserialize, Serialize};

/// How one check of a verification came out. Defined here, below `verify` (which re-exports
/// it), so that the evidence of a failed service can be reported as checks without a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// The check could not be made (port in use, not root, …); it proves nothing either way.
    Inconclusive,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub outcome: Outcome,
    pub detail: String,
}

/// How the main process last ended, as `systemctl show` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Exit {
    /// `ExecMainCode`: 1 exited, 2 killed, 3 dumped core (the kernel's CLD_* codes).
    pub code: u32,
    /// `ExecMainStatus`: the exit status, or the signal number when killed.
    pub status: i32,
    /// `Result`: success, exit-code, signal, core-dump, …
    pub result: String,
    /// `NRestarts`: how often `Restart=` started it again.
    pub restarts: u32,
}

impl Exit {
    fn parse(show: &str) -> Exit {
        let mut e = Exit::default();
        for line in show.lines() {
            match line.split_once('=') {
                Some(("ExecMainCode", v)) => e.code = v.trim().parse().unwrap_or(0),
                Some(("ExecMainStatus", v)) => e.status = v.trim().parse().unwrap_or(0),
                Some(("Result", v)) => e.result = clean(v.trim()),
                Some(("NRestarts", v)) => e.restarts = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
        e
    }

    fn killed_by(&self) -> Option<i32> {
        matches!(self.code, 2 | 3).then_some(self.status)
    }

    fn describe(&self) -> String {
        match (self.killed_by(), self.code) {
            (Some(sig), _) => format!(
                "the main process was killed by signal {sig} ({}; result {})",
                signal_name(sig),
                self.result
            ),
            (None, 1) => match systemd_step(self.status) {
                Some(step) => format!(
                    "systemd could not start the program: status={}/{step} (result {})",
                    self.status, self.result
                ),
                None => format!(
                    "the main process exited with status {} (result {})",
                    self.status, self.result
                ),
            },
            _ if self.restarts > 0 => format!(
                "systemd has restarted it {} time(s) (Restart=); how it last ended is in the log",
                self.restarts
            ),
            _ => format!("the main process has not ended (result {})", self.result),
        }
    }
}

fn signal_name(sig: i32) -> String {
    crate::os::signal_name(sig).unwrap_or_else(|| format!("signal {sig}"))
}

/// Killed by SIGSYS: what a system-call filter whose action kills does.
fn by_seccomp(exit: &Exit) -> bool {
    exit.killed_by()
        .and_then(crate::os::signal_name)
        .is_some_and(|n| n == "SIGSYS")
}

/// The setup step for systemd's own exit statuses (systemd.exec(5), "Process exit codes").
fn systemd_step(status: i32) -> Option<&'static str> {
    Some(match status {
        200 => "CHDIR",
        203 => "EXEC",
        209 => "STDOUT",
        214 => "SETSCHEDULER",
        216 => "GROUP",
        217 => "USER",
        218 => "CAPABILITIES",
        226 => "NAMESPACE",
        228 => "SECCOMP",
        233 => "RUNTIME_DIRECTORY",
        238 => "STATE_DIRECTORY",
        _ => return None,
    })
}

/// x86-64 numbers of the calls runtimes make at start that filters commonly forbid; others are
/// shown by number.
fn syscall_name(nr: u32) -> Option<&'static str> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    Some(match nr {
        97 => "getrlimit",
        140 => "getpriority",
        141 => "setpriority",
        142 => "sched_setparam",
        144 => "sched_setscheduler",
        157 => "prctl",
        160 => "setrlimit",
        165 => "mount",
        203 => "sched_setaffinity",
        237 => "mbind",
        238 => "set_mempolicy",
        251 => "ioprio_set",
        302 => "prlimit64",
        314 => "sched_setattr",
        _ => return None,
    })
}

/// Drops control characters (terminal escapes in a hostile program's log) from one line.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// The system call in a kernel audit line for a seccomp kill (`type=1326 … syscall=160 …`).
fn audit_syscall(lines: &[String]) -> Option<String> {
    let line = lines.iter().rev().find(|l| l.contains("type=1326"))?;
    let nr: u32 = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("syscall="))?
        .parse()
        .ok()?;
    Some(syscall_name(nr).map_or_else(|| format!("system call {nr}"), String::from))
}

/// The path just before `: PHRASE` in a log line, as Go, C and Python programs print it
/// (`mkdir /var/lib/app: read-only file system`, `open("/etc/x"): Permission denied`).
fn path_before(line: &str, at: usize) -> Option<String> {
    let word = line[..at]
        .trim_end_matches([' ', ':'])
        .rsplit([' ', '('])
        .next()?;
    // Quotes as programs print them, coreutils' typographic ones included.
    let word = word.trim_matches(['"', '\'', '‘', '’', '`', ')', ',']);
    (word.starts_with('/') && word.len() > 1).then(|| word.to_string())
}

/// The likely causes, each with its fix, from how the process ended, its log, and who holds the
/// ports (`holders`: port and process, for `address already in use`).
pub fn causes(
    exit: &Exit,
    log: &[String],
    audit: &[String],
    holders: &[(u16, String)],
) -> Vec<String> {
    let mut out = Vec::new();
    if by_seccomp(exit) {
        let call = audit_syscall(audit).map_or_else(
            || "a system call".to_string(),
            |c| format!("the system call {c}"),
        );
        out.push(format!(
            "the system-call filter killed it (SIGSYS) for {call}: the unit's SystemCallFilter= \
             forbids it and its default action kills. Add SystemCallErrorNumber=EPERM (a \
             forbidden call then fails with an error the program can handle), or allow the call; \
             the units lowport writes do both"
        ));
    }
    let mut paths = Vec::new();
    for line in log {
        let lower = line.to_lowercase();
        for phrase in ["read-only file system", "permission denied"] {
            if let Some(at) = lower.find(phrase)
                && let Some(p) = path_before(line, at)
                && !paths.contains(&p)
            {
                paths.push(p);
            }
        }
    }
    for p in paths {
        out.push(format!(
            "it cannot write {p} (read-only file system or permission denied): the sandbox makes \
             the system read-only; give it --writable {p}, or --state-directory NAME for its own \
             data under /var/lib/NAME"
        ));
    }
    if log
        .iter()
        .any(|l| l.to_lowercase().contains("address already in use"))
    {
        if holders.is_empty() {
            out.push(
                "the port is already in use by another process (it was gone when lowport looked)"
                    .into(),
            );
        }
        for (port, who) in holders {
            out.push(format!(
                "port {port} is already in use by {who}: stop that service, or choose another port"
            ));
        }
    }
    out
}

fn output(argv: &[&str]) -> String {
    // Only a trusted system program runs, whatever PATH says.
    let Ok(mut cmd) = crate::programs::command(argv[0]) else {
        return String::new();
    };
    cmd.args(&argv[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The processes listening on `port` (TCP), from `ss -ltnpH`.
fn holders(port: u16) -> Vec<String> {
    let text = output(&["ss", "-ltnpH", &format!("sport = :{port}")]);
    let mut out: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once("users:((").map(|(_, u)| u))
        .filter_map(|u| {
            let name = u.split('"').nth(1)?;
            let pid = u.split("pid=").nth(1)?.split([',', ')']).next()?;
            Some(format!("{} (pid {pid})", clean(name)))
        })
        .collect();
    out.dedup();
    out
}

/// " (held by NAME (pid N), …)" for a busy port, or "" when the holder cannot be seen.
pub fn held_by(port: u16) -> String {
    let who = holders(port);
    if who.is_empty() {
        String::new()
    } else {
        format!(" (held by {})", who.join(", "))
    }
}

/// Evidence for a service that is not running steadily, from the live systemd: how it ended, its
/// last 20 log lines, and the likely causes with their fixes, as checks for the report.
pub fn service(service: &str, ports: &[u16]) -> Vec<Check> {
    let exit = Exit::parse(&output(&[
        "systemctl",
        "show",
        "-p",
        "ExecMainCode,ExecMainStatus,Result,NRestarts",
        service,
    ]));
    let log: Vec<String> = output(&[
        "journalctl",
        "-u",
        service,
        "-n",
        "20",
        "--no-pager",
        "-o",
        "cat",
    ])
    .lines()
    .map(clean)
    .collect();
    // The kernel's audit line names the forbidden call; only where the kernel log is readable.
    let audit: Vec<String> = if by_seccomp(&exit) {
        output(&["journalctl", "-k", "-n", "200", "--no-pager", "-o", "cat"])
            .lines()
            .filter(|l| l.contains("type=1326"))
            .map(clean)
            .collect()
    } else {
        Vec::new()
    };
    let held: Vec<(u16, String)> = if log
        .iter()
        .any(|l| l.to_lowercase().contains("address already in use"))
    {
        ports
            .iter()
            .flat_map(|p| holders(*p).into_iter().map(move |h| (*p, h)))
            .collect()
    } else {
        Vec::new()
    };
    let mut out = vec![Check {
        name: "exit".into(),
        outcome: if exit.code == 0 && exit.restarts == 0 {
            Outcome::Inconclusive
        } else {
            Outcome::Fail
        },
        detail: exit.describe(),
    }];
    out.push(Check {
        name: "log".into(),
        outcome: Outcome::Inconclusive,
        detail: if log.is_empty() {
            format!("journalctl -u {service} shows nothing")
        } else {
            format!("last lines of journalctl -u {service}:\n{}", log.join("\n"))
        },
    });
    out.extend(
        causes(&exit, &log, &audit, &held)
            .into_iter()
            .map(|c| Check {
                name: "cause".into(),
                outcome: Outcome::Fail,
                detail: c,
            }),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &[&str]) -> Vec<String> {
        s.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn sigsys_names_the_filter_and_the_call_from_the_audit_line() {
        let exit = Exit::parse("ExecMainCode=2\nExecMainStatus=31\nResult=signal\n");
        assert!(
            exit.describe().contains("killed by signal 31 (SIGSYS"),
            "{}",
            exit.describe()
        );
        let audit = lines(&[
            "audit: type=1326 audit(1.2:3): auid=4294967295 uid=999 gid=999 ses=4294967295 \
             pid=42 comm=\"server\" exe=\"/opt/server\" sig=31 arch=c000003e syscall=160 compat=0",
        ]);
        let c = causes(&exit, &[], &audit, &[]);
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(
            c[0].contains("system-call filter") && c[0].contains("setrlimit"),
            "{c:?}"
        );
        assert!(c[0].contains("SystemCallErrorNumber=EPERM"), "{c:?}");
        // Without the audit line the cause is still named.
        assert!(causes(&exit, &[], &[], &[])[0].contains("for a system call"));
    }

    #[test]
    fn read_only_and_denied_paths_point_at_writable_and_state_directory() {
        let exit = Exit::parse("ExecMainCode=1\nExecMainStatus=1\nResult=exit-code\n");
        let log = lines(&[
            "Error: mkdir /var/lib/app: read-only file system",
            "open(\"/etc/app/cache\"): Permission denied",
            "mkdir: cannot create directory ‘/srv/x’: Read-only file system",
            "Started app.service.",
        ]);
        let c = causes(&exit, &log, &[], &[]);
        assert_eq!(c.len(), 3, "{c:?}");
        assert!(c[0].contains("--writable /var/lib/app") && c[0].contains("--state-directory"));
        assert!(c[1].contains("--writable /etc/app/cache"), "{c:?}");
        assert!(c[2].contains("--writable /srv/x"), "{c:?}");
    }

    #[test]
    fn address_in_use_names_the_holder() {
        let exit = Exit::parse("ExecMainCode=1\nExecMainStatus=1\nResult=exit-code\n");
        let log = lines(&["listen tcp :80: bind: address already in use"]);
        let c = causes(&exit, &log, &[], &[(80, "nginx (pid 7)".into())]);
        assert_eq!(
            c,
            [
                "port 80 is already in use by nginx (pid 7): stop that service, or choose another port"
            ]
        );
        assert!(
            causes(&exit, &[], &[], &[]).is_empty(),
            "no evidence, no guess"
        );
    }

    #[test]
    fn a_restart_loop_is_named() {
        let exit = Exit::parse("ExecMainCode=0\nExecMainStatus=0\nResult=success\nNRestarts=3\n");
        assert_eq!(
            exit.describe(),
            "systemd has restarted it 3 time(s) (Restart=); how it last ended is in the log"
        );
    }

    #[test]
    fn systemd_setup_failures_and_hostile_text() {
        let exit = Exit::parse("ExecMainCode=1\nExecMainStatus=200\nResult=exit-code\x1b[2J\n");
        assert_eq!(
            exit.describe(),
            "systemd could not start the program: status=200/CHDIR (result exit-code[2J)"
        );
    }
}
