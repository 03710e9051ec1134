//! The interactive front ends: a full-screen wizard (ratatui) and plain line prompts. Both are
//! views of the engine; neither holds a business rule.

pub mod app;
mod form;
mod plain;
mod runtime;
pub mod view;

use std::io::IsTerminal;

use crate::cli::Cli;
use crate::console::How;
use crate::error::{Exit, Result};
use crate::runner::{self, Context};

pub fn run(cli: &Cli) -> Result<Exit> {
    let i = &cli.interactive;
    let ctx = Context::new(cli);
    let (want, notes) = runner::want_for(&ctx, &i.target)?;
    let start = app::Start {
        method: i.method,
        binary: want.binary,
        ports: want.ports,
        user: want.user,
        group: want.group,
        interface: want.interface,
        service: want.service,
        other: i.other.clone(),
        notes,
        is_root: crate::os::is_root(),
        exe: crate::console::lowport_exe(),
        options: ctx.options(),
    };
    let dumb = std::env::var("TERM").map_or(true, |t| t == "dumb");
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal() && !dumb;
    if i.plain || i.yes || !terminal {
        let how = How {
            yes: i.yes,
            accept_risk: i.accept_risk,
            ..How::default()
        };
        plain::run(&ctx, start, how)
    } else {
        runtime::run(&ctx, start)
    }
}

#[cfg(test)]
mod tests;
