//! A plan is data: an ordered list of steps, each a primitive [`Action`] with the state it was
//! planned against. The same value is previewed, saved (`plan --out`), and executed, so what the
//! operator reviewed is exactly what runs.

pub mod action;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use action::{Action, FileState, State};

use crate::error::{Error, Result};
use crate::facts::Facts;
use crate::facts::users::UserDb;
use crate::methods::{self, Request, Risk};
use crate::root::Root;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub action: Action,
    /// The target's state when the plan was made.
    pub before: State,
    /// Already as planned: the executor skips it, so a repeated apply changes nothing.
    pub in_place: bool,
    // Rendered for readers of `plan --json`; recomputed, never trusted, when a plan is loaded.
    pub summary: String,
    /// Every program the step runs, as argv vectors.
    pub commands: Vec<Vec<String>>,
    pub diff: Option<String>,
    /// For a full systemd unit: its `systemd-analyze security` exposure and open points.
    pub exposure: Option<String>,
    pub undo: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub method: String,
    pub title: String,
    pub risk: Risk,
    pub request: Request,
    pub root: PathBuf,
    pub hostname: String,
    /// The network namespace (inode) whose state the plan changes, for methods that change
    /// per-namespace state; a rollback from another namespace is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<u64>,
    /// sha256 over the steps and the state each was planned against.
    pub fingerprint: String,
    pub warnings: Vec<String>,
    pub steps: Vec<Step>,
}

impl Step {
    fn new(action: Action, root: &Root, db: &UserDb) -> Result<Step> {
        let before = action.observe(root).map_err(|e| {
            Error::Internal(anyhow::anyhow!("cannot read {}: {e}", action.target()))
        })?;
        Ok(Step {
            in_place: action.satisfied(&before, db),
            summary: action.summary(&before, db),
            commands: action.commands(root),
            diff: action::diff(&action, root),
            exposure: action::exposure(&action),
            undo: action.undo(&before, root),
            before,
            action,
        })
    }
}

fn fingerprint(method: &str, root: &Root, hostname: &str, steps: &[Step]) -> String {
    let pairs: Vec<(&Action, &State)> = steps.iter().map(|s| (&s.action, &s.before)).collect();
    let doc =
        serde_json::json!({ "method": method, "root": root, "host": hostname, "steps": pairs });
    format!("sha256:{}", action::sha256(doc.to_string().as_bytes()))
}

impl Plan {
    /// Plans `req` against `facts`. Missing input is `Invalid`; a method that cannot work on this
    /// host is `Refused` with every reason.
    pub fn build(facts: &Facts, req: &Request) -> Result<Plan> {
        let method = methods::find(&req.method)?;
        let check = method.check(facts, req);
        if !check.input.is_empty() {
            return Err(Error::Invalid(format!(
                "method {} needs more input:\n  - {}",
                req.method,
                check.input.join("\n  - ")
            )));
        }
        if !check.blockers.is_empty() {
            return Err(Error::Refused(format!(
                "method {} is unavailable on this host:\n  - {}\nRun `lowport methods` to see \
                 the alternatives.",
                req.method,
                check.blockers.join("\n  - ")
            )));
        }
        let root = facts.root();
        let db = UserDb::new(&root);
        let mut steps = method
            .actions(facts, req)
            .into_iter()
            .map(|a| Step::new(a, &root, &db))
            .collect::<Result<Vec<_>>>()?;
        // Commands (reloads, restarts, rule loads) follow the state they act on: they are in
        // place only when every other step is, and their own check (if any) agrees.
        let is_command = |s: &Step| matches!(s.action, Action::RunCommands { .. });
        let rest_in_place = steps.iter().filter(|s| !is_command(s)).all(|s| s.in_place);
        for s in steps.iter_mut().filter(|s| is_command(s)) {
            s.in_place &= rest_in_place;
        }
        // chown clears file capabilities: a capability already on a file whose owner or mode
        // is about to change must be set again after it.
        let rechowned: Vec<std::path::PathBuf> = steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::SetOwnerMode { path, .. } if !s.in_place => Some(path.clone()),
                _ => None,
            })
            .collect();
        for s in &mut steps {
            if let Action::SetFileCap { path, .. } = &s.action
                && rechowned.contains(path)
            {
                s.in_place = false;
            }
        }
        Ok(Plan {
            format_version: FORMAT_VERSION,
            method: req.method.clone(),
            title: method.doc().title,
            risk: method.risk(),
            request: req.clone(),
            root: facts.root.clone(),
            hostname: facts.hostname.clone(),
            netns: facts.netns.filter(|_| method.per_netns()),
            fingerprint: fingerprint(&req.method, &root, &facts.hostname, &steps),
            warnings: check.warnings,
            steps,
        })
    }

    pub fn nothing_to_do(&self) -> bool {
        self.steps.iter().all(|s| s.in_place)
    }

    pub fn pending(&self) -> impl Iterator<Item = (usize, &Step)> {
        self.steps.iter().enumerate().filter(|(_, s)| !s.in_place)
    }

    /// Reads a saved plan; rejects other format versions.
    pub fn load(text: &str, origin: &str) -> Result<Plan> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::Invalid(format!("{origin} is not a lowport plan (JSON): {e}")))?;
        let version = v.get("format_version").and_then(|v| v.as_u64());
        if version != Some(u64::from(FORMAT_VERSION)) {
            return Err(Error::Invalid(format!(
                "{origin} has plan format_version {}, this lowport reads {FORMAT_VERSION}; \
                 make the plan again with this version",
                version.map_or("(none)".to_string(), |v| v.to_string())
            )));
        }
        serde_json::from_value(v)
            .map_err(|e| Error::Invalid(format!("{origin} is not a valid lowport plan: {e}")))
    }

    /// Re-plans this plan's request on current facts and refuses if anything differs: the host
    /// drifted since the plan was made (or the file was edited), so what was reviewed would not
    /// be what runs.
    pub fn ensure_current(&self, facts: &Facts) -> Result<()> {
        let stale = |why: String| {
            Err(Error::Refused(format!(
                "saved plan is stale: {why}. Nothing was changed; make a new plan with \
                 `lowport plan` and review it."
            )))
        };
        if facts.hostname != self.hostname {
            return stale(format!(
                "it was made on host '{}', this is '{}'",
                self.hostname, facts.hostname
            ));
        }
        if facts.root != self.root {
            return stale(format!(
                "it was made for root {}, not {}",
                self.root.display(),
                facts.root.display()
            ));
        }
        let now = Plan::build(facts, &self.request)?;
        if now.steps.len() != self.steps.len() {
            return stale("the method now plans a different number of steps".to_string());
        }
        for (old, new) in self.steps.iter().zip(&now.steps) {
            if old.action != new.action {
                return stale(format!(
                    "the step for {} is no longer the same",
                    old.action.target()
                ));
            }
            if old.before != new.before {
                return stale(format!(
                    "{} changed since the plan was made",
                    old.action.target()
                ));
            }
        }
        if now.fingerprint != self.fingerprint {
            return stale("its fingerprint does not match its content".to_string());
        }
        Ok(())
    }
}
