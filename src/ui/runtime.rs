//! The TUI's runtime: terminal setup and restore, one channel into which the input thread, the
//! signal thread and the workers all send [`Msg`]s, and the effects ([`Cmd`]) performed off the
//! UI thread. The loop blocks on the channel, so an idle wizard uses no CPU.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};

use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};

use super::app::{Cmd, Model, Msg, RunRow, Start, update};
use super::view::{Theme, view};
use crate::apply::{Outcome, Run, Status};
use crate::error::{Exit, Result};
use crate::methods::{self, Want};
use crate::render;
use crate::runner::{self, Applied, Context, Rolled, Which};

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
        method: run.plan.method.to_string(),
        status: run.status().to_string(),
        rolled_back: run.status() == Status::RolledBack,
        undo: run.undo_steps(),
    }
}

/// Writes `text` to `name` in the current directory and returns its path, never through a
/// link or into a file someone else planted under that name (`console::write_file`).
fn write_here(name: &str, text: &str, mode: u32) -> std::io::Result<std::path::PathBuf> {
    crate::console::write_file(&std::env::current_dir()?, name, text, mode)
}

/// Performs effects; each reports back through the channel.
struct Effects<'a> {
    ctx: &'a Context,
    tx: Sender<Msg>,
    interrupt: Arc<AtomicBool>,
}

/// A progress sink that forwards the runner's events to the wizard.
fn forward(tx: &Sender<Msg>) -> impl FnMut(crate::apply::Event) + use<> {
    let tx = tx.clone();
    move |e| {
        let _ = tx.send(Msg::Progress(e));
    }
}

impl Effects<'_> {
    fn run(&self, cmd: Cmd) {
        let tx = self.tx.clone();
        let ctx = self.ctx.clone();
        let interrupt = Arc::clone(&self.interrupt);
        match cmd {
            Cmd::Quit => {}
            Cmd::Interrupt => self.interrupt.store(true, Ordering::SeqCst),
            Cmd::Gather {
                binary,
                ports,
                other,
            } => {
                std::thread::spawn(move || {
                    let want = Want {
                        binary,
                        ports,
                        ..Want::default()
                    };
                    // Another host's facts are read from its document, not this machine.
                    let facts = match runner::other_host(&other) {
                        Ok(Some(f)) => Ok(f),
                        Ok(None) => runner::gather(&ctx, &want, None, true),
                        Err(e) => Err(e),
                    };
                    let msg = match facts {
                        Ok(f) => {
                            let _ = tx.send(Msg::Methods(methods::assess(&f, &want)));
                            Msg::Facts(Ok(Box::new(f)))
                        }
                        Err(e) => Msg::Facts(Err(e.to_string())),
                    };
                    let _ = tx.send(msg);
                });
            }
            Cmd::Plan(req, other) => {
                std::thread::spawn(move || {
                    let facts = match runner::other_host(&other) {
                        Ok(Some(f)) => Ok((f, true)),
                        Ok(None) => {
                            runner::gather(&ctx, &req, Some(req.method), true).map(|f| (f, false))
                        }
                        Err(e) => Err(e),
                    };
                    let msg = match facts {
                        Ok((facts, elsewhere)) => Msg::Planned {
                            methods: methods::assess(&facts, &req),
                            plan: if elsewhere {
                                runner::plan_from_facts(&facts, &req)
                            } else {
                                runner::plan_on(&facts, &req)
                            }
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
                    let mut on = forward(&tx);
                    let applied = runner::apply(
                        &ctx,
                        &plan,
                        runner::Apply {
                            facts: None,
                            dry_run: false,
                            interrupted: &interrupt,
                            // The wizard showed the plan and asked on its Review screen
                            // before sending this; the runner refuses it if the host drifted.
                            show: &mut |_| {},
                            confirm: &mut |_| Ok(()),
                            on: &mut on,
                        },
                    );
                    let _ = tx.send(match applied {
                        Ok(a) => Msg::Finished {
                            exit: a.exit(),
                            result: Ok(match a {
                                Applied::Ran(o, report) => (o, report.map(|r| *r)),
                                Applied::DryRun => (Outcome::NothingToDo, None),
                            }),
                        },
                        Err(e) => Msg::Finished {
                            exit: e.exit(),
                            result: Err(e.to_string()),
                        },
                    });
                });
            }
            Cmd::Rollback(id) => {
                std::thread::spawn(move || {
                    let mut on = forward(&tx);
                    let rolled =
                        runner::rollback(&ctx, &Which::Id(id), false, &mut |_| Ok(()), &mut on);
                    let _ = tx.send(match rolled {
                        Ok(r) => Msg::Finished {
                            exit: r.exit(),
                            result: Ok(match r {
                                Rolled::Ran { outcome, .. } => (outcome, None),
                                Rolled::Already(_) => (Outcome::NothingToDo, None),
                            }),
                        },
                        Err(e) => Msg::Finished {
                            exit: e.exit(),
                            result: Err(e.to_string()),
                        },
                    });
                });
            }
            Cmd::LoadHistory => {
                let runs = self.ctx.state().runs();
                let rows = runs
                    .map(|r| r.iter().rev().map(row).collect())
                    .map_err(|e| e.to_string());
                let _ = tx.send(Msg::History(rows));
            }
            Cmd::SavePlan(plan) => {
                let saved = serde_json::to_string_pretty(&plan)
                    .map_err(std::io::Error::other)
                    .and_then(|text| {
                        let text = text + "\n";
                        let name = format!("lowport-plan-{}.json", plan.method);
                        Ok(super::app::Saved {
                            path: write_here(&name, &text, 0o644)?,
                            sha256: crate::facts::files::sha256(text.as_bytes()),
                        })
                    });
                let _ = tx.send(Msg::Saved(
                    saved.map_err(|e| format!("cannot save the plan: {e}")),
                ));
            }
            Cmd::Export(plan) => {
                let (format, ext) = if plan.family == "windows" {
                    (crate::export::Format::Powershell, "ps1")
                } else {
                    (crate::export::Format::Sh, "sh")
                };
                let written = crate::export::export(&plan, format)
                    .map_err(|e| e.to_string())
                    .and_then(|files| match files.as_slice() {
                        [one] => {
                            write_here(&format!("lowport-{}.{ext}", plan.method), &one.text, 0o755)
                                .map_err(|e| format!("cannot write the script: {e}"))
                        }
                        _ => Err("the export is not one script".to_string()),
                    });
                let _ = tx.send(Msg::Exported(written));
            }
        }
    }
}

/// Runs the wizard; its exit code is that of the last apply or rollback it finished, or
/// "declined" (3) when the operator left without carrying anything out.
pub fn run(ctx: &Context, start: Start) -> Result<Exit> {
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
    crate::os::on_stop_signal(move || signals.send(Msg::Terminate).is_ok())
        .map_err(anyhow::Error::from)?;
    let effects = Effects {
        ctx,
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
    Ok(model.exit.unwrap_or(Exit::Declined))
}
