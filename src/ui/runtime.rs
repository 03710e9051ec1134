//! The TUI's runtime: terminal setup and restore, one channel into which the input thread, the
//! signal thread and the workers all send [`Msg`]s, and the effects ([`Cmd`]) performed off the
//! UI thread. The loop blocks on the channel, so an idle wizard uses no CPU.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};

use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};

use super::app::{Cmd, Model, Msg, RunRow, Start, update};
use super::view::{Theme, view};
use crate::apply::{self, Run, StateDir, Status};
use crate::cli::Cli;
use crate::commands;
use crate::error::{Exit, Result};
use crate::methods::{self, Request};
use crate::plan::Plan;
use crate::render;

/// Restores the terminal when the wizard ends, by return or by error. (`ratatui::init` also
/// installs a panic hook that restores it first.)
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

pub fn row(run: &Run) -> RunRow {
    let (time, _) = run
        .started()
        .map(|(t, w)| (render::time(t), w.clone()))
        .unzip();
    RunRow {
        id: run.id.clone(),
        time: time.unwrap_or_default(),
        method: run.plan.method.clone(),
        status: run.status().to_string(),
        rolled_back: run.status() == Status::RolledBack,
        undo: run.undo_steps(),
    }
}

/// Performs effects; each reports back through the channel.
struct Effects<'a> {
    cli: &'a Cli,
    tx: Sender<Msg>,
    interrupt: Arc<AtomicBool>,
}

impl Effects<'_> {
    fn run(&self, cmd: Cmd) {
        let tx = self.tx.clone();
        let cli = self.cli.clone();
        let interrupt = Arc::clone(&self.interrupt);
        match cmd {
            Cmd::Quit => {}
            Cmd::Interrupt => self.interrupt.store(true, Ordering::SeqCst),
            Cmd::Gather { binary, ports } => {
                std::thread::spawn(move || {
                    let req = Request {
                        binary,
                        ports,
                        ..Request::default()
                    };
                    let facts = commands::gather(&cli, &req, true);
                    let msg = match facts {
                        Ok(f) => {
                            let _ = tx.send(Msg::Methods(methods::assess(&f, &req)));
                            Msg::Facts(Ok(Box::new(f)))
                        }
                        Err(e) => Msg::Facts(Err(e.to_string())),
                    };
                    let _ = tx.send(msg);
                });
            }
            Cmd::Plan(req) => {
                std::thread::spawn(move || {
                    let msg = match commands::gather(&cli, &req, true) {
                        Ok(facts) => Msg::Planned {
                            methods: methods::assess(&facts, &req),
                            plan: Plan::build(&facts, &req)
                                .map(Box::new)
                                .map_err(|e| e.to_string()),
                            facts: Box::new(facts),
                        },
                        Err(e) => Msg::Facts(Err(e.to_string())),
                    };
                    let _ = tx.send(msg);
                });
            }
            Cmd::Apply(plan) => {
                std::thread::spawn(move || {
                    let state = StateDir::new(cli.state_dir.clone());
                    let result = (|| {
                        let lock = state.lock()?;
                        let mut facts = commands::gather(&cli, &plan.request, false)?;
                        plan.ensure_current(&facts)?;
                        let progress = tx.clone();
                        let mut on = move |e| {
                            let _ = progress.send(Msg::Progress(e));
                        };
                        apply::apply_verified(&plan, &mut facts, &state, &lock, &interrupt, &mut on)
                    })();
                    let _ = tx.send(Msg::Finished(result.map_err(|e| e.to_string())));
                });
            }
            Cmd::Rollback(id) => {
                std::thread::spawn(move || {
                    let state = StateDir::new(cli.state_dir.clone());
                    let result = (|| {
                        let lock = state.lock()?;
                        let run = state.load(&id)?;
                        let mut j = state.reopen(&run, &lock)?;
                        let progress = tx.clone();
                        let mut on = move |e| {
                            let _ = progress.send(Msg::Progress(e));
                        };
                        let reason = format!("requested by {}", apply::Who::current().describe());
                        apply::undo(&run, &mut j, &reason, false, &mut on).map(|o| (o, None))
                    })();
                    let _ = tx.send(Msg::Finished(result.map_err(|e| e.to_string())));
                });
            }
            Cmd::LoadHistory => {
                let runs = StateDir::new(cli.state_dir.clone()).runs();
                let rows = runs
                    .map(|r| r.iter().rev().map(row).collect())
                    .map_err(|e| e.to_string());
                let _ = tx.send(Msg::History(rows));
            }
            Cmd::SavePlan(plan) => {
                let saved = std::env::current_dir()
                    .map(|d| d.join(format!("lowport-plan-{}.json", plan.method)))
                    .and_then(|path| {
                        let text =
                            serde_json::to_string_pretty(&plan).map_err(std::io::Error::other)?;
                        std::fs::write(&path, text + "\n").map(|()| path)
                    });
                let _ = tx.send(Msg::Saved(
                    saved.map_err(|e| format!("cannot save the plan: {e}")),
                ));
            }
        }
    }
}

pub fn run(cli: &Cli, start: Start) -> Result<Exit> {
    let mut terminal = ratatui::try_init()?;
    let _restore = Restore;
    let theme = Theme::from_env();
    let (tx, rx) = channel();
    let input = tx.clone();
    std::thread::spawn(move || {
        while let Ok(ev) = event::read() {
            let msg = match ev {
                TermEvent::Key(k) if k.kind == KeyEventKind::Press => Msg::Key(k),
                TermEvent::Resize(..) => Msg::Resize,
                _ => continue,
            };
            if input.send(msg).is_err() {
                break;
            }
        }
    });
    let signals = tx.clone();
    let mut sigs = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ])
    .map_err(anyhow::Error::from)?;
    std::thread::spawn(move || {
        for _ in sigs.forever() {
            if signals.send(Msg::Terminate).is_err() {
                break;
            }
        }
    });
    let effects = Effects {
        cli,
        tx,
        interrupt: Arc::new(AtomicBool::new(false)),
    };
    let (mut model, cmds) = Model::new(&start);
    terminal.draw(|f| view(&model, f, theme))?;
    cmds.into_iter().for_each(|c| effects.run(c));
    while let Ok(msg) = rx.recv() {
        for cmd in update(&mut model, msg) {
            effects.run(cmd);
        }
        if model.quit {
            break;
        }
        terminal.draw(|f| view(&model, f, theme))?;
    }
    Ok(Exit::Success)
}
