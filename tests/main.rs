//! One integration-test binary (one link step): every module drives the real `lowport` binary.

mod support;

mod authbind;
mod behaviour;
mod faults;
mod inputs;
mod plain;
mod redirect;
mod setcap;
mod subjects;
mod sysctl;
mod systemd;
mod tui;
