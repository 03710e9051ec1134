//! `systemd`: a hardened unit (or a drop-in for an existing one) granting CAP_NET_BIND_SERVICE
//! through `AmbientCapabilities=`. The recommended Linux method.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::unit::enabled_link;
use crate::facts::{Facts, ServiceUnit, UNIT_MARKER};
use crate::plan::Action;
use crate::plan::Target;

pub struct Systemd;

const UNIT_DIR: &str = "/etc/systemd/system";
pub const DROP_IN_NAME: &str = "50-lowport.conf";

/// The directives every unit lowport writes carries to grant exactly the one capability.
const GRANT: &str = "\
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
";

/// Sandboxing for a network service; measured with `systemd-analyze security --offline=true`
/// (exposure 1.5 for a unit with a named user). PrivateUsers= stays off: it would move the
/// capability into a user namespace that does not own the host's network namespace, and binding
/// would fail.
///
/// The system-call filter must not kill the programs operators run. Go's runtime (fabio, caddy)
/// raises its open-file limit at start with setrlimit, which `~@resources` forbids: the default
/// action is SIGSYS (status=31/SYS). So, as systemd.exec(5) advises for filters, a forbidden call
/// fails with EPERM instead, which runtimes handle; and LimitNOFILE= sets soft = hard (systemd's
/// default hard limit), so Go has nothing to raise and still gets the descriptors it would have
/// given itself. Neither changes the exposure score.
const SANDBOX: &str = "\
PrivateTmp=yes
PrivateDevices=yes
DevicePolicy=closed
PrivateMounts=yes
ProtectSystem=strict
ProtectHome=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
KeyringMode=private
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
LimitNOFILE=524288
UMask=0077
";

fn systemd_version_ok(facts: &Facts) -> Result<(), String> {
    if let Some(v) = facts.init.systemd_version.filter(|v| *v < 229) {
        return Err(format!(
            "systemd {v} is too old: AmbientCapabilities= needs systemd 229"
        ));
    }
    let mut k = facts
        .os
        .kernel
        .split(['.', '-'])
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (k.next().unwrap_or(0), k.next().unwrap_or(0));
    if !facts.os.kernel.is_empty() && (major, minor) < (4, 3) {
        return Err(format!(
            "kernel {} is too old: ambient capabilities need Linux 4.3",
            facts.os.kernel
        ));
    }
    Ok(())
}

/// True when commands can reach a running systemd that manages this root.
fn live(facts: &Facts) -> bool {
    facts.init.systemd && facts.root() == crate::root::Root::new("/".into())
}

/// The user the service runs as: `--user`, or one named after the service.
fn user_of(req: &Request) -> Option<String> {
    if req.service.dynamic_user {
        return None;
    }
    req.user.clone().or_else(|| req.service_name())
}

/// The unit's text. Every value that reaches it (the resolved binary path, arguments, names,
/// paths) goes through the unit-file rules in `validate`: a value that would break the file's
/// syntax is an error, never written.
fn unit_text(facts: &Facts, req: &Request, name: &str) -> Result<String, String> {
    use crate::validate::{exec_word, unit_path, unit_value};
    let binary = facts
        .binary
        .as_ref()
        .map_or(PathBuf::new(), |b| b.path.clone());
    let binary = binary.to_str().ok_or_else(|| {
        format!(
            "the binary's resolved path {} is not valid UTF-8",
            binary.display()
        )
    })?;
    let mut exec = exec_word("the binary's resolved path", binary)?;
    for a in &req.service.args {
        exec.push(' ');
        exec.push_str(&exec_word("argument", a)?);
    }
    let description = unit_value("service name", name)?;
    let mut s = format!(
        "{UNIT_MARKER}; `lowport rollback` removes it.\n[Unit]\nDescription={description} (ports \
         below 1024 through AmbientCapabilities=)\nWants=network-online.target\n\
         After=network-online.target\n\n[Service]\nType=simple\nExecStart={exec}\n\
         Restart=on-failure\n"
    );
    s.push_str(&identity(facts, req, user_of(req))?);
    s.push_str(GRANT);
    s.push_str(SANDBOX);
    if !req.service.allow_jit {
        s.push_str("MemoryDenyWriteExecute=yes\n");
    }
    for w in &req.service.writable {
        let _ = writeln!(s, "ReadWritePaths={}", unit_path("--writable", w)?);
    }
    if let Some(d) = &req.service.state_directory {
        let d = crate::validate::state_directory(d)?;
        let _ = writeln!(s, "StateDirectory={}", unit_value("--state-directory", &d)?);
        // Checked above: plain names, so the paths need no quoting.
        let _ = writeln!(s, "{}", state_environment(&d));
    }
    s.push_str("\n[Install]\nWantedBy=multi-user.target\n");
    Ok(s)
}

