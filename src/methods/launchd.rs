//! `launchd`: a LaunchDaemon that runs the service as an unprivileged user. launchd grants no
//! privilege: on macOS 10.14 and later the kernel lets every user bind a port below 1024 on the
//! wildcard address, so such a listener needs nothing; a bind to a specific address, or any bind
//! below 1024 on older macOS, still needs root, and this method says so instead of promising a
//! grant (the service can listen on a high port behind pf-macos then).

use std::path::{Path, PathBuf};

use super::{Check, Meta, Method, MethodId, Needs, Request, Risk, Want};
use crate::facts::Facts;
use crate::plan::{Action, Target};
use crate::validate;

pub struct Launchd;

/// Where system-wide daemons' property lists live; launchd loads them at boot.
const DAEMON_DIR: &str = "/Library/LaunchDaemons";

/// The first macOS whose kernel checks the reserved-port privilege only for a bind to a
/// specific IPv4 address (xnu `in_pcbbind()`; 10.14 Mojave per the reports in the reference).
const WILDCARD_OPEN_SINCE: (u32, u32) = (10, 14);

/// `major.minor` of a macOS `version_id` such as `10.13.6` or `14.7`.
fn version(facts: &Facts) -> Option<(u32, u32)> {
    let mut parts = facts.os.version_id.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// Whether every user may bind below 1024 on the wildcard address; None when the facts hold
/// no version.
fn wildcard_open(facts: &Facts) -> Option<bool> {
    version(facts).map(|v| v >= WILDCARD_OPEN_SINCE)
}

/// `port 80`, `ports 80 and 443`, `ports 22, 80 and 443`.
pub(super) fn ports_text(ports: &[u16]) -> String {
    let words: Vec<String> = ports.iter().map(u16::to_string).collect();
    match words.as_slice() {
        [] => "no port".into(),
        [one] => format!("port {one}"),
        [rest @ .., last] => format!("ports {} and {last}", rest.join(", ")),
    }
}

/// The low ports clients use, sorted: the grants and the low side of redirect pairs.
fn public_ports(want: &Want) -> Vec<u16> {
    let mut ports = want.public_ports();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// On macOS 10.14 and later: the requested ports need no grant on the wildcard address.
fn open_note(facts: &Facts, want: &Want) -> Option<String> {
    let ports = public_ports(want);
    let first = *ports.first()?;
    (facts.os.family == "macos" && wildcard_open(facts)?)
        .then(|| open_message(facts, &ports, first))
}

fn open_message(facts: &Facts, ports: &[u16], first: u16) -> String {
    format!(
        "already open: on macOS {} (10.14 and later) every user may bind {} on the wildcard \
         address (0.0.0.0, and [::] as reported) without any grant: the xnu kernel checks the \
         privilege only for a bind to a specific IPv4 address. A service that listens on \
         :{first} (fabio's `proxy.addr = :{first};…`) needs nothing; a bind to a specific \
         address (127.0.0.1:{first}, 192.0.2.10:{first}) still needs root, or pf-macos to \
         redirect the port.",
        facts.os.version_id,
        ports_text(ports)
    )
}

/// The job's label: a `--service` given in reverse-DNS form as it is, else
/// `local.lowport.NAME` after the service name (`local.` is no one's domain).
fn label(req: &Request) -> Result<String, String> {
    let name = match &req.service.name {
        Some(n) if n.contains('.') => return validate::launchd_label(n),
        Some(n) => n.clone(),
        None => req
            .service_name()
            .ok_or("the service: --binary PATH (the label is named after it) or --service NAME")?,
    };
    validate::launchd_label(&format!("local.lowport.{name}"))
}

fn plist_path(label: &str) -> PathBuf {
    Path::new(DAEMON_DIR).join(format!("{label}.plist"))
}

/// The program launchd runs: the binary the facts resolved, else the absolute path given. A
/// name is refused: the plist would leave it to execvp(3) and launchd's own PATH.
fn program(facts: &Facts, req: &Request) -> Result<String, String> {
    if let Some(b) = &facts.binary {
        return b.path.to_str().map(String::from).ok_or_else(|| {
            format!(
                "the binary's resolved path {} is not valid UTF-8",
                b.path.display()
            )
        });
    }
    match req.binary.as_deref() {
        None => Err("the binary to run: --binary /absolute/path".into()),
        Some(b) if b.starts_with('/') => Ok(b.to_string()),
        Some(b) => Err(format!(
            "--binary {b}: a LaunchDaemon names its program by its absolute path on the Mac \
             (a name would be looked up by execvp(3) on launchd's PATH, not yours); give it, \
             e.g. --binary /usr/local/bin/{}, or plan with --facts FILE from the Mac, where \
             lowport resolves it",
            validate::binary_file_name(b).unwrap_or("NAME")
        )),
    }
}

/// The LaunchDaemon's property list. Every value goes through the plist string rule. No
/// `Sockets`: launchd would bind those ports itself and hand them only to a program that calls
/// launch_activate_socket(3), which fabio does not; its own bind would then fail.
fn plist(label: &str, program: &str, req: &Request, user: &str) -> Result<String, String> {
    use validate::plist_string as text;
    let mut args = format!("\t\t<string>{}</string>\n", text("the program", program)?);
    for a in &req.service.args {
        args.push_str(&format!("\t\t<string>{}</string>\n", text("argument", a)?));
    }
    let group = match &req.group {
        Some(g) => format!(
            "\t<key>GroupName</key>\n\t<string>{}</string>\n",
            text("group", g)?
        ),
        None => String::new(),
    };
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <!-- Written by lowport; `lowport rollback` removes it. -->\n\
         <plist version=\"1.0\">\n<dict>\n\
         \t<key>Label</key>\n\t<string>{}</string>\n\
         \t<key>ProgramArguments</key>\n\t<array>\n{args}\t</array>\n\
         \t<key>UserName</key>\n\t<string>{}</string>\n{group}\
         \t<key>RunAtLoad</key>\n\t<true/>\n\
         \t<key>KeepAlive</key>\n\t<true/>\n\
         </dict>\n</plist>\n",
        text("label", label)?,
        text("user", user)?,
    ))
}

