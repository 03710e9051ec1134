//! The one orchestration every front end uses: probe, plan, and carry a plan out (root, then the
//! lock FIRST, then the unfinished-run check, then the executor, the verification, and a
//! rollback on failure or on the interrupt flag), or roll a past run back. The scripted
//! commands, the plain prompts and the wizard differ only in how they ask (a confirmation
//! callback) and how they show (an [`Event`] sink).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use crate::apply::{self, Event, Outcome, Run, StateDir, Status};
use crate::cli::{Cli, Target};
use crate::drift;
use crate::error::{Error, Exit, Refusal, Result};
use crate::facts::{self, Facts, FactsHost, LiveHost, Probe};
use crate::methods::{self, MethodId, Request, Want};
use crate::plan::Plan;
use crate::root::Root;
use crate::verify::{self, Report};

/// Where the engine works: the target's root directory and lowport's state directory.
#[derive(Debug, Clone)]
pub struct Context {
    pub root: PathBuf,
    pub state_dir: PathBuf,
}

impl Context {
    pub fn new(cli: &Cli) -> Context {
        Context {
            root: cli.root.clone(),
            state_dir: cli.state_dir.clone(),
        }
    }

    pub fn root(&self) -> Result<Root> {
        if !self.root.is_dir() {
            return Err(Error::Invalid(format!(
                "--root {} is not a directory; give an existing directory",
                self.root.display()
            )));
        }
        Ok(Root::new(self.root.clone()))
    }

    pub fn state(&self) -> StateDir {
        StateDir::new(self.state_dir.clone())
    }

    /// The global options that point another lowport command at this root and state
    /// directory, where they are not the defaults.
    pub fn options(&self) -> Vec<String> {
        let mut argv = Vec::new();
        if self.root != std::path::Path::new("/") {
            argv.extend(["--root".into(), self.root.display().to_string()]);
        }
        argv.extend(apply::state_dir_option(&self.state_dir));
        argv
    }

    /// The command that undoes `run`, quoted for a shell.
    pub fn rollback_command(&self, run: &str) -> String {
        apply::rollback_command(&self.options(), run)
    }
}

/// What to probe for `want`: its binary, ports, service, and the accounts `method` (or, before
/// one is chosen, any method) judges.
fn probe(want: &Want, method: Option<MethodId>, listeners: bool) -> Probe {
    Probe {
        binary: want.binary.clone(),
        ports: want.public_ports(),
        listeners,
        service: want.service_name(),
        users: methods::accounts_for(want, method),
        groups: want.group.iter().cloned().collect(),
        platform: methods::needs_of(std::env::consts::OS),
        listings: Default::default(),
    }
}

/// Probes the host for what `want` names.
pub fn gather(
    ctx: &Context,
    want: &Want,
    method: Option<MethodId>,
    listeners: bool,
) -> Result<Facts> {
    let state = ctx.state();
    let mut p = probe(want, method, listeners);
    p.listings = facts::binary::Listings::parse(&state.listings());
    let facts = facts::gather(&ctx.root()?, &p)?;
    if let Some(bytes) = p.listings.to_json() {
        state.keep_listings(&bytes);
    }
    Ok(facts)
}

/// What the options ask for, with a `--profile` resolved against the host. The profile's notes
/// are returned for the front end to show.
pub fn want_for(ctx: &Context, t: &Target) -> Result<(Want, Vec<String>)> {
    let mut want = Want {
        binary: t.binary.clone(),
        ports: t.port.clone(),
        user: t.user.clone(),
        group: t.group.clone(),
        interface: t.interface.clone(),
        service: t.service.options(),
    };
    let mut notes = Vec::new();
    if let Some(profile) = &t.service.profile {
        notes = crate::profile::resolve(
            &ctx.root()?,
            profile,
            t.service.config.as_deref(),
            &mut want.binary,
            &mut want.ports,
            &mut want.service.args,
        )?
        .into_iter()
        .map(|n| format!("{profile} profile: {n}"))
        .collect();
    }
    Ok((want, notes))
}

/// Plans `req` on the live host; the facts are kept for the apply that may follow.
pub fn plan(ctx: &Context, req: &Request) -> Result<(Facts, Plan)> {
    let facts = gather(ctx, req, Some(req.method), false)?;
    let plan = plan_on(&facts, req)?;
    Ok((facts, plan))
}

