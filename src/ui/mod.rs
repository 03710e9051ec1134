//! The interactive front ends: a full-screen wizard (ratatui) and plain line prompts. Both are
//! views of the engine; neither holds a business rule.

pub mod app;
mod plain;
mod runtime;
pub mod view;

use std::io::IsTerminal;

use crate::cli::Cli;
use crate::commands::How;
use crate::error::{Exit, Result};

pub fn run(cli: &Cli) -> Result<Exit> {
    let i = &cli.interactive;
    let mut start = app::Start {
        method: i.method.clone(),
        binary: i.target.binary.clone(),
        ports: i.target.port.clone(),
        user: i.target.user.clone(),
        group: i.target.group.clone(),
        service: i.target.service.options(),
        notes: Vec::new(),
        is_root: nix::unistd::geteuid().is_root(),
    };
    if let Some(profile) = &i.target.service.profile {
        let notes = crate::profile::resolve(
            &crate::root::Root::new(cli.root.clone()),
            profile,
            i.target.service.config.as_deref(),
            &mut start.binary,
            &mut start.ports,
            &mut start.service.args,
        )?;
        start.notes = notes
            .iter()
            .map(|n| format!("{profile} profile: {n}"))
            .collect();
    }
    let dumb = std::env::var("TERM").map_or(true, |t| t == "dumb");
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal() && !dumb;
    if i.plain || i.yes || !terminal {
        let how = How {
            yes: i.yes,
            accept_risk: i.accept_risk,
            ..How::default()
        };
        plain::run(cli, start, how)
    } else {
        runtime::run(cli, start)
    }
}

#[cfg(test)]
mod tests;
