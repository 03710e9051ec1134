//! The catalog of approaches. Each method is one file: pure functions from facts and the
//! operator's request to an assessment (can it work here, and why not) and a list of actions.
//! Explanations and risks are data in `assets/methods/<id>.md`, reviewed like documentation.

mod authbind;
mod freebsd_portacl;
mod freebsd_reservedhigh;
mod launchd;
mod npf;
mod pf;
mod pf_freebsd;
mod pf_macos;
mod pf_openbsd;
mod redirect;
mod redirect_iptables;
mod redirect_nft;
mod setcap;
mod smf;
mod socket_activation;
mod solaris_defaultpriv;
mod sysctl;
mod systemd;
mod windows;

use serde::{Deserialize, Serialize};

use crate::facts::Facts;
use crate::facts::platform::Wanted;
pub use crate::plan::Risk;
use crate::plan::{Action, Target};
pub use crate::request::{MethodId, Request, ServiceOptions, Want};

/// Every known method, in the order they are recommended.
static CATALOG: &[&dyn Method] = &[
    &systemd::Systemd,
    &setcap::Setcap,
    &redirect_nft::RedirectNft,
    &redirect_iptables::RedirectIptables,
    &authbind::Authbind,
    &sysctl::Sysctl,
    &socket_activation::SocketActivation,
    &freebsd_portacl::FreebsdPortacl,
    &pf_freebsd::PfFreebsd,
    &freebsd_reservedhigh::FreebsdReservedhigh,
    &pf_openbsd::PfOpenbsd,
    &npf::Npf,
    &smf::Smf,
    &solaris_defaultpriv::SolarisDefaultpriv,
    &launchd::Launchd,
    &pf_macos::PfMacos,
    &windows::Windows,
];

/// The outcome of asking a method whether it can serve a request on these facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What is missing or wrong in the operator's input (exit 2 when planning).
    pub input: Vec<String>,
    /// Why the method cannot work on this host (exit 7 when planning).
    pub blockers: Vec<String>,
    /// True and specific consequences of going ahead.
    pub warnings: Vec<String>,
}

impl Check {
    /// Input checks of the methods that grant ports: no `LOW:HIGH` pair, and (when `required`)
    /// at least one port.
    pub fn grant_ports(&mut self, req: &Request, required: bool) {
        match req.grant_ports() {
            Err(e) => self.input.push(e),
            Ok(p) if p.is_empty() && required => {
                self.input.push("the ports: --port N (repeatable)".into());
            }
            Ok(_) => {}
        }
    }
}

/// Explanation texts, parsed from the method's markdown asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doc {
    pub title: String,
    pub summary: String,
    pub how: String,
    pub scope: String,
    pub persistence: String,
    pub undo: String,
    pub risks: Vec<String>,
}

impl Doc {
    /// The `# Title` alone, as [`Doc::parse`] reads it (the last such line), for a plan, which
    /// needs nothing else of the text.
    pub fn title(md: &str) -> String {
        md.lines()
            .filter_map(|l| l.strip_prefix("# "))
            .next_back()
            .map_or_else(String::new, |t| t.trim().to_string())
    }

    /// Parses `# Title` then `## Section` blocks; `## Risks` is a `- ` list.
    pub fn parse(md: &str) -> Doc {
        let mut sections: Vec<(String, String)> = Vec::new();
        for line in md.lines() {
            if let Some(t) = line.strip_prefix("## ") {
                sections.push((t.trim().to_lowercase(), String::new()));
            } else if line.starts_with("# ") {
                // The title, read by `Doc::title`.
            } else if let Some((_, body)) = sections.last_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        let get = |name: &str| {
            let body = sections
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, b)| b.as_str());
            // Paragraph lines are joined; blank lines separate paragraphs.
            body.unwrap_or("")
                .split("\n\n")
                .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join("\n\n")
        };
        let risks = sections
            .iter()
            .find(|(n, _)| n == "risks")
            .map(|(_, b)| {
                b.split("\n- ")
                    .map(|r| {
                        r.trim_start_matches("- ")
                            .split_whitespace()
                            .collect::<Vec<_>>()
                    })
                    .filter(|w| !w.is_empty())
                    .map(|w| w.join(" "))
                    .collect()
            })
            .unwrap_or_default();
        Doc {
            title: Doc::title(md),
            summary: get("summary"),
            how: get("how it works"),
            scope: get("scope"),
            persistence: get("persistence"),
            undo: get("undo"),
            risks,
        }
    }
}

