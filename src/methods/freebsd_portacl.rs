//! `freebsd-portacl`: mac_portacl(4) lets only the service's uid bind its ports; the reserved
//! range (`net.inet.ip.portrange.reservedhigh`) is then lowered to 0, so that the policy, not the
//! range, decides. The module is loaded and the rules installed before the range is lowered,
//! last of all; a rollback undoes in reverse, so reservedhigh is restored first. At boot a small
//! rc.d script lowers it only once it has checked that the module is loaded, enforcing and holding
//! the rules: sysctl.conf never lowers it, since with the module missing that would let every
//! user bind every port below 1024.

use super::{Check, Meta, Method, MethodId, Needs, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};
use crate::validate::{self, PortaclRule};

pub struct FreebsdPortacl;

pub const RESERVEDLOW: &str = "net.inet.ip.portrange.reservedlow";
pub const RESERVEDHIGH: &str = "net.inet.ip.portrange.reservedhigh";
const RULES: &str = "security.mac.portacl.rules";
pub const ENABLED: &str = "security.mac.portacl.enabled";
pub const PORT_HIGH: &str = "security.mac.portacl.port_high";
const SUSER_EXEMPT: &str = "security.mac.portacl.suser_exempt";
const SECURELEVEL: &str = "kern.securelevel";
pub const MODULE: &str = "mac_portacl";
const LOADER_CONF: &str = "/boot/loader.conf";
pub const SYSCTL_CONF: &str = "/etc/sysctl.conf";
/// Read by /etc/rc.d/sysctl after sysctl.conf: what it sets wins at boot.
pub const SYSCTL_CONF_LOCAL: &str = "/etc/sysctl.conf.local";
const RC_CONF: &str = "/etc/rc.conf";
pub const RC_SCRIPT: &str = "/usr/local/etc/rc.d/lowport_portacl";
const RC_VAR: &str = "lowport_portacl_enable";
const LOAD_VAR: &str = "mac_portacl_load";
/// mac_portacl's rules buffer holds 1023 characters (MAC_RULE_STRING_LEN, with its NUL).
const KERNEL_RULES_MAX: usize = 1023;
/// The longest sysctl value lowport's journal records (`check_sysctl_value` in
/// apply/journal.rs): a longer rules string could be set but not rolled back.
const JOURNAL_SYSCTL_MAX: usize = 256;
/// mac_portacl's defaults (mac_portacl(4)); a loader.conf tunable replaces them at load.
const DEFAULT_ENABLED: i64 = 1;
const DEFAULT_PORT_HIGH: i64 = 1023;
const DEFAULT_SUSER_EXEMPT: i64 = 1;

/// Reading and editing FreeBSD's `name=value` configuration files (sysctl.conf, loader.conf,
/// rc.conf): a setting line is `name=value` after optional blanks; a line starting with `#` is
/// a comment. Edits keep every other line exactly as it was.
pub(super) mod conf {
    /// The name a setting line sets.
    fn name(line: &str) -> Option<&str> {
        let t = line.trim_start();
        if t.starts_with('#') {
            return None;
        }
        let (k, _) = t.split_once('=')?;
        let k = k.trim_end();
        (!k.is_empty() && !k.contains(char::is_whitespace)).then_some(k)
    }

    /// The value the last line setting `key` gives it (the one that wins), unquoted and without
    /// a trailing comment.
    pub fn value(text: &str, key: &str) -> Option<String> {
        let line = text.lines().rev().find(|l| name(l) == Some(key))?;
        let v = line.split_once('=').map_or("", |(_, v)| v).trim();
        let v = match v.strip_prefix('"') {
            Some(rest) => rest.split('"').next(),
            None => v.split(['#', ' ', '\t']).next(),
        };
        Some(v.unwrap_or_default().to_string())
    }

    /// `text` with the last line setting `key` replaced by `line` (which ends in a newline), or
    /// with `line` appended when no line sets it.
    pub fn set(text: &str, key: &str, line: &str) -> String {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        match lines.iter().rposition(|l| name(l) == Some(key)) {
            Some(i) => format!("{}{line}{}", lines[..i].concat(), lines[i + 1..].concat()),
            None => {
                let mut out = text.to_string();
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(line);
                out
            }
        }
    }

    /// `text` with every line setting `key` turned into a comment, each under `note`.
    pub fn disable(text: &str, key: &str, note: &str) -> String {
        text.split_inclusive('\n')
            .map(|l| {
                if name(l) == Some(key) {
                    format!("# {note}\n#{l}")
                } else {
                    l.to_string()
                }
            })
            .collect()
    }

    /// Every value lines setting `key` give it, in order.
    pub fn values(text: &str, key: &str) -> Vec<String> {
        text.lines()
            .filter(|l| name(l) == Some(key))
            .filter_map(|l| value(l, key))
            .collect()
    }
}

/// The elements of a rules string, empty ones skipped as the kernel skips them, each checked.
fn parse_rules(s: &str, origin: &str) -> Result<Vec<(String, PortaclRule)>, String> {
    s.split(',')
        .filter(|e| !e.is_empty())
        .map(|e| {
            validate::portacl_rule(e)
                .map(|r| (e.to_string(), r))
                .map_err(|err| {
                    format!(
                        "{origin} holds {err}; lowport cannot merge with it exactly: correct or \
                         remove that rule by hand and plan again"
                    )
                })
        })
        .collect()
}

