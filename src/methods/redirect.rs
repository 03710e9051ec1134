//! What the redirect methods share: the `LOW:HIGH` pairs, their common risks, and the oneshot
//! unit that loads their rules at boot after the distribution's firewall.

use std::path::Path;

use super::{Check, Request};
use crate::facts::{Facts, UNIT_MARKER};
use crate::plan::Action;
use crate::plan::Target;
use crate::validate::exec_word;

/// Checks every redirect method makes; returns the pairs when the input is usable.
pub fn check(
    facts: &Facts,
    req: &Request,
    tool: &str,
    package: &str,
    c: &mut Check,
) -> Vec<(u16, u16)> {
    match facts.tool(tool) {
        None => c.blockers.push(format!(
            "{tool} is not installed (Debian/Ubuntu: apt install {package})"
        )),
        // The tool's path goes into the boot unit's command lines.
        Some(p) => {
            if let Err(e) = exec_word("tool path", &p.to_string_lossy()) {
                c.input.push(e);
            }
        }
    }
    let pairs = match req.redirect_pairs() {
        Ok(p) => p,
        Err(e) => {
            c.input.push(e);
            return Vec::new();
        }
    };
    for (low, high) in &pairs {
        c.warnings.push(format!(
            "while the service is down, any local user can listen on {high} and receive the \
             clients of port {low}"
        ));
        c.warnings.push(format!(
            "port {high} stays reachable directly unless a firewall filters it"
        ));
    }
    if facts.tool("systemctl").is_none() {
        c.warnings
            .push("no systemd: the rules are not restored at boot".into());
    }
    pairs
}

/// The boot unit only talks netlink (nft, iptables-nft) or the iptables socket options: it needs
/// CAP_NET_ADMIN and nothing else. /run stays writable (ProtectSystem=full, not strict) for
/// iptables' /run/xtables.lock.
const BOOT_SANDBOX: &str = "\
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW
NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_NETLINK AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@resources
SystemCallErrorNumber=EPERM
PrivateMounts=yes
ProtectProc=invisible
UMask=0077
";

/// The oneshot unit (and its enable link) that restores the rules at boot, after the firewall
/// services that would otherwise flush them. None without systemd.
pub fn boot_unit(
    facts: &Facts,
    name: &str,
    what: &str,
    start: &[Vec<String>],
    stop: &[Vec<String>],
) -> Vec<Action> {
    if facts.tool("systemctl").is_none() {
        return Vec::new();
    }
    let line = |argv: &Vec<String>| -> Result<String, String> {
        let words = argv
            .iter()
            .map(|w| exec_word("command word", w))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(words.join(" "))
    };
    let mut unit = format!(
        "{UNIT_MARKER}; `lowport rollback` removes it.\n[Unit]\nDescription=lowport: {what}\n\
         After=nftables.service firewalld.service docker.service network-pre.target\n\
         Wants=network-pre.target\nBefore=network.target\n\n[Service]\nType=oneshot\n\
         RemainAfterExit=yes\n"
    );
    // Every word is a constant or a tool path `check` accepted.
    for argv in start {
        let Ok(l) = line(argv) else { return Vec::new() };
        unit.push_str(&format!("ExecStart={l}\n"));
    }
    for argv in stop {
        let Ok(l) = line(argv) else { return Vec::new() };
        unit.push_str(&format!("ExecStop=-{l}\n"));
    }
    unit.push_str(BOOT_SANDBOX);
    unit.push_str("\n[Install]\nWantedBy=multi-user.target\n");
    let path = Path::new("/etc/systemd/system").join(format!("{name}.service"));
    vec![
        Action::WriteFile {
            path: path.clone(),
            content: unit,
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
        },
        Action::Symlink {
            path: Path::new("/etc/systemd/system/multi-user.target.wants")
                .join(format!("{name}.service")),
            target: path,
        },
    ]
}

pub fn target(req: &Request) -> Target {
    Target {
        redirects: req.redirect_pairs().unwrap_or_default(),
        ..Target::default()
    }
}

/// The input-hook filter chains that drop by default and never name `port` in a rule, from `nft
/// list ruleset` and `iptables -S INPUT`: after a redirect, packets reach the input hook with
/// the service's port, so such a chain drops them. A chain that names the port anywhere (a
/// set, a range start) is given the benefit of the doubt.
pub fn input_drops(nft_ruleset: &str, iptables_input: &str, port: u16) -> Vec<String> {
    let names_port = |line: &str| {
        line.split(|c: char| !c.is_ascii_digit())
            .any(|w| w == port.to_string())
    };
    let mut out = Vec::new();
    let (mut table, mut chain) = (String::new(), None::<(String, bool, bool)>);
    for line in nft_ruleset.lines().map(str::trim) {
        if let Some(t) = line.strip_prefix("table ") {
            table = t.trim_end_matches('{').trim().to_string();
        } else if let Some(c) = line.strip_prefix("chain ") {
            chain = Some((c.trim_end_matches('{').trim().to_string(), false, false));
        } else if line == "}" {
            if let Some((name, true, false)) = chain.take() {
                out.push(format!("nft table {table} chain {name}"));
            }
        } else if let Some((_, drops, named)) = &mut chain {
            if line.contains("hook input") && line.contains("policy drop") {
                *drops = true;
            }
            *named |= names_port(line);
        }
    }
    let ipt: Vec<&str> = iptables_input.lines().collect();
    if ipt.contains(&"-P INPUT DROP") && !ipt.iter().any(|l| names_port(l)) {
        out.push("iptables chain INPUT".into());
    }
    out
}

