//! What the packet-filter redirect methods share (pf on FreeBSD, OpenBSD and macOS, npf on
//! NetBSD): the interface the rules attach to, the `LOW:HIGH` pairs and their risks, rc.conf
//! values, where lowport's lines go in a configuration file it merges into, and the command
//! steps. Every load of rules is preceded by a parse-only check of the same file (`pfctl -n`,
//! `npfctl validate`): the property test at the end of this file holds every method to it.

use std::path::Path;

use super::{Check, Request};
use crate::facts::Facts;
use crate::plan::{Action, Target};
use crate::validate;

/// lowport's anchor (FreeBSD and OpenBSD: attached in pf.conf; macOS: `com.apple/lowport`).
pub const ANCHOR: &str = "lowport";
/// lowport's own rule file, loaded into its anchor: in lowport's directory (beside the Linux
/// redirect's nftables file), not in one the OS ships, so no OS file holds lowport's rules and
/// rollback removes the file and the directory it created.
pub const RULES: &str = "/etc/lowport/pf-redirect.conf";
pub const PF_CONF: &str = "/etc/pf.conf";

/// Words that begin a filter rule in pf.conf (FreeBSD): translation rules, and so lowport's
/// `rdr-anchor`, must come before the first of them while `set require-order` is on (the
/// default).
pub const PF_FILTER: &[&str] = &["pass", "block", "anchor", "antispoof", "match"];
/// npf.conf: lowport's variables and map go before the first group.
pub const NPF_GROUP: &[&str] = &["group"];

/// The interface the rules name: `--interface`, else `fallback` (OpenBSD's `egress` group,
/// which follows the default route), else the facts' default-route interface. None, with the
/// reason in `c.input`, when there is none.
pub fn interface(
    facts: &Facts,
    req: &Request,
    fallback: Option<&str>,
    c: &mut Check,
) -> Option<String> {
    let (given, from) = match (&req.interface, fallback) {
        (Some(i), _) => (Some(i.as_str()), "--interface"),
        (None, Some(f)) => (Some(f), "the default"),
        (None, None) => (
            facts.platform.interface.as_deref(),
            "the facts' default-route interface",
        ),
    };
    let Some(name) = given else {
        c.input.push(
            "the interface the rules attach to: --interface IF (these facts do not name the \
             interface of the default route; give it, or plan with --facts FILE from the target)"
                .into(),
        );
        return None;
    };
    // The name goes bare into rule text: only an interface name passes.
    match validate::interface(name) {
        Ok(n) => Some(n),
        Err(e) => {
            c.input.push(format!("{from}: {e}; give --interface IF"));
            None
        }
    }
}

/// The `LOW:HIGH` pairs, with the risks every redirect has; `reach` says how the service's
/// port can be reached directly, which depends on the redirect's target address.
pub fn pairs(req: &Request, reach: &str, c: &mut Check) -> Vec<(u16, u16)> {
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
        c.warnings.push(reach.replace("{high}", &high.to_string()));
    }
    pairs
}

/// A blocker for each program the plan runs that the facts do not place in the system
/// directories (they are part of the base system where the method exists).
pub fn require_tools(facts: &Facts, names: &[&str], c: &mut Check) {
    for name in names {
        if facts.tool(name).is_none() {
            c.blockers.push(format!(
                "{name} is not in /usr/sbin, /usr/bin, /sbin or /bin on this host (it ships \
                 with the base system; if the facts document is incomplete, gather it again \
                 with `lowport facts-script` on the target)"
            ));
        }
    }
}

/// A program's absolute path on the target, as the facts give it.
pub fn program(facts: &Facts, name: &str) -> String {
    facts
        .tool(name)
        .map_or_else(|| name.to_string(), |p| p.display().to_string())
}

/// A path as a command on the target names it (under `--root` when planning under one).
pub fn host_path(facts: &Facts, path: &str) -> String {
    facts.root().host(Path::new(path)).display().to_string()
}