/// A kernel setting as a number, with what to say about where it comes from.
struct Setting {
    value: i64,
    from: String,
}

/// What the plan is made of, worked out once from the facts for both `check` and `actions`.
struct Setup {
    loaded: bool,
    /// The live rules, then those only sysctl.conf holds, then the new ones: nothing is dropped.
    merged: String,
    /// (path, new content, mode) of each file that must change.
    files: Vec<(&'static str, String, u32)>,
}

/// The facts this method reads, noting what a facts document does not hold.
struct Read<'a> {
    facts: &'a Facts,
    missing: Vec<String>,
}

impl<'a> Read<'a> {
    /// A file's text, "" when it does not exist.
    fn file(&mut self, path: &str) -> String {
        match self.facts.platform.file(path) {
            Some(text) => text.unwrap_or_default().to_string(),
            None => {
                self.missing.push(path.to_string());
                String::new()
            }
        }
    }

    /// A kernel setting; None when the kernel has no such setting.
    fn sysctl(&mut self, key: &str) -> Option<&'a str> {
        match self.facts.platform.sysctl(key) {
            Some(v) => v,
            None => {
                self.missing.push(key.to_string());
                None
            }
        }
    }
}

/// The numeric uid of the operator's `--user`, from the target's accounts.
fn account(facts: &Facts, req: &Request, c: &mut Check) -> Option<(String, u32)> {
    let Some(name) = req.user.clone() else {
        c.input.push(
            "the user the service runs as: --user NAME (mac_portacl rules name its numeric uid)"
                .into(),
        );
        return None;
    };
    match facts.accounts.users.get(&name) {
        None => c.input.push(format!(
            "the facts do not hold user '{name}', whose numeric uid the rules need: plan with \
             --facts FILE made on the target (`lowport detect --json --method freebsd-portacl \
             --user {name}` with the same options)"
        )),
        // Named by the operator, absent there: the request is wrong, nothing about the host is.
        Some(None) => c.input.push(format!(
            "user '{name}' does not exist on the target: create it there first (for example \
             `pw useradd -n {name} -d /nonexistent -s /usr/sbin/nologin`) and gather the facts \
             again; lowport creates users on Linux only"
        )),
        Some(Some(a)) if a.uid == 0 => c.input.push(format!(
            "user '{name}' has uid 0: root may bind every port already (security.mac.portacl.\
             suser_exempt); give the unprivileged user the service runs as"
        )),
        Some(Some(a)) => return Some((name, a.uid)),
    }
    None
}

fn number(key: &str, v: &str, c: &mut Check) -> Option<i64> {
    let n = v.trim().parse().ok();
    if n.is_none() {
        c.blockers
            .push(format!("{key} reads {v:?} on the target, not a number"));
    }
    n
}

/// `low`–`high` as words ("80", "80–1023"), or None for an empty range.
fn span(low: i64, high: i64) -> Option<String> {
    match (low, high) {
        (l, h) if l > h => None,
        (l, h) if l == h => Some(l.to_string()),
        (l, h) => Some(format!("{l}–{h}")),
    }
}

