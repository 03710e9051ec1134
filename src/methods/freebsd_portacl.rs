//! `freebsd-portacl`: mac_portacl(4): only the service's user may bind the ports.

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};

pub struct FreebsdPortacl;

const META: Meta = Meta {
    id: MethodId::FreebsdPortacl,
    markdown: include_str!("../../assets/methods/freebsd-portacl.md"),
    risk: Risk::Low,
    families: &["freebsd"],
};

impl Method for FreebsdPortacl {
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
