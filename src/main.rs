//! Thin entry point: parse, pick a front end, map errors to documented exit codes.

use std::process::ExitCode;

use clap::Parser;

use lowport::render::clean;

fn main() -> ExitCode {
    let cli = match lowport::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap quotes the offending value, which may carry escape sequences.
            let text = clean(&e.render().to_string());
            if e.use_stderr() {
                eprint!("{text}");
            } else {
                print!("{text}");
            }
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
            eprintln!("lowport: {}", clean(&format!("{e:#}")));
            e.exit().into()
        }
    }
}