fn setup(facts: &Facts, req: &Request, c: &mut Check) -> Option<Setup> {
    c.grant_ports(req, true);
    let ports = req.grant_ports().unwrap_or_default();
    let account = account(facts, req, c);
    let mut r = Read {
        facts,
        missing: Vec::new(),
    };
    let loaded = facts.platform.module(MODULE);
    if loaded.is_none() {
        r.missing.push(format!("whether {MODULE} is loaded"));
    }
    let loaded = loaded.unwrap_or(false);
    let high = r.sysctl(RESERVEDHIGH);
    let low = r.sysctl(RESERVEDLOW);
    // The module's settings exist only while it is loaded.
    let [rules, enabled, port_high, suser_exempt] =
        [RULES, ENABLED, PORT_HIGH, SUSER_EXEMPT].map(|k| if loaded { r.sysctl(k) } else { None });
    // Reading a file lowport rewrites is the only way to merge with it rather than replace it.
    let loader = r.file(LOADER_CONF);
    let sysctl_conf = r.file(SYSCTL_CONF);
    let sysctl_local = r.file(SYSCTL_CONF_LOCAL);
    let rc_conf = r.file(RC_CONF);
    r.file(RC_SCRIPT);
    if !r.missing.is_empty() {
        c.input.push(format!(
            "the facts do not hold {}: plan with --facts FILE made on the target (`lowport \
             detect --json --method freebsd-portacl` with the same options, or the script \
             `lowport facts-script` prints)",
            r.missing.join(", ")
        ));
    }
    let (user, uid) = account?;
    if !r.missing.is_empty() || ports.is_empty() {
        return None;
    }
    let (Some(high), Some(low)) = (high, low) else {
        c.blockers.push(format!(
            "the target's kernel has no {RESERVEDHIGH} or {RESERVEDLOW}: it is not the FreeBSD \
             network stack lowport knows"
        ));
        return None;
    };
    let high = number(RESERVEDHIGH, high, c)?;
    let low = number(RESERVEDLOW, low, c)?;
    if loaded && (rules.is_none() || enabled.is_none() || port_high.is_none()) {
        c.blockers.push(format!(
            "{MODULE} is loaded but the kernel lacks its settings ({RULES}, {ENABLED}, \
             {PORT_HIGH}): lowport cannot tell what it enforces"
        ));
        return None;
    }
    // A setting of the module: live while it is loaded; before that, what it will read when it
    // loads (a loader.conf tunable) or its default.
    let setting = |c: &mut Check, key: &str, live: Option<&str>, default: i64| {
        if let Some(v) = live {
            return Some(Setting {
                value: number(key, v, c)?,
                from: String::new(),
            });
        }
        match conf::value(&loader, key) {
            Some(v) => Some(Setting {
                value: number(key, &v, c)?,
                from: format!(" ({LOADER_CONF} sets it: {MODULE} reads it when it loads)"),
            }),
            None => Some(Setting {
                value: default,
                from: String::new(),
            }),
        }
    };
    let enabled = setting(c, ENABLED, enabled, DEFAULT_ENABLED)?;
    let port_high = setting(c, PORT_HIGH, port_high, DEFAULT_PORT_HIGH)?;
    let suser_exempt = setting(c, SUSER_EXEMPT, suser_exempt, DEFAULT_SUSER_EXEMPT)?;

    if enabled.value == 0 {
        c.blockers.push(format!(
            "{ENABLED} is 0{}: mac_portacl would not enforce anything, and with reservedhigh at \
             0 every user could bind every port below 1024; set it to 1 (or learn why it was \
             turned off) and plan again",
            enabled.from
        ));
    }
    if port_high.value < 1023 {
        c.blockers.push(format!(
            "{PORT_HIGH} is {}{}: mac_portacl decides only up to that port, so with reservedhigh \
             at 0 every user could bind ports {}; set it to 1023 and plan again",
            port_high.value,
            port_high.from,
            span(port_high.value.max(0) + 1, 1023).unwrap_or_default()
        ));
    }
    if !loaded
        && let Some(v) = facts.platform.sysctl(SECURELEVEL).flatten()
        && v.trim().parse::<i64>().is_ok_and(|n| n > 0)
    {
        c.blockers.push(format!(
            "{SECURELEVEL} is {}: the kernel refuses to load modules (security(7)), so \
             {MODULE} cannot be loaded now; add {LOAD_VAR}=\"YES\" to {LOADER_CONF}, reboot (the \
             loader loads it before the securelevel is raised) and plan again",
            v.trim()
        ));
    }

    // Merge: the live rules, the rules sysctl.conf installs at boot, then the new ones.
    let live_rules = match parse_rules(rules.unwrap_or_default(), &format!("live {RULES}")) {
        Ok(r) => r,
        Err(e) => {
            c.blockers.push(e);
            return None;
        }
    };
    let mut file_rules = Vec::new();
    for v in conf::values(&sysctl_conf, RULES) {
        match parse_rules(&v, &format!("{SYSCTL_CONF}'s {RULES}")) {
            Ok(r) => file_rules = r,
            Err(e) => {
                c.blockers.push(e);
                return None;
            }
        }
    }
    let mut merged: Vec<(String, PortaclRule)> = Vec::new();
    let mut from_file = Vec::new();
    for (text, rule) in live_rules.iter().chain(&file_rules) {
        if !merged.iter().any(|(_, m)| m == rule) {
            if !live_rules.iter().any(|(_, l)| l == rule) {
                from_file.push(text.clone());
            }
            merged.push((text.clone(), *rule));
        }
    }
    let foreign = merged.clone();
    // The rules that carry the grant, spelt as the merged string spells them.
    let mut ours = Vec::new();
    for &port in &ports {
        let rule = PortaclRule {
            gid: false,
            id: uid,
            udp: false,
            port,
        };
        match merged.iter().find(|(_, m)| *m == rule) {
            Some((text, _)) => ours.push(text.clone()),
            None => {
                ours.push(rule.to_string());
                merged.push((rule.to_string(), rule));
            }
        }
    }
    let merged: String = merged
        .iter()
        .map(|(t, _)| t.as_str())
        .collect::<Vec<_>>()
        .join(",");
    if merged.len() > JOURNAL_SYSCTL_MAX.min(KERNEL_RULES_MAX) {
        c.blockers.push(format!(
            "the merged {RULES} would be {} characters long; lowport records sysctl values of \
             at most {JOURNAL_SYSCTL_MAX} characters for its undo: shorten the existing rules by \
             hand (a gid rule can stand for several users) and plan again",
            merged.len()
        ));
    }

    // What changes for others, said before it happens.
    let reserved = |p: i64| low <= p && p <= high;
    if !loaded {
        let mut open: Vec<String> = Vec::new();
        open.extend(span(1, low.min(1024) - 1));
        open.extend(span(high.max(0) + 1, port_high.value.min(1023)));
        if !open.is_empty() {
            c.warnings.push(format!(
                "{RESERVEDLOW}–{RESERVEDHIGH} is {low}–{high} now, so every user may bind ports \
                 {} today; once {MODULE} is loaded only root and the rules may: a non-root \
                 service that binds one of them fails at its next start",
                open.join(" and ")
            ));
        }
        if suser_exempt.value == 0 {
            c.warnings.push(format!(
                "{SUSER_EXEMPT} is 0{}: once {MODULE} is loaded root too needs a rule for ports \
                 up to {}: a root service that binds one (sshd on 22, for example) fails at its \
                 next start unless a rule names uid 0",
                suser_exempt.from, port_high.value
            ));
        }
        if port_high.value > 1023 {
            c.warnings.push(format!(
                "{PORT_HIGH} is {}{}: once loaded, {MODULE} also denies binds to ports 1024–{} \
                 to every user without a rule",
                port_high.value, port_high.from, port_high.value
            ));
        }
    }
    let effective: Vec<&str> = foreign
        .iter()
        .filter(|(_, r)| reserved(i64::from(r.port)) && i64::from(r.port) <= port_high.value)
        .filter(|(t, _)| !ours.contains(t))
        .map(|(t, _)| t.as_str())
        .collect();
    if !effective.is_empty() {
        c.warnings.push(format!(
            "lowering reservedhigh to 0 also lets the rules already there take effect: {} (each \
             lets its uid or gid bind that port)",
            effective.join(", ")
        ));
    }
    if !from_file.is_empty() {
        c.warnings.push(format!(
            "{SYSCTL_CONF} also holds rules that are not live now, installed with yours (the \
             next boot would install them anyway): {}",
            from_file.join(", ")
        ));
    }
    for v in conf::values(&sysctl_conf, RESERVEDHIGH) {
        c.warnings.push(format!(
            "{SYSCTL_CONF} sets {RESERVEDHIGH}={v} at boot, before anything checks that \
             {MODULE} loaded: lowport comments that line out, and its boot script lowers \
             reservedhigh only after that check"
        ));
    }
    if let Some(v) = conf::value(&sysctl_local, RESERVEDHIGH) {
        let open = v
            .parse::<i64>()
            .ok()
            .and_then(|n| span(n.max(0) + 1, 1023))
            .map(|s| format!(": if {MODULE} fails to load, every user may then bind ports {s}"))
            .unwrap_or_default();
        c.warnings.push(format!(
            "{SYSCTL_CONF_LOCAL} sets {RESERVEDHIGH}={v} at boot, unguarded and after \
             {SYSCTL_CONF}{open}; lowport does not edit that file: remove the line"
        ));
    }
    let words: Vec<String> = ports.iter().map(u16::to_string).collect();
    c.warnings.push(format!(
        "the rules are for TCP: UDP binds to port{} {} stay root-only for {user} (fabio listens \
         on TCP only)",
        if ports.len() == 1 { "" } else { "s" },
        words.join(" and ")
    ));
    if let Some(g) = &req.group {
        c.warnings.push(format!(
            "--group {g} is not used: the rules name uid {uid} ({user}) only"
        ));
    }

    let mut files = vec![(RC_SCRIPT, rc_script(&ours), 0o555)];
    let load = validate::freebsd_conf_line(LOAD_VAR, "YES").ok()?;
    if conf::value(&loader, LOAD_VAR).as_deref() != Some("YES") {
        files.push((LOADER_CONF, conf::set(&loader, LOAD_VAR, &load), 0o644));
    }
    let line = match validate::freebsd_sysctl_line(RULES, &merged) {
        Ok(l) => l,
        Err(e) => {
            c.blockers.push(e);
            return None;
        }
    };
    let sysctl_new = conf::disable(
        &conf::set(&sysctl_conf, RULES, &line),
        RESERVEDHIGH,
        &format!("lowport: {RC_SCRIPT} lowers this once {MODULE} is loaded"),
    );
    if sysctl_new != sysctl_conf {
        files.push((SYSCTL_CONF, sysctl_new, 0o644));
    }
    let enable = validate::freebsd_conf_line(RC_VAR, "YES").ok()?;
    if conf::value(&rc_conf, RC_VAR).as_deref() != Some("YES") {
        files.push((RC_CONF, conf::set(&rc_conf, RC_VAR, &enable), 0o644));
    }
    Some(Setup {
        loaded,
        merged,
        files,
    })
}

