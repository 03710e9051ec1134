//! `socket-activation`: listed so operators see it and why lowport does not set it up.

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::Facts;
use crate::plan::Action;
use crate::plan::Target;

pub struct SocketActivation;

const META: Meta = Meta {
    id: MethodId::SocketActivation,
    markdown: include_str!("../../assets/methods/socket-activation.md"),
    risk: Risk::Low,
    families: &["linux"],
};

impl Method for SocketActivation {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, facts: &Facts, _req: &Request) -> Check {
        let program = facts.binary.as_ref().map(|b| b.path.display().to_string());
        let fabio = program.as_deref().is_some_and(|p| p.ends_with("/fabio"));
        let why = if fabio {
            "fabio has no socket activation: it binds its listeners itself".to_string()
        } else {
            format!(
                "it needs {} to accept a listening socket from systemd (sd_listen_fds), which \
                 cannot be detected from the outside; if it does, write a .socket unit with \
                 ListenStream=PORT",
                program.as_deref().unwrap_or("the program")
            )
        };
        Check {
            blockers: vec![format!("lowport does not set this up: {why}")],
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
