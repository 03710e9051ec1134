//! `windows`: Winsock has no privileged ports, so nothing is granted. The method says so first,
//! checks from the facts what really stops a bind (an excluded port range, HTTP.sys or another
//! process holding the port), and plans the inbound firewall rule clients on other hosts need,
//! as a netsh argv (no shell), with its check and undo.
//!
//! A Windows host's state is the output of read-only commands, not files: the facts carry each
//! command's standard output in `platform.files` under the command line itself (the keys below;
//! a missing key or null is unknown). Those keys are this method's `needs`, so the facts
//! collector for Windows runs exactly them.

use super::launchd::ports_text;
use super::{Check, Meta, Method, MethodId, Needs, Request, Risk, Want};
use crate::facts::Facts;
use crate::plan::{Action, Target};
use crate::validate;

pub struct Windows;

/// Dynamic and administered exclusions (Hyper-V, WinNAT, Docker Desktop, WSL2 reserve ranges).
pub const EXCLUDED_V4: &str = "netsh interface ipv4 show excludedportrange protocol=tcp";
pub const EXCLUDED_V6: &str = "netsh interface ipv6 show excludedportrange protocol=tcp";
/// HTTP.sys's server sessions, with their registered URLs.
pub const HTTP_STATE: &str = "netsh http show servicestate";
/// Every TCP socket with its owning process id.
pub const NETSTAT: &str = "netstat -ano";

/// The PID Windows shows for the kernel ("System"): HTTP.sys listens as it.
const SYSTEM_PID: u32 = 4;

/// Rows of `netsh interface ipvN show excludedportrange`: (start, end, administered). None when
/// the text is not that table (no `----` rule under its header): unknown, not "no ranges". Only
/// numbers are read, so a localised header does not matter.
fn excluded_ranges(text: &str) -> Option<Vec<(u16, u16, bool)>> {
    let mut lines = text.lines();
    lines.find(|l| {
        let t = l.trim();
        t.starts_with("---") && t.chars().all(|c| c == '-' || c.is_whitespace())
    })?;
    Some(
        lines
            .filter_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                let (start, end, admin) = match words.as_slice() {
                    [s, e] => (s, e, false),
                    [s, e, "*"] => (s, e, true),
                    _ => return None,
                };
                Some((start.parse().ok()?, end.parse().ok()?, admin))
            })
            .collect(),
    )
}

/// The URLs HTTP.sys has registered (`netsh http show servicestate`), with their ports: an
/// `http://` URL without one is on 80, `https://` on 443.
fn http_sys_urls(text: &str) -> Vec<(u16, String)> {
    text.lines()
        .filter_map(|l| {
            let url = l.trim();
            let upper = url.to_ascii_uppercase();
            let (rest, default) = if upper.starts_with("HTTP://") {
                (&url[7..], 80)
            } else if upper.starts_with("HTTPS://") {
                (&url[8..], 443)
            } else {
                return None;
            };
            let authority = rest.split('/').next().unwrap_or_default();
            let port = match authority.rsplit_once(':') {
                Some((host, p)) if !p.ends_with(']') && !host.is_empty() => p.parse().ok()?,
                _ => default,
            };
            Some((port, url.to_string()))
        })
        .collect()
}