/// The accounts the facts say do not exist, and those they do not hold at all (a representative
/// document holds none): input the operator must fix, or a document that must say.
fn account_problems(c: &mut Check, facts: &Facts, named: &[(&str, &str, Option<bool>)]) {
    let mut unknown = Vec::new();
    for (what, name, known) in named {
        match known {
            Some(true) => {}
            Some(false) => c.input.push(format!(
                "{what} {name} does not exist on {}: create it there first (lowport does not \
                 create macOS accounts) or name an existing one",
                facts.hostname
            )),
            None => unknown.push(format!("{what} {name}")),
        }
    }
    if unknown.is_empty() {
        return;
    }
    let doc = facts
        .target_os
        .as_deref()
        .map_or("the facts document".to_string(), |os| {
            format!("the representative document for {os}")
        });
    c.input.push(format!(
        "whether {} {} on the Mac is unknown: {doc} holds no accounts; plan with --facts FILE \
         from `lowport detect --json --method launchd` (or `lowport facts-script --os macos`) \
         run there",
        unknown.join(" and "),
        if unknown.len() == 1 {
            "exists"
        } else {
            "exist"
        }
    ));
}

const META: Meta = Meta {
    id: MethodId::Launchd,
    markdown: include_str!("../../assets/methods/launchd.md"),
    risk: Risk::Low,
    families: &["macos"],
};

impl Method for Launchd {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn already_open(&self, facts: &Facts, want: &Want) -> Option<String> {
        open_note(facts, want)
    }

    fn needs(&self) -> Needs {
        Needs {
            programs: &["launchctl", "plutil"],
            ..Needs::default()
        }
    }

