//! lowport: let a service bind ports below 1024 without running it as root.
//!
//! One way through: facts (read-only probing; `facts::Host` is the seam planning reads the host
//! through) → request (resolved once) → methods (pure: facts + request → checks, actions, what
//! to verify) → planner → plan (data: previewed, saved, executed as is) → apply (the only
//! writer: lock, journal, rollback) → verify (a real bind, or every condition that decides a
//! file capability) → runner (the one orchestration) → front ends (commands, ui). A module uses
//! only modules below it; `tests/layers.rs` holds the order and fails on any use against it.

/// `print!`/`println!`/`eprint!`/`eprintln!` that never panic: when the reader has gone (a
/// closed pipe, `lowport … | head`), the text is dropped and the command carries on, so an
/// apply finishes or rolls back instead of dying half-way; its exit code still tells the result.
macro_rules! out {
    ($($t:tt)*) => {{ use std::io::Write as _; let _ = write!(std::io::stdout().lock(), $($t)*); }};
}
macro_rules! outln {
    ($($t:tt)*) => {{ use std::io::Write as _; let _ = writeln!(std::io::stdout().lock(), $($t)*); }};
}
macro_rules! err {
    ($($t:tt)*) => {{ use std::io::Write as _; let _ = write!(std::io::stderr().lock(), $($t)*); }};
}
macro_rules! errln {
    ($($t:tt)*) => {{ use std::io::Write as _; let _ = writeln!(std::io::stderr().lock(), $($t)*); }};
}

pub mod apply;

pub mod cli;
pub mod commands;
pub mod console;
pub mod diagnose;
pub mod drift;
pub mod error;
pub mod export;
pub mod facts;
pub mod methods;
pub mod os;
pub mod plan;
pub mod planner;
pub mod profile;
pub mod programs;
pub mod render;
pub mod request;
pub mod root;
pub mod runner;
pub mod sysctl;
#[cfg(all(test, unix))]
mod testing;
pub mod ui;
pub mod validate;
pub mod verify;
pub mod xattr;
