//! What the redirect methods share: the `LOW:HIGH` pairs, their common risks, and the oneshot
//! unit that loads their rules at boot after the distribution's firewall.

use std::path::Path;

use super::{Check, Request};
use crate::facts::{Facts, UNIT_MARKER};
use crate::plan::Action;
use crate::plan::Target;
use crate::validate::exec_word;

/// Checks every redirect method makes; returns the pairs when the input is usable.
pub fn check(
    facts: &Facts,
    req: &Request,
    tool: &str,
    package: &str,
    c: &mut Check,
) -> Vec<(u16, u16)> {
    match facts.tool(tool) {
        None => c.blockers.push(format!(
            "{tool} is not installed (Debian/Ubuntu: apt install {package})"
        )),
        // The tool's path goes into the boot unit's command lines.
        Some(p) => {
            if let Err(e) = exec_word("tool path", &p.to_string_lossy()) {
                c.input.push(e);
            }
        }
    }
    let pairs = match req.redirect_pairs() {
        Ok(p) => p,
        Err(e) => {
            c.input.push(e);
            return Vec::new();
        }
    };
    for (low, high) in &pairs {
        c.warnings.push(format!(
            "while the service is down, any local user can listen on {high} and receive the \
             clients of port {low}"
        ));
        c.warnings.push(format!(
            "port {high} stays reachable directly unless a firewall filters it"
        ));
    }
    if facts.tool("systemctl").is_none() {
        c.warnings
            .push("no systemd: the rules are not restored at boot".into());
    }
    pairs
}

/// The oneshot unit (and its enable link) that restores the rules at boot, after the firewall
/// services that would otherwise flush them. None without systemd.
pub fn boot_unit(
    facts: &Facts,
    name: &str,
    what: &str,
    start: &[Vec<String>],
    stop: &[Vec<String>],
) -> Vec<Action> {
    if facts.tool("systemctl").is_none() {
        return Vec::new();
    }
    let line = |argv: &Vec<String>| -> Result<String, String> {
        let words = argv
            .iter()
            .map(|w| exec_word("command word", w))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(words.join(" "))
    };
    let mut unit = format!(
        "{UNIT_MARKER}; `lowport rollback` removes it.\n[Unit]\nDescription=lowport: {what}\n\
         After=nftables.service firewalld.service docker.service network-pre.target\n\
         Wants=network-pre.target\nBefore=network.target\n\n[Service]\nType=oneshot\n\
         RemainAfterExit=yes\n"
    );
    // Every word is a constant or a tool path `check` accepted.
    for argv in start {
        let Ok(l) = line(argv) else { return Vec::new() };
        unit.push_str(&format!("ExecStart={l}\n"));
    }
    for argv in stop {
        let Ok(l) = line(argv) else { return Vec::new() };
        unit.push_str(&format!("ExecStop=-{l}\n"));
    }
    unit.push_str("\n[Install]\nWantedBy=multi-user.target\n");
    let path = Path::new("/etc/systemd/system").join(format!("{name}.service"));
    vec![
        Action::WriteFile {
            path: path.clone(),
            content: unit,
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
        },
        Action::Symlink {
            path: Path::new("/etc/systemd/system/multi-user.target.wants")
                .join(format!("{name}.service")),
            target: path,
        },
    ]
}

pub fn target(req: &Request) -> Target {
    Target {
        redirects: req.redirect_pairs().unwrap_or_default(),
        ..Target::default()
    }
}
