//! The scripted front end: one function per subcommand, each resolving validated arguments
//! against the host, calling the engine, and printing text or one JSON document.

use std::path::Path;

use serde_json::json;

use crate::apply::StateDir;
use crate::cli::{
    ApplyArgs, Cli, Command, DetectArgs, ExportArgs, PlanArgs, RollbackArgs, TargetArgs, VerifyArgs,
};
use crate::console::{self, FORMAT_VERSION, How, print_json};
use crate::error::{Error, Exit, Refusal, Result};
use crate::methods::{self, Request};
use crate::plan::Plan;
use crate::render;
use crate::runner::{self, Context, Rolled, Which};
use crate::verify;

/// Runs a subcommand (without one, `main` starts the interactive front end instead).
pub fn run(cli: &Cli, command: &Command) -> Result<Exit> {
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
    if interactive_flags {
        return Err(Error::Invalid(
            "options given before the subcommand belong to the interactive mode; put them after \
             the subcommand (e.g. `lowport plan --method setcap --binary fabio --port 80`)"
                .into(),
        ));
    }
    let ctx = Context::new(cli);
    match command {
        Command::Detect(a) => detect(&ctx, a),
        Command::Methods(a) => list_methods(&ctx, a),
        Command::Plan(a) => plan(&ctx, a),
        Command::Apply(a) => apply(&ctx, a),
        Command::Rollback(a) => rollback(&ctx, a).inspect_err(|e| {
            // Scripts read one document on failure too (bad id, nothing to undo, not root,
            // lock held, declined), with the exit code it ends with.
            if a.fmt.json {
                print_json(&console::error_json(e));
            }
        }),
        Command::History(a) => history(&ctx, a.json),
        Command::Verify(a) => verify_cmd(&ctx, a),
        Command::Completions(a) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(a.shell, &mut cmd, "lowport", &mut std::io::stdout());
            Ok(Exit::Success)
        }
        Command::Man(a) => man(a.subcommand.as_deref()),
        Command::Export(a) => export(&ctx, a),
        Command::FactsScript(a) => {
            let want = want_for(&ctx, &a.target)?;
            out!("{}", crate::export::facts_script::render(&a.os, &want)?);
            Ok(Exit::Success)
        }
        Command::Bind { ports } => Ok(bind_probe(ports)),
    }
}

/// Profile notes go to stderr so JSON output stays clean.
fn want_for(ctx: &Context, t: &crate::cli::Target) -> Result<methods::Want> {
    let (want, notes) = runner::want_for(ctx, t)?;
    for n in notes {
        errln!("{}", render::clean(&n));
    }
    Ok(want)
}

fn detect(ctx: &Context, a: &DetectArgs) -> Result<Exit> {
    let want = want_for(ctx, &a.target)?;
    let f = runner::detect(ctx, &want, &a.method)?;
    if a.fmt.json {
        print_json(&serde_json::to_value(&f).map_err(anyhow::Error::from)?);
    } else {
        out!("{}", render::facts(&f));
    }
    Ok(Exit::Success)
}

fn list_methods(ctx: &Context, a: &TargetArgs) -> Result<Exit> {
    let want = want_for(ctx, &a.target)?;
    let f = match runner::other_host(&a.other)? {
        Some(f) => {
            runner::ensure_facts_cover(&f, &want, None)?;
            f
        }
        None => runner::gather(ctx, &want, None, true)?,
    };
    let list = methods::assess(&f, &want);
    // Said first: where every user may already bind the port, no method is needed.
    let open = methods::already_open(&f, &want);
    // Containers are explained with the methods: the answer there is often "nothing to grant".
    let containers = crate::export::CONTAINER_NOTE
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if a.fmt.json {
        let recommended = methods::recommended(&list).map(|i| list[i].id);
        print_json(&json!({
            "format_version": FORMAT_VERSION, "os": f.os.family, "already_open": open,
            "recommended": recommended, "methods": list, "containers": containers,
        }));
    } else {
        if let Some(o) = &open {
            outln!("{o}\n");
        }
        out!("{}", render::methods(&list));
        // Containers are Linux's (Kubernetes and Compose run Linux containers).
        if f.os.family == "linux" {
            outln!(
                "\nContainers\n  {}\n  `lowport export --format kubernetes|compose` writes the \
                 minimal snippet for the chosen method.",
                crate::export::CONTAINER_NOTE.replace('\n', "\n  ")
            );
        }
    }
    Ok(Exit::Success)
}

