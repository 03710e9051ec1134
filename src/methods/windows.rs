//! `windows`: no privileged ports: what really blocks a bind, and a firewall rule.

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};

pub struct Windows;

const META: Meta = Meta {
    id: MethodId::Windows,
    markdown: include_str!("../../assets/methods/windows.md"),
    risk: Risk::Low,
    families: &["windows"],
};

impl Method for Windows {
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
