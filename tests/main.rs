//! One integration-test binary (one link step): every module drives the real `lowport` binary.

mod support;

mod authbind;
mod behaviour;
mod faults;
mod inputs;
mod layers;
mod listeners;
mod plain;
mod redirect;
mod scenarios;
mod setcap;
mod state;
mod subjects;
mod sysctl;
mod systemd;
mod trust;
mod tui;
