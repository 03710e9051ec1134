//! `pf-freebsd`: pf's legacy translation rules (`rdr pass on … -> …`, the syntax every FreeBSD
//! release parses; `rdr-to` only newer ones) in lowport's own anchor, attached and loaded from
//! /etc/pf.conf. The whole ruleset is parsed with `pfctl -nf` before pf loads it.

use super::pf::{self, ANCHOR, PF_CONF, RULES, argv};
use super::{Check, Meta, Method, MethodId, Needs, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};

pub struct PfFreebsd;

const RC_CONF: &str = "/etc/rc.conf";
/// Read after rc.conf: a value set there wins.
const RC_LOCAL: &str = "/etc/rc.conf.local";
const TOOLS: &[&str] = &["pfctl", "sysrc", "kldload", "kldunload", "kldstat"];

/// The anchor's rules. The target is the interface's own address, `($if)` (followed when it
/// changes), not 127.0.0.1: pf.conf(5) warns that a redirect to 127.0.0.1 lets external hosts
/// reach daemons bound only to the loopback address.
fn rules(ifname: &str, pairs: &[(u16, u16)]) -> String {
    let mut s = format!(
        "# Written by lowport: clients of the low ports on {ifname} go to the ports the service \
         listens on.\n# pf loads it into anchor \"{ANCHOR}\" from {PF_CONF}; `lowport rollback` \
         removes it.\n"
    );
    for family in ["inet", "inet6"] {
        for (low, high) in pairs {
            s.push_str(&format!(
                "rdr pass on {ifname} {family} proto tcp from any to ({ifname}) port {low} -> \
                 ({ifname}) port {high}\n"
            ));
        }
    }
    s
}

/// lowport's lines in pf.conf: the anchor's attachment among the translation rules, and the
/// file pf loads into it.
fn block() -> Vec<String> {
    vec![
        format!(
            "# lowport: redirects in anchor \"{ANCHOR}\", rules in {RULES} (`lowport rollback` \
             removes these lines)"
        ),
        format!("rdr-anchor \"{ANCHOR}\""),
        format!("load anchor \"{ANCHOR}\" from \"{RULES}\""),
    ]
}

fn merged(current: Option<&str>) -> String {
    let b = block();
    pf::merge(
        current.unwrap_or(""),
        &b,
        &|l| b.iter().any(|x| x == l),
        pf::PF_FILTER,
    )
}

