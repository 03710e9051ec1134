//! The scripted front end: one function per subcommand, each resolving validated arguments
//! against the host, calling the engine, and printing text or one JSON document.

use std::io::{BufRead, IsTerminal, Write};

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde_json::json;

use crate::apply::{self, Event, Outcome, StateDir, Status};
use crate::cli::{
    ApplyArgs, Cli, Command, DetectArgs, PlanArgs, RollbackArgs, Target, TargetArgs, VerifyArgs,
};
use crate::error::{Error, Exit, Result};
use crate::facts::{self, Facts, Probe};
use crate::methods::{self, Request, Risk};
use crate::plan::Plan;
use crate::render;
use crate::root::Root;
use crate::validate::PortArg;
use crate::verify;

pub const FORMAT_VERSION: u32 = 1;

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn grant_ports(ports: &[PortArg]) -> Vec<u16> {
    ports
        .iter()
        .map(|p| match p {
            PortArg::Grant(n) => *n,
            PortArg::Redirect { public, .. } => *public,
        })
        .collect()
}

fn root(cli: &Cli) -> Result<Root> {
    if !cli.root.is_dir() {
        return Err(Error::Invalid(format!(
            "--root {} is not a directory; give an existing directory",
            cli.root.display()
        )));
    }
    Ok(Root::new(cli.root.clone()))
}

/// Probes the host for what `req` names: its binary, ports and service.
pub(crate) fn gather(cli: &Cli, req: &Request, listeners: bool) -> Result<Facts> {
    let probe = Probe {
        binary: req.binary.clone(),
        ports: grant_ports(&req.ports),
        listeners,
        service: req.service_name(),
        users: methods::accounts_for(req),
        groups: req.group.iter().cloned().collect(),
    };
    facts::gather(&root(cli)?, &probe)
}

/// The parts of a request that detection needs, for commands that take no method.
fn probe_request(binary: Option<&String>, ports: &[PortArg]) -> Request {
    Request {
        binary: binary.cloned(),
        ports: ports.to_vec(),
        ..Request::default()
    }
}

/// The request the options describe, with a `--profile` resolved against the host (its notes go
/// to stderr so JSON output stays clean).
fn request_for(cli: &Cli, method: &str, t: &Target) -> Result<Request> {
    let mut req = request(method, t);
    if let Some(profile) = &t.service.profile {
        let notes = crate::profile::resolve(
            &root(cli)?,
            profile,
            t.service.config.as_deref(),
            &mut req.binary,
            &mut req.ports,
            &mut req.service.args,
        )?;
        for n in notes {
            eprintln!("{profile} profile: {n}");
        }
    }
    Ok(req)
}

fn request(method: &str, t: &Target) -> Request {
    Request {
        method: method.to_string(),
        binary: t.binary.clone(),
        ports: t.port.clone(),
        user: t.user.clone(),
        group: t.group.clone(),
        service: t.service.options(),
    }
}

pub fn run(cli: &Cli) -> Result<Exit> {
    let i = &cli.interactive;
    let interactive_flags = i.plain
        || i.yes
        || i.accept_risk
        || i.method.is_some()
        || i.target.binary.is_some()
        || !i.target.port.is_empty()
        || i.target.user.is_some()
        || i.target.group.is_some()
        || i.target.service.profile.is_some()
        || i.target.service.options() != methods::ServiceOptions::default();
    if cli.command.is_some() && interactive_flags {
        return Err(Error::Invalid(
            "options given before the subcommand belong to the interactive mode; put them after \
             the subcommand (e.g. `lowport plan --method setcap --binary fabio --port 80`)"
                .into(),
        ));
    }
    match &cli.command {
        Some(Command::Detect(a)) => detect(cli, a),
        Some(Command::Methods(a)) => list_methods(cli, a),
        Some(Command::Plan(a)) => plan(cli, a),
        Some(Command::Apply(a)) => apply(cli, a),
        Some(Command::Rollback(a)) => rollback(cli, a),
        Some(Command::History(a)) => history(cli, a.json),
        Some(Command::Verify(a)) => verify_cmd(cli, a),
        Some(Command::Bind { ports }) => Ok(bind_probe(ports)),
        None => crate::ui::run(cli),
    }
}