/// `DynamicUser=yes`, or `User=`/`Group=` lines; the group may come from the target's group
/// database, so it is checked like a typed name.
fn identity(facts: &Facts, req: &Request, user: Option<String>) -> Result<String, String> {
    if req.service.dynamic_user {
        return Ok("DynamicUser=yes\n".into());
    }
    let Some(u) = user else {
        return Ok(String::new());
    };
    let g = crate::validate::account_name(&group_of(facts, req, &u))?;
    let u = crate::validate::account_name(&u)?;
    Ok(format!("User={u}\nGroup={g}\n"))
}

/// The home a `--state-directory` gives the service: a user lowport creates has the home
/// /nonexistent, and every other path is read-only under ProtectSystem=strict, so programs that
/// keep data under $HOME or the XDG directories (caddy) get them inside the state directory, laid
/// out as their defaults would be.
fn state_environment(dir: &str) -> String {
    let home = format!("/var/lib/{dir}");
    format!(
        "Environment=HOME={home} XDG_DATA_HOME={home}/.local/share \
         XDG_CONFIG_HOME={home}/.config XDG_CACHE_HOME={home}/.cache"
    )
}

/// `--group`, else the user's primary group, else (for a user lowport creates with
/// `--user-group`) the group of the same name.
fn group_of(facts: &Facts, req: &Request, user: &str) -> String {
    req.group
        .clone()
        .or_else(|| facts.accounts.user(user).and_then(|a| a.group.clone()))
        .unwrap_or_else(|| user.to_string())
}

/// An existing unit needs lowport's drop-in unless it already grants the capability and the
/// request changes nothing else about it (no user).
fn needs_drop_in(unit: &ServiceUnit, req: &Request) -> bool {
    !unit.already_grants || req.user.is_some() || req.service.dynamic_user
}

fn drop_in_text(facts: &Facts, req: &Request) -> Result<String, String> {
    let mut s = format!("{UNIT_MARKER}; `lowport rollback` removes it.\n[Service]\n");
    s.push_str(&identity(facts, req, req.user.clone())?);
    s.push_str(GRANT);
    Ok(s)
}

/// The file lowport writes for this service: a drop-in for a unit it did not write, else the
/// whole unit.
fn content(facts: &Facts, req: &Request, unit: &ServiceUnit) -> Result<String, String> {
    if unit.path.is_some() && !unit.ours {
        drop_in_text(facts, req)
    } else {
        unit_text(facts, req, &unit.name)
    }
}

const META: Meta = Meta {
    id: MethodId::Systemd,
    markdown: include_str!("../../assets/methods/systemd.md"),
    risk: Risk::Low,
    families: &["linux"],
};

impl Method for Systemd {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn accounts(&self, req: &Request) -> Vec<String> {
        user_of(req).into_iter().collect()
    }

