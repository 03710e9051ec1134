//! The executor: runs a plan's pending steps under the lock, journaling a snapshot before each,
//! and undoes completed steps in reverse on failure, signal, or a later `rollback`. It reports
//! progress as [`Event`]s so any front end (plain lines, JSON, TUI) can show it.

pub mod change;
pub mod journal;
mod safedir;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Refusal, Result};
use crate::facts::users::UserDb;
use crate::plan::{Plan, Step};
use crate::verify::Report;
pub use journal::{
    DEFAULT_STATE_DIR, Journal, Lock, Record, Run, StateDir, Status, Who, rollback_command,
    state_dir_option,
};

/// Progress, in the order it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started {
        run: String,
    },
    Skipped {
        step: usize,
        summary: String,
    },
    Running {
        step: usize,
        summary: String,
    },
    Done {
        step: usize,
    },
    Failed {
        step: usize,
        error: String,
    },
    RollingBack {
        reason: String,
    },
    Undone {
        step: usize,
        target: String,
    },
    UndoFailed {
        step: usize,
        error: String,
    },
    /// The proof after a successful apply (a failed one is followed by the rollback's events).
    Verified {
        report: Report,
    },
    /// What was done besides the steps, in one sentence (the etckeeper commit of /etc).
    Note {
        text: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step was already in place: no run was recorded.
    NothingToDo,
    Applied {
        run: String,
    },
    /// A step failed or a signal arrived, and every change was undone.
    RolledBack {
        run: String,
        cause: String,
    },
    /// Undo failed somewhere: the journal stays for `lowport rollback`.
    RollbackIncomplete {
        run: String,
        cause: String,
        errors: Vec<String>,
    },
}

/// Test-only fault injection, compiled into debug builds on the unixes (where the executor runs)
/// only: `LOWPORT_TEST_FAULT` is `fail-after:N` (step N runs, then reports failure),
/// `signal-after:N` (SIGTERM to ourselves after step N, through the real handler),
/// `signal-during-verify:1` (SIGTERM once every step ran, as verification starts),
/// `kill-before:N` (SIGKILL once step N's snapshot is durable, before it runs) or
/// `kill-after:N` (SIGKILL after step N). N counts steps from 1.
#[cfg(all(debug_assertions, unix))]
pub fn fault(point: &str, n: usize) -> Result<()> {
    let Ok(spec) = std::env::var("LOWPORT_TEST_FAULT") else {
        return Ok(());
    };
    if spec != format!("{point}:{n}") {
        return Ok(());
    }
    use nix::sys::signal::{Signal, raise};
    match point {
        "signal-after" | "signal-during-verify" => {
            let _ = raise(Signal::SIGTERM);
            Ok(())
        }
        "kill-before" | "kill-after" => {
            let _ = raise(Signal::SIGKILL);
            unreachable!("SIGKILL returned")
        }
        _ => Err(anyhow::anyhow!("injected fault after step {n}").into()),
    }
}

#[cfg(not(all(debug_assertions, unix)))]
pub fn fault(_point: &str, _n: usize) -> Result<()> {
    Ok(())
}

fn run_step(step: &Step, n: usize, j: &mut Journal, plan: &Plan, db: &UserDb) -> Result<()> {
    let root = crate::root::Root::new(plan.root.clone());
    let snapshot = change::snapshot(&step.action, &root, j, n)?;
    j.append(&Record::Before { step: n, snapshot })?;
    fault("kill-before", n)?;
    change::execute(&step.action, &step.before, &root, db)?;
    change::keep_added(&step.action, &root, j, n)?;
    let after = step.action.observe(&root)?;
    j.append(&Record::Done { step: n, after })?;
    fault("kill-after", n)?;
    fault("signal-after", n)?;
    fault("fail-after", n)?;
    Ok(())
}