fn detect(cli: &Cli, a: &DetectArgs) -> Result<Exit> {
    let f = gather(cli, &probe_request(a.binary.as_ref(), &a.port), true)?;
    if a.fmt.json {
        print_json(&serde_json::to_value(&f).map_err(anyhow::Error::from)?);
    } else {
        print!("{}", render::facts(&f));
    }
    Ok(Exit::Success)
}

fn list_methods(cli: &Cli, a: &TargetArgs) -> Result<Exit> {
    let req = request_for(cli, "", &a.target)?;
    let f = match &a.facts {
        Some(file) => load_facts(file)?,
        None => gather(cli, &req, true)?,
    };
    let list = methods::assess(&f, &req);
    // Said first: where every user may already bind the port, no method is needed.
    let open = methods::already_open(&f, &req);
    if a.fmt.json {
        print_json(&json!({
            "format_version": FORMAT_VERSION, "os": f.os.family, "already_open": open,
            "methods": list
        }));
    } else {
        if let Some(o) = &open {
            println!("{o}\n");
        }
        print!("{}", render::methods(&list));
    }
    Ok(Exit::Success)
}

/// A facts document from `lowport detect --json`, possibly from another host.
fn load_facts(file: &std::path::Path) -> Result<Facts> {
    let origin = file.display();
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::Invalid(format!("cannot read facts {origin}: {e}")))?;
    let f: Facts = serde_json::from_str(&text).map_err(|e| {
        Error::Invalid(format!(
            "{origin} is not a lowport facts document (detect --json): {e}"
        ))
    })?;
    if f.format_version != facts::FORMAT_VERSION {
        return Err(Error::Invalid(format!(
            "{origin} has facts format_version {}, this lowport reads {}",
            f.format_version,
            facts::FORMAT_VERSION
        )));
    }
    Ok(f)
}

fn plan(cli: &Cli, a: &PlanArgs) -> Result<Exit> {
    methods::find(&a.method)?;
    let req = request_for(cli, &a.method, &a.target)?;
    let f = gather(cli, &req, false)?;
    let p = Plan::build(&f, &req)?;
    if let Some(out) = &a.out_file {
        let text = serde_json::to_string_pretty(&p).map_err(anyhow::Error::from)?;
        std::fs::write(out, text + "\n").map_err(|e| {
            Error::Invalid(format!("cannot write the plan to {}: {e}", out.display()))
        })?;
    }
    if a.fmt.json {
        print_json(&serde_json::to_value(&p).map_err(anyhow::Error::from)?);
    } else {
        print!("{}", render::plan(&p));
        if let Some(out) = &a.out_file {
            println!(
                "Plan saved to {}; apply it with: lowport apply --plan {}",
                out.display(),
                out.display()
            );
        }
    }
    Ok(if p.nothing_to_do() {
        Exit::NothingToDo
    } else {
        Exit::Success
    })
}

/// Asks on the terminal; EOF or anything but the expected answer declines.
fn ask(prompt: &str, expected: &str) -> Result<()> {
    eprint!("{prompt} ");
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
        eprintln!("Method {} is HIGH RISK:", p.method);
        for w in &p.warnings {
            eprintln!("  ! {w}");
        }
        ask(
            &format!("Type the method id ({}) to accept this risk:", p.method),
            &p.method,
        )?;
    }
    if !yes {
        ask("Apply these changes? Type 'yes' to continue:", "yes")?;
    }
    Ok(())
}

fn need_root(what: &str) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "{what} changes the host and needs root; run it again with sudo. Nothing was changed."
    )))
}

/// SIGINT, SIGTERM and SIGHUP set a flag the executor checks between steps, so it can roll back
/// instead of dying half-way.
fn signal_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&flag)).map_err(anyhow::Error::from)?;
    }
    Ok(flag)
}

fn outcome_exit(o: &Outcome) -> Exit {
    match o {
        Outcome::NothingToDo | Outcome::Applied { .. } => Exit::Success,
        Outcome::RolledBack { .. } => Exit::RolledBack,
        Outcome::RollbackIncomplete { .. } => Exit::RollbackIncomplete,
    }
}

fn outcome_json(o: &Outcome) -> serde_json::Value {
    match o {
        Outcome::NothingToDo => json!({ "status": "nothing_to_do" }),
        Outcome::Applied { run } => json!({ "status": "applied", "run": run }),
        Outcome::RolledBack { run, cause } => {
            json!({ "status": "rolled_back", "run": run, "cause": cause })
        }
        Outcome::RollbackIncomplete { run, cause, errors } => json!({
            "status": "rollback_incomplete", "run": run, "cause": cause, "errors": errors,
            "next": format!("lowport rollback {run}")
        }),
    }
}

