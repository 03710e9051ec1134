//! `npf`: NetBSD's packet filter redirects with a `map … dynamic … <- …` rule (npf.conf(5)
//! rev 1.49 grammar) merged into /etc/npf.conf, checked with `npfctl validate` before
//! `npfctl reload`; npf is started (and enabled at boot through /etc/rc.conf.d/npf) when it
//! is not already.

use super::pf::{self, argv};
use super::{Check, Meta, Method, MethodId, Needs, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};

pub struct Npf;

const NPF_CONF: &str = "/etc/npf.conf";
const RC_CONF: &str = "/etc/rc.conf";
/// rc.subr's load_rc_config reads /etc/rc.conf.d/NAME after rc.conf: lowport's own file
/// enables npf at boot without editing rc.conf.
const RC_NPF: &str = "/etc/rc.conf.d/npf";
const MARK: &str = "# lowport: redirect the low ports to the service's ports";

/// lowport's lines: its own variables (so none of the file's is redefined) and one map per
/// pair. `inet4()` takes the interface's IPv4 address when the configuration is loaded.
fn block(ifname: &str, pairs: &[(u16, u16)]) -> Vec<String> {
    let mut b = vec![
        format!("{MARK} (`lowport rollback` removes these lines)"),
        format!("$lowport_if = \"{ifname}\""),
        "$lowport_v4 = inet4($lowport_if)".to_string(),
    ];
    for (low, high) in pairs {
        b.push(format!(
            "map $lowport_if dynamic proto tcp $lowport_v4 port {high} <- $lowport_v4 port {low}"
        ));
    }
    b
}

fn is_ours(line: &str) -> bool {
    line.starts_with(MARK) || line.starts_with("$lowport_") || line.starts_with("map $lowport_if ")
}

/// npf.conf with lowport's lines before the first group. A new file needs the mandatory
/// default group: this one passes everything, as a host without npf does.
fn merged(current: Option<&str>, block: &[String]) -> String {
    match current {
        Some(t) => pf::merge(t, block, &is_ours, pf::NPF_GROUP),
        None => format!(
            "{}\n\n# lowport: npf requires a default group; this one passes all traffic, as \
             without npf.\ngroup default {{\n\tpass all\n}}\n",
            block.join("\n")
        ),
    }
}

fn rc_npf(current: Option<&str>) -> String {
    let line = "npf=YES";
    match current {
        Some(t) if !t.is_empty() => format!("{}\n{line}\n", t.trim_end()),
        _ => format!(
            "# Written by lowport: start npf at boot (`lowport rollback` removes it).\n{line}\n"
        ),
    }
}

