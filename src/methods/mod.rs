//! The catalog of approaches. Each method is one file: pure functions from facts and the
//! operator's request to an assessment (can it work here, and why not) and a list of actions.
//! Explanations and risks are data in `assets/methods/<id>.md`, reviewed like documentation.

mod authbind;
mod redirect;
mod redirect_iptables;
mod redirect_nft;
mod setcap;
mod socket_activation;
mod sysctl;
mod systemd;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::facts::Facts;
use crate::plan::Action;
use crate::validate::PortArg;
use crate::verify::Target;

/// Every known method, in the order they are recommended.
static CATALOG: &[&dyn Method] = &[
    &systemd::Systemd,
    &setcap::Setcap,
    &redirect_nft::RedirectNft,
    &redirect_iptables::RedirectIptables,
    &authbind::Authbind,
    &sysctl::Sysctl,
    &socket_activation::SocketActivation,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl std::fmt::Display for Risk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        })
    }
}

/// What the operator asks for; validated by the CLI layer before it gets here.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Request {
    pub method: String,
    pub binary: Option<String>,
    pub ports: Vec<PortArg>,
    pub user: Option<String>,
    pub group: Option<String>,
    /// Options of methods that run the binary as a service (systemd).
    #[serde(default)]
    pub service: ServiceOptions,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceOptions {
    /// The unit name without `.service`; defaults to the binary's file name.
    pub name: Option<String>,
    /// `DynamicUser=yes` instead of a named user.
    pub dynamic_user: bool,
    /// Arguments for the binary in ExecStart.
    pub args: Vec<String>,
    /// Relaxations of the sandbox, each with its cost explained in the plan.
    pub writable: Vec<std::path::PathBuf>,
    pub state_directory: Option<String>,
    pub allow_jit: bool,
}

impl Request {
    /// The systemd unit name: `--service`, or the binary's file name.
    pub fn service_name(&self) -> Option<String> {
        self.service.name.clone().or_else(|| {
            let b = self.binary.as_deref()?;
            let name = std::path::Path::new(b).file_name()?.to_str()?;
            crate::validate::service_name(name).ok()
        })
    }

    /// The ports to grant; `LOW:HIGH` pairs belong to redirect methods and are refused here.
    pub fn grant_ports(&self) -> std::result::Result<Vec<u16>, String> {
        let mut out = Vec::new();
        for p in &self.ports {
            match p {
                PortArg::Grant(n) => out.push(*n),
                PortArg::Redirect { public, .. } => {
                    return Err(format!(
                        "--port {p} is a redirect (LOW:HIGH); method {} grants ports: give \
                         --port {public}",
                        self.method
                    ));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

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
    /// Parses `# Title` then `## Section` blocks; `## Risks` is a `- ` list.
    pub fn parse(md: &str) -> Doc {
        let mut title = String::new();
        let mut sections: Vec<(String, String)> = Vec::new();
        for line in md.lines() {
            if let Some(t) = line.strip_prefix("## ") {
                sections.push((t.trim().to_lowercase(), String::new()));
            } else if let Some(t) = line.strip_prefix("# ") {
                title = t.trim().to_string();
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
            title,
            summary: get("summary"),
            how: get("how it works"),
            scope: get("scope"),
            persistence: get("persistence"),
            undo: get("undo"),
            risks,
        }
    }
}

/// What identifies a method; each method file holds one as a constant.
pub struct Meta {
    /// Short kebab-case id used on the command line.
    pub id: &'static str,
    /// The markdown explanation (assets/methods/<id>.md).
    pub markdown: &'static str,
    pub risk: Risk,
    /// The OS family (Rust target_os name) the method exists on.
    pub family: &'static str,
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

    fn id(&self) -> &'static str {
        self.meta().id
    }

    fn risk(&self) -> Risk {
        self.meta().risk
    }

    fn family(&self) -> &'static str {
        self.meta().family
    }

    fn doc(&self) -> Doc {
        Doc::parse(self.meta().markdown)
    }
}

pub use authbind::byport as authbind_file;
pub use redirect::{input_drops, nat_before};
pub use sysctl::already_open;

/// Every user name the request's method (or, without one, any method) needs as a fact. Only
/// these are looked up: a name-service lookup loads the NSS modules, which is not free.
pub fn accounts_for(req: &Request) -> Vec<String> {
    let mut names: Vec<String> = req.user.iter().cloned().collect();
    for m in CATALOG
        .iter()
        .filter(|m| req.method.is_empty() || m.id() == req.method)
    {
        names.extend(m.accounts(req));
    }
    names.sort();
    names.dedup();
    names
}

pub fn all() -> &'static [&'static dyn Method] {
    CATALOG
}

pub fn find(id: &str) -> Result<&'static dyn Method> {
    CATALOG
        .iter()
        .copied()
        .find(|m| m.id() == id)
        .ok_or_else(|| {
            let ids: Vec<_> = CATALOG.iter().map(|m| m.id()).collect();
            Error::Invalid(format!(
                "unknown method '{id}'; known methods: {}",
                ids.join(", ")
            ))
        })
}

/// A method as `lowport methods` shows it: explanation, risk and availability on these facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub id: String,
    pub family: String,
    pub risk: Risk,
    pub available: bool,
    #[serde(flatten)]
    pub doc: Doc,
    #[serde(flatten)]
    pub check: Check,
}

/// Every method for the facts' OS family, assessed against the request.
pub fn assess(facts: &Facts, req: &Request) -> Vec<Assessment> {
    CATALOG
        .iter()
        .filter(|m| m.family() == facts.os.family)
        .map(|m| {
            let req = Request {
                method: m.id().to_string(),
                ..req.clone()
            };
            let check = m.check(facts, &req);
            Assessment {
                id: m.id().to_string(),
                family: m.family().to_string(),
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
    fn ids_are_unique_kebab_case() {
        let ids: Vec<_> = all().iter().map(|m| m.id()).collect();
        for id in &ids {
            assert!(
                id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{id}"
            );
            assert_eq!(ids.iter().filter(|i| *i == id).count(), 1, "{id} twice");
        }
    }
}
