//! `pf-openbsd`: a pf rdr-to rule in lowport's own anchor.

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};

pub struct PfOpenbsd;

const META: Meta = Meta {
    id: MethodId::PfOpenbsd,
    markdown: include_str!("../../assets/methods/pf-openbsd.md"),
    risk: Risk::Medium,
    families: &["openbsd"],
};

impl Method for PfOpenbsd {
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
