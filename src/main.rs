//! Thin entry point: parse, run the command, map errors to documented exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = lowport::cli::Cli::parse();
    match lowport::commands::run(&cli) {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("lowport: {}", lowport::render::clean(&format!("{e:#}")));
            e.exit().into()
        }
    }
}
