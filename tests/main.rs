//! One integration-test binary (one link step): every module drives the real `lowport` binary.
//! They prove the Linux methods on Linux (namespaces, systemd, file capabilities): elsewhere the
//! binary is empty, and `scripts/cross-check TARGET --all-targets` still checks the rest.
#![cfg(target_os = "linux")]

mod support;

mod authbind;
mod behaviour;
mod drift;
mod exports;
mod faults;
mod inputs;
mod json_docs;
mod layers;
mod listeners;
// macOS (issue 7; branch macwin).
mod macos;
mod nonroot;
mod package;
mod plain;
mod redirect;
mod scenarios;
mod setcap;
mod shell_exports;
mod solaris;
mod state;
mod subjects;
mod sysctl;
mod systemd;
mod tooling;
mod trust;
mod tui;
// Windows (issue 7; branch macwin).
mod windows;
