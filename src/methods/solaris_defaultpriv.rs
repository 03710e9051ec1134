//! `solaris-defaultpriv`: net_privaddr in the user's default privileges.

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};

pub struct SolarisDefaultpriv;

const META: Meta = Meta {
    id: MethodId::SolarisDefaultpriv,
    markdown: include_str!("../../assets/methods/solaris-defaultpriv.md"),
    risk: Risk::Medium,
    families: &["illumos", "solaris"],
};

impl Method for SolarisDefaultpriv {
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
