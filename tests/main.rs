//! One integration-test binary (one link step): every module drives the real `lowport` binary.

mod support;

mod behaviour;
mod faults;
mod inputs;
mod setcap;
mod sysctl;