/// Plans `req` on the live host these facts were gathered from.
pub fn plan_on(facts: &Facts, req: &Request) -> Result<Plan> {
    Plan::build(facts, &LiveHost::new(facts.root()), req)
}

/// Gathers facts as `detect` does and, for each of `methods`, plans on the live host so that the
/// facts document holds every answer planning needed (`plan --facts` replays them).
pub fn detect(ctx: &Context, want: &Want, methods: &[MethodId]) -> Result<Facts> {
    let one = match methods {
        [m] => Some(*m),
        _ => None,
    };
    let mut facts = gather(ctx, want, one, true)?;
    let host = LiveHost::new(facts.root());
    for m in methods {
        // A method that cannot serve the request here is no error for detection: `plan
        // --facts` meets the same refusal. Failing to read the host is one.
        match Plan::build(&facts, &host, &Request::new(*m, want.clone())) {
            Ok(_) | Err(Error::Invalid(_) | Error::Refused { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    facts.host = host.answers();
    Ok(facts)
}

/// Refuses a facts document that was gathered for something else than `want` names (another
/// binary, service, user or group): judging those from it would be a guess.
pub fn ensure_facts_cover(facts: &Facts, want: &Want, method: Option<MethodId>) -> Result<()> {
    // A representative document (`--target-os`) describes no host of its own: it holds no
    // binary, service or account, and the methods say what they need beyond it.
    if facts.target_os.is_some() {
        return Ok(());
    }
    let missing = |what: String| {
        let again = method.map_or("lowport detect --json".to_string(), |m| {
            format!("lowport detect --json --method {m}")
        });
        Err(Error::Invalid(format!(
            "the facts document does not hold {what}; gather it again with `{again}` and the \
             same options"
        )))
    };
    let given = facts.binary.as_ref().map(|b| b.requested.as_str());
    if want.binary.as_deref() != given {
        return missing(match &want.binary {
            Some(b) => format!("the binary {b}"),
            None => "a request without a binary".into(),
        });
    }
    let service = facts.service.as_ref().map(|s| s.name.clone());
    if want.service_name() != service {
        return missing(format!(
            "the service {}",
            want.service_name().unwrap_or_default()
        ));
    }
    for u in methods::accounts_for(want, method) {
        if !facts.accounts.users.contains_key(&u) {
            return missing(format!("the user {u}"));
        }
    }
    if let Some(g) = &want.group
        && !facts.accounts.groups.contains_key(g)
    {
        return missing(format!("the group {g}"));
    }
    Ok(())
}

/// A facts document from `lowport detect --json`, possibly from another host.
fn load_facts(file: &std::path::Path) -> Result<Facts> {
    let origin = file.display();
    let text = crate::facts::files::read_to_string(file)
        .map_err(|e| Error::Invalid(format!("cannot read facts {origin}: {e}")))?;
    Facts::from_json(&text, &origin.to_string()).map_err(Error::Invalid)
}

/// The facts of the host `--facts FILE` or `--target-os NAME` names, if either is given.
pub fn other_host(a: &crate::cli::OtherHost) -> Result<Option<Facts>> {
    match (&a.facts, &a.target_os) {
        (Some(file), _) => load_facts(file).map(Some),
        (None, Some(os)) => facts::targets::load(os).map(Some).map_err(Error::Invalid),
        (None, None) => Ok(None),
    }
}

/// Plans `req` from a facts document (possibly another host's), as any user.
pub fn plan_from_facts(facts: &Facts, req: &Request) -> Result<Plan> {
    ensure_facts_cover(facts, req, Some(req.method))?;
    Plan::build(facts, &FactsHost::of(facts), req)
}

/// Refuses to change anything under an alternate root that someone other than root could
/// replace: whoever may rename it, or a directory above it, can swap the whole tree (with links
/// to the host's own files) between lowport's checks and its writes, which then land outside.
fn ensure_trusted_root(root: &std::path::Path) -> Result<()> {
    if root == std::path::Path::new("/") {
        return Ok(());
    }
    let reasons = crate::facts::binary::root_writers(root, true);
    if reasons.is_empty() {
        return Ok(());
    }
    Err(Error::refused(
        Refusal::UntrustedRoot,
        format!(
            "--root {} can be replaced by someone other than root ({}): lowport would write \
             wherever they pointed the tree. Move the tree below directories only root can \
             change. Nothing was changed.",
            root.display(),
            reasons.join("; ")
        ),
    ))
}

fn need_root(what: &str) -> Result<()> {
    if cfg!(windows) {
        return Err(Error::refused(
            Refusal::NotOnThisOs,
            format!(
                "{what} changes the host, which lowport does on Linux and the other unixes only: \
                 on Windows, write the plan as a script with `lowport export --format powershell` \
                 (the options of `lowport plan`) and run that. Nothing was changed."
            ),
        ));
    }
    if crate::os::is_root() {
        return Ok(());
    }
    Err(Error::refused(
        Refusal::NotRoot,
        format!(
            "{what} changes the host and needs root; run it again with sudo. Nothing was changed."
        ),
    ))
}

/// From now on SIGINT, SIGTERM and SIGHUP set `flag`, which the executor checks between steps,
/// so it can roll back instead of dying half-way. Front ends call it once the operator agreed:
/// before that, Ctrl-C simply ends lowport.
pub fn watch_signals(flag: &Arc<AtomicBool>) -> Result<()> {
    for &sig in crate::os::STOP_SIGNALS {
        signal_hook::flag::register(sig, Arc::clone(flag)).map_err(anyhow::Error::from)?;
    }
    Ok(())
}

/// How an apply ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// `--dry-run`: every check passed; nothing ran.
    DryRun,
    /// The executor's outcome (a failed verification is rolled back like a failed step), and
    /// the verification's report when it ran.
    Ran(Outcome, Option<Box<Report>>),
}

impl Applied {
    pub fn exit(&self) -> Exit {
        match self {
            Applied::DryRun => Exit::Success,
            Applied::Ran(o, _) => outcome_exit(o),
        }
    }
}

pub fn outcome_exit(o: &Outcome) -> Exit {
    match o {
        Outcome::NothingToDo | Outcome::Applied { .. } => Exit::Success,
        Outcome::RolledBack { .. } => Exit::RolledBack,
        Outcome::RollbackIncomplete { .. } => Exit::RollbackIncomplete,
    }
}

/// The front end's part of an apply.
pub struct Apply<'a> {
    /// The facts the plan was just made on; None for a saved or earlier-reviewed plan, which is
    /// then checked against the host again under the lock.
    pub facts: Option<Facts>,
    pub dry_run: bool,
    pub interrupted: &'a AtomicBool,
    /// Shown, once, the plan that will run: for a saved plan the one just re-made on this host,
    /// never the given plan's own text.
    pub show: &'a mut dyn FnMut(&Plan),
    /// Asked once everything is checked and something would change; an error declines.
    pub confirm: &'a mut dyn FnMut(&Plan) -> Result<()>,
    pub on: &'a mut dyn FnMut(Event),
}

/// Carries `plan` out: root, lock, unfinished runs, drift, confirmation, executor,
/// verification, and a rollback when a step, the verification or a signal says so.
pub fn apply(ctx: &Context, plan: &Plan, a: Apply) -> Result<Applied> {
    if plan.from_facts {
        return Err(Error::refused(
            Refusal::FromFacts,
            "this plan was made from a facts document (plan --facts): it is for review and \
             export, and knows nothing of this host's files. Make the plan here with `lowport \
             plan`. Nothing was changed.",
        ));
    }
    if !a.dry_run {
        need_root("apply")?;
    }
    ensure_trusted_root(&plan.root)?;
    let state = ctx.state();
    // A dry run changes nothing, the state directory included: where there is none yet, no
    // run can be unfinished and there is nothing to lock.
    let lock = match (a.dry_run, state.dir.exists()) {
        (true, false) => None,
        _ => Some(state.lock()?),
    };
    if lock.is_some() {
        state.ensure_no_unfinished()?;
    }
    // A saved or earlier-reviewed plan is re-planned here, under the lock; the fresh plan, never
    // the given one's text (summaries, diffs, undo), is what is confirmed, run and journaled.
    let (mut facts, fresh) = match a.facts {
        Some(f) => (f, None),
        None => {
            let f = gather(ctx, &plan.request, Some(plan.method), false)?;
            let now = plan.ensure_current(&f, &LiveHost::new(f.root()))?;
            (f, Some(now))
        }
    };
    let plan = fresh.as_ref().unwrap_or(plan);
    (a.show)(plan);
    if plan.nothing_to_do() {
        return Ok(Applied::Ran(Outcome::NothingToDo, None));
    }
    (a.confirm)(plan)?;
    let (false, Some(lock)) = (a.dry_run, &lock) else {
        return Ok(Applied::DryRun);
    };
    let outcome = apply::apply(plan, &state, lock, a.interrupted, a.on)?;
    let Outcome::Applied { run } = &outcome else {
        return Ok(Applied::Ran(outcome, None));
    };
    apply::fault("signal-during-verify", 1)?;
    let verified = facts
        .refresh()
        .and_then(|()| verify::run(&facts, &plan.verify));
    let failure = match &verified {
        // A signal while the proof ran (it can take seconds) means the same as one during the
        // steps.
        _ if a.interrupted.load(std::sync::atomic::Ordering::SeqCst) => {
            Some("interrupted by a signal during verification".to_string())
        }
        // Not started (no running systemd) proves nothing either way: nothing to roll back for.
        Ok(r) if r.ok || r.status == verify::Verdict::NotStarted => None,
        Ok(_) => Some("verification failed".to_string()),
        Err(e) => Some(format!("verification could not run: {e}")),
    };
    if let Ok(report) = &verified {
        (a.on)(Event::Verified {
            report: report.clone(),
        });
    }
    let outcome = match failure {
        None => outcome,
        Some(reason) => {
            let loaded = state.load(run)?;
            let mut j = state.reopen(&loaded, lock)?;
            apply::undo(&loaded, &mut j, &reason, true, a.on)?
        }
    };
    if let Outcome::Applied { run } = &outcome {
        record_in_etckeeper(
            &plan.root,
            &format!("apply run {run} ({})", plan.method),
            a.on,
        );
    }
    Ok(Applied::Ran(outcome, verified.ok().map(Box::new)))
}

/// The etckeeper commit that records what a run changed in /etc, as argv, or None: only for
/// the real root (`--root /`), with etckeeper installed and /etc under its control
/// (`etckeeper init` writes /etc/.etckeeper). Optional, never required.
pub fn etckeeper_commit(
    root: &std::path::Path,
    etckeeper: Option<PathBuf>,
    etc_managed: bool,
    what: &str,
) -> Option<Vec<String>> {
    if root != std::path::Path::new("/") || !etc_managed {
        return None;
    }
    Some(vec![
        etckeeper?.display().to_string(),
        "commit".into(),
        format!("lowport: {what}"),
    ])
}

/// Commits /etc with etckeeper when `etckeeper_commit` says so, and tells the front end how it
/// went. A failed commit is reported, never a failure of the run: the change itself is done.
fn record_in_etckeeper(root: &std::path::Path, what: &str, on: &mut dyn FnMut(Event)) {
    let managed = std::path::Path::new("/etc/.etckeeper").exists();
    // Looked for only where it would be used. Only a trusted system program runs (root-owned,
    // in a system directory).
    let found = (managed && root == std::path::Path::new("/"))
        .then(|| crate::programs::find("etckeeper").ok())
        .flatten();
    let Some(argv) = etckeeper_commit(root, found, managed, what) else {
        return;
    };
    let text = match crate::programs::command(&argv[0]).map(|mut c| c.args(&argv[1..]).output()) {
        Err(e) => format!("etckeeper was not run ({e}); the run itself is complete"),
        Ok(Err(e)) => format!("etckeeper could not run ({e}); the run itself is complete"),
        Ok(Ok(o)) if o.status.success() => format!("etckeeper: /etc committed ({})", argv[2]),
        Ok(Ok(o)) => format!(
            "etckeeper commit of /etc failed ({}); the run itself is complete: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
    };
    on(Event::Note { text });
}

/// Which run to roll back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    Id(String),
    /// The most recent run that is not rolled back yet.
    Last,
}

/// How a rollback ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rolled {
    /// The run was rolled back before; nothing was changed.
    Already(String),
    Ran {
        run: String,
        outcome: Outcome,
    },
}

impl Rolled {
    pub fn exit(&self) -> Exit {
        match self {
            Rolled::Already(_)
            | Rolled::Ran {
                outcome: Outcome::RolledBack { .. },
                ..
            } => Exit::Success,
            Rolled::Ran { .. } => Exit::RollbackIncomplete,
        }
    }
}

/// Rolls a past run back: the id is checked first (bad input), then root, then the lock.
pub fn rollback(
    ctx: &Context,
    which: &Which,
    force: bool,
    confirm: &mut dyn FnMut(&Run) -> Result<()>,
    on: &mut dyn FnMut(Event),
) -> Result<Rolled> {
    let state = ctx.state();
    if let Which::Id(id) = which {
        // An unknown id is bad input: refuse it before asking for root or taking the lock.
        state.load(id)?;
    }
    ctx.root()?;
    need_root("rollback")?;
    let lock = state.lock()?;
    let run = match which {
        Which::Id(id) => state.load(id)?,
        Which::Last => state.last_to_undo()?.ok_or_else(|| {
            Error::refused(
                Refusal::NothingToRollBack,
                "no run left to roll back; `lowport history` lists them",
            )
        })?,
    };
    if run.status() == Status::RolledBack {
        return Ok(Rolled::Already(run.id));
    }
    ensure_trusted_root(&run.plan.root)?;
    confirm(&run)?;
    let mut j = state.reopen(&run, &lock)?;
    let reason = format!("requested by {}", apply::Who::current().describe());
    let outcome = apply::undo(&run, &mut j, &reason, force, on)?;
    record_in_etckeeper(
        &run.plan.root,
        &format!("rollback of run {} ({})", run.id, run.plan.method),
        on,
    );
    Ok(Rolled::Ran {
        run: run.id,
        outcome,
    })
}

/// How one run from the history stands against the live host now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunHealth {
    pub id: String,
    pub method: MethodId,
    pub root: PathBuf,
    pub status: Status,
    /// Every target still as planned and the verification passed.
    pub in_place: bool,
    /// Each target the run changed, checked against the state the journal recorded after it.
    pub steps: Vec<drift::StepCheck>,
    /// The run's own verification, made again (None for an unfinished run, or a run journaled
    /// by a lowport that did not record what to verify).
    pub verify: Option<Report>,
    /// Why the run could not be checked completely.
    pub error: Option<String>,
    /// The command that puts it right, as argv: the same apply again (it changes only what
    /// drifted), or the rollback an unfinished run needs.
    pub fix: Option<Vec<String>>,
}