fn progress(e: Event) {
    eprintln!("{}", render::event(&e));
}

fn apply(cli: &Cli, a: &ApplyArgs) -> Result<Exit> {
    let (p, mut f) = match &a.plan {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Error::Invalid(format!("cannot read plan {}: {e}", file.display())))?;
            let saved = Plan::load(&text, &file.display().to_string())?;
            methods::find(&saved.method)?;
            let f = gather(cli, &saved.request, false)?;
            saved.ensure_current(&f)?;
            (saved, f)
        }
        None => {
            let method = a.method.as_deref().unwrap_or_default();
            methods::find(method)?;
            let req = request_for(cli, method, &a.target)?;
            let f = gather(cli, &req, false)?;
            (Plan::build(&f, &req)?, f)
        }
    };
    let how = How {
        yes: a.yes,
        accept_risk: a.accept_risk,
        dry_run: a.dry_run,
        json: a.fmt.json,
    };
    carry_out(cli, &p, &mut f, how)
}

/// How `carry_out` may proceed: what the operator already agreed to, and the output format.
#[derive(Debug, Clone, Copy, Default)]
pub struct How {
    pub yes: bool,
    pub accept_risk: bool,
    pub dry_run: bool,
    pub json: bool,
}

/// Shows a plan, asks what still needs asking, and applies it: the tail every non-TUI front end
/// shares (scripted `apply` and the plain prompts).
pub fn carry_out(cli: &Cli, p: &Plan, f: &mut Facts, a: How) -> Result<Exit> {
    if !a.json {
        print!("{}", render::plan(p));
    }
    let state = StateDir::new(cli.state_dir.clone());
    // Checked again under the lock below; here so that even a no-op apply reports it.
    state.ensure_no_unfinished()?;
    if p.nothing_to_do() {
        if a.json {
            print_json(
                &json!({ "format_version": FORMAT_VERSION, "outcome": outcome_json(&Outcome::NothingToDo), "plan": p }),
            );
        } else {
            println!("Nothing to do: everything is already in place. Nothing was changed.");
        }
        return Ok(Exit::Success);
    }
    if !a.dry_run {
        need_root("apply")?;
    }
    confirm(p, a.yes || a.dry_run, a.accept_risk || a.dry_run)?;
    let lock = state.lock()?;
    if a.dry_run {
        // The real run checks this under the lock in `apply_verified`.
        state.ensure_no_unfinished()?;
        if a.json {
            print_json(
                &json!({ "format_version": FORMAT_VERSION, "outcome": { "status": "dry_run" }, "plan": p }),
            );
        } else {
            println!(
                "Dry run: every check passed; {} step(s) would run. Nothing was changed.",
                p.pending().count()
            );
        }
        return Ok(Exit::Success);
    }
    let flag = signal_flag()?;
    let (outcome, report) = apply::apply_verified(p, f, &state, &lock, &flag, &mut progress)?;
    if a.json {
        print_json(&json!({
            "format_version": FORMAT_VERSION, "outcome": outcome_json(&outcome), "plan": p, "verify": report
        }));
    } else {
        match &outcome {
            Outcome::Applied { run } => {
                println!("Applied as run {run}. Undo it any time with: lowport rollback {run}")
            }
            Outcome::RolledBack { cause, .. } => {
                println!("Failed ({cause}); every change was rolled back.")
            }
            Outcome::RollbackIncomplete { run, errors, .. } => {
                println!("Failed, and the rollback is INCOMPLETE:");
                for e in errors {
                    println!("  {e}");
                }
                println!("The journal is kept. Fix the cause, then run: lowport rollback {run}");
            }
            Outcome::NothingToDo => {}
        }
    }
    Ok(outcome_exit(&outcome))
}

