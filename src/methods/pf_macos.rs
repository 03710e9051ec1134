//! `pf-macos`: a pf rdr rule in a com.apple sub-anchor.

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};

pub struct PfMacos;

const META: Meta = Meta {
    id: MethodId::PfMacos,
    markdown: include_str!("../../assets/methods/pf-macos.md"),
    risk: Risk::Medium,
    families: &["macos"],
};

impl Method for PfMacos {
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
