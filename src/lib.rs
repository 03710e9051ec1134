//! lowport: let a service bind ports below 1024 without running it as root.
//!
//! facts (read-only probing) → methods (pure: facts + request → checks and actions) → plan
//! (data: previewed, saved, executed as is) → apply (the only writer: lock, journal, rollback)
//! → verify (a real bind, or every condition that decides a file capability).

pub mod apply;
pub mod cli;
pub mod commands;
pub mod diagnose;
pub mod error;
pub mod facts;
pub mod methods;
pub mod plan;
pub mod profile;
pub mod render;
pub mod root;
pub mod ui;
pub mod validate;
pub mod verify;
pub mod xattr;
