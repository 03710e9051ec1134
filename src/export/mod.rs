//! Exports: the reviewed plan handed to the engines operators already run (Ansible, cloud-init,
//! Kubernetes, Compose, a POSIX shell script, PowerShell) instead of lowport growing its own remote
//! execution. Every format is made from the plan's data alone (its steps, request and
//! verification target), never from a second copy of a method's logic, and every value from the
//! plan reaches a generated file through `validate`'s quoting rule for that file's syntax.

mod ansible;
mod cloud_init;
mod compose;
pub mod facts_script;
mod kubernetes;
mod powershell;
mod sh;
mod yaml;

use std::path::Path;

use crate::error::{Error, Result};
use crate::plan::{Action, Plan};
use crate::validate;

/// The formats `lowport export --format` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A standalone POSIX shell script with check, apply and undo parts
    Sh,
    /// A PowerShell script (Windows targets)
    Powershell,
    /// A playbook, its variables, and apply and undo tasks files
    Ansible,
    /// `#cloud-config` user-data that applies the plan at first boot
    CloudInit,
    /// A Pod whose container binds the ports without root
    Kubernetes,
    /// A Compose service that binds the ports without root
    Compose,
}

impl Format {
    /// The `--format` spelling.
    pub fn name(self) -> String {
        use clap::ValueEnum;
        self.to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_string())
    }
}

/// One generated file: its name relative to the output directory, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub text: String,
    /// Scripts are written executable.
    pub executable: bool,
}

impl File {
    pub fn new(name: &str, text: String) -> File {
        File {
            name: name.to_string(),
            text,
            executable: false,
        }
    }
}

/// The plan in `format`, as one or more files. The plan is checked first: a saved plan is input
/// like any other, and a value that is not what lowport itself would plan is refused (exit 2).
pub fn export(plan: &Plan, format: Format) -> Result<Vec<File>> {
    check(plan)?;
    let linux_only = matches!(
        format,
        Format::Ansible | Format::CloudInit | Format::Kubernetes | Format::Compose
    );
    if linux_only && plan.family != "linux" {
        return Err(Error::Invalid(format!(
            "--format {} writes for Linux hosts and containers; a {} plan is exported with \
             --format {}",
            format.name(),
            plan.family,
            if plan.family == "windows" {
                "powershell"
            } else {
                "sh"
            }
        )));
    }
    match format {
        Format::Sh => sh::export(plan),
        Format::Powershell => powershell::export(plan),
        Format::Ansible => ansible::export(plan),
        Format::CloudInit => cloud_init::export(plan),
        Format::Kubernetes => kubernetes::export(plan),
        Format::Compose => compose::export(plan),
    }
}

/// A text from the plan (a summary, a title, a host name) as one line of a comment or message:
/// control characters (line breaks included) and the marks that reorder text on a terminal are
/// written as escapes, so no value can end the comment or disguise what follows.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The header every export opens with (as comment lines after `prefix`): where it came from.
/// Every value in it is made one line, so a host name or fingerprint from a saved plan (input,
/// like any other) cannot end a comment and start a directive of the format.
pub fn provenance(plan: &Plan, prefix: &str) -> String {
    let from = if plan.from_facts {
        "a facts document of"
    } else {
        "host"
    };
    [
        format!(
            "Made by lowport {} from the reviewed plan for {from} {} (method {}, risk {}).",
            env!("CARGO_PKG_VERSION"),
            plan.hostname,
            plan.method,
            plan.risk
        ),
        format!("Plan fingerprint: {}", plan.fingerprint),
    ]
    .iter()
    .map(|l| format!("{prefix}{}\n", one_line(l)))
    .collect()
}

