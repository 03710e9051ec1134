//! A plan is data: an ordered list of steps, each a primitive [`Action`] with the state it was
//! planned against. The same value is previewed, saved (`plan --out`), and executed, so what the
//! operator reviewed is exactly what runs.

pub mod action;
pub mod target;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use action::{Action, FileState, State};
pub use target::Target;

use crate::error::{Error, Result};
pub use crate::request::{MethodId, Request};

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
    pub method: MethodId,
    pub title: String,
    pub risk: Risk,
    pub request: Request,
    pub root: PathBuf,
    pub hostname: String,
    /// The target's OS family (Rust's target_os names); plans saved before it existed were
    /// Linux plans.
    #[serde(default = "linux")]
    pub family: String,
    /// The network namespace (inode) whose state the plan changes, for methods that change
    /// per-namespace state; a rollback from another namespace is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<u64>,
    /// sha256 over the steps, the state each was planned against, and the verification target.
    pub fingerprint: String,
    pub warnings: Vec<String>,
    pub steps: Vec<Step>,
    /// What verification must prove once the steps ran. Runs journaled by an older lowport
    /// lack it and still roll back; a saved plan without it is stale (it re-plans differently).
    #[serde(default)]
    pub verify: Target,
    /// Made from a facts document, not this machine: for review and export, never applied.
    #[serde(default)]
    pub from_facts: bool,
}

fn linux() -> String {
    "linux".into()
}

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

impl Plan {
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
        let plan: Plan = serde_json::from_value(v)
            .map_err(|e| Error::Invalid(format!("{origin} is not a valid lowport plan: {e}")))?;
        if plan.method != plan.request.method {
            return Err(Error::Invalid(format!(
                "{origin} names method {} but its request asks for {}: it was edited; make the \
                 plan again",
                plan.method, plan.request.method
            )));
        }
        // The request is re-planned from, so it is checked exactly as typed input is.
        plan.request
            .validate()
            .map_err(|e| Error::Invalid(format!("{origin}: the plan's request is invalid: {e}")))?;
        Ok(plan)
    }
}