/// Runs the plan's pending steps; the caller holds the lock and has checked that no earlier run
/// is unfinished (the runner does both, in that order).
pub fn apply(
    plan: &Plan,
    state: &StateDir,
    lock: &Lock,
    interrupted: &AtomicBool,
    on: &mut dyn FnMut(Event),
) -> Result<Outcome> {
    if plan.nothing_to_do() {
        return Ok(Outcome::NothingToDo);
    }
    let db = UserDb::new(&crate::root::Root::new(plan.root.clone()));
    let mut j = state.create_run(plan, Who::current(), lock)?;
    on(Event::Started { run: j.id.clone() });
    let mut failure = None;
    for (i, step) in plan.steps.iter().enumerate() {
        let n = i + 1;
        if interrupted.load(Ordering::SeqCst) {
            failure = Some("interrupted by a signal".to_string());
            break;
        }
        if step.in_place {
            on(Event::Skipped {
                step: n,
                summary: step.summary.clone(),
            });
            continue;
        }
        on(Event::Running {
            step: n,
            summary: step.summary.clone(),
        });
        match run_step(step, n, &mut j, plan, &db) {
            Ok(()) => on(Event::Done { step: n }),
            Err(e) => {
                let error = format!("{e:#}");
                j.note(&Record::Failed {
                    step: n,
                    error: error.clone(),
                });
                on(Event::Failed {
                    step: n,
                    error: error.clone(),
                });
                failure = Some(format!("step {n} failed: {error}"));
                break;
            }
        }
    }
    if failure.is_none() && interrupted.load(Ordering::SeqCst) {
        failure = Some("interrupted by a signal".to_string());
    }
    if failure.is_none()
        && let Err(e) = j.append(&Record::End {
            status: Status::Applied,
        })
    {
        // Every step ran, but no record says so: undo rather than leave an unrecorded change.
        failure = Some(format!("{e:#}"));
    }
    match failure {
        None => Ok(Outcome::Applied { run: j.id }),
        Some(cause) => {
            // What this process wrote is the run: the journal may no longer be writable.
            let run = j.run()?;
            undo(&run, &mut j, &cause, true, on)
        }
    }
}

/// Targets changed since the run last wrote them. A later rollback refuses to clobber them
/// unless forced. Several steps may touch one target; the last one's result is what counts, and
/// when that step never recorded its result (the run died in it) the target is not judged. A
/// target already back as the first step found it (a rollback that could not be journaled) is
/// not an edit either. Commands are left out: their undo already copes with drift (it is skipped
/// when the check says the effect is gone), and so are new users (see [`user_drift`]).
pub fn edited_since(run: &Run) -> Result<Vec<String>> {
    use crate::plan::Action;
    let root = crate::root::Root::new(run.plan.root.clone());
    type Last<'a> = (
        String,
        &'a Action,
        Option<&'a crate::plan::State>,
        &'a journal::Snapshot,
    );
    let mut last: Vec<Last> = Vec::new();
    for (n, snap, after) in run.to_undo() {
        let Some(step) = run.plan.steps.get(n - 1) else {
            continue;
        };
        if matches!(
            step.action,
            Action::RunCommands { .. } | Action::CreateUser { .. }
        ) {
            continue;
        }
        let target = step.action.target();
        let first = last
            .iter()
            .find(|(t, ..)| *t == target)
            .map_or(snap, |(.., s)| *s);
        last.retain(|(t, ..)| *t != target);
        last.push((target, &step.action, after, first));
    }
    let mut out = Vec::new();
    for (target, action, after, first) in last {
        let Some(after) = after else {
            continue;
        };
        if &action.observe(&root)? != after && !change::is_restored(action, &root, first) {
            out.push(target);
        }
    }
    Ok(out)
}

/// Why a user the run created cannot be removed exactly: its own entries changed since. Edits to
/// other accounts (a later run's user, a password change) never count: they are kept.
pub fn user_drift(run: &Run) -> Vec<String> {
    let root = crate::root::Root::new(run.plan.root.clone());
    run.to_undo()
        .into_iter()
        .filter_map(|(n, snap, _)| {
            let action = &run.plan.steps.get(n - 1)?.action;
            change::account_drift(action, &root, snap, &|f| run.backup(f))
        })
        .collect()
}