/// The process ids listening on TCP `port` (`netstat -ano`): rows `TCP LOCAL FOREIGN STATE PID`
/// whose foreign address is port 0, as a listening socket's is (the state word is localised).
fn listening_pids(text: &str, port: u16) -> Vec<u32> {
    let mut pids: Vec<u32> = text
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let [proto, local, foreign, _state, pid] = w.as_slice() else {
                return None;
            };
            let local_port: u16 = local.rsplit_once(':')?.1.parse().ok()?;
            (proto.eq_ignore_ascii_case("tcp") && foreign.ends_with(":0") && local_port == port)
                .then(|| pid.parse().ok())
                .flatten()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Every port needs no grant on Windows: said first, wherever ports are asked for.
fn open_note(facts: &Facts, want: &Want) -> Option<String> {
    let mut ports = want.public_ports();
    ports.sort_unstable();
    ports.dedup();
    (facts.os.family == "windows" && !ports.is_empty()).then(|| open_message(&ports))
}

fn open_message(ports: &[u16]) -> String {
    format!(
        "already open: Windows has no privileged ports: Winsock lets every user bind {} (and \
         every port below 1024) without any grant. What can still stop the bind is an excluded \
         port range, HTTP.sys or another process holding the port, and, for clients on other \
         hosts, the firewall.",
        ports_text(ports)
    )
}

/// The rule's name: lowport's, the service's and the ports', so that an existing rule of that
/// name is this same rule.
fn rule_name(req: &Request, ports: &[u16]) -> Result<String, String> {
    let service = req
        .service_name()
        .ok_or("the service: --binary C:\\path\\to\\program.exe or --service NAME")?;
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    validate::firewall_rule_name(&format!("lowport-{service}-tcp-{}", ports.join("-")))
}

/// The program the rule allows: a full Windows path (a rule names its program by path).
fn program(req: &Request) -> Result<String, String> {
    match req.binary.as_deref() {
        None => {
            Err("the program the firewall rule allows: --binary C:\\path\\to\\program.exe".into())
        }
        Some(b) => validate::firewall_program(b),
    }
}

/// Where the excluded ranges of one address family cover `ports`: blockers for the ranges
/// Windows reserves itself, warnings for administered ones. False when the facts do not say.
fn exclusions(c: &mut Check, facts: &Facts, key: &str, family: &str, ports: &[u16]) -> bool {
    let Some(rows) = facts.platform.file(key).flatten().and_then(excluded_ranges) else {
        return false;
    };
    for &p in ports {
        for &(start, end, admin) in rows.iter().filter(|(s, e, _)| (*s..=*e).contains(&p)) {
            let range = format!("{start}-{end}");
            if admin {
                c.warnings.push(format!(
                    "port {p} lies in the administered {family} exclusion {range} (marked * by \
                     `{key}`, made with `netsh interface {} add excludedportrange`): reportedly \
                     applications may still bind inside one, which is not verified here; if the \
                     service's bind fails with WSAEACCES 10013, remove it with `netsh interface \
                     {} delete excludedportrange protocol=tcp startport={start} \
                     numberofports={}`",
                    family.to_ascii_lowercase(),
                    family.to_ascii_lowercase(),
                    u32::from(end) - u32::from(start) + 1
                ));
            } else {
                c.blockers.push(format!(
                    "port {p} lies in the {family} excluded port range {range} (`{key}` on {}): \
                     it is reserved (Hyper-V, WinNAT, Docker Desktop and WSL2 reserve such \
                     ranges), so a bind fails with WSAEACCES 10013 (\"An attempt was made to \
                     access a socket in a way forbidden by its access permissions\") although \
                     nothing listens. Find what reserved the range and move it off the port, then \
                     plan again",
                    facts.hostname
                ));
            }
        }
    }
    true
}

/// HTTP.sys URLs and other listeners on `ports`: what holds the port already.
fn holders(c: &mut Check, facts: &Facts, ports: &[u16]) -> Vec<&'static str> {
    let mut unknown = Vec::new();
    let mut by_http_sys = Vec::new();
    match facts.platform.file(HTTP_STATE).flatten() {
        Some(text) => {
            let urls = http_sys_urls(text);
            for &p in ports {
                let mut on: Vec<&str> = urls
                    .iter()
                    .filter(|(port, _)| *port == p)
                    .map(|(_, u)| u.as_str())
                    .collect();
                // The session view and the request queue view list the same URLs.
                on.sort_unstable();
                on.dedup();
                if !on.is_empty() {
                    by_http_sys.push(p);
                    c.blockers.push(format!(
                        "HTTP.sys, the kernel's HTTP server (IIS, WinRM, .NET HttpListener and \
                         other servers built on it), has {} registered on {} (`{HTTP_STATE}`) \
                         and holds port {p} as PID 4 (System): the service's own bind fails while \
                         it does (the exact error is not verified here). Stop or move the server \
                         that registered it, then plan again",
                        on.join(", "),
                        facts.hostname
                    ));
                }
            }
        }
        None => unknown.push(HTTP_STATE),
    }
    match facts.platform.file(NETSTAT).flatten() {
        Some(text) => {
            for &p in ports {
                for pid in listening_pids(text, p) {
                    if pid == SYSTEM_PID && !by_http_sys.contains(&p) {
                        c.blockers.push(format!(
                            "PID 4 (System) listens on TCP port {p} (`{NETSTAT}` on {}): the \
                             kernel holds it (HTTP.sys or another driver; `{HTTP_STATE}` lists \
                             HTTP.sys's URLs), and the service's own bind fails while it does",
                            facts.hostname
                        ));
                    } else if pid != SYSTEM_PID {
                        c.warnings.push(format!(
                            "process {pid} already listens on TCP port {p} (`{NETSTAT}`; `tasklist \
                             /fi \"PID eq {pid}\"` names it): unless that is the service itself, \
                             the service's bind fails while it holds the port"
                        ));
                    }
                }
            }
        }
        None => unknown.push(NETSTAT),
    }
    unknown
}