    fn check(&self, facts: &Facts, req: &Request) -> Check {
        let mut c = Check::default();
        let (grants, redirects) = req.split_ports();
        if grants.is_empty() && redirects.is_empty() {
            c.input.push(
                "the ports: --port N (a wildcard bind, which needs no grant on macOS 10.14 and \
                 later) or --port LOW:HIGH (the service listens on HIGH, pf-macos redirects LOW)"
                    .into(),
            );
        }
        for (tool, stock) in [
            ("plutil", "/usr/bin/plutil"),
            ("launchctl", "/bin/launchctl"),
        ] {
            if facts.tool(tool).is_none() {
                c.blockers.push(format!(
                    "{tool} is not among the facts' tools (macOS ships it as {stock})"
                ));
            }
        }
        let user = req.user.as_deref();
        match user {
            None => c.input.push(
                "the user the daemon runs as: --user NAME, an existing unprivileged account such \
                 as _fabio (without UserName a LaunchDaemon runs as root)"
                    .into(),
            ),
            Some(u) => {
                if let Some(Some(a)) = facts.accounts.users.get(u)
                    && a.uid == 0
                {
                    c.input.push(format!(
                        "--user {u} has uid 0: a LaunchDaemon runs as root without UserName \
                         anyway; give an unprivileged user"
                    ));
                }
            }
        }
        let mut named = Vec::new();
        if let Some(u) = user {
            named.push(("user", u, facts.accounts.users.get(u).map(Option::is_some)));
        }
        if let Some(g) = req.group.as_deref() {
            named.push((
                "group",
                g,
                facts.accounts.groups.get(g).map(Option::is_some),
            ));
        }
        account_problems(&mut c, facts, &named);
        // Without a binary the label has nothing to be named after: asked for once, below.
        let label = label(req)
            .inspect_err(|e| {
                if req.binary.is_some() || req.service.name.is_some() {
                    c.input.push(e.clone());
                }
            })
            .ok();
        let program = program(facts, req)
            .inspect_err(|e| c.input.push(e.clone()))
            .ok();
        if let (Some(l), Some(p), Some(u)) = (&label, &program, user)
            && let Err(e) = plist(l, p, req, u)
        {
            c.input.push(e);
        }
        let who = user.unwrap_or("the user");
        if !grants.is_empty() {
            match wildcard_open(facts) {
                Some(true) => {
                    c.warnings.push(format!(
                        "the service must bind the wildcard address: {who} gets EACCES for \
                         {} on a specific address (the kernel source checks specific IPv4 \
                         addresses; reports say specific IPv6 addresses fail too), and if it exits \
                         on that, KeepAlive starts it again and again",
                        ports_text(&grants)
                    ));
                    c.warnings.push(format!(
                        "while the service is down, any local user can bind {} on the wildcard \
                         address first and receive its clients",
                        ports_text(&grants)
                    ));
                }
                Some(false) => {
                    // 80 -> 8080, 443 -> 8443: the usual alternates, all above 1023.
                    let pairs: Vec<String> = grants
                        .iter()
                        .map(|p| format!("--port {p}:{}", 8000 + u32::from(*p)))
                        .collect();
                    c.blockers.push(format!(
                        "macOS {} is older than 10.14: there every bind below 1024, on any \
                         address, needs root, and launchd grants no privilege, so {who} could \
                         not bind {}. Let the service listen on high ports and redirect the low \
                         ones with pf-macos: plan launchd with {} (the service listens on the \
                         high ports) and pf-macos with the same pairs",
                        facts.os.version_id,
                        ports_text(&grants),
                        pairs.join(" ")
                    ));
                }
                None => c.blockers.push(
                    "the facts hold no macOS version (`sw_vers -productVersion` on the Mac): \
                     whether the kernel lets a user bind below 1024 on the wildcard address \
                     (10.14 and later) is unknown, and launchd grants no privilege"
                        .into(),
                ),
            }
        }
        for (low, high) in &redirects {
            c.warnings.push(format!(
                "the service must listen on port {high} itself (its configuration, e.g. fabio's \
                 `proxy.addr = :{high}`); this plan does not redirect port {low}: plan pf-macos \
                 with --port {low}:{high} as well"
            ));
            c.warnings.push(format!(
                "while the service is down, any local user can listen on port {high} and receive \
                 the clients of port {low}"
            ));
        }
        // Said first: the kernel, not launchd, is what lets a low port be bound.
        let public = public_ports(req);
        if let (Some(&first), Some(true)) = (public.first(), wildcard_open(facts)) {
            let said = open_message(facts, &public, first);
            c.warnings.insert(
                0,
                format!(
                    "{said} The LaunchDaemon only runs the service as {who} instead of root: \
                     launchd itself grants no port."
                ),
            );
        }
        if let Some(l) = &label {
            c.warnings.push(format!(
                "if a job labelled {l} is loaded already (an earlier install), `launchctl \
                 bootstrap` fails and the apply rolls back, which boots that job out too (its \
                 plist is put back, so it starts again at the next boot): check with `sudo \
                 launchctl print system/{l}` and boot it out first"
            ));
        }
        if let Some(b) = &facts.binary {
            if let Some(first) = b.symlinks.first() {
                c.warnings.push(format!(
                    "{} is reached through the symbolic link {}: the plist names {}, so an \
                     upgrade that installs the program elsewhere (a Homebrew version directory) \
                     leaves the daemon starting the old file; plan again after such an upgrade",
                    b.requested,
                    first.display(),
                    b.path.display()
                ));
            }
            if !b.writable_by_non_root.is_empty() {
                c.warnings.push(format!(
                    "{} can be replaced by someone other than root ({}): launchd starts whatever \
                     is there as {who} at every start",
                    b.path.display(),
                    b.writable_by_non_root.join("; ")
                ));
            }
        }
        c
    }

    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action> {
        let (Ok(label), Ok(program), Some(user)) =
            (label(req), program(facts, req), req.user.as_deref())
        else {
            return Vec::new();
        };
        // `check` reported a value the plist cannot hold; nothing is planned around it.
        let Ok(content) = plist(&label, &program, req, user) else {
            return Vec::new();
        };
        let path = plist_path(&label);
        let file = path.display().to_string();
        let tool = |name: &str| {
            facts
                .tool(name)
                .map_or_else(|| name.to_string(), |p| p.display().to_string())
        };
        let launchctl = |args: &[&str]| -> Vec<String> {
            std::iter::once(tool("launchctl"))
                .chain(args.iter().map(|a| a.to_string()))
                .collect()
        };
        let service = format!("system/{label}");
        vec![
            Action::WriteFile {
                path,
                content,
                // launchctl(1): a daemon's plist must not be group- or world-writable.
                mode: 0o644,
                owner: "root".into(),
                group: "wheel".into(),
            },
            Action::RunCommands {
                what: format!("check {file} with plutil -lint"),
                run: vec![vec![tool("plutil"), "-lint".into(), file.clone()]],
                undo: Vec::new(),
                check: None,
            },
            Action::RunCommands {
                what: format!(
                    "load and start the LaunchDaemon {label} (launchctl bootstrap, enable, \
                     kickstart)"
                ),
                run: vec![
                    launchctl(&["bootstrap", "system", &file]),
                    launchctl(&["enable", &service]),
                    launchctl(&["kickstart", "-k", &service]),
                ],
                undo: vec![launchctl(&["bootout", &service])],
                check: Some(launchctl(&["print", &service])),
            },
        ]
    }

