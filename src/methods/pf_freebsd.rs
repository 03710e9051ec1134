//! `pf-freebsd`: a pf rdr rule in lowport's own anchor.

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};

pub struct PfFreebsd;

const META: Meta = Meta {
    id: MethodId::PfFreebsd,
    markdown: include_str!("../../assets/methods/pf-freebsd.md"),
    risk: Risk::Medium,
    families: &["freebsd"],
};

impl Method for PfFreebsd {
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