/// A chain priority as `nft list ruleset` prints it: a number, or a standard name with an
/// optional offset (`dstnat`, `dstnat - 10`).
fn priority(text: &str) -> Option<i32> {
    let mut words = text.split_whitespace();
    let base = match words.next()? {
        "raw" => -300,
        "mangle" => -150,
        "dstnat" => -100,
        "filter" => 0,
        "security" => 50,
        "srcnat" => 100,
        n => return n.parse().ok(),
    };
    match (
        words.next(),
        words.next().and_then(|n| n.parse::<i32>().ok()),
    ) {
        (Some("+"), Some(n)) => Some(base + n),
        (Some("-"), Some(n)) => Some(base - n),
        _ => Some(base),
    }
}

/// Other NAT rules that send `port` somewhere other than `high` before lowport's rule does (nft
/// prerouting chains that run first, or an earlier iptables PREROUTING rule): the first NAT
/// decision wins, so clients would be sent there, not to the service. A rule that redirects to
/// `high` itself (lowport's own, which iptables-nft also lists as nft) does no harm.
pub fn nat_before(
    nft_ruleset: &str,
    iptables_nat_prerouting: &str,
    port: u16,
    high: u16,
) -> Vec<String> {
    let names_port = |line: &str| {
        line.split(|c: char| !c.is_ascii_digit())
            .any(|w| w == port.to_string())
    };
    let rewrites = |line: &str| {
        names_port(line)
            && line.contains("dport")
            && (line.contains("dnat") || line.contains("redirect"))
            && !line.contains(&format!("redirect to :{high}"))
    };
    let mut out = Vec::new();
    let (mut table, mut chain) = (String::new(), None::<(String, bool, bool)>);
    for line in nft_ruleset.lines().map(str::trim) {
        if let Some(t) = line.strip_prefix("table ") {
            table = t.trim_end_matches('{').trim().to_string();
        } else if let Some(c) = line.strip_prefix("chain ") {
            chain = Some((c.trim_end_matches('{').trim().to_string(), false, false));
        } else if line == "}" {
            if let Some((name, _, true)) = chain.take() {
                out.push(format!("nft table {table} chain {name}"));
            }
        } else if let Some((_, early, hit)) = &mut chain {
            if table.ends_with("lowport_redirect") {
                continue;
            }
            if line.contains("type nat hook prerouting") {
                let p = line
                    .split("priority")
                    .nth(1)
                    .and_then(|r| priority(r.split(';').next().unwrap_or("")));
                *early = p.is_some_and(|p| p <= -100);
            }
            *hit |= *early && rewrites(line);
        }
    }
    for line in iptables_nat_prerouting.lines() {
        if line.contains(&format!("--to-ports {high}")) {
            break;
        }
        if line.starts_with("-A PREROUTING")
            && names_port(line)
            && line.contains("--dport")
            && (line.contains("-j DNAT") || line.contains("-j REDIRECT"))
        {
            out.push(format!("iptables nat rule `{line}`"));
        }
    }
    out
}

#[cfg(test)]
mod input_tests {
    use super::input_drops;

    #[test]
    fn a_default_drop_input_chain_that_never_names_the_port_is_found() {
        let nft = "table inet fw {\n\tchain input {\n\t\ttype filter hook input priority \
                   filter; policy drop;\n\t\tiif \"lo\" accept\n\t\ttcp dport 80 accept\n\t}\n}\n";
        assert_eq!(
            input_drops(nft, "", 8080),
            ["nft table inet fw chain input"]
        );
        assert!(input_drops(nft, "", 80).is_empty(), "it accepts 80 itself");
        let accepting = nft.replace("dport 80 ", "dport { 80, 8080 } ");
        assert!(input_drops(&accepting, "", 8080).is_empty());
        let ipt = "-P INPUT DROP\n-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT\n";
        assert_eq!(input_drops("", ipt, 8080), ["iptables chain INPUT"]);
        assert!(input_drops("", "-P INPUT ACCEPT\n", 8080).is_empty());
    }

    #[test]
    fn a_nat_rule_that_takes_the_port_first_is_found() {
        use super::nat_before;
        let nft = "table ip other {\n\tchain pre {\n\t\ttype nat hook prerouting priority \
                   dstnat - 50; policy accept;\n\t\ttcp dport 80 redirect to :9999\n\t}\n}\n\
                   table ip lowport_redirect {\n\tchain prerouting {\n\t\ttype nat hook \
                   prerouting priority -100; policy accept;\n\t\ttcp dport 80 redirect to \
                   :8080\n\t}\n}\n";
        assert_eq!(
            nat_before(nft, "", 80, 8080),
            ["nft table ip other chain pre"]
        );
        assert!(nat_before(nft, "", 443, 8080).is_empty());
        let later = nft.replace("dstnat - 50", "srcnat");
        assert!(
            nat_before(&later, "", 80, 8080).is_empty(),
            "runs after ours"
        );
        let ipt = "-P PREROUTING ACCEPT\n-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT \
                   --to-destination 10.0.0.9:80\n-A PREROUTING -p tcp -m tcp --dport 80 -m \
                   comment --comment lowport -j REDIRECT --to-ports 8080\n";
        assert_eq!(nat_before("", ipt, 80, 8080).len(), 1);
    }
}