/// Refuses to undo per-namespace state (sysctls, firewall rules) from another network namespace:
/// it would "restore" values there and leave the run's own namespace changed. Not even --force
/// helps: the right place is the namespace the run was made in.
fn same_netns(run: &Run) -> Result<()> {
    match (run.plan.netns, crate::facts::netns()) {
        (Some(then), Some(now)) if then != now => Err(Error::refused(
            Refusal::OtherNetns,
            format!(
                "run {} changed network namespace {then} (inode of /proc/self/ns/net), and this \
                 is namespace {now}: run the rollback inside that namespace (e.g. `ip netns exec \
                 NAME lowport rollback {}`). Nothing was changed.",
                run.id, run.id
            ),
        )),
        _ => Ok(()),
    }
}

/// Undoes a run's not-yet-undone steps in reverse. Every undo is attempted even after one fails.
pub fn undo(
    run: &Run,
    j: &mut Journal,
    reason: &str,
    force: bool,
    on: &mut dyn FnMut(Event),
) -> Result<Outcome> {
    same_netns(run)?;
    if !force {
        let drift = user_drift(run);
        if !drift.is_empty() {
            return Err(Error::refused(
                Refusal::AccountChanged,
                format!(
                    "run {} cannot be rolled back exactly: {}. Nothing was changed.",
                    run.id,
                    drift.join("; ")
                ),
            ));
        }
        let edited = edited_since(run)?;
        if !edited.is_empty() {
            return Err(Error::refused(
                Refusal::EditedSinceApply,
                format!(
                    "changed since run {} wrote it: {}. Rolling back would overwrite those \
                     changes; check them, then run again with --force. Nothing was changed.",
                    run.id,
                    edited.join(", ")
                ),
            ));
        }
    }
    let root = crate::root::Root::new(run.plan.root.clone());
    // Undoing comes first: a journal that cannot record it (a full disk) is reported at the end.
    j.note(&Record::RollbackStart {
        reason: reason.to_string(),
        time: journal::now(),
    });
    on(Event::RollingBack {
        reason: reason.to_string(),
    });
    let mut errors = Vec::new();
    for (n, snap, after) in run.to_undo().into_iter().rev() {
        let Some(step) = run.plan.steps.get(n - 1) else {
            errors.push(format!("step {n} is not in the run's plan"));
            continue;
        };
        if let Some(gone) = after.and_then(|_| change::moved_away(&step.action, &root)) {
            on(Event::Note { text: gone });
        }
        match change::restore(&step.action, &root, snap, |name| run.backup(name)) {
            Ok(()) => {
                j.note(&Record::Undone { step: n });
                on(Event::Undone {
                    step: n,
                    target: step.action.target(),
                });
            }
            Err(e) => {
                let error = format!("{e:#}");
                j.note(&Record::UndoFailed {
                    step: n,
                    error: error.clone(),
                });
                on(Event::UndoFailed {
                    step: n,
                    error: error.clone(),
                });
                errors.push(format!("step {n} ({}): {error}", step.action.target()));
            }
        }
    }
    let status = if errors.is_empty() {
        Status::RolledBack
    } else {
        Status::RollbackIncomplete
    };
    j.note(&Record::End { status });
    // Before the first durable record nothing ran and no run exists: there is nothing to close.
    if let Some(e) = j.write_error().filter(|_| j.published()) {
        errors.push(format!(
            "{e}. The undo above was carried out, but the journal does not say so: free space \
             there, then run `lowport rollback {}` to close the run (it finds what is already \
             undone and leaves it)",
            run.id
        ));
    }
    let outcome = if errors.is_empty() {
        Outcome::RolledBack {
            run: run.id.clone(),
            cause: reason.into(),
        }
    } else {
        Outcome::RollbackIncomplete {
            run: run.id.clone(),
            cause: reason.into(),
            errors,
        }
    };
    Ok(outcome)
}
