//! `smf`: an SMF service whose start method holds net_privaddr.

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};

pub struct Smf;

const META: Meta = Meta {
    id: MethodId::Smf,
    markdown: include_str!("../../assets/methods/smf.md"),
    risk: Risk::Low,
    families: &["illumos", "solaris"],
};

impl Method for Smf {
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
