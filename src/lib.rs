//! lowport: let a service bind ports below 1024 without running it as root.
//!
//! One way through: facts (read-only probing; `facts::Host` is the seam planning reads the host
//! through) → request (resolved once) → methods (pure: facts + request → checks, actions, what
//! to verify) → planner → plan (data: previewed, saved, executed as is) → apply (the only
//! writer: lock, journal, rollback) → verify (a real bind, or every condition that decides a
//! file capability) → runner (the one orchestration) → front ends (commands, ui). A module uses
//! only modules below it; `tests/layers.rs` holds the order and fails on any use against it.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod console;
pub mod diagnose;
pub mod dirs;
pub mod drift;
pub mod error;
pub mod export;
pub mod facts;
pub mod methods;
pub mod plan;
pub mod planner;
pub mod profile;
pub mod programs;
pub mod render;
pub mod request;
pub mod root;
pub mod runner;
pub mod ui;
pub mod validate;
pub mod verify;
pub mod xattr;