/// pf.conf without lowport's own lines.
fn others(text: &str) -> String {
    let b = block();
    text.lines()
        .filter(|l| !b.iter().any(|x| x == l.trim_end()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An rc.conf variable as rc(8) ends up with it: rc.conf.local, then rc.conf.
fn rc(facts: &Facts, var: &str) -> Option<String> {
    [RC_LOCAL, RC_CONF].iter().find_map(|f| {
        pf::text(facts, f)
            .flatten()
            .and_then(|t| pf::rc_value(t, var))
    })
}

/// rc.conf, as the facts hold it, has pf enabled at boot.
fn enabled_at_boot(facts: &Facts) -> bool {
    pf::is_yes(rc(facts, "pf_enable").as_deref())
}

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

    fn needs(&self) -> Needs {
        Needs {
            files: &[PF_CONF, RC_CONF, RC_LOCAL, RULES],
            modules: &["pf"],
            programs: TOOLS,
            ..Needs::default()
        }
    }

    fn check(&self, facts: &Facts, req: &Request) -> Check {
        let mut c = Check::default();
        pf::require_tools(facts, TOOLS, &mut c);
        let ifname = pf::interface(facts, req, None, &mut c);
        let pairs = pf::pairs(
            req,
            "port {high} stays reachable directly from the network unless a firewall filters \
             it: the service listens on it on the wildcard address or the interface's own",
            &mut c,
        );
        let unknown: Vec<&str> = [RC_CONF, RC_LOCAL]
            .into_iter()
            .filter(|f| pf::text(facts, f).is_none())
            .collect();
        if !unknown.is_empty() {
            c.warnings.push(format!(
                "these facts do not hold {}: lowport takes pf to load {PF_CONF} at boot \
                 (pf_rules, FreeBSD's default) and pf not to be enabled at boot",
                unknown.join(" or ")
            ));
        }
        if let Some(rules) = rc(facts, "pf_rules").filter(|r| r != PF_CONF) {
            c.blockers.push(format!(
                "rc.conf sets pf_rules=\"{rules}\": pf loads that file at boot, and lowport \
                 merges its anchor only into {PF_CONF}"
            ));
        }
        if pf::is_yes(rc(facts, "firewall_enable").as_deref()) {
            c.warnings.push(
                "rc.conf enables ipfw (firewall_enable): with pf enabled as well, both filter \
                 every packet, and either one can drop what the other passes"
                    .into(),
            );
        }
        if facts.platform.module("pf").is_none() {
            c.warnings.push(
                "these facts do not say whether the pf kernel module is loaded: lowport does not \
                 load it, and where it is not, the first pfctl step fails and the plan rolls back"
                    .into(),
            );
        }
        let Some(current) = pf::text(facts, PF_CONF) else {
            c.input.push(format!(
                "{PF_CONF} as it is on the target: these facts do not hold it, and lowport \
                 merges its lines into the whole file; plan with --facts FILE from the target"
            ));
            return c;
        };
        let rest = others(current.unwrap_or(""));
        if !enabled_at_boot(facts) && pf::has_statement(&rest, pf::PF_FILTER) {
            c.warnings.push(format!(
                "if pf is not running yet, this plan turns it on with all of {PF_CONF}: its \
                 filter rules, not only lowport's redirect, start filtering (a block rule there \
                 can cut off SSH)"
            ));
        }
        if let Some(i) = &ifname
            && pf::has_statement(&rest, &["rdr", "rdr-anchor", "binat", "binat-anchor"])
        {
            let ports: Vec<String> = pairs.iter().map(|(l, _)| l.to_string()).collect();
            c.warnings.push(format!(
                "{PF_CONF} has translation rules of its own, and lowport's anchor comes after \
                 them: the first matching translation rule wins, so one of them that matches \
                 port {} on {i} takes those connections instead",
                ports.join(" or ")
            ));
        }
        c.warnings.push(
            "`rdr pass` passes the redirected connections without evaluating pf's filter \
             rules: a block rule or block list in pf.conf does not stop them"
                .into(),
        );
        c.warnings.push(format!(
            "clients on this host itself are not redirected: their connections to its own \
             address do not arrive on {}",
            ifname.as_deref().unwrap_or("the interface")
        ));
        c
    }

    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action> {
        let mut c = Check::default();
        let (Some(ifname), Ok(pairs), Some(current)) = (
            pf::interface(facts, req, None, &mut c),
            req.redirect_pairs(),
            pf::text(facts, PF_CONF),
        ) else {
            return Vec::new();
        };
        let pfctl = pf::program(facts, "pfctl");
        let mut out = Vec::new();
        // pfctl opens /dev/pf even to parse (-n): the module comes first. Only where it is known
        // not to be loaded: the step runs whenever the files change, and its undo unloads it.
        if facts.platform.module("pf") == Some(false) {
            out.push(pf::run_checked(
                "load the pf kernel module".into(),
                vec![argv(&pf::program(facts, "kldload"), &["-n", "pf"])],
                vec![argv(&pf::program(facts, "kldunload"), &["pf"])],
                argv(&pf::program(facts, "kldstat"), &["-q", "-m", "pf"]),
            ));
        }
        out.extend(pf::conf_steps(
            facts,
            current,
            merged(current),
            rules(&ifname, &pairs),
            "pf's running main ruleset becomes the file's, as `service pf reload` does",
            "nat",
        ));
        // A host whose rc.conf enables pf runs it: `pfctl -e` would fail there ("pf already
        // enabled"), and a step runs whenever the files it acts on change.
        if !enabled_at_boot(facts) {
            out.push(pf::run_checked(
                "enable pf now (where pf already runs without pf_enable=YES, `pfctl -e` fails \
                 and the plan rolls back)"
                    .into(),
                vec![argv(&pfctl, &["-e"])],
                vec![argv(&pfctl, &["-d"])],
                argv(&pfctl, &["-s", "Running"]),
            ));
            let sysrc = pf::program(facts, "sysrc");
            // Undo puts back an explicit value; without one, the default (NO) applies again.
            let before = rc(facts, "pf_enable").map(|v| format!("pf_enable={v}"));
            let undo = match &before {
                Some(b) => argv(&sysrc, &[b]),
                None => argv(&sysrc, &["-x", "pf_enable"]),
            };
            out.push(pf::run_checked(
                "enable pf at boot (pf_enable=YES in rc.conf)".into(),
                vec![argv(&sysrc, &["pf_enable=YES"])],
                vec![undo],
                argv(&sysrc, &["-c", "pf_enable=YES"]),
            ));
        }
        out
    }

    fn target(&self, _facts: &Facts, req: &Request) -> Target {
        pf::target(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_follow_the_legacy_grammar_for_both_families() {
        assert_eq!(
            rules("vtnet0", &[(80, 8080), (443, 8443)])
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>(),
            [
                "rdr pass on vtnet0 inet proto tcp from any to (vtnet0) port 80 -> (vtnet0) port \
                 8080",
                "rdr pass on vtnet0 inet proto tcp from any to (vtnet0) port 443 -> (vtnet0) port \
                 8443",
                "rdr pass on vtnet0 inet6 proto tcp from any to (vtnet0) port 80 -> (vtnet0) port \
                 8080",
                "rdr pass on vtnet0 inet6 proto tcp from any to (vtnet0) port 443 -> (vtnet0) \
                 port 8443",
            ]
        );
    }

    #[test]
    fn the_anchor_goes_among_the_translation_rules_once() {
        let conf = "ext_if=\"em0\"\nset skip on lo0\nscrub in all\nnat on $ext_if from \
                    10.0.0.0/8 -> ($ext_if)\nblock in all\npass out all keep state\n";
        let once = merged(Some(conf));
        assert!(
            once.contains(
                "-> ($ext_if)\n\n# lowport: redirects in anchor \"lowport\", rules in \
                 /etc/lowport/pf-redirect.conf (`lowport rollback` removes these lines)\n\
                 rdr-anchor \"lowport\"\nload anchor \"lowport\" from \
                 \"/etc/lowport/pf-redirect.conf\"\n\nblock in all\n"
            ),
            "{once}"
        );
        assert_eq!(merged(Some(&once)), once);
        assert!(!pf::has_statement(&others(&once), &["rdr-anchor", "load"]));
        assert_eq!(merged(None), block().join("\n") + "\n");
    }
}
