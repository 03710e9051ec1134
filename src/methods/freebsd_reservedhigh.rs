//! `freebsd-reservedhigh`: lower net.inet.ip.portrange.reservedhigh, system-wide.

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};

pub struct FreebsdReservedhigh;

const META: Meta = Meta {
    id: MethodId::FreebsdReservedhigh,
    markdown: include_str!("../../assets/methods/freebsd-reservedhigh.md"),
    risk: Risk::High,
    families: &["freebsd"],
};

impl Method for FreebsdReservedhigh {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, _facts: &Facts, _req: &Request) -> Check {
        Check {
            blockers: vec!["not built yet".into()],
            ..Check::default()
        }
    }

    fn actions(&self, _facts: &Facts, _req: &Request) -> Vec<Action> {
        Vec::new()
    }

    fn target(&self, _facts: &Facts, _req: &Request) -> Target {
        Target::default()
    }
}
