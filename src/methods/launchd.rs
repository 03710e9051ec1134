//! `launchd`: a LaunchDaemon that runs the service as an unprivileged user.

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};

pub struct Launchd;

const META: Meta = Meta {
    id: MethodId::Launchd,
    markdown: include_str!("../../assets/methods/launchd.md"),
    risk: Risk::Low,
    families: &["macos"],
};

impl Method for Launchd {
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
