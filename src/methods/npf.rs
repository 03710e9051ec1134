//! `npf`: an npf redirect map.

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};

pub struct Npf;

const META: Meta = Meta {
    id: MethodId::Npf,
    markdown: include_str!("../../assets/methods/npf.md"),
    risk: Risk::Medium,
    families: &["netbsd"],
};

impl Method for Npf {
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