/// `lowport` with the global options that point at `ctx`'s state and `root`, when they are
/// not the defaults.
fn lowport_argv(ctx: &Context, root: &std::path::Path) -> Vec<String> {
    let at = Context {
        root: root.to_path_buf(),
        state_dir: ctx.state_dir.clone(),
    };
    [vec!["lowport".to_string()], at.options()].concat()
}

/// Re-checks every run of the history that is applied and not rolled back (and names the
/// unfinished ones): the targets it changed, then its verification. Read-only.
pub fn verify_all(ctx: &Context) -> Result<Vec<RunHealth>> {
    let mut out = Vec::new();
    for run in ctx.state().runs()? {
        let status = run.status();
        if status == Status::RolledBack {
            continue;
        }
        let mut health = RunHealth {
            id: run.id.clone(),
            method: run.plan.method,
            root: run.plan.root.clone(),
            status,
            in_place: false,
            steps: Vec::new(),
            verify: None,
            error: None,
            fix: None,
        };
        if status != Status::Applied {
            let mut fix = lowport_argv(ctx, &run.plan.root);
            fix.extend(["rollback".into(), run.id.clone()]);
            health.error = Some(format!("the run is {status}: finish its rollback"));
            health.fix = Some(fix);
            out.push(health);
            continue;
        }
        let checked = drift::steps(&run).and_then(|steps| {
            health.steps = steps;
            if run.plan.verify == verify::Target::default() {
                return Ok(None);
            }
            let at = Context {
                root: run.plan.root.clone(),
                state_dir: ctx.state_dir.clone(),
            };
            let facts = gather(&at, &run.plan.request, Some(run.plan.method), false)?;
            verify::run(&facts, &run.plan.verify).map(Some)
        });
        match checked {
            Ok(report) => health.verify = report,
            Err(e) => health.error = Some(format!("{e:#}")),
        }
        health.in_place = health.error.is_none()
            && health.steps.iter().all(|s| s.in_place)
            // A service not started yet (nothing listens, no running systemd) is not drift:
            // what the run changed is still there; nothing could be proven either way.
            && health
                .verify
                .as_ref()
                .is_none_or(|r| r.ok || r.status == verify::Verdict::NotStarted);
        if !health.in_place {
            let mut fix = lowport_argv(ctx, &run.plan.root);
            fix.push("apply".into());
            fix.extend(run.plan.request.apply_args());
            fix.push("--yes".into());
            if run.plan.risk == crate::plan::Risk::High {
                fix.push("--accept-risk".into());
            }
            health.fix = Some(fix);
        }
        out.push(health);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::PortArg;

    fn fixture() -> Facts {
        serde_json::from_str(include_str!(
            "../tests/scenarios/setcap_group_fabio/facts.json"
        ))
        .unwrap()
    }

    fn want() -> Want {
        Want {
            binary: Some("/usr/local/bin/fabio".into()),
            ports: vec![PortArg::Grant(80)],
            user: Some("fabio".into()),
            group: Some("fabio".into()),
            ..Want::default()
        }
    }

    #[test]
    fn facts_cover_only_what_they_were_gathered_for() {
        let facts = fixture();
        assert!(ensure_facts_cover(&facts, &want(), Some(MethodId::Setcap)).is_ok());
        let refused = |w: Want| {
            ensure_facts_cover(&facts, &w, Some(MethodId::Setcap))
                .unwrap_err()
                .to_string()
        };
        let e = refused(Want {
            group: Some("staff".into()),
            ..want()
        });
        assert!(e.contains("does not hold the group staff"), "{e}");
        let e = refused(Want {
            binary: None,
            ..want()
        });
        assert!(e.contains("a request without a binary"), "{e}");
        let e = refused(Want {
            service: crate::request::ServiceOptions {
                name: Some("web".into()),
                ..Default::default()
            },
            ..want()
        });
        assert!(e.contains("the service web"), "{e}");
    }

    /// The decision only: etckeeper commits the host's /etc, so it is never run by a test.
    #[test]
    fn etckeeper_commits_only_the_real_root_when_installed_and_managing_etc() {
        let tool = Some(PathBuf::from("/usr/bin/etckeeper"));
        let what = "apply run 20261129T135349Z-c89d (setcap)";
        assert_eq!(
            etckeeper_commit("/".as_ref(), tool.clone(), true, what),
            Some(vec![
                "/usr/bin/etckeeper".to_string(),
                "commit".into(),
                "lowport: apply run 20261129T135349Z-c89d (setcap)".into(),
            ])
        );
        assert_eq!(
            etckeeper_commit("/tmp/root".as_ref(), tool.clone(), true, what),
            None
        );
        assert_eq!(etckeeper_commit("/".as_ref(), None, true, what), None);
        assert_eq!(etckeeper_commit("/".as_ref(), tool, false, what), None);
    }

    #[test]
    fn the_fix_command_parses_back_into_the_same_request() {
        use clap::Parser;
        let req = Request::new(
            MethodId::Systemd,
            Want {
                ports: vec![
                    PortArg::Grant(443),
                    PortArg::Redirect {
                        public: 80,
                        backend: 8080,
                    },
                ],
                service: crate::request::ServiceOptions {
                    name: Some("web".into()),
                    dynamic_user: true,
                    args: vec!["-cfg".into(), "/etc/fabio/fabio.properties".into()],
                    writable: vec!["/var/log/web".into()],
                    state_directory: Some("web".into()),
                    allow_jit: true,
                    unmask: true,
                },
                ..want()
            },
        );
        let argv = ["lowport", "apply"]
            .into_iter()
            .map(String::from)
            .chain(req.apply_args());
        let cli = Cli::try_parse_from(argv).unwrap();
        let Some(crate::cli::Command::Apply(a)) = &cli.command else {
            panic!("not an apply: {cli:?}");
        };
        assert_eq!(a.method, Some(MethodId::Systemd));
        let (back, _) = want_for(&Context::new(&cli), &a.target).unwrap();
        assert_eq!(back, req.want);
    }

    #[test]
    fn a_plan_from_facts_is_refused_by_apply_before_anything_else() {
        let facts = fixture();
        let plan = plan_from_facts(&facts, &Request::new(MethodId::Setcap, want())).unwrap();
        assert!(plan.from_facts);
        let ctx = Context {
            root: "/nonexistent".into(),
            state_dir: "/nonexistent".into(),
        };
        let stop = AtomicBool::new(false);
        let e = apply(
            &ctx,
            &plan,
            Apply {
                facts: None,
                dry_run: true,
                interrupted: &stop,
                show: &mut |_| panic!("nothing may be shown"),
                confirm: &mut |_| panic!("nothing may be asked"),
                on: &mut |_| {},
            },
        )
        .unwrap_err();
        assert_eq!(e.refusal(), Some(Refusal::FromFacts), "{e}");
    }
}