/// What the plan does not do: make the program a Windows service.
fn service_note(req: &Request) -> String {
    let fabio = req
        .service_name()
        .is_some_and(|n| n.eq_ignore_ascii_case("fabio"));
    let why = if fabio {
        "fabio does not answer the Service Control Manager (its source has no \
         x/sys/windows/svc handler), so `sc.exe create` on fabio.exe itself is expected to fail \
         to start with error 1053 (expected from its source, not verified by test); run it under \
         a service wrapper"
    } else {
        "only a program that answers the Service Control Manager can run as one by itself; any \
         other needs a service wrapper"
    };
    format!(
        "no Windows service is planned: {why} such as WinSW or NSSM (not covered by lowport), as \
         a low-privilege account (NT AUTHORITY\\LocalService, or a virtual account NT \
         SERVICE\\NAME): it needs no privilege for the port"
    )
}

const META: Meta = Meta {
    id: MethodId::Windows,
    markdown: include_str!("../../assets/methods/windows.md"),
    risk: Risk::Low,
    families: &["windows"],
};

impl Method for Windows {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn already_open(&self, facts: &Facts, want: &Want) -> Option<String> {
        open_note(facts, want)
    }

    fn needs(&self) -> Needs {
        Needs {
            files: &[EXCLUDED_V4, EXCLUDED_V6, HTTP_STATE, NETSTAT],
            programs: &["netsh"],
            ..Needs::default()
        }
    }

    fn check(&self, facts: &Facts, req: &Request) -> Check {
        let mut c = Check::default();
        c.grant_ports(req, true);
        for (flag, given) in [("--user", &req.user), ("--group", &req.group)] {
            if given.is_some() {
                c.input.push(format!(
                    "{flag}: nothing on Windows is granted to an account (every account may bind \
                     the port); the account the service runs as is its service wrapper's setting"
                ));
            }
        }
        let ports = req.grant_ports().unwrap_or_default();
        if let Err(e) = program(req) {
            c.input.push(e);
        }
        // Without a binary the rule has nothing to be named after: asked for once, above.
        if let Err(e) = rule_name(req, &ports)
            && (req.binary.is_some() || req.service.name.is_some())
        {
            c.input.push(e);
        }
        if facts.tool("netsh").is_none() {
            c.blockers.push(
                "netsh is not among the facts' tools (Windows ships it as \
                 C:\\Windows\\System32\\netsh.exe)"
                    .into(),
            );
        }
        if ports.is_empty() {
            return c;
        }
        // Said first: there is nothing to grant, and the reason matters more than any warning.
        c.warnings.push(format!(
            "{} The windows method grants nothing: it adds the firewall rule clients on other \
             hosts need.",
            open_message(&ports)
        ));
        let mut unknown = Vec::new();
        for (key, family) in [(EXCLUDED_V4, "IPv4"), (EXCLUDED_V6, "IPv6")] {
            if !exclusions(&mut c, facts, key, family, &ports) {
                unknown.push(key);
            }
        }
        unknown.extend(holders(&mut c, facts, &ports));
        if !unknown.is_empty() {
            c.warnings.push(format!(
                "the facts do not record `{}`: run {} on the host before applying. A port in an \
                 excluded range fails to bind with WSAEACCES 10013 although nothing listens, and a \
                 port HTTP.sys (PID 4, System) or another process holds cannot be bound",
                unknown.join("`, `"),
                if unknown.len() == 1 { "it" } else { "them" }
            ));
        }
        c.warnings.push(format!(
            "while the service is down, any local user can bind {} first and receive its clients \
             (Windows reserves no port for it)",
            ports_text(&ports)
        ));
        c.warnings.push(service_note(req));
        c
    }

    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action> {
        let Ok(ports) = req.grant_ports() else {
            return Vec::new();
        };
        let (Ok(name), Ok(program), Some(netsh)) =
            (rule_name(req, &ports), program(req), facts.tool("netsh"))
        else {
            return Vec::new();
        };
        let netsh = |args: &[&str]| -> Vec<String> {
            std::iter::once(netsh.display().to_string())
                .chain(["advfirewall", "firewall"].into_iter().map(String::from))
                .chain(args.iter().map(|a| a.to_string()))
                .collect()
        };
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        let list = list.join(",");
        let rule = format!("name={name}");
        vec![Action::RunCommands {
            what: format!(
                "add the inbound firewall rule {name}: allow {program} on TCP {list}, every \
                 profile"
            ),
            run: vec![netsh(&[
                "add",
                "rule",
                &rule,
                "dir=in",
                "action=allow",
                &format!("program={program}"),
                "protocol=TCP",
                &format!("localport={list}"),
                "profile=any",
            ])],
            undo: vec![netsh(&["delete", "rule", &rule])],
            check: Some(netsh(&["show", "rule", &rule])),
        }]
    }

