//! What the two line-oriented front ends (the scripted commands and the plain prompts) share:
//! asking on the terminal, and showing a plan, its progress and its outcome as text or as one
//! JSON document. The orchestration itself is the runner's.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde_json::json;

use crate::apply::{Event, Outcome};
use crate::error::{Error, Exit, Result};
use crate::facts::Facts;
use crate::plan::{Plan, Risk};
use crate::render;
use crate::runner::{self, Applied, Context};

/// The version of the JSON documents the commands print.
pub const FORMAT_VERSION: u32 = 1;

/// This lowport's absolute path, for commands it tells the operator to run; its bare name when
/// the kernel does not say (then sudo's PATH must find it).
pub fn lowport_exe() -> std::path::PathBuf {
    std::env::current_exe().unwrap_or_else(|_| "lowport".into())
}

/// Writes `text` as `dir/name` (`name` may hold `/`: a file in a subdirectory lowport makes),
/// the way a root process must write into a directory others may share: never through a
/// symbolic link (a link planted at the name is replaced, a linked subdirectory refused), and
/// never into a file someone else made there (it would keep its owner and mode, so they could
/// change the script after lowport wrote it, and a FIFO would hang): the text goes to a new
/// file lowport creates (exclusively, with `mode`), which is then renamed over the name. In a
/// sticky directory (/tmp) renaming over another user's file is refused by the kernel.
pub fn write_file(
    dir: &std::path::Path,
    name: &str,
    text: &str,
    mode: u32,
) -> std::io::Result<std::path::PathBuf> {
    let path = dir.join(name);
    let parent = path.parent().unwrap_or(dir).to_path_buf();
    // The subdirectories below `dir`, each made here or a real directory, not a link.
    let mut at = dir.to_path_buf();
    for c in parent
        .strip_prefix(dir)
        .unwrap_or(std::path::Path::new(""))
        .components()
    {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} is not a directory (a link or a file); remove it or choose another \
                     directory",
                    at.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir(&at)?,
            Err(e) => return Err(e),
        }
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".lowport-")
        .tempfile_in(&parent)?;
    crate::os::set_file_mode(tmp.as_file(), mode)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(path)
}

pub fn print_json(v: &serde_json::Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Asks on the terminal; EOF or anything but the expected answer declines.
pub fn ask(prompt: &str, expected: &str) -> Result<()> {
    err!("{prompt} ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() == expected {
        Ok(())
    } else {
        Err(Error::Declined("not confirmed; nothing was changed".into()))
    }
}

fn confirm(p: &Plan, yes: bool, accept_risk: bool) -> Result<()> {
    if p.risk == Risk::High && !accept_risk {
        if !std::io::stdin().is_terminal() {
            return Err(Error::Declined(format!(
                "method {} is high risk: review `lowport plan --method {}` and pass \
                 --accept-risk to apply it from a script; nothing was changed",
                p.method, p.method
            )));
        }
        errln!("Method {} is HIGH RISK:", p.method);
        for w in &p.warnings {
            errln!("  ! {}", render::clean(w));
        }
        ask(
            &format!("Type the method id ({}) to accept this risk:", p.method),
            p.method.as_str(),
        )?;
    }
    if !yes {
        ask("Apply these changes? Type 'yes' to continue:", "yes")?;
    }
    Ok(())
}

pub fn progress(e: Event) {
    errln!("{}", render::event(&e));
}

pub fn outcome_json(ctx: &Context, o: &Outcome) -> serde_json::Value {
    match o {
        Outcome::NothingToDo => json!({ "status": "nothing_to_do" }),
        Outcome::Applied { run } => json!({ "status": "applied", "run": run }),
        Outcome::RolledBack { run, cause } => {
            json!({ "status": "rolled_back", "run": run, "cause": cause })
        }
        Outcome::RollbackIncomplete { run, cause, errors } => json!({
            "status": "rollback_incomplete", "run": run, "cause": cause, "errors": errors,
            "next": ctx.rollback_command(run)
        }),
    }
}

/// The one JSON document a `--json` command prints when it fails: scripts read the same
/// `outcome.status` field as on success, and the exit code it ends with.
pub fn error_json(e: &Error) -> serde_json::Value {
    json!({
        "format_version": FORMAT_VERSION,
        "outcome": { "status": "error", "exit": e.exit() as u8, "message": format!("{e:#}") },
    })
}

/// What the operator already agreed to, and the output format.
#[derive(Debug, Clone, Copy, Default)]
pub struct How {
    pub yes: bool,
    pub accept_risk: bool,
    pub dry_run: bool,
    pub json: bool,
}

/// Shows a plan, asks what still needs asking, and has the runner apply it. `facts` are the
/// ones the plan was just made on, or None for a saved plan.
pub fn carry_out(ctx: &Context, p: &Plan, facts: Option<Facts>, how: How) -> Result<Exit> {
    // The plan the runner will carry out: a saved plan is re-made on this host first, and that
    // fresh plan, never the file's own summaries and diffs, is what is shown.
    let mut shown: Option<Plan> = None;
    let mut show = |fresh: &Plan| {
        if !how.json {
            out!("{}", render::plan(fresh));
        }
        shown = Some(fresh.clone());
    };
    let flag = Arc::new(AtomicBool::new(false));
    let mut ask = |p: &Plan| {
        confirm(p, how.yes || how.dry_run, how.accept_risk || how.dry_run)?;
        runner::watch_signals(&flag)
    };
    let applied = runner::apply(
        ctx,
        p,
        runner::Apply {
            facts,
            dry_run: how.dry_run,
            interrupted: &flag,
            show: &mut show,
            confirm: &mut ask,
            on: &mut progress,
        },
    )?;
    let p = shown.as_ref().unwrap_or(p);
    if how.json {
        let outcome = match &applied {
            Applied::DryRun => json!({ "status": "dry_run" }),
            Applied::Ran(o, _) => outcome_json(ctx, o),
        };
        let mut doc = json!({ "format_version": FORMAT_VERSION, "outcome": outcome, "plan": p });
        // A run reports its verification (null when it did not get that far).
        if let Applied::Ran(o, report) = &applied
            && *o != Outcome::NothingToDo
        {
            doc["verify"] = json!(report);
        }
        print_json(&doc);
    } else {
        match &applied {
            Applied::DryRun => outln!(
                "Dry run: every check passed; {} step(s) would run. Nothing was changed.",
                p.pending().count()
            ),
            Applied::Ran(Outcome::NothingToDo, _) => {
                outln!("Nothing to do: everything is already in place. Nothing was changed.")
            }
            Applied::Ran(Outcome::Applied { run }, _) => {
                outln!(
                    "Applied as run {run}. Undo it any time with: {}",
                    ctx.rollback_command(run)
                )
            }
            Applied::Ran(Outcome::RolledBack { cause, .. }, _) => {
                outln!(
                    "Failed ({}); every change was rolled back.",
                    render::clean(cause)
                )
            }
            Applied::Ran(Outcome::RollbackIncomplete { run, errors, .. }, _) => {
                outln!("Failed, and the rollback is INCOMPLETE:");
                for e in errors {
                    outln!("  {}", render::clean(e));
                }
                outln!(
                    "The journal is kept. Fix the cause, then run: {}",
                    ctx.rollback_command(run)
                );
            }
        }
    }
    Ok(applied.exit())
}
