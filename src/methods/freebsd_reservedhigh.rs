//! `freebsd-reservedhigh`: lower `net.inet.ip.portrange.reservedhigh` to just below the lowest
//! port, live and in /etc/sysctl.conf. System-wide, as the seed's "looks dangerous" says: every
//! user may then bind every port above the new bound.

use super::freebsd_portacl::{
    ENABLED, MODULE, PORT_HIGH, RESERVEDHIGH, RESERVEDLOW, SYSCTL_CONF, SYSCTL_CONF_LOCAL, conf,
};
use super::sysctl::DEFAULT_PROBE_USER;
use super::{Check, Meta, Method, MethodId, Needs, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};
use crate::validate;

pub struct FreebsdReservedhigh;

/// What the facts say, once: the live range, the new bound, and sysctl.conf's new text.
struct Setup {
    /// The new reservedhigh: one below the lowest requested port that is reserved now.
    new: i64,
    /// No requested port is in the reserved range now.
    open: bool,
    /// sysctl.conf with the new bound, when that changes it.
    file: Option<String>,
    /// Already open at exactly the new bound, but no boot file keeps it: only the file is
    /// written.
    persist_only: bool,
}

fn setup(facts: &Facts, req: &Request, c: &mut Check) -> Option<Setup> {
    c.grant_ports(req, true);
    let ports = req.grant_ports().unwrap_or_default();
    let prober = req.user.as_deref().unwrap_or(DEFAULT_PROBE_USER);
    if facts.accounts.users.get(prober) == Some(&None) {
        // A user the operator named is bad input; the default one missing is the host's state.
        let list = if req.user.is_some() {
            &mut c.input
        } else {
            &mut c.blockers
        };
        list.push(format!(
            "user '{prober}', who must prove the result by binding the port, does not exist on \
             the target; give an existing user with --user"
        ));
    }
    let p = &facts.platform;
    let mut missing: Vec<String> = Vec::new();
    let mut sysctl = |key: &str| {
        p.sysctl(key).unwrap_or_else(|| {
            missing.push(key.to_string());
            None
        })
    };
    let high = sysctl(RESERVEDHIGH);
    let low = sysctl(RESERVEDLOW);
    let loaded = p.module(MODULE);
    // Its settings exist only while it is loaded.
    let (enabled, port_high) = if loaded == Some(true) {
        (sysctl(ENABLED), sysctl(PORT_HIGH))
    } else {
        (None, None)
    };
    if loaded.is_none() {
        missing.push(format!("whether {MODULE} is loaded"));
    }
    let mut read = |path: &str| {
        p.file(path).map_or_else(
            || {
                missing.push(path.to_string());
                String::new()
            },
            |t| t.unwrap_or_default().to_string(),
        )
    };
    let sysctl_conf = read(SYSCTL_CONF);
    let sysctl_local = read(SYSCTL_CONF_LOCAL);
    if !missing.is_empty() {
        c.input.push(format!(
            "the facts do not hold {}: plan with --facts FILE made on the target (`lowport \
             detect --json --method freebsd-reservedhigh` with the same options, or the script \
             `lowport facts-script` prints)",
            missing.join(", ")
        ));
        return None;
    }
    let lowest = *ports.first()?;
    let number = |key: &str, v: Option<&str>, c: &mut Check| {
        let n = v.and_then(|v| v.trim().parse::<i64>().ok());
        if n.is_none() {
            c.blockers.push(format!(
                "{key} reads {v:?} on the target, not a number: it is not the FreeBSD network \
                 stack lowport knows"
            ));
        }
        n
    };
    let high = number(RESERVEDHIGH, high, c)?;
    let low = number(RESERVEDLOW, low, c)?;
    if loaded == Some(true) {
        let enabled = number(ENABLED, enabled, c)?;
        let port_high = number(PORT_HIGH, port_high, c)?;
        if enabled != 0 && i64::from(lowest) <= port_high {
            c.blockers.push(format!(
                "{MODULE} is loaded and decides binds to ports up to {port_high}: with \
                 reservedhigh lowered a bind to port {lowest} still needs one of its rules, and \
                 this method adds none; use freebsd-portacl, which grants the ports to the \
                 service's uid only"
            ));
            return None;
        }
        if enabled == 0 {
            c.warnings.push(format!(
                "{MODULE} is loaded but not enforcing ({ENABLED}=0): once it is enabled again, \
                 binds to ports up to {port_high} need one of its rules whatever reservedhigh is"
            ));
        }
    }
    let reserved: Vec<u16> = ports
        .iter()
        .copied()
        .filter(|p| low <= i64::from(*p) && i64::from(*p) <= high)
        .collect();
    let new = i64::from(reserved.first().copied().unwrap_or(lowest)) - 1;
    let line = validate::freebsd_sysctl_line(RESERVEDHIGH, &new.to_string()).ok()?;
    let updated = conf::set(&sysctl_conf, RESERVEDHIGH, &line);
    // sysctl.conf.local is read after sysctl.conf: where it sets the bound, its value wins.
    let at_boot = conf::value(&sysctl_local, RESERVEDHIGH)
        .or_else(|| conf::value(&sysctl_conf, RESERVEDHIGH));
    let boot_sets_it = at_boot.as_deref() == Some(new.to_string().as_str());
    let file = (updated != sysctl_conf).then_some(updated);
    let persist_only = reserved.is_empty() && high == new && !boot_sets_it && file.is_some();
    let list = format!(
        "{} {}",
        if ports.len() == 1 { "port" } else { "ports" },
        ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" and ")
    );
    if reserved.is_empty() {
        // Said first: nothing needs granting, and the reason matters more than any warning.
        let boot = if at_boot.is_none() {
            format!(
                " No line in {SYSCTL_CONF} or {SYSCTL_CONF_LOCAL} sets it: it was set at \
                 runtime, and a reboot restores the kernel's default (1023)."
            )
        } else {
            String::new()
        };
        let what = if persist_only {
            format!(" lowport writes it to {SYSCTL_CONF} so that a reboot keeps it.")
        } else {
            " The freebsd-reservedhigh method changes nothing.".to_string()
        };
        c.warnings.insert(
            0,
            format!(
                "already open: {RESERVEDHIGH} is {high} ({RESERVEDLOW} {low}) in this VNET, so \
                 every user may bind {list} without any grant (TCP and UDP, IPv4 and \
                 IPv6).{boot}{what}"
            ),
        );
    } else {
        c.warnings.push(format!(
            "every user and process on this host, and in every jail that shares its network \
             stack (one without its own vnet), will be able to bind every port from {} to \
             {high}, TCP and UDP, IPv4 and IPv6, not only {list}; a vnet jail keeps its own \
             reservedhigh",
            new + 1
        ));
        c.warnings.push(format!(
            "while your service is down, any local user can take port {} and receive its \
             traffic",
            reserved[0]
        ));
        c.warnings.push(
            "freebsd-portacl is the scoped alternative: mac_portacl(4) lets only the service's \
             uid bind exactly these ports"
                .into(),
        );
    }
    if let Some(v) = conf::value(&sysctl_local, RESERVEDHIGH)
        && v != new.to_string()
    {
        c.warnings.push(format!(
            "{SYSCTL_CONF_LOCAL} sets {RESERVEDHIGH}={v} and is read after {SYSCTL_CONF}: at \
             boot that value wins"
        ));
    }
    Some(Setup {
        new,
        open: reserved.is_empty(),
        file,
        persist_only,
    })
}

