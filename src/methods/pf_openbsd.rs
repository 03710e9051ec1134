//! `pf-openbsd`: `pass in … rdr-to` rules (OpenBSD 4.7 and later) in lowport's own anchor,
//! attached and loaded from /etc/pf.conf; the whole ruleset is parsed with `pfctl -nf` first.
//! The seed's rule matched packets addressed to 127.0.0.1 arriving on the external interface,
//! which never occur; these match the interface's own addresses, `to (egress)`.

use super::pf::{self, ANCHOR, PF_CONF, RULES};
use super::{Check, Meta, Method, MethodId, Needs, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};

pub struct PfOpenbsd;

const RC_LOCAL: &str = "/etc/rc.conf.local";
/// The interface group OpenBSD puts the default route's interface in.
const EGRESS: &str = "egress";

fn rules(ifname: &str, pairs: &[(u16, u16)]) -> String {
    let mut s = format!(
        "# Written by lowport: clients of the low ports on {ifname} go to the ports the service \
         listens on.\n# pf loads it into anchor \"{ANCHOR}\" from {PF_CONF}; `lowport rollback` \
         removes it.\n"
    );
    for (family, to) in [("inet", "127.0.0.1"), ("inet6", "::1")] {
        for (low, high) in pairs {
            s.push_str(&format!(
                "pass in on {ifname} {family} proto tcp from any to ({ifname}) port {low} \
                 rdr-to {to} port {high}\n"
            ));
        }
    }
    s
}

/// lowport's lines at the end of pf.conf: its anchor among the filter rules, and the file pf
/// loads into it. Last, so that the admin's earlier `quick` rules (block lists) still apply.
fn block() -> Vec<String> {
    vec![
        format!(
            "# lowport: redirects in anchor \"{ANCHOR}\", rules in {RULES} (`lowport rollback` \
             removes these lines)"
        ),
        format!("anchor \"{ANCHOR}\""),
        format!("load anchor \"{ANCHOR}\" from \"{RULES}\""),
    ]
}

fn merged(current: Option<&str>) -> String {
    let b = block();
    pf::merge(
        current.unwrap_or(""),
        &b,
        &|l| b.iter().any(|x| x == l),
        &[],
    )
}

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

    fn needs(&self) -> Needs {
        Needs {
            files: &[PF_CONF, RC_LOCAL, RULES],
            programs: &["pfctl"],
            ..Needs::default()
        }
    }

    fn check(&self, facts: &Facts, req: &Request) -> Check {
        let mut c = Check::default();
        pf::require_tools(facts, &["pfctl"], &mut c);
        let ifname = pf::interface(facts, req, Some(EGRESS), &mut c);
        pf::pairs(
            req,
            "the service must listen on port {high} of 127.0.0.1 and ::1, or of the wildcard \
             address, which also leaves {high} reachable directly from the network",
            &mut c,
        );
        match pf::text(facts, RC_LOCAL) {
            None => c.warnings.push(format!(
                "these facts do not hold {RC_LOCAL}: lowport takes pf to be enabled, as OpenBSD \
                 enables it by default"
            )),
            Some(local) => {
                if let Some(v) = local
                    .and_then(|t| pf::rc_value(t, "pf"))
                    .filter(|v| v.eq_ignore_ascii_case("NO"))
                {
                    c.blockers.push(format!(
                        "{RC_LOCAL} sets pf={v}: pf is turned off on this host, and lowport does \
                         not turn on a firewall that was turned off on purpose"
                    ));
                }
            }
        }
        if pf::text(facts, PF_CONF).is_none() {
            c.input.push(format!(
                "{PF_CONF} as it is on the target: these facts do not hold it, and lowport \
                 merges its lines into the whole file; plan with --facts FILE from the target"
            ));
        }
        c.warnings.push(format!(
            "clients on this host itself are not redirected: their connections to its own \
             address do not arrive on {}",
            ifname.as_deref().unwrap_or(EGRESS)
        ));
        c
    }

    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action> {
        let mut c = Check::default();
        let (Some(ifname), Ok(pairs), Some(current)) = (
            pf::interface(facts, req, Some(EGRESS), &mut c),
            req.redirect_pairs(),
            pf::text(facts, PF_CONF),
        ) else {
            return Vec::new();
        };
        pf::conf_steps(
            facts,
            current,
            merged(current),
            rules(&ifname, &pairs),
            "pf's running main ruleset becomes the file's",
            "rules",
        )
    }

    fn target(&self, _facts: &Facts, req: &Request) -> Target {
        pf::target(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_the_interface_addresses_not_the_redirect_target() {
        let r = rules("egress", &[(443, 4343)]);
        let body: Vec<&str> = r.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "pass in on egress inet proto tcp from any to (egress) port 443 rdr-to \
                 127.0.0.1 port 4343",
                "pass in on egress inet6 proto tcp from any to (egress) port 443 rdr-to ::1 \
                 port 4343",
            ]
        );
        // The seed's rule matched `to $LOCAL_IP` (127.0.0.1); these never do.
        assert!(body.iter().all(|l| !l.contains("to 127.0.0.1 port 443")));
    }

    #[test]
    fn the_anchor_goes_last_and_once() {
        let stock = "set skip on lo\n\nblock return\npass\n";
        let once = merged(Some(stock));
        assert!(once.starts_with(stock), "{once}");
        assert!(once.ends_with(
            "\nanchor \"lowport\"\nload anchor \"lowport\" from \
             \"/etc/lowport/pf-redirect.conf\"\n"
        ));
        assert_eq!(merged(Some(&once)), once);
    }
}