    fn check(&self, facts: &Facts, req: &Request) -> Check {
        let mut c = Check::default();
        c.grant_ports(req, false);
        if facts.tool("systemctl").is_none() {
            c.blockers
                .push("systemd is not installed here (no systemctl)".into());
        }
        if let Err(e) = systemd_version_ok(facts) {
            c.blockers.push(e);
        }
        // On this host itself, a unit only takes effect where systemd is the init; an image
        // under --root boots its own.
        if facts.root().is_host() && !facts.init.systemd && facts.tool("systemctl").is_some() {
            c.blockers.push(format!(
                "systemd is not running here (PID 1 is {}): a unit would never start on this \
                 host; for a system image that boots with systemd, give --root DIR",
                if facts.init.pid1.is_empty() {
                    "unknown"
                } else {
                    facts.init.pid1.as_str()
                }
            ));
        }
        let Some(unit) = &facts.service else {
            c.input
                .push("the binary to run (--binary) or the existing service (--service)".into());
            return c;
        };
        let drop_in = unit.path.is_some() && !unit.ours;
        if let (Some(why), Some(path)) = (&unit.unreadable, &unit.path) {
            c.blockers.push(format!(
                "{}.service ({}) cannot be read ({why}): lowport plans nothing for a unit whose \
                 settings it cannot know",
                unit.name,
                path.display()
            ));
        }
        if let Some(link) = &unit.masked {
            if req.service.unmask {
                c.warnings.push(format!(
                    "{}.service is masked ({} -> /dev/null): --unmask replaces that link with \
                     lowport's unit; rollback masks it again",
                    unit.name,
                    link.display()
                ));
            } else {
                c.blockers.push(format!(
                    "{}.service is masked ({} -> /dev/null): someone decided it must not run, and \
                     lowport leaves it so; give --unmask to replace the mask with lowport's unit \
                     (rollback masks it again)",
                    unit.name,
                    link.display()
                ));
            }
        }
        if drop_in {
            let file = unit
                .path
                .as_deref()
                .map_or(String::new(), |p| p.display().to_string());
            if needs_drop_in(unit, req) {
                c.warnings.push(format!(
                    "{}.service exists ({file}): lowport adds a drop-in and leaves that file as it is",
                    unit.name
                ));
                c.warnings.push(
                    "the drop-in's CapabilityBoundingSet=CAP_NET_BIND_SERVICE narrows the bounding \
                     set only where the unit sets none: systemd ORs repeated lines, so a unit that \
                     lists capabilities keeps them (and gains this one). A unit that needs other \
                     capabilities and lists none fails to start, and lowport rolls back"
                        .into(),
                );
            } else {
                c.warnings.push(format!(
                    "already in place: {}.service ({file}) already grants CAP_NET_BIND_SERVICE \
                     through AmbientCapabilities=; lowport adds no drop-in",
                    unit.name
                ));
            }
            if unit.wanted_by.is_empty() {
                c.warnings.push(format!(
                    "{}.service has no [Install] WantedBy=: it cannot be enabled and starts only \
                     when something else starts it",
                    unit.name
                ));
            }
            if unit.user.is_none() && req.user.is_none() && !req.service.dynamic_user {
                c.warnings.push(format!(
                    "{}.service sets no User=: it runs as root (unless it sets DynamicUser=), which \
                     may bind any port already, and stays root. To run it unprivileged give \
                     --user NAME (the drop-in sets User=; files it writes must then be writable by \
                     that user) or --dynamic-user",
                    unit.name
                ));
            }
        } else if facts.binary.is_none() {
            c.input
                .push("the binary to run: --binary PATH or --binary NAME".into());
        }
        if c.input.is_empty()
            && let Err(e) = content(facts, req, unit)
        {
            c.input.push(e);
        }
        let db = &facts.accounts;
        // A drop-in without --user keeps the vendor unit's own User=.
        let creates =
            user_of(req).filter(|u| !(drop_in && req.user.is_none()) && db.user(u).is_none());
        if let Some(u) = creates {
            if facts.tool("useradd").is_none() {
                c.blockers.push(format!(
                    "user {u} does not exist and useradd is not available"
                ));
            } else {
                c.warnings.push(format!(
                    "creates the system user {u} (no home, no login shell)"
                ));
            }
        }
        for why in facts.binary.iter().flat_map(|b| &b.writable_by_non_root) {
            c.warnings.push(format!(
                "{why}: they could swap in their own program, which the unit then runs as its \
                 user with CAP_NET_BIND_SERVICE"
            ));
        }
        if let Some(u) = user_of(req).filter(|u| db.user(u).is_some_and(|a| a.uid == 0)) {
            c.input.push(format!(
                "--user {u} has uid 0: the service would run as root, which may bind any port \
                 already, and keep every power root has; give an unprivileged user (or leave \
                 --user out for a dedicated one)"
            ));
        }
        if user_of(req).as_deref() == Some("nobody") {
            c.warnings.push(
                "nobody is shared by many services: whatever else runs as nobody could tamper with \
                 this one; a dedicated user (the default) is safer"
                    .into(),
            );
        }
        if let Some(g) = &req.group
            && db.group_gid(g).is_none()
        {
            c.input.push(format!(
                "group '{g}' does not exist; create it or drop --group"
            ));
        }
        if let Some(caps) = facts.binary.as_ref().and_then(|b| b.capability.as_ref()) {
            c.warnings.push(format!(
                "the binary also carries the file capability {}; the unit does not need it \
                 (setcap -r removes it)",
                caps.text
            ));
        }
        if !live(facts) {
            c.warnings.push(format!(
                "no running systemd manages {}: the unit is written and enabled, not started; \
                 it starts at the next boot",
                facts.root.display()
            ));
        }
        if req.service.allow_jit {
            c.warnings.push(
                "--allow-jit drops MemoryDenyWriteExecute=: injected code could be made executable"
                    .into(),
            );
        }
        if let Some(d) = &req.service.state_directory {
            c.warnings.push(format!(
                "--state-directory {d}: systemd creates /var/lib/{d}, writable only by the service, \
                 and HOME, XDG_DATA_HOME, XDG_CONFIG_HOME and XDG_CACHE_HOME point into it (the \
                 user's own home stays unused); rollback leaves the data there"
            ));
        }
        for w in &req.service.writable {
            c.warnings.push(format!(
                "--writable {}: the service (and anyone who takes it over) may change files there",
                w.display()
            ));
        }
        c
    }

    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action> {
        let Some(unit) = &facts.service else {
            return Vec::new();
        };
        // `check` reported a value the file cannot hold; nothing is planned around it.
        let Ok(content) = content(facts, req, unit) else {
            return Vec::new();
        };
        let name = &unit.name;
        let service = format!("{name}.service");
        let live = live(facts);
        let program = facts
            .tool("systemctl")
            .map_or("systemctl".to_string(), |p| p.display().to_string());
        let systemctl = |args: &[&str]| -> Vec<String> {
            std::iter::once(program.as_str())
                .chain(args.iter().copied())
                .map(String::from)
                .collect()
        };
        let mut out = Vec::new();
        let drop_in = unit.path.is_some() && !unit.ours;
        if let Some(u) = user_of(req).filter(|_| !(drop_in && req.user.is_none()))
            && facts.accounts.user(&u).is_none()
        {
            out.push(Action::CreateUser { name: u });
        }
        if live {
            let mut undo = vec![systemctl(&["daemon-reload"])];
            if drop_in {
                undo.push(systemctl(&["try-restart", &service]));
            }
            out.push(Action::RunCommands {
                what: "reload systemd once the files are restored (on rollback)".into(),
                run: Vec::new(),
                undo,
                check: None,
            });
        }
        let unit_path = Path::new(UNIT_DIR).join(&service);
        if drop_in {
            if needs_drop_in(unit, req) {
                out.push(Action::WriteFile {
                    path: Path::new(UNIT_DIR)
                        .join(format!("{service}.d"))
                        .join(DROP_IN_NAME),
                    content,
                    mode: 0o644,
                    owner: "root".into(),
                    group: "root".into(),
                });
            }
            // Enabled as `systemctl enable` would: a link from each WantedBy= target.
            if let Some(file) = &unit.path {
                for target in &unit.wanted_by {
                    out.push(Action::Symlink {
                        path: enabled_link(target, &service),
                        target: file.clone(),
                    });
                }
            }
        } else {
            out.push(Action::WriteFile {
                path: unit_path.clone(),
                content,
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
            });
            out.push(Action::Symlink {
                path: enabled_link("multi-user.target", &service),
                target: unit_path,
            });
        }
        if live {
            out.push(Action::RunCommands {
                what: format!("reload systemd and (re)start {service}"),
                run: vec![
                    systemctl(&["daemon-reload"]),
                    systemctl(&["restart", &service]),
                ],
                undo: if drop_in {
                    Vec::new()
                } else {
                    vec![systemctl(&["stop", &service])]
                },
                check: None,
            });
        }
        out
    }

    fn target(&self, _facts: &Facts, req: &Request) -> Target {
        Target {
            ports: req.grant_ports().unwrap_or_default(),
            user: None,
            binary: None,
            service: req.service_name(),
            ..Target::default()
        }
    }
}
