//! `setcap`: the file capability CAP_NET_BIND_SERVICE on the resolved binary.

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::Facts;
use crate::facts::acl;
use crate::facts::caps::CAP_NET_BIND_SERVICE;
use crate::facts::elf::ExecKind;
use crate::plan::Action;
use crate::plan::Target;

pub struct Setcap;

pub const CAPS: &str = "cap_net_bind_service=+ep";

/// Filesystems known to drop or not honour `security.capability`.
const WEAK_FS: &[&str] = &["nfs", "nfs4", "overlay", "cifs", "smb3", "9p", "vboxsf"];

/// The mode after restricting execution to root and the service's group: group r-x, others none,
/// and never setuid/setgid (that would be a different privilege altogether).
fn restricted_mode(mode: u32) -> u32 {
    (mode & 0o700) | 0o050
}

const META: Meta = Meta {
    id: MethodId::Setcap,
    markdown: include_str!("../../assets/methods/setcap.md"),
    risk: Risk::Medium,
    families: &["linux"],
};

impl Method for Setcap {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, facts: &Facts, req: &Request) -> Check {
        let mut c = Check::default();
        c.grant_ports(req, false);
        if facts.tool("setcap").is_none() {
            c.blockers.push(
                "setcap is not installed (Debian/Ubuntu: apt install libcap2-bin; \
                 RHEL: dnf install libcap)"
                    .into(),
            );
        }
        if facts.kernel_no_file_caps {
            c.blockers.push(
                "the kernel was booted with no_file_caps: it ignores every file capability".into(),
            );
        }
        if !facts.bounding_set_has_net_bind_service {
            c.blockers.push(
                "CAP_NET_BIND_SERVICE is not in the capability bounding set here (a container \
                 that dropped it?): executing a file marked +ep would fail with EPERM"
                    .into(),
            );
        }
        let db = &facts.accounts;
        if let Some(g) = &req.group
            && db.group_gid(g).is_none()
        {
            c.input.push(format!(
                "group '{g}' does not exist; create it or drop --group"
            ));
        }
        let user = req.user.as_deref().map(|u| (u, db.user(u)));
        if let Some((u, None)) = user {
            c.input.push(format!(
                "user '{u}' does not exist; create it or drop --user"
            ));
        }
        let Some(b) = &facts.binary else {
            c.input
                .push("the binary to mark: --binary PATH or --binary NAME".into());
            return c;
        };
        let file = b.path.display();
        match &b.exec {
            ExecKind::Script { interpreter } => c.blockers.push(format!(
                "{file} is a script run by {interpreter}: the kernel takes capabilities from the \
                 interpreter, never from a script, and marking the interpreter would let every \
                 script it runs bind low ports; give the service a systemd unit with \
                 AmbientCapabilities= instead"
            )),
            ExecKind::Other => {
                c.blockers.push(format!("{file} is not an ELF executable"));
            }
            ExecKind::Elf { static_linked, .. } => {
                if let Some(i) = &b.interpreter {
                    c.blockers.push(format!(
                        "{file} is the general-purpose interpreter {i}: a capability on it would \
                         let every program it runs bind low ports"
                    ));
                }
                if !static_linked {
                    c.warnings.push(format!(
                        "{file} is dynamically linked: with the capability it runs in secure-exec \
                         mode, so the loader ignores LD_PRELOAD and LD_LIBRARY_PATH"
                    ));
                }
            }
        }
        if !b.symlinks.is_empty() {
            c.warnings.push(format!(
                "{} is a symbolic link; lowport marks the file it resolves to, {file}",
                b.symlinks[0].display()
            ));
        }
        for why in &b.writable_by_non_root {
            c.blockers.push(format!(
                "{why}: a non-root user could swap in their own program and get the capability"
            ));
        }
        if let Some(m) = &b.mount {
            if m.nosuid() {
                c.blockers.push(format!(
                    "{file} is on a nosuid mount ({}): the kernel ignores file capabilities there",
                    m.mount_point.display()
                ));
            }
            if WEAK_FS.contains(&m.fstype.as_str()) {
                c.warnings.push(format!(
                    "{file} is on {}, where file capabilities may not be stored or honoured",
                    m.fstype
                ));
            }
        }
        if let Some(caps) = &b.capability {
            if caps.grants(CAP_NET_BIND_SERVICE) && caps.permitted == 1 << CAP_NET_BIND_SERVICE {
                // Already in place: planning yields a no-op.
            } else {
                c.blockers.push(format!(
                    "{file} already carries the capabilities {}; setcap would replace that whole \
                     set, so lowport leaves it to you to merge them",
                    caps.text
                ));
            }
        }
        for u in b.units.iter().filter(|u| u.no_new_privileges) {
            c.blockers.push(format!(
                "unit {} starts this binary with NoNewPrivileges= (or DynamicUser=), so the \
                 kernel ignores the file capability; give the unit AmbientCapabilities= \
                 instead",
                u.name
            ));
        }
        // Named ACL entries keep their execute right through chown and chmod.
        let runners = b
            .acl
            .iter()
            .filter(|e| e.perm & acl::EXECUTE != 0 && e.id != 0);
        for e in runners {
            let flag = if e.kind == "user" { "u" } else { "g" };
            match &req.group {
                Some(g) if !(e.kind == "group" && e.name == *g) => c.blockers.push(format!(
                    "the ACL of {file} lets {} {} execute it ({}), so the capability would not be \
                     limited to root and group {g}; lowport refuses rather than edit the ACL: \
                     remove the entry with `setfacl -x {flag}:{} {file}`",
                    e.kind,
                    e.name,
                    e.text(),
                    e.name
                )),
                Some(_) => {}
                None => c.warnings.push(format!(
                    "the ACL of {file} lets {} {} execute it ({}): they get the capability too",
                    e.kind,
                    e.name,
                    e.text()
                )),
            }
        }
        let mode = match &req.group {
            Some(g) => {
                c.warnings.push(format!(
                    "execution is restricted to root and group {g} (chown root:{g}, chmod {:04o}); \
                     only they get the capability",
                    restricted_mode(b.mode)
                ));
                restricted_mode(b.mode)
            }
            None => {
                if b.mode & 0o001 != 0 {
                    c.warnings.push(format!(
                        "{file} is executable by every user (mode {:04o}): each of them could \
                         bind any port below 1024 with it; give --group to restrict execution",
                        b.mode
                    ));
                }
                b.mode
            }
        };
        if let Some((u, Some(acct))) = user {
            let gid = req
                .group
                .as_deref()
                .and_then(|g| db.group_gid(g))
                .unwrap_or(b.gid);
            let uid = if req.group.is_some() { 0 } else { b.uid };
            if !acct.can_execute(uid, gid, mode) {
                c.blockers.push(format!(
                    "user {u} could not execute {file} (mode {mode:04o}); add {u} to the file's \
                     group or give --group with a group {u} belongs to"
                ));
            }
        }
        c.warnings.push(
            "the capability is lost whenever the binary is replaced (package upgrade, new \
             release): run lowport again after every upgrade, or have systemd grant it with \
             AmbientCapabilities=, which survives upgrades"
                .into(),
        );
        c.warnings.push(
            "the capability covers every port below 1024, not only the ports you asked for".into(),
        );
        c
    }

    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action> {
        let Some(b) = &facts.binary else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(g) = &req.group {
            // chown clears file capabilities, so ownership comes first.
            out.push(Action::SetOwnerMode {
                path: b.path.clone(),
                owner: "root".into(),
                group: g.clone(),
                mode: restricted_mode(b.mode),
            });
        }
        out.push(Action::SetFileCap {
            path: b.path.clone(),
            caps: CAPS.into(),
        });
        out
    }

    fn target(&self, facts: &Facts, req: &Request) -> Target {
        Target {
            ports: req.grant_ports().unwrap_or_default(),
            user: req.user.clone(),
            binary: facts.binary.as_ref().map(|b| b.requested.clone()),
            service: None,
            ..Target::default()
        }
    }
}