const META: Meta = Meta {
    id: MethodId::FreebsdReservedhigh,
    markdown: include_str!("../../assets/methods/freebsd-reservedhigh.md"),
    risk: Risk::High,
    families: &["freebsd"],
};

impl Method for FreebsdReservedhigh {
    fn meta(&self) -> &'static Meta {
        &META
    }

    // reservedhigh is per VNET.
    fn per_netns(&self) -> bool {
        true
    }

    fn accounts(&self, _req: &Request) -> Vec<String> {
        vec![DEFAULT_PROBE_USER.into()]
    }

    fn needs(&self) -> Needs {
        Needs {
            files: &[SYSCTL_CONF, SYSCTL_CONF_LOCAL],
            sysctls: &[RESERVEDLOW, RESERVEDHIGH, ENABLED, PORT_HIGH],
            modules: &[MODULE],
            programs: &[],
        }
    }

    fn check(&self, facts: &Facts, req: &Request) -> Check {
        let mut c = Check::default();
        setup(facts, req, &mut c);
        c
    }

    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action> {
        let Some(s) = setup(facts, req, &mut Check::default()) else {
            return Vec::new();
        };
        // Where every requested port is open already, nothing is changed (a boot value above
        // the live one would close ports); equal to the bound live but set by no boot file, the
        // file is written again so that a reboot keeps it.
        if s.open && !s.persist_only {
            return Vec::new();
        }
        // Live first: the kernel validates the value, and only a value it accepted is persisted.
        let mut out = vec![Action::SetSysctl {
            key: RESERVEDHIGH.into(),
            value: s.new.to_string(),
        }];
        out.extend(s.file.map(|content| Action::WriteFile {
            path: SYSCTL_CONF.into(),
            content,
            mode: 0o644,
            owner: "root".into(),
            group: "wheel".into(),
        }));
        out
    }

    fn target(&self, _facts: &Facts, req: &Request) -> Target {
        Target {
            ports: req.grant_ports().unwrap_or_default(),
            user: Some(
                req.user
                    .clone()
                    .unwrap_or_else(|| DEFAULT_PROBE_USER.into()),
            ),
            ..Target::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Want;
    use crate::validate::PortArg;

    fn host(high: &str, sysctl_conf: &str) -> Facts {
        let mut f = crate::facts::targets::load("freebsd-14").unwrap();
        f.target_os = None;
        let p = &mut f.platform;
        p.sysctls.insert(RESERVEDHIGH.into(), Some(high.into()));
        p.files.insert(SYSCTL_CONF.into(), Some(sysctl_conf.into()));
        f
    }

    fn request(ports: &[u16]) -> Request {
        Request::new(
            MethodId::FreebsdReservedhigh,
            Want {
                ports: ports.iter().map(|p| PortArg::Grant(*p)).collect(),
                ..Want::default()
            },
        )
    }

    fn plan(f: &Facts, ports: &[u16]) -> (Check, Vec<Action>) {
        let r = request(ports);
        (
            FreebsdReservedhigh.check(f, &r),
            FreebsdReservedhigh.actions(f, &r),
        )
    }

    fn sysctl_conf_of(a: &[Action]) -> Option<&str> {
        a.iter().find_map(|a| match a {
            Action::WriteFile { content, .. } => Some(content.as_str()),
            _ => None,
        })
    }

    #[test]
    fn the_bound_goes_below_the_lowest_port_and_replaces_the_line_there() {
        let (c, a) = plan(
            &host("1023", "a=1\nnet.inet.ip.portrange.reservedhigh=500\nb=2\n"),
            &[443, 80],
        );
        assert!(c.blockers.is_empty() && c.input.is_empty(), "{c:?}");
        assert!(
            c.warnings[0].contains("every port from 80 to 1023"),
            "{c:?}"
        );
        assert_eq!(
            a[0],
            Action::SetSysctl {
                key: RESERVEDHIGH.into(),
                value: "79".into()
            }
        );
        assert_eq!(
            sysctl_conf_of(&a),
            Some("a=1\nnet.inet.ip.portrange.reservedhigh=79\nb=2\n")
        );
    }

    #[test]
    fn already_open_is_said_first_and_changes_nothing() {
        let (c, a) = plan(
            &host("79", "net.inet.ip.portrange.reservedhigh=79\n"),
            &[80],
        );
        assert!(c.warnings[0].starts_with("already open"), "{c:?}");
        assert!(c.warnings[0].ends_with("changes nothing."), "{c:?}");
        assert!(a.is_empty());
        // Lower still: a boot value of 79 would close ports the runtime opened.
        let (_, a) = plan(&host("0", ""), &[80]);
        assert!(a.is_empty());
        // Exactly at the bound but set at runtime only: the file keeps it.
        let (c, a) = plan(&host("79", ""), &[80]);
        assert!(
            c.warnings[0].contains("a reboot restores the kernel's default"),
            "{c:?}"
        );
        assert!(
            c.warnings[0].ends_with("so that a reboot keeps it."),
            "{c:?}"
        );
        assert_eq!(
            sysctl_conf_of(&a),
            Some("net.inet.ip.portrange.reservedhigh=79\n")
        );
    }

    #[test]
    fn a_port_below_reservedlow_is_open_and_the_bound_follows_the_reserved_ones() {
        let mut f = host("1023", "");
        f.platform
            .sysctls
            .insert(RESERVEDLOW.into(), Some("100".into()));
        let (c, a) = plan(&f, &[80, 443]);
        assert!(
            c.warnings[0].contains("every port from 443 to 1023"),
            "{c:?}"
        );
        assert!(matches!(&a[0], Action::SetSysctl { value, .. } if value == "442"));
    }

    #[test]
    fn mac_portacl_enforcing_means_this_method_grants_nothing() {
        let mut f = host("0", "");
        let p = &mut f.platform;
        p.modules.insert(MODULE.into(), true);
        p.sysctls.insert(ENABLED.into(), Some("1".into()));
        p.sysctls.insert(PORT_HIGH.into(), Some("1023".into()));
        let (c, _) = plan(&f, &[80]);
        assert!(c.blockers[0].contains("use freebsd-portacl"), "{c:?}");
        f.platform.sysctls.insert(ENABLED.into(), Some("0".into()));
        let (c, _) = plan(&f, &[80]);
        assert!(c.blockers.is_empty(), "{c:?}");
        assert!(
            c.warnings.iter().any(|w| w.contains("not enforcing")),
            "{c:?}"
        );
    }

    #[test]
    fn sysctl_conf_local_wins_at_boot_and_is_said() {
        let mut f = host("1023", "");
        f.platform.files.insert(
            SYSCTL_CONF_LOCAL.into(),
            Some("net.inet.ip.portrange.reservedhigh=1023\n".into()),
        );
        let (c, _) = plan(&f, &[80]);
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("at boot that value wins")),
            "{c:?}"
        );
    }

    #[test]
    fn what_the_facts_do_not_hold_is_asked_for() {
        let mut f = host("1023", "");
        f.platform.files.remove(std::path::Path::new(SYSCTL_CONF));
        f.platform.sysctls.remove(RESERVEDLOW);
        let (c, a) = plan(&f, &[80]);
        assert!(
            c.input[0].contains("do not hold net.inet.ip.portrange.reservedlow, /etc/sysctl.conf"),
            "{c:?}"
        );
        assert!(a.is_empty());
    }
}