fn plan(ctx: &Context, a: &PlanArgs) -> Result<Exit> {
    let req = Request::new(a.method, want_for(ctx, &a.target)?);
    let p = match runner::other_host(&a.other)? {
        Some(f) => runner::plan_from_facts(&f, &req)?,
        None => runner::plan(ctx, &req)?.1,
    };
    // The bytes written, whose SHA-256 the command that applies them carries.
    let mut saved = String::new();
    if let Some(out) = &a.out_file {
        let text = serde_json::to_string_pretty(&p).map_err(anyhow::Error::from)?;
        let (dir, name) = match (out.parent(), out.file_name().and_then(|n| n.to_str())) {
            (Some(d), Some(n)) => (
                if d.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    d
                },
                n,
            ),
            _ => {
                return Err(Error::Invalid(format!(
                    "--out {} does not name a file",
                    out.display()
                )));
            }
        };
        saved = text + "\n";
        console::write_file(dir, name, &saved, 0o644).map_err(|e| {
            Error::Invalid(format!("cannot write the plan to {}: {e}", out.display()))
        })?;
    }
    if a.fmt.json {
        print_json(&serde_json::to_value(&p).map_err(anyhow::Error::from)?);
    } else {
        out!("{}", render::plan(&p));
        if let Some(out) = &a.out_file {
            if p.from_facts {
                outln!(
                    "Plan saved to {} for review and export; it was made from facts, so \
                     `lowport apply` refuses it",
                    out.display()
                );
            } else {
                let sudo = !crate::os::is_root();
                outln!(
                    "Plan saved to {}; apply it with: {}",
                    out.display(),
                    render::apply_plan_command(
                        &console::lowport_exe(),
                        &ctx.options(),
                        out,
                        &crate::facts::files::sha256(saved.as_bytes()),
                        sudo
                    )
                );
            }
        }
    }
    Ok(if p.nothing_to_do() {
        Exit::NothingToDo
    } else {
        Exit::Success
    })
}

