//! `sysctl`: lower `net.ipv4.ip_unprivileged_port_start`, live and at boot. System-wide.

use std::path::PathBuf;

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::{Facts, UNPRIVILEGED_PORT_START};
use crate::plan::Action;
use crate::plan::Target;

pub struct Sysctl;

pub const DROP_IN: &str = "/etc/sysctl.d/60-lowport-unprivileged-ports.conf";

/// Who the proof bind runs as when the operator names nobody: the account with no rights at all.
pub const DEFAULT_PROBE_USER: &str = "nobody";

fn drop_in_content(value: u16) -> Result<String, String> {
    let line = crate::validate::sysctl_line(UNPRIVILEGED_PORT_START, &value.to_string())?;
    Ok(format!(
        "# Written by lowport: unprivileged processes may bind ports from {value} up.\n\
         # Undo with `lowport rollback`, or delete this file and run\n\
         # `sysctl -w {UNPRIVILEGED_PORT_START}=1024`.\n{line}"
    ))
}

/// Where every user may already bind the lowest requested port (the live boundary is at or below
/// it), why and what that means: said first by every front end, since no grant is needed.
fn open_note(facts: &Facts, want: &crate::request::Want) -> Option<String> {
    let value = *want.split_ports().0.first()?;
    let live = facts
        .unprivileged_port_start
        .filter(|live| *live <= value)?;
    Some(open_message(facts, live, value))
}

fn open_message(facts: &Facts, live: u16, value: u16) -> String {
    let boot = if facts.unprivileged_port_start_files.is_empty() {
        " No sysctl.d file sets it: it was set at runtime (a container runtime, or by hand) and \
         a reboot of this host may not keep it."
    } else {
        ""
    };
    format!(
        "already open: {UNPRIVILEGED_PORT_START} is {live} in this network namespace, so every \
         user and process here may bind port {value} (and every port from {live}) without any \
         grant. Docker (20.10+), Podman and containerd 2 set it to 0 inside containers; a \
         host-network container does not get it.{boot}"
    )
}

fn lowest(req: &Request) -> Option<u16> {
    req.grant_ports().ok()?.first().copied()
}

const META: Meta = Meta {
    id: MethodId::Sysctl,
    markdown: include_str!("../../assets/methods/sysctl.md"),
    risk: Risk::High,
    families: &["linux"],
};

impl Method for Sysctl {
    fn per_netns(&self) -> bool {
        true
    }

    fn meta(&self) -> &'static Meta {
        &META
    }

    fn already_open(&self, facts: &Facts, want: &crate::request::Want) -> Option<String> {
        open_note(facts, want)
    }

    fn accounts(&self, _req: &Request) -> Vec<String> {
        vec![DEFAULT_PROBE_USER.into()]
    }

    fn check(&self, facts: &Facts, req: &Request) -> Check {
        let mut c = Check::default();
        c.grant_ports(req, true);
        let prober = req.user.as_deref().unwrap_or(DEFAULT_PROBE_USER);
        if facts.accounts.user(prober).is_none() {
            // A user the operator named is bad input; the default one missing is the host's state.
            let list = if req.user.is_some() {
                &mut c.input
            } else {
                &mut c.blockers
            };
            list.push(format!(
                "user '{prober}', who must prove the result by binding the port, does not exist \
                 here; give an existing user with --user"
            ));
        }
        let Some(live) = facts.unprivileged_port_start else {
            c.blockers.push(format!(
                "kernel {} has no {UNPRIVILEGED_PORT_START} (it needs Linux 4.11 or later)",
                facts.os.kernel
            ));
            return c;
        };
        let Some(value) = lowest(req) else { return c };
        if let Err(e) = drop_in_content(value) {
            c.input.push(e);
        }
        if live <= value {
            // Said first: nothing needs granting, and the reason matters more than any warning.
            let said = open_message(facts, live, value);
            c.warnings
                .insert(0, format!("{said} The sysctl method changes nothing."));
            return c;
        }
        if let Some((low, _)) = facts.local_port_range
            && low < value
        {
            c.blockers.push(format!(
                "net.ipv4.ip_local_port_range starts at {low}, below {value}: the kernel \
                 rejects a privileged range that overlaps the ephemeral ports"
            ));
        }
        let ports: Vec<String> = req
            .grant_ports()
            .unwrap_or_default()
            .iter()
            .map(u16::to_string)
            .collect();
        c.warnings.push(format!(
            "every user and process in this network namespace will be able to bind every port \
             from {value} to 1023 (TCP and UDP, IPv4 and IPv6), not only {}",
            ports.join(" and ")
        ));
        c.warnings.push(format!(
            "while your service is down, any local user can take port {value} and receive its \
             traffic"
        ));
        let ours = PathBuf::from(DROP_IN);
        let name = |p: &PathBuf| p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        for s in &facts.unprivileged_port_start_files {
            let later = s.file.as_os_str() == "/etc/sysctl.conf" || name(&s.file) > name(&ours);
            if later && s.file != ours && s.value != value.to_string() {
                c.warnings.push(format!(
                    "{} sets it to {} and is read after lowport's file: at boot that value wins",
                    s.file.display(),
                    s.value
                ));
            }
        }
        c
    }

    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action> {
        let Some(value) = lowest(req) else {
            return Vec::new();
        };
        // Where the live value already lets every user bind the port, nothing is changed: a boot
        // file with a higher value would close ports an earlier run (or the runtime) opened.
        // Equal to it live but set by no boot file (one removed or edited since): the boot file
        // is written again, as `verify --all` asks, and the live value is left as it is.
        let boot_sets_it = facts
            .unprivileged_port_start_files
            .iter()
            .any(|s| s.value.trim() == value.to_string());
        if facts
            .unprivileged_port_start
            .is_none_or(|live| live < value || (live == value && boot_sets_it))
        {
            return Vec::new();
        }
        let Ok(content) = drop_in_content(value) else {
            return Vec::new();
        };
        // Live first: the kernel validates the value, and only a value it accepted is persisted.
        vec![
            Action::SetSysctl {
                key: UNPRIVILEGED_PORT_START.into(),
                value: value.to_string(),
            },
            Action::WriteFile {
                path: DROP_IN.into(),
                content,
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
            },
        ]
    }

    fn target(&self, _facts: &Facts, req: &Request) -> Target {
        Target {
            ports: req.grant_ports().unwrap_or_default(),
            user: Some(
                req.user
                    .clone()
                    .unwrap_or_else(|| DEFAULT_PROBE_USER.into()),
            ),
            binary: None,
            service: None,
            ..Target::default()
        }
    }
}