/// Every value of a plan that can reach an exported file, checked as lowport's own input is:
/// paths absolute without `..`, account names portable, modes file modes, sysctl keys and values
/// plain, command words free of control characters.
fn check(plan: &Plan) -> Result<()> {
    let bad = |what: String| Error::Invalid(format!("the plan cannot be exported: {what}"));
    let path = |p: &Path| {
        validate::absolute_path(&p.display().to_string())
            .map(|_| ())
            .map_err(bad)
    };
    let name = |n: &str| validate::account_name(n).map(|_| ()).map_err(bad);
    let word = |w: &str| validate::exec_arg(w).map(|_| ()).map_err(bad);
    // A command runs as root on the target: only a program lowport's steps run, from the system
    // directories (the rule a journal's commands pass before a rollback runs them). Windows
    // plans name Windows programs, which that list does not hold.
    let program = |p: &str| {
        if plan.family == "windows" || crate::programs::is_step_program(p) {
            Ok(())
        } else {
            Err(bad(format!(
                "the command {p:?} is not one of the programs lowport's steps run ({}), from {}",
                crate::programs::STEP_PROGRAMS.join(", "),
                crate::programs::DIRS.join(", ")
            )))
        }
    };
    let mode = |m: u32| {
        if m <= 0o7777 {
            Ok(())
        } else {
            Err(bad(format!("mode {m:o} is not a file mode")))
        }
    };
    for p in &plan.verify.ports {
        validate::port_arg(&p.to_string()).map_err(bad)?;
    }
    for name_ in [&plan.verify.user, &plan.request.user, &plan.request.group]
        .into_iter()
        .flatten()
    {
        name(name_)?;
    }
    if let Some(s) = &plan.request.service.name {
        validate::service_name(s).map_err(bad)?;
    }
    if let Some(b) = &plan.request.binary {
        validate::binary(b).map_err(bad)?;
    }
    for step in &plan.steps {
        match &step.action {
            Action::WriteFile {
                path: p,
                mode: m,
                owner,
                group,
                ..
            }
            | Action::SetOwnerMode {
                path: p,
                owner,
                group,
                mode: m,
            } => {
                path(p)?;
                mode(*m)?;
                name(owner)?;
                name(group)?;
            }
            Action::SetFileCap { path: p, caps } => {
                path(p)?;
                word(caps)?;
            }
            Action::SetSysctl { key, value } => {
                let plain = |s: &str, extra: &[u8]| {
                    !s.is_empty()
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
                };
                // `:` and `,` spell mac_portacl's rules (`uid:1001:tcp:80,…`).
                if !plain(key, b"._-") || !plain(value, b" :,") {
                    return Err(bad(format!("'{key} = {value}' is not a sysctl setting")));
                }
            }
            Action::Symlink { path: p, target } => {
                path(p)?;
                path(target)?;
            }
            Action::CreateUser { name: n } => name(n)?,
            Action::RunCommands {
                what,
                run,
                undo,
                check,
            } => {
                word(what)?;
                for argv in run.iter().chain(undo).chain(check) {
                    if argv.is_empty() {
                        return Err(bad(format!("'{what}' has an empty command")));
                    }
                    argv.iter().try_for_each(|w| word(w))?;
                    program(&argv[0])?;
                }
            }
        }
        // The commands a step shows (useradd's, which the sh export runs) follow the same rule.
        for argv in &step.commands {
            if let Some(p) = argv.first() {
                program(p)?;
            }
        }
    }
    Ok(())
}

/// The ports the plan grants, or the client side of its redirects, lowest first.
pub fn ports(plan: &Plan) -> Vec<u16> {
    let mut ports = plan.verify.ports.clone();
    ports.extend(plan.verify.redirects.iter().map(|(low, _)| *low));
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// How a container gets the plan's ports without root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// The plan redirects (client port, service port): the runtime publishes the low port and
    /// the container listens on the high one, with no privilege at all.
    Publish(Vec<(u16, u16)>),
    /// The plan lowers `net.ipv4.ip_unprivileged_port_start`: in a container that is the pod's
    /// own network namespace only (a "safe" sysctl in Kubernetes).
    Sysctl(u16),
    /// Any other grant: the capability, with every other one dropped.
    Capability,
}

impl Grant {
    pub fn of(plan: &Plan) -> Grant {
        if !plan.verify.redirects.is_empty() {
            return Grant::Publish(plan.verify.redirects.clone());
        }
        match (plan.method, plan.verify.ports.iter().min()) {
            (crate::plan::MethodId::Sysctl, Some(low)) => Grant::Sysctl(*low),
            _ => Grant::Capability,
        }
    }

    /// The ports the container listens on.
    pub fn container_ports(&self, plan: &Plan) -> Vec<u16> {
        match self {
            Grant::Publish(pairs) => pairs.iter().map(|(_, high)| *high).collect(),
            _ => plan.verify.ports.clone(),
        }
    }
}

/// The explanation every container export carries, true of Docker, Podman and Kubernetes.
pub const CONTAINER_NOTE: &str = "\
In a container with its own network namespace the port is often bindable already: Docker and
Podman set net.ipv4.ip_unprivileged_port_start=0 inside it. A host-network container shares the
host's namespace and its value, so it needs the grant as the host does.
A process that does not run as root gets an added capability only from a file capability on its
binary (the runtimes put added capabilities in the bounding set, not in the ambient set): the
image's binary must carry cap_net_bind_service=+ep (fabio's image does since v1.6.4). With the
capability dropped, such a binary fails to start with EPERM.";

/// A name Kubernetes and Compose accept (DNS-1123 label) for the service.
pub fn workload_name(plan: &Plan) -> String {
    let raw = plan
        .verify
        .service
        .clone()
        .or_else(|| plan.request.service_name())
        .unwrap_or_else(|| "service".into());
    let mut name: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.truncate(63);
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "service".into()
    } else {
        name
    }
}