/// `export`: the plan (made here, from facts, or loaded) in another engine's format. Nothing on
/// this host changes; the files go to `--out DIR`, or the one file to stdout.
fn export(ctx: &Context, a: &ExportArgs) -> Result<Exit> {
    let p = match (&a.plan, a.method) {
        (Some(file), _) => load_plan(file)?,
        (None, Some(method)) => {
            let req = Request::new(method, want_for(ctx, &a.target)?);
            match runner::other_host(&a.other)? {
                Some(f) => runner::plan_from_facts(&f, &req)?,
                None => runner::plan(ctx, &req)?.1,
            }
        }
        (None, None) => return Err(Error::Invalid("give --method ID or --plan FILE".into())),
    };
    let files = crate::export::export(&p, a.format)?;
    let Some(dir) = &a.out_dir else {
        return match files.as_slice() {
            [one] => {
                out!("{}", one.text);
                Ok(Exit::Success)
            }
            _ => Err(Error::Invalid(format!(
                "this export is {} files ({}); give --out DIR",
                files.len(),
                files
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        };
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Invalid(format!("cannot make the directory {}: {e}", dir.display())))?;
    for f in &files {
        let mode = if f.executable { 0o755 } else { 0o644 };
        let path = console::write_file(dir, &f.name, &f.text, mode).map_err(|e| {
            Error::Invalid(format!(
                "cannot write the export to {}: {e}",
                dir.join(&f.name).display()
            ))
        })?;
        outln!("{}", path.display());
    }
    Ok(Exit::Success)
}

/// A saved plan for export: it is only written out, never carried out, so unlike `apply` any
/// owner may have made it; its values are checked by the export.
fn load_plan(file: &std::path::Path) -> Result<Plan> {
    let text = crate::facts::files::read_to_string(file)
        .map_err(|e| Error::Invalid(format!("cannot read plan {}: {e}", file.display())))?;
    Plan::load(&text, &file.display().to_string())
}

fn apply(ctx: &Context, a: &ApplyArgs) -> Result<Exit> {
    let (p, facts) = match (&a.plan, a.method) {
        (Some(file), _) => {
            // Re-planned on this host by the runner: the fresh plan is what is shown and run.
            let text = read_plan(file, a.plan_sha256.as_deref())?;
            (Plan::load(&text, &file.display().to_string())?, None)
        }
        (None, Some(method)) => {
            let req = Request::new(method, want_for(ctx, &a.target)?);
            let (f, p) = runner::plan(ctx, &req)?;
            (p, Some(f))
        }
        (None, None) => {
            return Err(Error::Invalid("give --method ID or --plan FILE".into()));
        }
    };
    let how = How {
        yes: a.yes,
        accept_risk: a.accept_risk,
        dry_run: a.dry_run,
        json: a.fmt.json,
    };
    console::carry_out(ctx, &p, facts, how)
}

/// A saved plan's text, from a file only root (or the caller) can have written: lowport runs
/// what a plan says as root, so a file others could edit is refused.
fn read_plan(file: &std::path::Path, sha256: Option<&str>) -> Result<String> {
    use crate::os::MetadataExt;
    let shown = file.display();
    let cannot = |e: std::io::Error| Error::Invalid(format!("cannot read plan {shown}: {e}"));
    let me = crate::os::euid();
    let f = crate::facts::files::open_regular(file).map_err(cannot)?;
    // Judged on the open file, so what was checked is what is read.
    let m = f.metadata().map_err(cannot)?;
    if (m.uid() != 0 && m.uid() != me) || m.mode() & 0o022 != 0 {
        return Err(Error::refused(
            Refusal::PlanFile,
            format!(
                "plan {shown} is owned by uid {} with mode {:04o}: someone other than root could \
                 have written it, and lowport would carry it out as root. Review it, then run \
                 `chown root {shown}` and `chmod go-w {shown}`, or make a new plan with `lowport \
                 plan --out`. Nothing was changed.",
                m.uid(),
                m.mode() & 0o7777
            ),
        ));
    }
    let bytes = crate::facts::files::read_limited(f).map_err(cannot)?;
    let now = crate::facts::files::sha256(&bytes);
    if let Some(want) = sha256.filter(|want| **want != now) {
        return Err(Error::refused(
            Refusal::PlanFile,
            format!(
                "plan {shown} is not the plan that was reviewed: its SHA-256 is {now}, the command \
                 gives {want}. Someone changed it after `lowport plan` wrote it (a descriptor \
                 opened before it was handed to root still writes to it); make a new plan. \
                 Nothing was changed."
            ),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|e| cannot(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

fn rollback(ctx: &Context, a: &RollbackArgs) -> Result<Exit> {
    let which = match (&a.id, a.last) {
        (Some(id), _) => Which::Id(id.clone()),
        (None, true) => Which::Last,
        (None, false) => {
            return Err(Error::Invalid(
                "give the run to undo (see `lowport history`) or --last".into(),
            ));
        }
    };
    let json_out = a.fmt.json;
    let mut confirm = |run: &crate::apply::Run| {
        for w in &run.warnings {
            errln!("lowport: {}", render::clean(w));
        }
        // Derived from the validated actions and snapshots, never from text in the journal.
        let steps = run.undo_steps();
        if !json_out {
            outln!(
                "Run {} ({}, {}): {} step(s) to undo",
                run.id,
                run.plan.method,
                run.status(),
                steps.len()
            );
            for (n, undo) in &steps {
                outln!("  {n}. {}", render::clean(undo));
            }
        }
        if a.yes {
            Ok(())
        } else {
            console::ask("Roll back? Type 'yes' to continue:", "yes")
        }
    };
    let rolled = runner::rollback(ctx, &which, a.force, &mut confirm, &mut console::progress)?;
    let exit = rolled.exit();
    match &rolled {
        Rolled::Already(id) if json_out => print_json(&json!({
            "format_version": FORMAT_VERSION,
            "outcome": { "status": "already_rolled_back", "run": id },
        })),
        Rolled::Already(id) => {
            outln!("Run {id} is already rolled back. Nothing was changed.");
        }
        Rolled::Ran { outcome, .. } if json_out => {
            print_json(
                &json!({ "format_version": FORMAT_VERSION, "outcome": console::outcome_json(ctx, outcome) }),
            );
        }
        Rolled::Ran { run, .. } if exit == Exit::Success => outln!("Run {run} rolled back."),
        Rolled::Ran { run, .. } => outln!(
            "Rollback of run {run} is INCOMPLETE; the journal is kept: fix the cause and run \
             `{}` again.",
            ctx.rollback_command(run)
        ),
    }
    Ok(exit)
}

fn history(ctx: &Context, json_out: bool) -> Result<Exit> {
    let state: StateDir = ctx.state();
    let (runs, mut notes) = state.scan()?;
    notes.extend(runs.iter().flat_map(|r| r.warnings.iter().cloned()));
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
        print_json(&json!({ "format_version": FORMAT_VERSION, "runs": list, "notes": notes }));
    } else if runs.is_empty() && !notes.is_empty() {
        outln!("No readable runs recorded; lowport says why below.");
    } else {
        out!("{}", render::history(&runs));
    }
    for n in &notes {
        errln!("lowport: {}", render::clean(n));
    }
    Ok(Exit::Success)
}

fn verify_cmd(ctx: &Context, a: &VerifyArgs) -> Result<Exit> {
    if a.all {
        return verify_all(ctx, a.fmt.json);
    }
    let mut want = methods::Want {
        binary: a.binary.clone(),
        ports: a.port.clone(),
        ..methods::Want::default()
    };
    want.service.name = a.service.clone();
    let f = runner::gather(ctx, &want, None, false)?;
    let (ports, redirects) = crate::validate::split_ports(&a.port);
    let target = verify::Target {
        byport: if a.authbind {
            ports.iter().map(|p| methods::authbind_file(*p)).collect()
        } else {
            Vec::new()
        },
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
        out!("{}", render::verify(&r));
    }
    Ok(if r.ok {
        Exit::Success
    } else {
        Exit::VerifyFailed
    })
}

/// `verify --all`: every applied run, checked again; exit 10 when any drifted.
fn verify_all(ctx: &Context, json_out: bool) -> Result<Exit> {
    let runs = runner::verify_all(ctx)?;
    let in_place = runs.iter().all(|r| r.in_place);
    if json_out {
        print_json(
            &json!({ "format_version": FORMAT_VERSION, "in_place": in_place, "runs": runs }),
        );
    } else {
        out!("{}", render::health(&runs));
    }
    Ok(if in_place { Exit::Success } else { Exit::Drift })
}

/// `man [SUBCOMMAND]`: lowport(1), or lowport-NAME(1) with that subcommand's options.
fn man(sub: Option<&str>) -> Result<Exit> {
    let top = <Cli as clap::CommandFactory>::command();
    let page = match sub {
        None => clap_mangen::Man::new(top),
        Some(name) => {
            let cmd = top
                .find_subcommand(name)
                .cloned()
                .ok_or_else(|| Error::Invalid(format!("no subcommand '{name}'")))?;
            // The page's name, as `man lowport-apply` finds it.
            clap_mangen::Man::new(
                cmd.name(format!("lowport-{name}"))
                    .bin_name(format!("lowport {name}"))
                    .version(env!("CARGO_PKG_VERSION")),
            )
        }
    };
    let mut out = Vec::new();
    page.render(&mut out)?;
    std::io::Write::write_all(&mut std::io::stdout(), &out)?;
    Ok(Exit::Success)
}

/// `__bind PORT…`: binds each port on the wildcard address, as a service does (a process on any
/// of the host's addresses makes it fail as it would make the service fail), and says so. Run by `verify` as the target user under `authbind --deep`, whose preloaded library
/// intercepts exactly this libc `bind()`.
fn bind_probe(ports: &[u16]) -> Exit {
    let mut ok = true;
    for port in ports {
        let result = std::net::TcpListener::bind(("0.0.0.0", *port));
        match result {
            Ok(_) => outln!("{port} ok"),
            Err(e) => {
                ok = false;
                outln!("{port} {e}");
            }
        }
    }
    if ok {
        Exit::Success
    } else {
        Exit::VerifyFailed
    }
}