    fn target(&self, _facts: &Facts, req: &Request) -> Target {
        Target {
            ports: req.split_ports().0,
            user: req.user.clone(),
            ..Target::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(version: &str) -> Facts {
        let mut f = crate::facts::targets::load("macos-14").unwrap();
        f.os.version_id = version.into();
        f
    }

    #[test]
    fn the_wildcard_rule_starts_at_10_14() {
        for (v, open) in [
            ("10.13.6", Some(false)),
            ("10.14", Some(true)),
            ("10.14.2", Some(true)),
            ("11", Some(true)),
            ("14.7", Some(true)),
            ("10.9.5", Some(false)),
            ("", None),
            ("x.y", None),
        ] {
            assert_eq!(wildcard_open(&mac(v)), open, "{v}");
        }
        let want = Want {
            ports: vec![validate::PortArg::Grant(443), validate::PortArg::Grant(80)],
            ..Want::default()
        };
        let note = open_note(&mac("14.7"), &want).unwrap();
        assert!(note.starts_with("already open: on macOS 14.7"), "{note}");
        assert!(note.contains("ports 80 and 443"), "{note}");
        assert_eq!(open_note(&mac("10.13.6"), &want), None);
        assert_eq!(open_note(&mac("14.7"), &Want::default()), None);
    }

    #[test]
    fn labels_come_from_the_service_name() {
        let req = |binary: &str, service: Option<&str>| {
            let mut want = Want {
                binary: Some(binary.into()),
                ..Want::default()
            };
            want.service.name = service.map(String::from);
            Request::new(MethodId::Launchd, want)
        };
        assert_eq!(
            label(&req("/usr/local/bin/fabio", None)).unwrap(),
            "local.lowport.fabio"
        );
        assert_eq!(
            label(&req("/x/fabio-1.7", Some("com.github.fabiolb.fabio"))).unwrap(),
            "com.github.fabiolb.fabio"
        );
        assert_eq!(
            label(&req("/x/fabio-1.7.3", None)).unwrap(),
            "local.lowport.fabio-1.7.3"
        );
        assert!(label(&req("/x/fabio", Some("com.apple.fabio"))).is_err());
        assert!(label(&req("/x/fabio", Some("a@b"))).is_err());
    }
}