/// Whether npf is enabled at boot, as far as the facts tell: rc.conf, then rc.conf.d/npf.
fn enabled_at_boot(facts: &Facts) -> Option<bool> {
    let value = |path| pf::text(facts, path).map(|t| t.and_then(|t| pf::rc_value(t, "npf")));
    let rc = value(RC_CONF)?;
    let own = value(RC_NPF).flatten();
    Some(pf::is_yes(own.or(rc).as_deref()))
}

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

    fn needs(&self) -> Needs {
        Needs {
            files: &[NPF_CONF, RC_CONF, RC_NPF],
            programs: &["npfctl"],
            ..Needs::default()
        }
    }

    fn check(&self, facts: &Facts, req: &Request) -> Check {
        let mut c = Check::default();
        pf::require_tools(facts, &["npfctl"], &mut c);
        let ifname = pf::interface(facts, req, None, &mut c);
        pf::pairs(
            req,
            "port {high} stays reachable directly from the network unless a rule blocks it: \
             the service listens on it on the wildcard address or the interface's own",
            &mut c,
        );
        let Some(current) = pf::text(facts, NPF_CONF) else {
            c.input.push(format!(
                "{NPF_CONF} as it is on the target: these facts do not hold it, and lowport \
                 merges its lines into the whole file; plan with --facts FILE from the target"
            ));
            return c;
        };
        if pf::text(facts, RC_NPF).is_none() {
            c.input.push(format!(
                "{RC_NPF} as it is on the target: these facts do not hold it; plan with --facts \
                 FILE from the target"
            ));
        }
        let i = ifname.as_deref().unwrap_or("the interface");
        match enabled_at_boot(facts) {
            None => c.warnings.push(format!(
                "these facts do not hold {RC_CONF}, so lowport cannot tell whether npf already \
                 runs: it starts npf, and undo stops it, even if it ran before"
            )),
            Some(false) if current.is_some() => c.warnings.push(format!(
                "npf is not enabled at boot, so it probably is not running: this plan starts it \
                 with all of {NPF_CONF}, whose rules, not only lowport's map, start filtering (a \
                 block rule there can cut off SSH)"
            )),
            _ => {}
        }
        c.warnings.push(format!(
            "only IPv4 clients are redirected: lowport writes no IPv6 map (inet4({i}) is the \
             interface's IPv4 address)"
        ));
        c.warnings.push(format!(
            "inet4({i}) is read when npf loads the configuration: after the address of {i} \
             changes, run `npfctl reload` (or reboot) or the map keeps the old address"
        ));
        c.warnings.push(format!(
            "clients on this host itself are not redirected: their connections to its own \
             address do not arrive on {i}"
        ));
        c
    }

    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action> {
        let mut c = Check::default();
        let (Some(ifname), Ok(pairs), Some(current), Some(rc_own)) = (
            pf::interface(facts, req, None, &mut c),
            req.redirect_pairs(),
            pf::text(facts, NPF_CONF),
            pf::text(facts, RC_NPF),
        ) else {
            return Vec::new();
        };
        let npfctl = pf::program(facts, "npfctl");
        let conf = pf::host_path(facts, NPF_CONF);
        let new = merged(current, &block(&ifname, &pairs));
        let changes = current != Some(new.as_str());
        let mut out = Vec::new();
        if changes && current.is_some() {
            // Its undo loads the restored file again: checked here, before anything changed.
            out.push(pf::run(
                format!(
                    "check that the current {NPF_CONF} is valid, before anything changes (on \
                     undo, npf loads it again once it is restored)"
                ),
                vec![argv(&npfctl, &["validate", &conf])],
                vec![argv(&npfctl, &["reload", &conf])],
            ));
        }
        if changes {
            out.push(pf::write(NPF_CONF, new, pf::mode(facts, NPF_CONF, 0o600)));
        }
        out.push(pf::run(
            format!("check {NPF_CONF} with lowport's map without loading it"),
            vec![argv(&npfctl, &["validate", &conf])],
            Vec::new(),
        ));
        // Without a configuration of its own before, undo leaves none loaded.
        let undo = if current.is_none() {
            vec![argv(&npfctl, &["flush"])]
        } else {
            Vec::new()
        };
        out.push(pf::run(
            format!("load {NPF_CONF} (npf replaces its whole configuration, atomically)"),
            vec![argv(&npfctl, &["reload", &conf])],
            undo,
        ));
        if enabled_at_boot(facts) != Some(true) {
            if !rc_own.is_some_and(|t| pf::is_yes(pf::rc_value(t, "npf").as_deref())) {
                out.push(pf::write(RC_NPF, rc_npf(rc_own), 0o644));
            }
            out.push(pf::run(
                "start npf (packet inspection with the loaded configuration)".into(),
                vec![argv(&npfctl, &["start"])],
                vec![argv(&npfctl, &["stop"])],
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
    fn maps_follow_the_npf_conf_grammar() {
        assert_eq!(
            block("vioif0", &[(80, 8080), (443, 4443)])[1..],
            [
                "$lowport_if = \"vioif0\"",
                "$lowport_v4 = inet4($lowport_if)",
                "map $lowport_if dynamic proto tcp $lowport_v4 port 8080 <- $lowport_v4 port 80",
                "map $lowport_if dynamic proto tcp $lowport_v4 port 4443 <- $lowport_v4 port 443",
            ]
        );
    }

    #[test]
    fn the_map_goes_before_the_groups_and_replaces_an_earlier_one() {
        let conf = "$ext_if = { inet4(wm0) }\n\ngroup \"external\" on $ext_if {\n\tpass \
                    stateful out final all\n}\n\ngroup default {\n\tpass final on lo0 all\n\
                    \tblock all\n}\n";
        let first = merged(Some(conf), &block("wm0", &[(80, 8080)]));
        assert!(
            first.starts_with(
                "$ext_if = { inet4(wm0) }\n\n# lowport: redirect the low ports to the service's \
                 ports (`lowport rollback` removes these lines)\n$lowport_if = \"wm0\"\n"
            ),
            "{first}"
        );
        assert!(first.contains("port 80\n\ngroup \"external\""), "{first}");
        let b = block("wm0", &[(443, 8443)]);
        let second = merged(Some(&first), &b);
        assert!(!second.contains("port 8080") && second.contains("port 8443"));
        assert_eq!(merged(Some(&second), &b), second);
        let new = merged(None, &b);
        assert!(new.ends_with("group default {\n\tpass all\n}\n"), "{new}");
    }

    #[test]
    fn rc_conf_d_gains_one_line() {
        assert!(rc_npf(None).ends_with("\nnpf=YES\n"));
        assert_eq!(
            rc_npf(Some("npf_flags=\"\"\n")),
            "npf_flags=\"\"\nnpf=YES\n"
        );
    }
}