/// What a method reads of a host of its OS family beyond the common facts; the union over a
/// family's methods is what detection (and the facts script) collects into `Facts::platform`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    /// Configuration files, read whole (the old side of a diff, the text a merge starts from).
    pub files: &'static [&'static str],
    /// Kernel settings, read by name.
    pub sysctls: &'static [&'static str],
    /// Kernel modules whose presence matters.
    pub modules: &'static [&'static str],
    /// Programs its steps and checks run (each also in `programs::STEP_PROGRAMS` when a step
    /// runs it), looked up in the system directories into `Facts::tools`.
    pub programs: &'static [&'static str],
}

/// Everything the methods of `family` read of a host of it (sorted, without duplicates).
pub fn needs_of(family: &str) -> Wanted {
    let mut w = Wanted::default();
    for m in CATALOG.iter().filter(|m| m.families().contains(&family)) {
        let n = m.needs();
        w.files.extend(n.files);
        w.sysctls.extend(n.sysctls);
        w.modules.extend(n.modules);
        w.programs.extend(n.programs);
    }
    for v in [
        &mut w.files,
        &mut w.sysctls,
        &mut w.modules,
        &mut w.programs,
    ] {
        v.sort_unstable();
        v.dedup();
    }
    w
}

/// What identifies a method; each method file holds one as a constant.
pub struct Meta {
    /// The id used on the command line and in plans.
    pub id: MethodId,
    /// The markdown explanation (assets/methods/<id>.md).
    pub markdown: &'static str,
    pub risk: Risk,
    /// The OS families (Rust target_os names) the method exists on.
    pub families: &'static [&'static str],
}

pub trait Method: Sync {
    fn meta(&self) -> &'static Meta;
    fn check(&self, facts: &Facts, req: &Request) -> Check;
    /// The actions that carry the request out; only called when `check` found no blocker.
    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action>;
    /// What `verify` must prove once the actions ran.
    fn target(&self, facts: &Facts, req: &Request) -> Target;

    /// User names, beyond the request's own `--user`, whose accounts the check looks at; they
    /// are looked up once, as facts.
    fn accounts(&self, _req: &Request) -> Vec<String> {
        Vec::new()
    }

    /// The method changes per-network-namespace state (a sysctl under net., firewall rules): a
    /// run records the namespace, and a rollback from another one is refused.
    fn per_netns(&self) -> bool {
        false
    }

    /// Where every user may already bind the ports on these facts (no grant is needed at all),
    /// why, and what that means: said before the methods by every front end.
    fn already_open(&self, _facts: &Facts, _want: &Want) -> Option<String> {
        None
    }

    fn id(&self) -> MethodId {
        self.meta().id
    }

    fn risk(&self) -> Risk {
        self.meta().risk
    }

    fn families(&self) -> &'static [&'static str] {
        self.meta().families
    }

    /// What the method reads of its OS beyond the common facts (configuration files, kernel
    /// settings, modules): gathered live there, or by `lowport facts-script` on the target.
    fn needs(&self) -> Needs {
        Needs::default()
    }

    fn doc(&self) -> Doc {
        Doc::parse(self.meta().markdown)
    }
}

pub use authbind::byport as authbind_file;
pub use redirect::{input_drops, nat_before};

/// The first note of a method of the facts' family that says the ports are open to every user
/// already (see [`Method::already_open`]).
pub fn already_open(facts: &Facts, want: &Want) -> Option<String> {
    CATALOG
        .iter()
        .filter(|m| m.families().contains(&facts.os.family.as_str()))
        .find_map(|m| m.already_open(facts, want))
}

