//! Thin entry point: parse, pick a front end, map errors to documented exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = lowport::cli::Cli::parse();
    // The scripted commands and the interactive front ends never call each other.
    let result = match &cli.command {
        Some(command) => lowport::commands::run(&cli, command),
        None => lowport::ui::run(&cli),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("lowport: {e:#}");
            e.exit().into()
        }
    }
}