/// The rc.d script that lowers reservedhigh at boot, after checking that mac_portacl is
/// loaded, enforcing up to port 1023 and holding `rules`. Every check is a positive test, so
/// an error in one (a setting missing, not a number) leaves the ports root-only.
fn rc_script(rules: &[String]) -> String {
    format!(
        r#"#!/bin/sh
#
# Written by lowport (freebsd-portacl); undo with `lowport rollback`.
#
# Lowers {RESERVEDHIGH} to 0 at boot, and only once
# mac_portacl(4) is loaded, enforcing up to port 1023 and holding lowport's rules: with the
# module missing, a lowered reservedhigh would let every user bind every port below 1024.
# Otherwise reservedhigh stays as it is (the ports stay root-only) and the reason is logged.
#
# PROVIDE: lowport_portacl
# REQUIRE: kld sysctl
# BEFORE: SERVERS
# KEYWORD: nojailvnet

. /etc/rc.subr

name="lowport_portacl"
desc="Lower reservedhigh once mac_portacl guards the ports"
rcvar="{RC_VAR}"
start_cmd="lowport_portacl_start"
stop_cmd=":"

lowport_portacl_start()
{{
	if ! kldstat -q -m {MODULE}; then
		warn "{MODULE} is not loaded: reservedhigh not lowered"
		return 1
	fi
	if [ "$(sysctl -n {ENABLED})" != "1" ]; then
		warn "{ENABLED} is not 1: reservedhigh not lowered"
		return 1
	fi
	if ! [ "$(sysctl -n {PORT_HIGH})" -ge 1023 ] 2>/dev/null; then
		warn "{PORT_HIGH} is below 1023: reservedhigh not lowered"
		return 1
	fi
	_live=",$(sysctl -n {RULES}),"
	for _rule in {rules}; do
		case "${{_live}}" in
		*",${{_rule}},"*) ;;
		*)
			warn "${{_rule}} is not in {RULES}: reservedhigh not lowered"
			return 1
			;;
		esac
	done
	sysctl {RESERVEDLOW}=0 >/dev/null &&
	    sysctl {RESERVEDHIGH}=0 >/dev/null
}}

