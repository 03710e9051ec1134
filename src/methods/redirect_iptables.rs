//! `redirect-iptables`: clients use the low port, iptables REDIRECT rules (IPv4 and IPv6) send
//! them to the service's port. Each rule is checked with `-C` and removed with `-D`.

use super::{Check, Meta, Method, MethodId, Request, Risk, redirect};
use crate::facts::Facts;
use crate::plan::Action;
use crate::plan::Target;

pub struct RedirectIptables;

/// One rule without its table operation: chain and match, marked with lowport's comment.
fn rules(low: u16, high: u16) -> [Vec<String>; 2] {
    let tail = |chain: &str, lo: bool| {
        let mut r: Vec<String> = vec![chain.into()];
        if lo {
            r.extend(["-o".into(), "lo".into()]);
        }
        r.extend(
            [
                "-p",
                "tcp",
                "--dport",
                &low.to_string(),
                "-m",
                "comment",
                "--comment",
                "lowport",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        r.extend([
            "-j".into(),
            "REDIRECT".into(),
            "--to-ports".into(),
            high.to_string(),
        ]);
        r
    };
    [tail("PREROUTING", false), tail("OUTPUT", true)]
}

fn command(tool: &str, op: &str, rule: &[String]) -> Vec<String> {
    let mut argv: Vec<String> = vec![tool.into(), "-t".into(), "nat".into(), op.into()];
    argv.extend(rule.iter().cloned());
    argv
}

const META: Meta = Meta {
    id: MethodId::RedirectIptables,
    markdown: include_str!("../../assets/methods/redirect-iptables.md"),
    risk: Risk::Medium,
    families: &["linux"],
};

impl Method for RedirectIptables {
    fn per_netns(&self) -> bool {
        true
    }

    fn meta(&self) -> &'static Meta {
        &META
    }

    fn check(&self, facts: &Facts, req: &Request) -> Check {
        let mut c = Check::default();
        redirect::check(facts, req, "iptables", "iptables", &mut c);
        if facts.tool("ip6tables").is_none() {
            c.warnings
                .push("ip6tables is missing: IPv6 clients are not redirected".into());
        }
        c
    }

    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action> {
        let Ok(pairs) = req.redirect_pairs() else {
            return Vec::new();
        };
        let tools: Vec<String> = ["iptables", "ip6tables"]
            .iter()
            .filter_map(|t| facts.tool(t).map(|p| p.display().to_string()))
            .collect();
        let mut out = Vec::new();
        let (mut start, mut stop) = (Vec::new(), Vec::new());
        for (low, high) in pairs {
            for tool in &tools {
                for rule in rules(low, high) {
                    let name = tool.rsplit('/').next().unwrap_or(tool);
                    out.push(Action::RunCommands {
                        what: format!("{name}: redirect {} port {low} to {high}", rule[0]),
                        run: vec![command(tool, "-A", &rule)],
                        undo: vec![command(tool, "-D", &rule)],
                        check: Some(command(tool, "-C", &rule)),
                    });
                    // At boot: drop a copy that may survive, then add, so it is never doubled.
                    start.push(command(&format!("-{tool}"), "-D", &rule));
                    start.push(command(tool, "-A", &rule));
                    stop.push(command(tool, "-D", &rule));
                }
            }
        }
        out.extend(redirect::boot_unit(
            facts,
            "lowport-redirect-iptables",
            "redirect low ports (iptables)",
            &start,
            &stop,
        ));
        out
    }

    fn target(&self, _facts: &Facts, req: &Request) -> Target {
        redirect::target(req)
    }
}
