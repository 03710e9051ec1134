//! Drift: whether what an applied run changed is still in place. Each target the run left is
//! read again and compared with the state the journal recorded after the step ran; a target
//! that differs but still has the planned effect (a unit rewritten with the same content, a
//! binary upgraded and given its capability again by hand) is in place. The runner adds the
//! run's own verification and the fix.

use serde::{Deserialize, Serialize};

use crate::apply::Run;
use crate::error::Result;
use crate::facts::LiveHost;
use crate::plan::{Action, State};
use crate::root::Root;

/// One target a run changed, checked now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCheck {
    /// The step of the run's plan that last changed the target (from 1).
    pub step: usize,
    pub target: String,
    pub in_place: bool,
    /// What was found, in one sentence.
    pub detail: String,
}

/// Reads every target `run` left (under the run's own root) and says whether it still is as
/// the step meant it to be.
pub fn steps(run: &Run) -> Result<Vec<StepCheck>> {
    let root = Root::new(run.plan.root.clone());
    let host = LiveHost::new(root.clone());
    let mut out = Vec::new();
    for (step, action, after) in run.left() {
        let now = action.observe(&root)?;
        let (in_place, detail) = if &now == after {
            (
                true,
                format!("{}: as run {} left it", action.target(), run.id),
            )
        } else if action.satisfied(&now, &host) {
            // A binary upgraded loses its capability and is given it again by hand; one whose
            // content changed while it kept it was written without clearing it (a shared
            // mapping does not): either way it is in place, and the second needs a look.
            let caution = match action {
                Action::SetFileCap { .. } => {
                    "; it was written since (its inode, size or mtime differ): if no one \
                     upgraded it and gave the capability again by hand, find out who wrote it \
                     (a write through a shared mapping keeps the capability)"
                }
                _ => "",
            };
            (
                true,
                format!(
                    "{}: changed since run {}, still as planned{caution}",
                    action.target(),
                    run.id
                ),
            )
        } else {
            (false, lost(action, after, &now))
        };
        out.push(StepCheck {
            step,
            target: action.target(),
            in_place,
            detail,
        });
    }
    Ok(out)
}

/// Says how a target lost what its step did: `after` is what the step left, `now` what is
/// there.
fn lost(action: &Action, after: &State, now: &State) -> String {
    let target = action.target();
    match (action, now) {
        (_, State::Unknown) => format!("{target} cannot be read"),
        (_, State::File(f)) if !f.exists => format!("{target} is gone"),
        (Action::SetFileCap { .. }, State::File(_)) => format!(
            "{target} no longer carries cap_net_bind_service (a replaced or upgraded binary \
             loses its file capabilities)"
        ),
        (Action::WriteFile { .. }, State::File(f)) if matches!(after, State::File(a) if a.sha256 != f.sha256) =>
        {
            format!("{target} was edited: its content is not what lowport wrote")
        }
        (_, State::File(f)) => format!(
            "{target} now has mode {} owner {}:{}, not what lowport set",
            f.mode.map_or("?".into(), |m| format!("{m:04o}")),
            f.uid.map_or("?".into(), |u| u.to_string()),
            f.gid.map_or("?".into(), |g| g.to_string()),
        ),
        (Action::SetSysctl { value, .. }, State::Sysctl { value: now }) => format!(
            "{target} is {}, lowport set {value}",
            now.as_deref().unwrap_or("absent")
        ),
        (Action::Symlink { .. }, State::Link { target: None }) => format!("{target} is gone"),
        (Action::Symlink { .. }, State::Link { target: Some(t) }) => {
            format!("{target} now points to {}", t.display())
        }
        (Action::CreateUser { name }, _) => format!("the user {name} no longer exists"),
        (Action::RunCommands { check, .. }, _) => format!(
            "{target}: its check `{}` fails now",
            check.as_deref().map(shell_words::join).unwrap_or_default()
        ),
        _ => format!("{target} is no longer as lowport left it"),
    }
}
