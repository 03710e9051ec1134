//! Thin entry point: parse, pick a front end, map errors to documented exit codes.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use lowport::render::clean;

fn main() -> ExitCode {
    let cli = match lowport::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap quotes the offending value, which may carry escape sequences. A closed pipe
            // (`lowport --help | head`) is no reason to panic.
            let text = clean(&e.render().to_string());
            let _ = if e.use_stderr() {
                write!(std::io::stderr(), "{text}")
            } else {
                write!(std::io::stdout(), "{text}")
            };
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    // The scripted commands and the interactive front ends never call each other.
    let result = match &cli.command {
        Some(command) => lowport::commands::run(&cli, command),
        None => lowport::ui::run(&cli),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "lowport: {}", clean(&format!("{e:#}")));
            e.exit().into()
        }
    }
}
