//! One integration-test binary (one link step): every module drives the real `lowport` binary.

mod support;

mod authbind;
mod behaviour;
mod exports;
mod faults;
mod inputs;
mod layers;
mod plain;
mod redirect;
mod scenarios;
mod setcap;
mod state;
mod sysctl;
mod systemd;
mod trust;
mod tui;