    fn target(&self, _facts: &Facts, req: &Request) -> Target {
        Target {
            ports: req.grant_ports().unwrap_or_default(),
            ..Target::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excluded_ranges_are_read_from_the_table_only() {
        let out = "\nProtocol tcp Port Exclusion Ranges\n\nStart Port    End Port\n\
                   ----------    --------\n        80          80     *\n      5357        5357\n\
                   \u{20}    50000       50059     *\n\n* - Administered port exclusions.\n\n";
        assert_eq!(
            excluded_ranges(out),
            Some(vec![
                (80, 80, true),
                (5357, 5357, false),
                (50000, 50059, true)
            ])
        );
        let none = "\nProtocol tcp Port Exclusion Ranges\n\nStart Port    End Port\n\
                    ----------    --------\n\n* - Administered port exclusions.\n";
        assert_eq!(excluded_ranges(none), Some(vec![]));
        // An error message is not an empty table.
        assert_eq!(
            excluded_ranges("The requested operation requires elevation (Run as administrator).\n"),
            None
        );
        assert_eq!(excluded_ranges("----\n99999 1\n1 2 3\nx y\n"), Some(vec![]));
    }

    #[test]
    fn http_sys_urls_and_listeners_name_their_ports() {
        let state = "    Registered URLs:\n        HTTP://+:80/TEMPORARY_LISTEN_ADDRESSES/\n\
                     \u{20}       HTTPS://WWW.EXAMPLE.COM/\n        http://[::1]:5985/wsman/\n\
                     \u{20}       HTTP://[FE80::1]/\n        http://*:x/\n";
        let ports: Vec<u16> = http_sys_urls(state).iter().map(|(p, _)| *p).collect();
        assert_eq!(ports, vec![80, 443, 5985, 80]);
        let netstat = "\nActive Connections\n\n  Proto  Local Address          Foreign Address        \
                       State           PID\n  TCP    0.0.0.0:80             0.0.0.0:0              \
                       LISTENING       4\n  TCP    [::]:80                [::]:0                 \
                       ABHÖREN         4\n  TCP    0.0.0.0:443            0.0.0.0:0              \
                       LISTENING       2212\n  TCP    10.0.0.5:49710         10.0.0.9:80            \
                       ESTABLISHED     3001\n  UDP    0.0.0.0:80             *:*                  \
                       \u{20}             77\n";
        assert_eq!(listening_pids(netstat, 80), vec![4]);
        assert_eq!(listening_pids(netstat, 443), vec![2212]);
        assert_eq!(listening_pids(netstat, 49710), Vec::<u32>::new());
    }
}