load_rc_config "$name"
: "${{{RC_VAR}:=NO}}"
run_rc_command "$1"
"#,
        rules = rules.join(" ")
    )
}

const META: Meta = Meta {
    id: MethodId::FreebsdPortacl,
    markdown: include_str!("../../assets/methods/freebsd-portacl.md"),
    risk: Risk::Low,
    families: &["freebsd"],
};

impl Method for FreebsdPortacl {
    fn meta(&self) -> &'static Meta {
        &META
    }

    // reservedhigh is per VNET.
    fn per_netns(&self) -> bool {
        true
    }

    fn needs(&self) -> Needs {
        Needs {
            files: &[
                LOADER_CONF,
                SYSCTL_CONF,
                SYSCTL_CONF_LOCAL,
                RC_CONF,
                RC_SCRIPT,
            ],
            sysctls: &[
                RESERVEDLOW,
                RESERVEDHIGH,
                RULES,
                ENABLED,
                PORT_HIGH,
                SUSER_EXEMPT,
                SECURELEVEL,
            ],
            modules: &[MODULE],
            programs: &["kldload", "kldunload", "kldstat"],
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
        let mut out: Vec<Action> = s
            .files
            .into_iter()
            .map(|(path, content, mode)| Action::WriteFile {
                path: path.into(),
                content,
                mode,
                owner: "root".into(),
                group: "wheel".into(),
            })
            .collect();
        // The live order is the point of the method: module, rules, then the range, lowered
        // last (so a rollback, in reverse, restores reservedhigh first).
        if !s.loaded {
            let tool = |n: &str| {
                facts
                    .tool(n)
                    .map_or(n.to_string(), |p| p.display().to_string())
            };
            out.push(Action::RunCommands {
                what: format!("load the {MODULE}(4) kernel module"),
                run: vec![vec![tool("kldload"), MODULE.into()]],
                undo: vec![vec![tool("kldunload"), MODULE.into()]],
                check: Some(vec![
                    tool("kldstat"),
                    "-q".into(),
                    "-m".into(),
                    MODULE.into(),
                ]),
            });
        }
        for (key, value) in [
            (RULES, s.merged),
            (RESERVEDLOW, "0".into()),
            (RESERVEDHIGH, "0".into()),
        ] {
            out.push(Action::SetSysctl {
                key: key.into(),
                value,
            });
        }
        out
    }

    fn target(&self, _facts: &Facts, req: &Request) -> Target {
        Target {
            ports: req.grant_ports().unwrap_or_default(),
            user: req.user.clone(),
            ..Target::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{FactsHost, Host};
    use crate::plan::State;
    use crate::request::Want;
    use crate::validate::PortArg;

    const UID: u32 = 1002;

    /// A FreeBSD 14 host as its representative document has it, with user fabio (uid 1002).
    fn host() -> Facts {
        let mut f = crate::facts::targets::load("freebsd-14").unwrap();
        f.target_os = None;
        f.accounts.users.insert(
            "fabio".into(),
            Some(crate::facts::users::Account {
                name: "fabio".into(),
                uid: UID,
                gid: UID,
                groups: vec![UID],
                group: Some("fabio".into()),
            }),
        );
        for (path, text) in [
            (LOADER_CONF, "zfs_load=\"YES\"\n"),
            (RC_CONF, "sshd_enable=\"YES\"\n"),
        ] {
            f.platform.files.insert(path.into(), Some(text.into()));
        }
        f
    }

    fn load(f: &mut Facts, rules: &str) {
        f.platform.modules.insert(MODULE.into(), true);
        for (k, v) in [
            (RULES, rules),
            (ENABLED, "1"),
            (PORT_HIGH, "1023"),
            (SUSER_EXEMPT, "1"),
        ] {
            f.platform.sysctls.insert(k.into(), Some(v.into()));
        }
    }

    fn set(f: &mut Facts, key: &str, value: &str) {
        f.platform.sysctls.insert(key.into(), Some(value.into()));
    }

    fn request(ports: &[u16]) -> Request {
        Request::new(
            MethodId::FreebsdPortacl,
            Want {
                ports: ports.iter().map(|p| PortArg::Grant(*p)).collect(),
                user: Some("fabio".into()),
                ..Want::default()
            },
        )
    }

    fn check(f: &Facts, ports: &[u16]) -> Check {
        FreebsdPortacl.check(f, &request(ports))
    }

    fn rules_of(value: &str) -> Vec<PortaclRule> {
        parse_rules(value, "test")
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }

    /// xorshift64: many inputs without a dependency, each failure reproducible by its case.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn port(&mut self) -> u16 {
            match self.below(4) {
                0 => 80,
                1 => 443,
                _ => 1 + self.below(1023) as u16,
            }
        }
    }

    /// A random host: the module loaded or not, rules of others (and some of ours) live and in
    /// sysctl.conf, reservedhigh and reservedlow anywhere, sysctl.conf lowering reservedhigh
    /// unguarded, loader.conf absent or already loading the module.
    fn random_case(rng: &mut Rng) -> (Facts, Vec<u16>) {
        let mut f = host();
        let mut ports: Vec<u16> = (0..1 + rng.below(4)).map(|_| rng.port()).collect();
        ports.sort_unstable();
        ports.dedup();
        let rule = |rng: &mut Rng| {
            if rng.below(3) == 0 {
                let p = ports[rng.below(ports.len() as u64) as usize];
                format!("uid:{UID}:tcp:{p}")
            } else {
                PortaclRule {
                    gid: rng.below(2) == 0,
                    id: 1003 + rng.below(5) as u32,
                    udp: rng.below(2) == 0,
                    port: rng.port(),
                }
                .to_string()
            }
        };
        let live: Vec<String> = (0..rng.below(4)).map(|_| rule(rng)).collect();
        let in_file: Vec<String> = (0..rng.below(3)).map(|_| rule(rng)).collect();
        if rng.below(2) == 0 {
            load(&mut f, &live.join(","));
        }
        let high = [1023, 0, 79, 500, rng.below(1100) as i64][rng.below(5) as usize];
        set(&mut f, RESERVEDHIGH, &high.to_string());
        set(&mut f, RESERVEDLOW, ["0", "0", "5"][rng.below(3) as usize]);
        let mut sysctl_conf = String::from("# sysctl.conf\nkern.randompid=1\n");
        if !in_file.is_empty() {
            sysctl_conf.push_str(&format!("{RULES}={}\n", in_file.join(",")));
        }
        if rng.below(3) == 0 {
            sysctl_conf.push_str(&format!("{RESERVEDHIGH}=0\n"));
        }
        f.platform
            .files
            .insert(SYSCTL_CONF.into(), Some(sysctl_conf));
        if rng.below(3) == 0 {
            f.platform.files.insert(LOADER_CONF.into(), None);
        } else if rng.below(2) == 0 {
            f.platform.files.insert(
                LOADER_CONF.into(),
                Some("mac_portacl_load=\"YES\"\n".into()),
            );
        }
        (f, ports)
    }

    /// The issue's ordering property, over many hosts: no plan lowers reservedhigh before the
    /// module is loaded and the rules (the live ones, those of sysctl.conf and the new ones) are
    /// in place; nothing lowers it at boot but the guarded script; and the undo, which runs the
    /// done steps in reverse, restores reservedhigh first, then the rules, then unloads.
    #[test]
    fn reservedhigh_is_lowered_last_and_restored_first() {
        let mut rng = Rng(0x5eed_f00d_cafe_b0ba);
        let mut planned = 0;
        for case in 0..1500 {
            let (f, ports) = random_case(&mut rng);
            let req = request(&ports);
            let c = FreebsdPortacl.check(&f, &req);
            if !c.input.is_empty() || !c.blockers.is_empty() {
                continue;
            }
            planned += 1;
            let why = format!("case {case}: ports {ports:?}, platform {:?}", f.platform);
            let actions = FreebsdPortacl.actions(&f, &req);
            let index = |want: &dyn Fn(&Action) -> bool| actions.iter().position(want);
            let sysctl = |key: &'static str| move |a: &Action| matches!(a, Action::SetSysctl { key: k, .. } if k == key);
            let high = index(&sysctl(RESERVEDHIGH)).unwrap_or_else(|| panic!("{why}"));
            let low = index(&sysctl(RESERVEDLOW)).unwrap_or_else(|| panic!("{why}"));
            let rules = index(&sysctl(RULES)).unwrap_or_else(|| panic!("{why}"));
            let kld = index(&|a| matches!(a, Action::RunCommands { .. }));
            assert_eq!(high, actions.len() - 1, "reservedhigh is not last: {why}");
            assert!(rules < low && low < high, "{why}");
            let loaded = f.platform.module(MODULE) == Some(true);
            match kld {
                Some(k) => assert!(!loaded && k < rules, "{why}"),
                None => assert!(loaded, "{why}"),
            }
            let Action::SetSysctl { value, .. } = &actions[rules] else {
                unreachable!()
            };
            let installed = rules_of(value);
            let live = f.platform.sysctl(RULES).flatten().unwrap_or_default();
            let file = conf::value(
                f.platform.file(SYSCTL_CONF).flatten().unwrap_or_default(),
                RULES,
            )
            .unwrap_or_default();
            for r in rules_of(live).iter().chain(&rules_of(&file)) {
                assert!(installed.contains(r), "{r} dropped: {why}");
            }
            for &port in &ports {
                let ours = PortaclRule {
                    gid: false,
                    id: UID,
                    udp: false,
                    port,
                };
                assert!(installed.contains(&ours), "{ours} missing: {why}");
            }
            assert!(
                installed.len()
                    == installed
                        .iter()
                        .collect::<std::collections::BTreeSet<_>>()
                        .len(),
                "duplicates in {value}: {why}"
            );
            for a in &actions[..high] {
                if let Action::WriteFile { path, content, .. } = a {
                    if path.as_path() == std::path::Path::new(RC_SCRIPT) {
                        let guard = content.find("kldstat -q -m mac_portacl").unwrap();
                        let lower = content.find(&format!("{RESERVEDHIGH}=0")).unwrap();
                        assert!(guard < lower, "{why}");
                    } else {
                        assert!(
                            conf::values(content, RESERVEDHIGH).is_empty(),
                            "{} lowers reservedhigh at boot: {why}",
                            path.display()
                        );
                    }
                }
            }
            // The undo: the steps that run (not in place), undone in reverse.
            let facts_host = FactsHost::of(&f);
            let pending: Vec<(usize, State)> = actions
                .iter()
                .enumerate()
                .map(|(i, a)| (i, a.observe_on(&facts_host).unwrap()))
                .filter(|(i, s)| !actions[*i].satisfied(s, &facts_host))
                .collect();
            let undone: Vec<usize> = pending.iter().rev().map(|(i, _)| *i).collect();
            let now = f.platform.sysctl(RESERVEDHIGH).flatten().unwrap();
            if now != "0" {
                assert_eq!(undone.first(), Some(&high), "{why}");
                let (_, before) = pending.last().unwrap();
                let undo = actions[high].undo(before, facts_host.root());
                assert!(undo.ends_with(&format!("back to {now}")), "{undo}: {why}");
            }
            let at = |i: usize| undone.iter().position(|u| *u == i);
            if let (Some(r), Some(k)) = (at(rules), kld.and_then(at)) {
                assert!(
                    r < k,
                    "the module is unloaded before the rules are restored: {why}"
                );
            }
        }
        assert!(planned > 500, "only {planned} of the cases were plannable");
    }

    #[test]
    fn a_fresh_host_loads_installs_then_lowers() {
        let f = host();
        let c = check(&f, &[80, 443]);
        assert!(c.input.is_empty() && c.blockers.is_empty(), "{c:?}");
        assert_eq!(
            c.warnings,
            [
                "the rules are for TCP: UDP binds to ports 80 and 443 stay root-only for fabio \
              (fabio listens on TCP only)"
            ]
        );
        let a = FreebsdPortacl.actions(&f, &request(&[80, 443]));
        let kinds: Vec<String> = a.iter().map(Action::target).collect();
        assert_eq!(
            kinds,
            [
                RC_SCRIPT,
                LOADER_CONF,
                SYSCTL_CONF,
                RC_CONF,
                "load the mac_portacl(4) kernel module",
                RULES,
                RESERVEDLOW,
                RESERVEDHIGH
            ]
        );
        assert!(matches!(&a[4], Action::RunCommands { run, undo, check, .. }
            if run == &[vec!["/sbin/kldload".to_string(), MODULE.into()]]
            && undo == &[vec!["/sbin/kldunload".to_string(), MODULE.into()]]
            && check.as_deref() == Some(&["/sbin/kldstat".to_string(), "-q".into(), "-m".into(), MODULE.into()][..])));
        assert!(
            matches!(&a[5], Action::SetSysctl { value, .. } if value == "uid:1002:tcp:80,uid:1002:tcp:443")
        );
    }

    #[test]
    fn an_equal_rule_already_there_is_in_place_and_kept_as_spelt() {
        let mut f = host();
        load(&mut f, "uid:1003:tcp:25,uid:01002:tcp:80");
        let a = FreebsdPortacl.actions(&f, &request(&[80]));
        let value = a.iter().find_map(|a| match a {
            Action::SetSysctl { key, value } if key == RULES => Some(value.clone()),
            _ => None,
        });
        assert_eq!(value.as_deref(), Some("uid:1003:tcp:25,uid:01002:tcp:80"));
        let Action::WriteFile { content, .. } = &a[0] else {
            panic!("{a:?}")
        };
        assert!(
            content.contains("for _rule in uid:01002:tcp:80; do"),
            "{content}"
        );
    }

    #[test]
    fn what_would_leave_ports_open_is_refused() {
        let blocked = |f: &Facts, what: &str| {
            let c = check(f, &[80]);
            assert!(c.blockers.iter().any(|b| b.contains(what)), "{what}: {c:?}");
        };
        let mut f = host();
        load(&mut f, "");
        set(&mut f, ENABLED, "0");
        blocked(&f, "mac_portacl would not enforce anything");
        let mut f = host();
        load(&mut f, "");
        set(&mut f, PORT_HIGH, "500");
        blocked(&f, "every user could bind ports 501–1023");
        // Before it loads, the module reads loader.conf's tunables.
        let mut f = host();
        f.platform.files.insert(
            LOADER_CONF.into(),
            Some("security.mac.portacl.port_high=\"80\"\n".into()),
        );
        blocked(&f, "/boot/loader.conf sets it");
        let mut f = host();
        set(&mut f, SECURELEVEL, "1");
        blocked(&f, "refuses to load modules");
        let mut f = host();
        load(&mut f, "uid:-5:tcp:80");
        blocked(&f, "cannot merge with it exactly");
        let mut f = host();
        let many: Vec<String> = (0..20)
            .map(|p| format!("uid:2000:tcp:{}", 100 + p))
            .collect();
        load(&mut f, &many.join(","));
        blocked(&f, "at most 256 characters");
        // Loaded already: the securelevel does not matter.
        let mut f = host();
        load(&mut f, "");
        set(&mut f, SECURELEVEL, "2");
        assert!(check(&f, &[80]).blockers.is_empty());
    }

    #[test]
    fn what_changes_for_others_is_said() {
        let warned = |f: &Facts, what: &str| {
            let c = check(f, &[80]);
            assert!(c.blockers.is_empty(), "{c:?}");
            assert!(c.warnings.iter().any(|w| w.contains(what)), "{what}: {c:?}");
        };
        let mut f = host();
        set(&mut f, RESERVEDHIGH, "79");
        warned(&f, "every user may bind ports 80–1023 today");
        let mut f = host();
        f.platform.files.insert(
            LOADER_CONF.into(),
            Some("security.mac.portacl.suser_exempt=\"0\"\n".into()),
        );
        warned(&f, "root too needs a rule");
        let mut f = host();
        load(&mut f, "uid:1003:tcp:25");
        warned(
            &f,
            "also lets the rules already there take effect: uid:1003:tcp:25",
        );
        let mut f = host();
        f.platform.files.insert(
            SYSCTL_CONF_LOCAL.into(),
            Some(format!("{RESERVEDHIGH}=0\n")),
        );
        warned(&f, "every user may then bind ports 1–1023");
        // Already lowered with the module loaded: the rules of others are in force already.
        let mut f = host();
        load(&mut f, "uid:1003:tcp:25");
        set(&mut f, RESERVEDHIGH, "0");
        let c = check(&f, &[80]);
        assert_eq!(c.warnings.len(), 1, "{c:?}");
        assert!(c.warnings[0].starts_with("the rules are for TCP: UDP binds to port 80 stay"));
    }

    #[test]
    fn the_user_must_be_known_on_the_target() {
        let mut f = host();
        f.accounts.users.insert("fabio".into(), None);
        assert!(check(&f, &[80]).input[0].contains("does not exist on the target"));
        f.accounts.users.clear();
        assert!(check(&f, &[80]).input[0].contains("the facts do not hold user 'fabio'"));
        let mut root = host();
        if let Some(Some(a)) = root.accounts.users.get_mut("fabio") {
            a.uid = 0;
        }
        assert!(check(&root, &[80]).input[0].contains("has uid 0"));
    }

    #[test]
    fn config_edits_keep_every_other_line() {
        let text = "# c\na=\"1\" # x\nb=2\n a = 3\nc=4";
        assert_eq!(conf::value(text, "a").as_deref(), Some("3"));
        assert_eq!(conf::value("x=\"y z\" # c\n", "x").as_deref(), Some("y z"));
        assert_eq!(conf::value("#a=1\n", "a"), None);
        assert_eq!(
            conf::set(text, "a", "a=9\n"),
            "# c\na=\"1\" # x\nb=2\na=9\nc=4"
        );
        assert_eq!(conf::set(text, "d", "d=1\n"), format!("{text}\nd=1\n"));
        assert_eq!(conf::set("", "d", "d=1\n"), "d=1\n");
        assert_eq!(
            conf::disable("a=1\nb=2\n", "a", "moved"),
            "# moved\n#a=1\nb=2\n"
        );
        assert_eq!(conf::values("a=1\nb=2\na=3\n", "a"), ["1", "3"]);
    }

    /// The boot script passes the shell checkers the exports use: dash parses it, shellcheck
    /// (as POSIX sh) and checkbashisms find nothing. SC2034 (rc.subr reads the variables it
    /// assigns) and SC1091 (/etc/rc.subr is not on this machine) are expected of every rc.d
    /// script.
    #[test]
    fn the_rc_script_is_plain_posix_sh() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lowport_portacl");
        std::fs::write(
            &file,
            rc_script(&["uid:1002:tcp:80".into(), "uid:1002:tcp:443".into()]),
        )
        .unwrap();
        for argv in [
            vec!["dash", "-n"],
            vec!["shellcheck", "-s", "sh", "-e", "SC2034,SC1091"],
            vec!["checkbashisms", "--posix"],
        ] {
            let out = std::process::Command::new(argv[0])
                .args(&argv[1..])
                .arg(&file)
                .output()
                .unwrap_or_else(|e| panic!("{}: {e} (.ci/run installs it)", argv[0]));
            assert!(
                out.status.success(),
                "{argv:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