fn rollback(cli: &Cli, a: &RollbackArgs) -> Result<Exit> {
    if a.id.is_none() && !a.last {
        return Err(Error::Invalid(
            "give the run to undo (see `lowport history`) or --last".into(),
        ));
    }
    let state = StateDir::new(cli.state_dir.clone());
    if let Some(id) = &a.id {
        // An unknown id is bad input: refuse it before asking for root or taking the lock.
        state.load(id)?;
    }
    root(cli)?;
    need_root("rollback")?;
    let lock = state.lock()?;
    let run = match &a.id {
        Some(id) => state.load(id)?,
        None => state
            .ids()
            .iter()
            .rev()
            .map(|id| state.load(id))
            .find(|r| {
                r.as_ref()
                    .map_or(true, |r| r.status() != Status::RolledBack)
            })
            .transpose()?
            .ok_or_else(|| {
                Error::Refused("no run left to roll back; `lowport history` lists them".into())
            })?,
    };
    if run.status() == Status::RolledBack {
        println!(
            "Run {} is already rolled back. Nothing was changed.",
            run.id
        );
        return Ok(Exit::Success);
    }
    let steps = run.to_undo();
    if !a.fmt.json {
        println!(
            "Run {} ({}, {}): {} step(s) to undo",
            run.id,
            run.plan.method,
            run.status(),
            steps.len()
        );
        for (n, _, _) in steps.iter().rev() {
            if let Some(s) = run.plan.steps.get(n - 1) {
                println!("  {n}. {}", s.undo);
            }
        }
    }
    if !a.yes {
        ask("Roll back? Type 'yes' to continue:", "yes")?;
    }
    let mut j = state.reopen(&run, &lock)?;
    let reason = format!("requested by {}", apply::Who::current().describe());
    let outcome = apply::undo(&run, &mut j, &reason, a.force, &mut progress)?;
    let exit = match outcome {
        Outcome::RolledBack { .. } => Exit::Success,
        _ => Exit::RollbackIncomplete,
    };
    if a.fmt.json {
        print_json(&json!({ "format_version": FORMAT_VERSION, "outcome": outcome_json(&outcome) }));
    } else if exit == Exit::Success {
        println!("Run {} rolled back.", run.id);
    } else {
        println!(
            "Rollback of run {} is INCOMPLETE; the journal is kept: fix the cause and run `lowport rollback {}` again.",
            run.id, run.id
        );
    }
    Ok(exit)
}

fn history(cli: &Cli, json_out: bool) -> Result<Exit> {
    let state = StateDir::new(cli.state_dir.clone());
    let runs = state.runs()?;
    if json_out {
        let list: Vec<_> = runs
            .iter()
            .map(|r| {
                let (time, who) = r
                    .started()
                    .map(|(t, w)| (t, Some(w.clone())))
                    .unwrap_or((0, None));
                json!({
                    "id": r.id, "time": render::time(time), "method": r.plan.method,
                    "root": r.plan.root, "who": who, "status": r.status(),
                    "steps": r.plan.steps.iter().filter(|s| !s.in_place).count(),
                })
            })
            .collect();
        print_json(&json!({ "format_version": FORMAT_VERSION, "runs": list }));
    } else {
        print!("{}", render::history(&runs));
    }
    Ok(Exit::Success)
}

fn verify_cmd(cli: &Cli, a: &VerifyArgs) -> Result<Exit> {
    let mut req = probe_request(a.binary.as_ref(), &a.port);
    req.service.name = a.service.clone();
    let f = gather(cli, &req, false)?;
    let (ports, redirects) = crate::validate::split_ports(&a.port);
    let target = verify::Target {
        ports,
        user: a.user.clone(),
        binary: a.binary.clone(),
        service: a.service.clone(),
        redirects,
        authbind: a.authbind,
    };
    let r = verify::run(&f, &target)?;
    if a.fmt.json {
        print_json(&serde_json::to_value(&r).map_err(anyhow::Error::from)?);
    } else {
        print!("{}", render::verify(&r));
    }
    Ok(if r.ok {
        Exit::Success
    } else {
        Exit::VerifyFailed
    })
}

/// `__bind PORT…`: binds each port on the wildcard address, as a service does (a process on any
/// of the host's addresses makes it fail as it would make the service fail), and says so. Run by `verify` as the target user under `authbind --deep`, whose preloaded library
/// intercepts exactly this libc `bind()`.
fn bind_probe(ports: &[u16]) -> Exit {
    let mut ok = true;
    for port in ports {
        let result = std::net::TcpListener::bind(("0.0.0.0", *port));
        match result {
            Ok(_) => println!("{port} ok"),
            Err(e) => {
                ok = false;
                println!("{port} {e}");
            }
        }
    }
    if ok {
        Exit::Success
    } else {
        Exit::VerifyFailed
    }
}
