//! `authbind`: byport files for the service's user; the service runs under `authbind --deep`.

use std::path::PathBuf;

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::Facts;
use crate::facts::elf::ExecKind;
use crate::plan::Action;
use crate::plan::Target;

pub struct Authbind;

/// authbind(1): ports 512-1023 can carry host-based trust, so their files need a leading `!`.
pub fn byport(port: u16) -> PathBuf {
    let bang = if (512..1024).contains(&port) { "!" } else { "" };
    PathBuf::from(format!("/etc/authbind/byport/{bang}{port}"))
}

const META: Meta = Meta {
    id: MethodId::Authbind,
    markdown: include_str!("../../assets/methods/authbind.md"),
    risk: Risk::Medium,
    families: &["linux"],
};

/// The group that gets execute permission on the byport files: the user's primary group.
fn byport_group(facts: &Facts, req: &Request) -> String {
    let user = req.user.clone().unwrap_or_default();
    facts
        .accounts
        .user(&user)
        .and_then(|a| a.group.clone())
        .unwrap_or(user)
}

impl Method for Authbind {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, facts: &Facts, req: &Request) -> Check {
        let mut c = Check::default();
        c.grant_ports(req, true);
        if facts.tool("authbind").is_none() {
            c.blockers
                .push("authbind is not installed (Debian/Ubuntu: apt install authbind)".into());
        }
        match &req.user {
            None => c
                .input
                .push("the user the service runs as: --user NAME".into()),
            Some(u) if facts.accounts.user(u).is_none() => {
                c.input.push(format!(
                    "user '{u}' does not exist; create it or give another --user"
                ));
            }
            Some(_) => {}
        }
        let Some(b) = &facts.binary else {
            c.input
                .push("the binary: --binary PATH or --binary NAME".into());
            return c;
        };
        let file = b.path.display();
        match b.exec {
            ExecKind::Elf { go: true, .. } => c.blockers.push(format!(
                "{file} is a Go program: it makes the bind system call itself, so authbind's \
                 preloaded library never sees it"
            )),
            ExecKind::Elf {
                static_linked: true,
                ..
            } => c.blockers.push(format!(
                "{file} is statically linked: no dynamic loader, so authbind's preloaded library \
                 is never loaded"
            )),
            _ => {}
        }
        for u in b.units.iter().filter(|u| u.no_new_privileges) {
            c.blockers.push(format!(
                "unit {} starts it with NoNewPrivileges= (or DynamicUser=): the kernel ignores the \
                 setuid bit of authbind's helper there",
                u.name
            ));
        }
        if let Some(u) = &req.user {
            let g = byport_group(facts, req);
            if &g != u {
                c.warnings.push(format!(
                    "the byport files belong to root and the group {g} ({u}'s primary group): \
                     every member of {g} may bind the port(s) through authbind too"
                ));
            }
        }
        c.warnings
            .push(format!("start the service as: authbind --deep {file} ARGS"));
        c
    }

    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action> {
        let group = byport_group(facts, req);
        // Root owns the file: the service user may execute it (through its group) but never
        // chmod it open to other users.
        req.grant_ports()
            .unwrap_or_default()
            .into_iter()
            .map(|port| Action::WriteFile {
                path: byport(port),
                content: String::new(),
                mode: 0o550,
                owner: "root".into(),
                group: group.clone(),
            })
            .collect()
    }

    fn target(&self, _facts: &Facts, req: &Request) -> Target {
        let ports = req.grant_ports().unwrap_or_default();
        Target {
            byport: ports.iter().map(|p| byport(*p)).collect(),
            ports,
            user: req.user.clone(),
            authbind: true,
            ..Target::default()
        }
    }
}