/// A configuration file's text from the facts: `None` unknown, `Some(None)` absent.
pub fn text<'a>(facts: &'a Facts, path: &str) -> Option<Option<&'a str>> {
    facts.platform.file(path)
}

/// The mode to write an existing file with: the one the facts recorded, else `default`.
pub fn mode(facts: &Facts, path: &str, default: u32) -> u32 {
    facts
        .host
        .files
        .get(Path::new(path))
        .and_then(|f| f.mode)
        .unwrap_or(default)
}

/// The value the last assignment of `var` in an rc.conf-style file gives it (quotes and a
/// trailing comment removed); None when no line sets it.
pub fn rc_value(text: &str, var: &str) -> Option<String> {
    text.lines().rev().find_map(|l| {
        let rest = l.trim().strip_prefix(var)?.strip_prefix('=')?;
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next()?,
            _ => rest
                .split(|c: char| c.is_whitespace() || c == '#' || c == ';')
                .next()?,
        };
        Some(value.to_string())
    })
}

/// An rc.conf value that rc(8)'s `checkyesno` reads as yes.
pub fn is_yes(value: Option<&str>) -> bool {
    value.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "yes" | "true" | "on" | "1"))
}

/// The part of a pf.conf or npf.conf line that is not a comment (`#` outside double quotes).
pub fn code(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Lines that start a statement (not a continuation after `\`, not inside `{ … }`), with the
/// statement's first word.
fn statements<'a>(lines: &[&'a str]) -> Vec<(usize, &'a str)> {
    let (mut out, mut continued, mut depth) = (Vec::new(), false, 0i64);
    for (i, line) in lines.iter().enumerate() {
        let c = code(line);
        if !continued && depth == 0 {
            out.push((i, c.split_whitespace().next().unwrap_or("")));
        }
        depth = (depth + c.matches('{').count() as i64 - c.matches('}').count() as i64).max(0);
        // pfctl and npfctl join a line ending in a backslash with the next, comment or not.
        continued = line.trim_end().ends_with('\\');
    }
    out
}

/// Whether a statement of the file begins with one of `words`.
pub fn has_statement(text: &str, words: &[&str]) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    statements(&lines).iter().any(|(_, w)| words.contains(w))
}

/// `text` with lowport's `block` of lines in it; `ours` recognises any line lowport wrote
/// there (an earlier block may hold other ports). Unchanged when exactly the block's lines are
/// there already; otherwise lowport's lines are taken out and the whole block goes before the
/// first statement beginning with one of `before` (and the comment lines directly above it),
/// or at the end when there is none.
pub fn merge(text: &str, block: &[String], ours: &dyn Fn(&str) -> bool, before: &[&str]) -> String {
    let is_ours = |l: &str| ours(l.trim_end());
    let lines: Vec<&str> = text.lines().collect();
    let found: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_end())
        .filter(|l| ours(l))
        .collect();
    if found.len() == block.len() && block.iter().all(|b| found.contains(&b.as_str())) {
        return text.to_string();
    }
    // Taking lowport's lines out also takes the blank line it put after them.
    let mut kept: Vec<&str> = Vec::new();
    let mut after_ours = false;
    for l in lines {
        if is_ours(l) {
            after_ours = true;
            continue;
        }
        let blank_again = l.trim().is_empty() && kept.last().is_none_or(|k| k.trim().is_empty());
        if !(after_ours && blank_again) {
            kept.push(l);
        }
        after_ours = false;
    }
    let mut at = statements(&kept)
        .into_iter()
        .find(|(_, w)| before.contains(w))
        .map_or(kept.len(), |(i, _)| i);
    if at < kept.len() {
        while at > 0 && kept[at - 1].trim_start().starts_with('#') {
            at -= 1;
        }
    }
    let mut out: Vec<String> = kept[..at].iter().map(|l| l.to_string()).collect();
    if out.last().is_some_and(|l| !l.trim().is_empty()) {
        out.push(String::new());
    }
    out.extend(block.iter().cloned());
    if kept.get(at).is_some_and(|l| !l.trim().is_empty()) {
        out.push(String::new());
    }
    out.extend(kept[at..].iter().map(|l| l.to_string()));
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// The steps pf-freebsd and pf-openbsd take with pf.conf and lowport's rule file: check the
/// current pf.conf (its undo reloads the restored file, so it must parse), write the rules and
/// the merged pf.conf, check the whole ruleset, then load it. `loaded` says what the load does;
/// its undo flushes the anchor's `flush` (`nat` or `rules`).
pub fn conf_steps(
    facts: &Facts,
    current: Option<&str>,
    merged: String,
    rules: String,
    loaded: &str,
    flush: &str,
) -> Vec<Action> {
    let pfctl = program(facts, "pfctl");
    let conf = host_path(facts, PF_CONF);
    let changes = current != Some(merged.as_str());
    let mut out = Vec::new();
    if changes && current.is_some() {
        // Its undo loads the restored file again: checked here, before anything changed.
        out.push(run(
            format!(
                "check that the current {PF_CONF} parses, before anything changes (on undo, pf \
                 loads it again once it is restored)"
            ),
            vec![argv(&pfctl, &["-nf", &conf])],
            vec![argv(&pfctl, &["-f", &conf])],
        ));
    }
    out.push(write(RULES, rules, 0o600));
    if changes {
        // Both ship /etc/pf.conf as 0600 root:wheel; a known mode is kept.
        out.push(write(PF_CONF, merged, mode(facts, PF_CONF, 0o600)));
    }
    out.push(run(
        format!("check the whole ruleset, {PF_CONF} with lowport's anchor, without loading it"),
        vec![argv(&pfctl, &["-nf", &conf])],
        Vec::new(),
    ));
    out.push(run(
        format!("load {PF_CONF} and lowport's anchor \"{ANCHOR}\" ({loaded})"),
        vec![argv(&pfctl, &["-f", &conf])],
        vec![argv(&pfctl, &["-a", ANCHOR, "-F", flush])],
    ));
    out
}

/// A command step.
pub fn run(what: String, run: Vec<Vec<String>>, undo: Vec<Vec<String>>) -> Action {
    Action::RunCommands {
        what,
        run,
        undo,
        check: None,
    }
}

/// A command step with a read-only check that exits 0 when its effect is in place.
pub fn run_checked(
    what: String,
    run: Vec<Vec<String>>,
    undo: Vec<Vec<String>>,
    check: Vec<String>,
) -> Action {
    Action::RunCommands {
        what,
        run,
        undo,
        check: Some(check),
    }
}

/// argv from a program path and its arguments.
pub fn argv(program: &str, args: &[&str]) -> Vec<String> {
    std::iter::once(program)
        .chain(args.iter().copied())
        .map(String::from)
        .collect()
}

/// A root-owned file (root's group is wheel on the BSDs and macOS).
pub fn write(path: &str, content: String, mode: u32) -> Action {
    Action::WriteFile {
        path: path.into(),
        content,
        mode,
        owner: "root".into(),
        group: "wheel".into(),
    }
}

pub fn target(req: &Request) -> Target {
    Target {
        redirects: req.redirect_pairs().unwrap_or_default(),
        ..Target::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rc_values_are_read_as_sh_assigns_them() {
        let rc = "hostname=\"web1\"\npf_enable=\"NO\"\n# pf_enable=YES\nsshd_enable=YES\n\
                  pf_enable='YES' # on\nnpf=yes;\n";
        assert_eq!(rc_value(rc, "pf_enable").as_deref(), Some("YES"));
        assert_eq!(rc_value(rc, "npf").as_deref(), Some("yes"));
        assert_eq!(rc_value(rc, "pf_rules"), None);
        assert_eq!(rc_value("pf_enable_x=YES\n", "pf_enable"), None);
        assert!(is_yes(Some("Yes")) && is_yes(Some("1")) && !is_yes(Some("NO")));
        assert!(!is_yes(None));
    }

    fn block() -> Vec<String> {
        vec!["# ours".into(), "rdr-anchor \"lowport\"".into()]
    }

    fn m(text: &str) -> String {
        let b = block();
        merge(text, &b, &|l| b.iter().any(|x| x == l), PF_FILTER)
    }

    #[test]
    fn the_block_goes_before_the_first_filter_rule_and_its_comment() {
        let conf = "ext_if = \"em0\"\nset skip on lo0\nscrub in all\n\
                    rdr on $ext_if proto tcp to port 25 -> 10.0.0.5\n\n# ssh only\n\
                    block in all\npass in on $ext_if proto tcp to port 22\n";
        let got = m(conf);
        assert_eq!(
            got,
            "ext_if = \"em0\"\nset skip on lo0\nscrub in all\n\
             rdr on $ext_if proto tcp to port 25 -> 10.0.0.5\n\n# ours\nrdr-anchor \
             \"lowport\"\n\n# ssh only\nblock in all\npass in on $ext_if proto tcp to port 22\n"
        );
        // Merging again changes nothing; a partial block is replaced by the whole one.
        assert_eq!(m(&got), got);
        let partial = got.replace("# ours\n", "");
        assert_eq!(m(&partial), got);
        // Lines of an earlier block for other ports are replaced, not kept beside the new one.
        let b = block();
        let old = got.replace("# ours", "# ours, then");
        let ours = |l: &str| l.starts_with("# ours") || b.iter().any(|x| x == l);
        assert_eq!(merge(&old, &b, &ours, PF_FILTER), got);
    }

    #[test]
    fn continuations_braces_and_comments_do_not_start_statements() {
        let conf = "table <t> { 10.0.0.1, \\\n pass }\nrdr on em0 proto tcp \\\n\
                    to port 80 -> 10.0.0.9 # block here\nanchor \"x\" {\n pass\n}\n";
        let lines: Vec<&str> = conf.lines().collect();
        let words: Vec<&str> = statements(&lines).iter().map(|(_, w)| *w).collect();
        assert_eq!(words, ["table", "rdr", "anchor"]);
        assert!(has_statement(conf, PF_FILTER));
        assert!(!has_statement("# pass\nset skip on lo0\n", PF_FILTER));
        // Without a filter rule the block goes at the end, after a blank line.
        assert_eq!(
            m("set skip on lo0"),
            "set skip on lo0\n\n# ours\nrdr-anchor \"lowport\"\n"
        );
        assert_eq!(m(""), "# ours\nrdr-anchor \"lowport\"\n");
    }

    /// What a command does to a ruleset: loads a file (into an anchor, "" for the main
    /// ruleset) or only parses it.
    #[derive(Debug, PartialEq)]
    enum Op {
        Validate(String, String),
        Load(String, String),
    }

    /// Reads pfctl's options as getopt does (`-nf FILE`, `-a ANCHOR -f FILE`) and npfctl's
    /// commands (`validate [FILE]`, `reload [FILE]`).
    fn op(argv: &[String]) -> Option<Op> {
        let name = Path::new(argv.first()?).file_name()?.to_str()?;
        match name {
            "pfctl" => {
                let (mut n, mut file, mut anchor) = (false, None, String::new());
                let mut args = argv[1..].iter();
                while let Some(a) = args.next() {
                    let mut flags = a.strip_prefix('-')?.chars();
                    while let Some(f) = flags.next() {
                        if "aDFfiKkopstTx".contains(f) {
                            let rest: String = flags.by_ref().collect();
                            let value = if rest.is_empty() {
                                args.next()?.clone()
                            } else {
                                rest
                            };
                            match f {
                                'f' => file = Some(value),
                                'a' => anchor = value,
                                _ => {}
                            }
                        } else if f == 'n' {
                            n = true;
                        }
                    }
                }
                let file = file?;
                Some(if n {
                    Op::Validate(anchor, file)
                } else {
                    Op::Load(anchor, file)
                })
            }
            "npfctl" => {
                let file = argv.get(2).cloned().unwrap_or("/etc/npf.conf".into());
                match argv.get(1)?.as_str() {
                    "validate" => Some(Op::Validate(String::new(), file)),
                    "reload" => Some(Op::Load(String::new(), file)),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Every load of rules, as the steps run it or as a rollback would, is preceded by a
    /// parse-only check of the same file into the same anchor, with no file written in
    /// between: what was checked is what loads. A rollback runs a step's undo when the file
    /// is back as it was right after that step, so its loads are held to the same rule.
    fn loads_are_checked(actions: &[Action]) -> Result<usize, String> {
        // (step, anchor, file) of every check that no later write has made stale.
        let mut valid: Vec<(String, String)> = Vec::new();
        let mut loads = 0;
        for (i, a) in actions.iter().enumerate() {
            match a {
                Action::RunCommands { run, undo, .. } => {
                    for argv in run {
                        match op(argv) {
                            Some(Op::Validate(an, f)) => valid.push((an, f)),
                            Some(Op::Load(an, f)) if !valid.contains(&(an.clone(), f.clone())) => {
                                return Err(format!(
                                    "step {}: `{}` loads {f} unchecked",
                                    i + 1,
                                    argv.join(" ")
                                ));
                            }
                            Some(Op::Load(..)) => loads += 1,
                            None => {}
                        }
                    }
                    for argv in undo {
                        if let Some(Op::Load(an, f)) = op(argv) {
                            if !valid.contains(&(an, f.clone())) {
                                return Err(format!(
                                    "step {}: its undo `{}` loads {f} unchecked",
                                    i + 1,
                                    argv.join(" ")
                                ));
                            }
                            loads += 1;
                        }
                    }
                }
                // A write makes every earlier check stale (a ruleset may load other files).
                Action::WriteFile { .. } => valid.clear(),
                _ => {}
            }
        }
        Ok(loads)
    }

    use crate::facts::targets;
    use crate::methods::{MethodId, Want, find};
    use crate::validate::PortArg;

    /// Facts for `os` with every variation the methods plan differently for: each file as
    /// the document has it, absent, or with other content; the pf module loaded or not.
    fn variations(os: &str) -> Vec<Facts> {
        let texts: &[(&str, &[Option<&str>])] = &[
            (
                PF_CONF,
                &[
                    None,
                    Some("set skip on lo0\nblock in all\npass out all\n"),
                    Some("rdr-anchor \"lowport\"\nload anchor \"lowport\" from \"/x\"\npass\n"),
                    Some("rdr-anchor \"com.apple/*\"\nanchor \"com.apple/*\"\n"),
                ],
            ),
            (
                "/etc/npf.conf",
                &[None, Some("group default {\n\tpass all\n}\n")],
            ),
            (
                "/etc/rc.conf",
                &[
                    None,
                    Some("pf_enable=\"YES\"\nnpf=YES\n"),
                    Some("pf_enable=NO\n"),
                ],
            ),
        ];
        let mut out = vec![targets::load(os).unwrap()];
        for (path, values) in texts {
            let mut next = Vec::new();
            for f in &out {
                next.push(f.clone());
                for v in *values {
                    let mut g = f.clone();
                    g.platform.files.insert(path.into(), v.map(String::from));
                    next.push(g);
                }
            }
            out = next;
        }
        for f in out.clone() {
            for loaded in [true, false] {
                let mut g = f.clone();
                g.platform.modules.insert("pf".into(), loaded);
                out.push(g);
            }
        }
        out
    }

    fn requests(id: MethodId) -> Vec<Request> {
        let ports: &[&[(u16, u16)]] = &[
            &[(80, 8080)],
            &[(80, 8080), (443, 8443)],
            &[(22, 2222), (80, 1024), (1023, 65535)],
        ];
        let mut out = Vec::new();
        for p in ports {
            for interface in [None, Some("em0"), Some("vtnet0.12"), Some("egress")] {
                out.push(Request::new(
                    id,
                    Want {
                        ports: p
                            .iter()
                            .map(|(public, backend)| PortArg::Redirect {
                                public: *public,
                                backend: *backend,
                            })
                            .collect(),
                        interface: interface.map(String::from),
                        ..Want::default()
                    },
                ));
            }
        }
        out
    }

    #[test]
    fn no_pf_or_npf_plan_loads_rules_it_did_not_check_first() {
        let methods = [
            (MethodId::PfFreebsd, "freebsd-14"),
            (MethodId::PfFreebsd, "freebsd-15"),
            (MethodId::PfOpenbsd, "openbsd-7"),
            (MethodId::PfMacos, "macos-14"),
            (MethodId::PfMacos, "macos-10.13"),
            (MethodId::Npf, "netbsd-10"),
        ];
        let mut plans = 0;
        for (id, os) in methods {
            let m = find(id);
            for facts in variations(os) {
                for req in requests(id) {
                    let c = m.check(&facts, &req);
                    if !c.input.is_empty() || !c.blockers.is_empty() {
                        continue;
                    }
                    let actions = m.actions(&facts, &req);
                    let loads = loads_are_checked(&actions)
                        .unwrap_or_else(|e| panic!("{id} on {os}: {e}\n{actions:#?}"));
                    assert!(loads > 0, "{id} on {os} loads nothing: {actions:#?}");
                    plans += 1;
                    // The property is not vacuous: a load moved before its check, or a check
                    // left out, is caught.
                    let load = actions.iter().rposition(|a| {
                        matches!(a, Action::RunCommands { run, .. }
                            if run.iter().any(|r| matches!(op(r), Some(Op::Load(..)))))
                    });
                    let check = actions.iter().rposition(|a| {
                        matches!(a, Action::RunCommands { run, .. }
                            if run.iter().any(|r| matches!(op(r), Some(Op::Validate(..)))))
                    });
                    let (Some(load), Some(check)) = (load, check) else {
                        panic!("{id} on {os}: no load or no check step")
                    };
                    let mut flipped = actions.clone();
                    flipped.swap(load, check);
                    assert!(
                        loads_are_checked(&flipped).is_err(),
                        "{id} on {os}: flipped"
                    );
                    let mut unchecked = actions.clone();
                    unchecked.remove(check);
                    assert!(
                        loads_are_checked(&unchecked).is_err(),
                        "{id} on {os}: dropped"
                    );
                }
            }
        }
        assert!(plans > 300, "only {plans} plans were made");
    }

    #[test]
    fn a_write_between_check_and_load_or_another_file_is_caught() {
        let p = "/sbin/pfctl";
        let checked = run("check".into(), vec![argv(p, &["-nf", PF_CONF])], Vec::new());
        let load = |args: &[&str]| run("load".into(), vec![argv(p, args)], Vec::new());
        let w = write(RULES, String::new(), 0o600);
        assert_eq!(
            loads_are_checked(&[checked.clone(), load(&["-f", PF_CONF])]),
            Ok(1)
        );
        assert!(loads_are_checked(&[checked.clone(), w, load(&["-f", PF_CONF])]).is_err());
        assert!(loads_are_checked(&[checked.clone(), load(&["-f", RULES])]).is_err());
        assert!(
            loads_are_checked(&[checked.clone(), load(&["-a", ANCHOR, "-f", PF_CONF])]).is_err()
        );
        let npf = "/sbin/npfctl";
        let ok = [
            run(
                "v".into(),
                vec![argv(npf, &["validate", "/etc/npf.conf"])],
                Vec::new(),
            ),
            run("r".into(), vec![argv(npf, &["reload"])], Vec::new()),
        ];
        assert_eq!(loads_are_checked(&ok), Ok(1));
        let undo_unchecked = run(
            "x".into(),
            Vec::new(),
            vec![argv(npf, &["reload", "/etc/npf.conf"])],
        );
        assert!(loads_are_checked(&[undo_unchecked]).is_err());
    }
}