/// Every user name a request needs as a fact: for `method`, or for any method when none is
/// chosen yet. Only these are looked up: a name-service lookup loads the NSS modules, which is
/// not free.
pub fn accounts_for(want: &Want, method: Option<MethodId>) -> Vec<String> {
    let mut names: Vec<String> = want.user.iter().cloned().collect();
    for m in CATALOG
        .iter()
        .filter(|m| method.is_none_or(|id| m.id() == id))
    {
        names.extend(m.accounts(&Request::new(m.id(), want.clone())));
    }
    names.sort();
    names.dedup();
    names
}

pub fn all() -> &'static [&'static dyn Method] {
    CATALOG
}

/// The implementation of a method id (a test holds this and the catalog together).
pub fn find(id: MethodId) -> &'static dyn Method {
    match id {
        MethodId::Systemd => &systemd::Systemd,
        MethodId::Setcap => &setcap::Setcap,
        MethodId::RedirectNft => &redirect_nft::RedirectNft,
        MethodId::RedirectIptables => &redirect_iptables::RedirectIptables,
        MethodId::Authbind => &authbind::Authbind,
        MethodId::Sysctl => &sysctl::Sysctl,
        MethodId::SocketActivation => &socket_activation::SocketActivation,
        MethodId::FreebsdPortacl => &freebsd_portacl::FreebsdPortacl,
        MethodId::PfFreebsd => &pf_freebsd::PfFreebsd,
        MethodId::FreebsdReservedhigh => &freebsd_reservedhigh::FreebsdReservedhigh,
        MethodId::PfOpenbsd => &pf_openbsd::PfOpenbsd,
        MethodId::Npf => &npf::Npf,
        MethodId::Smf => &smf::Smf,
        MethodId::SolarisDefaultpriv => &solaris_defaultpriv::SolarisDefaultpriv,
        MethodId::Launchd => &launchd::Launchd,
        MethodId::PfMacos => &pf_macos::PfMacos,
        MethodId::Windows => &windows::Windows,
    }
}

/// A method as `lowport methods` shows it: explanation, risk and availability on these facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub id: MethodId,
    pub family: String,
    pub risk: Risk,
    pub available: bool,
    #[serde(flatten)]
    pub doc: Doc,
    #[serde(flatten)]
    pub check: Check,
}

/// The method lowport recommends among assessed ones: the first available, in catalog order
/// (safest first). Every front end asks this one function.
pub fn recommended(list: &[Assessment]) -> Option<usize> {
    list.iter().position(|a| a.available)
}

/// Every method for the facts' OS family, assessed against what the operator wants.
pub fn assess(facts: &Facts, want: &Want) -> Vec<Assessment> {
    CATALOG
        .iter()
        .filter(|m| m.families().contains(&facts.os.family.as_str()))
        .map(|m| {
            let check = m.check(facts, &Request::new(m.id(), want.clone()));
            Assessment {
                id: m.id(),
                family: facts.os.family.clone(),
                risk: m.risk(),
                available: check.blockers.is_empty(),
                doc: m.doc(),
                check,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_doc_has_every_section() {
        for m in all() {
            let d = m.doc();
            for (name, text) in [
                ("title", &d.title),
                ("summary", &d.summary),
                ("how it works", &d.how),
                ("scope", &d.scope),
                ("persistence", &d.persistence),
                ("undo", &d.undo),
            ] {
                assert!(!text.is_empty(), "{}: empty {name}", m.id());
            }
            assert!(d.risks.len() >= 2, "{}: risks {:?}", m.id(), d.risks);
        }
    }

    #[test]
    fn every_id_has_exactly_one_method_in_recommended_order() {
        let ids: Vec<MethodId> = all().iter().map(|m| m.id()).collect();
        assert_eq!(ids, MethodId::ALL);
        for id in MethodId::ALL {
            assert_eq!(find(*id).id(), *id);
            assert!(
                id.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{id}"
            );
        }
    }
}
