//! `solaris-defaultpriv`: net_privaddr in the user's default privileges, the `defaultpriv` key
//! of their /etc/user_attr entry (what the seed's `usermod -K defaultpriv=basic,net_privaddr`
//! sets). lowport writes the merged file itself: the diff shows the one entry that changes, and
//! rollback puts the previous file back byte for byte, which `usermod -K defaultpriv=` cannot
//! promise (it would leave an entry usermod created, and whether an empty value removes the
//! key is unverified).

use std::ops::Range;

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};

pub struct SolarisDefaultpriv;

pub const USER_ATTR: &str = "/etc/user_attr";
/// Its PRIV_DEFAULT is the default set of every user without a defaultpriv key, and
/// PRIV_LIMIT their limit (policy.conf(5)).
pub const POLICY_CONF: &str = "/etc/security/policy.conf";

const META: Meta = Meta {
    id: MethodId::SolarisDefaultpriv,
    markdown: include_str!("../../assets/methods/solaris-defaultpriv.md"),
    risk: Risk::Medium,
    families: &["illumos", "solaris"],
};

/// Whether a privilege specification (privileges(7), priv_str_to_set(3C): names read left to
/// right, `!` or `-` removing, `all` and `none` the whole set) leaves net_privaddr in the set.
/// None where that depends on what lowport cannot see: `zone`, the zone's own set.
fn holds(spec: &str) -> Option<bool> {
    let mut has = Some(false);
    for item in spec.split(',').map(|i| i.trim().to_ascii_lowercase()) {
        let (removed, name) = match item.strip_prefix(['!', '-']) {
            Some(n) => (true, n.to_string()),
            None => (false, item.clone()),
        };
        match (name.as_str(), removed) {
            ("all" | "net_privaddr", _) => has = Some(!removed),
            ("none", false) => has = Some(false),
            ("zone", false) => has = None,
            ("zone", true) => has = Some(false),
            _ => {}
        }
    }
    has
}

/// Whether a specification removes net_privaddr by name: someone decided the user must not
/// have it.
fn removes(spec: &str) -> bool {
    spec.split(',')
        .map(|i| i.trim().to_ascii_lowercase())
        .any(|i| i == "!net_privaddr" || i == "-net_privaddr")
}

/// `text` split at each `sep` not escaped by a backslash (user_attr(5)); the escapes stay.
fn split_unescaped(text: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == sep => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' {
            chars.next().unwrap_or(c)
        } else {
            c
        });
    }
    out
}

/// The entries of a user_attr file: the byte range of each entry's physical lines (a line
/// ending in an unescaped `\` continues on the next) and its text with the continuations
/// joined. Comments and blank lines are not entries.
fn entries(text: &str) -> Vec<(Range<usize>, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut current: Option<(usize, String)> = None;
    for line in text.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let trailing = body.len() - body.trim_end_matches('\\').len();
        let continued = trailing % 2 == 1;
        let part = if continued {
            &body[..body.len() - 1]
        } else {
            body
        };
        match &mut current {
            Some((_, joined)) => joined.push_str(part),
            None if body.starts_with('#') || body.trim().is_empty() => {}
            None => current = Some((at, part.to_string())),
        }
        at += line.len();
        if !continued && let Some((start, joined)) = current.take() {
            out.push((start..at, joined));
        }
    }
    if let Some((start, joined)) = current {
        out.push((start..at, joined));
    }
    out
}

/// The first `key=` line of policy.conf (read as defread(3C) reads it: the key starts the
/// line, the first match wins; key names are case-insensitive, policy.conf(5)).
fn policy_value<'a>(conf: &'a str, key: &str) -> Option<&'a str> {
    conf.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        k.eq_ignore_ascii_case(key).then_some(v.trim())
    })
}

/// What becomes of /etc/user_attr.
#[derive(Debug, PartialEq, Eq)]
enum Merge {
    /// The user's entry already holds net_privaddr in its defaultpriv: this value.
    InPlace(String),
    /// The whole new text; `started` when the entry had no defaultpriv, which now starts from
    /// the system's default set.
    Write { text: String, started: bool },
}

/// Merges net_privaddr into `user`'s entry of `text`, keeping every other byte of the file and
/// every other key of the entry. `base` starts a new defaultpriv (the system's PRIV_DEFAULT);
/// `limit` is policy.conf's PRIV_LIMIT, which applies where the entry sets no limitpriv. An
/// error says why the file is left to the operator.
fn merge(text: &str, user: &str, base: &str, limit: Option<&str>) -> Result<Merge, String> {
    let mine: Vec<(Range<usize>, String)> = entries(text)
        .into_iter()
        .filter(|(_, e)| unescape(split_unescaped(e, ':')[0]) == user)
        .collect();
    let limit_refuses = |spec: &str, source: &str| {
        (holds(spec) == Some(false)).then(|| {
            format!(
                "{source} sets the limit set to {spec}, which excludes net_privaddr: a default \
                 set never exceeds the limit set, so the grant would have no effect; change the \
                 limit first"
            )
        })
    };
    let (range, entry) = match mine.as_slice() {
        [] => {
            if let Some(e) = limit.and_then(|l| limit_refuses(l, POLICY_CONF)) {
                return Err(e);
            }
            // As `usermod -K` writes a new entry (the seed shows it).
            let entry = format!("{user}::::type=normal;defaultpriv={base},net_privaddr");
            let mut new = text.to_string();
            if !new.is_empty() && !new.ends_with('\n') {
                new.push('\n');
            }
            new.push_str(&entry);
            new.push('\n');
            return Ok(Merge::Write {
                text: new,
                started: true,
            });
        }
        [one] => one.clone(),
        many => {
            return Err(format!(
                "{USER_ATTR} holds {} entries for {user}; lowport edits one only: merge them \
                 into one first",
                many.len()
            ));
        }
    };
    let fields = split_unescaped(&entry, ':');
    if fields.len() != 5 {
        return Err(format!(
            "{user}'s entry in {USER_ATTR} has {} fields, not the 5 of user_attr(5) \
             (user:qualifier:res1:res2:attr): {entry:?}",
            fields.len()
        ));
    }
    let mut pairs: Vec<String> = split_unescaped(fields[4], ';')
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    let find = |pairs: &[String], key: &str| {
        pairs.iter().position(|p| {
            let k = split_unescaped(p, '=')[0];
            unescape(k) == key
        })
    };
    let value = |p: &str| p.split_once('=').map_or("", |(_, v)| v).to_string();
    match find(&pairs, "limitpriv") {
        Some(i) => {
            if let Some(e) = limit_refuses(&value(&pairs[i]), &format!("{user}'s limitpriv")) {
                return Err(e);
            }
        }
        None => {
            if let Some(e) = limit.and_then(|l| limit_refuses(l, POLICY_CONF)) {
                return Err(e);
            }
        }
    }
    let started = match find(&pairs, "defaultpriv") {
        Some(i) => {
            let v = value(&pairs[i]);
            if removes(&v) {
                return Err(format!(
                    "{user}'s entry in {USER_ATTR} removes net_privaddr by name \
                     (defaultpriv={v}): someone decided {user} must not hold it, and lowport \
                     leaves that decision to you"
                ));
            }
            if holds(&v) == Some(true) {
                return Ok(Merge::InPlace(v));
            }
            pairs[i].push_str(",net_privaddr");
            false
        }
        None => {
            pairs.push(format!("defaultpriv={base},net_privaddr"));
            true
        }
    };
    let new_entry = format!("{}:{}", fields[..4].join(":"), pairs.join(";"));
    let newline = if text[range.clone()].ends_with('\n') {
        "\n"
    } else {
        ""
    };
    let mut new = text.to_string();
    new.replace_range(range, &format!("{new_entry}{newline}"));
    Ok(Merge::Write { text: new, started })
}

/// What planning knows of the target's policy.conf: the base of a new defaultpriv (its
/// PRIV_DEFAULT escaped for user_attr, else basic) and its PRIV_LIMIT.
struct Policy {
    base: String,
    limit: Option<String>,
    /// Some(whether it sets PRIV_DEFAULT); None when the facts do not hold policy.conf.
    sets_default: Option<bool>,
}

fn policy(facts: &Facts) -> Result<Policy, String> {
    let Some(conf) = facts.platform.file(POLICY_CONF) else {
        return Ok(Policy {
            base: "basic".into(),
            limit: None,
            sets_default: None,
        });
    };
    let conf = conf.unwrap_or_default();
    let default = policy_value(conf, "PRIV_DEFAULT");
    Ok(Policy {
        base: crate::validate::user_attr_value("PRIV_DEFAULT", default.unwrap_or("basic"))?,
        limit: policy_value(conf, "PRIV_LIMIT").map(String::from),
        sets_default: Some(default.is_some()),
    })
}

/// The merge for this request, or why there is none: `Err((input, message))`, input when the
/// operator must give something.
fn plan(facts: &Facts, req: &Request) -> Result<(Merge, Policy), (bool, String)> {
    let user = req.user.as_deref().ok_or((
        true,
        "the user whose default privileges change: --user NAME".to_string(),
    ))?;
    let Some(text) = facts.platform.file(USER_ATTR) else {
        return Err((
            true,
            format!(
                "the target's {USER_ATTR} is unknown, and lowport merges into its text: plan \
                 with --facts FILE, saved there by `lowport detect --json --method \
                 solaris-defaultpriv` or printed by `lowport facts-script`"
            ),
        ));
    };
    let p = policy(facts).map_err(|e| (false, e))?;
    let m = merge(text.unwrap_or_default(), user, &p.base, p.limit.as_deref())
        .map_err(|e| (false, e))?;
    Ok((m, p))
}

impl Method for SolarisDefaultpriv {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn needs(&self) -> super::Needs {
        super::Needs {
            files: &[USER_ATTR, POLICY_CONF],
            ..super::Needs::default()
        }
    }

    fn check(&self, facts: &Facts, req: &Request) -> Check {
        let mut c = Check::default();
        c.grant_ports(req, true);
        if let Some(u) = &req.user {
            match facts.accounts.users.get(u) {
                None => c.input.push(format!(
                    "whether user '{u}' exists on the target is unknown (a representative \
                     document holds no accounts): plan with --facts FILE, saved there by \
                     `lowport detect --json --method solaris-defaultpriv` or printed by \
                     `lowport facts-script`"
                )),
                Some(None) => c.input.push(format!(
                    "user '{u}' does not exist on the target; create it there (useradd) or give \
                     another --user"
                )),
                Some(Some(a)) if a.uid == 0 => c.input.push(format!(
                    "{u} is uid 0, whose processes hold every privilege already; give the \
                     unprivileged user the service runs as"
                )),
                Some(Some(_)) => {}
            }
        }
        let (merge, policy) = match plan(facts, req) {
            Ok(m) => m,
            Err((true, e)) => {
                c.input.push(e);
                return c;
            }
            Err((false, e)) => {
                c.blockers.push(e);
                return c;
            }
        };
        let user = req.user.as_deref().unwrap_or_default();
        if let Merge::InPlace(v) = merge {
            c.warnings.push(format!(
                "already in place: {user}'s entry in {USER_ATTR} sets defaultpriv={v}, which \
                 holds net_privaddr; lowport changes nothing"
            ));
            return c;
        }
        let ports: Vec<String> = req
            .grant_ports()
            .unwrap_or_default()
            .iter()
            .map(u16::to_string)
            .collect();
        c.warnings.push(format!(
            "every process of {user} started through a login or PAM gets net_privaddr, not only \
             the service: it may bind every privileged port, TCP and UDP (1 to 1023 and any \
             extra privileged port, except NFS's 2049 and 4045, which need sys_nfs), not only \
             {}; the smf method grants it to one service's start method instead",
            ports.join(" and ")
        ));
        c.warnings.push(format!(
            "{user}'s processes that already run keep their privileges: the change applies from \
             {user}'s next login"
        ));
        c.warnings.push(
            "whether SMF applies defaultpriv to a service whose method_credential sets no \
             privileges= is unverified; for a service run by SMF, the smf method sets the \
             privileges itself"
                .into(),
        );
        if let Merge::Write { started: true, .. } = merge {
            c.warnings.push(match policy.sets_default {
                Some(true) => format!(
                    "{user}'s new defaultpriv starts from {POLICY_CONF}'s PRIV_DEFAULT ({}), so \
                     {user} keeps the system's default set; a later change of PRIV_DEFAULT no \
                     longer applies to {user}",
                    policy.base
                ),
                Some(false) => format!(
                    "{user}'s new defaultpriv starts from basic, as {POLICY_CONF} sets no \
                     PRIV_DEFAULT; a PRIV_DEFAULT set later does not apply to {user}"
                ),
                None => format!(
                    "the target's {POLICY_CONF} is unknown: {user}'s new defaultpriv starts from \
                     basic; if its PRIV_DEFAULT removes basic privileges, {user} gets them back"
                ),
            });
        }
        c
    }

    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action> {
        match plan(facts, req) {
            Ok((Merge::Write { text, .. }, _)) => vec![Action::WriteFile {
                path: USER_ATTR.into(),
                content: text,
                // As the OS installs it (illumos SUNWcs: root:sys, 0644).
                mode: 0o644,
                owner: "root".into(),
                group: "sys".into(),
            }],
            _ => Vec::new(),
        }
    }

    fn target(&self, _facts: &Facts, req: &Request) -> Target {
        // The privilege comes with a login (PAM), which a bind by lowport as the user does not
        // go through: only the ports are named.
        Target {
            ports: req.grant_ports().unwrap_or_default(),
            ..Target::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str, user: &str) -> String {
        match merge(text, user, "basic", None).unwrap() {
            Merge::Write { text, .. } => text,
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn a_new_entry_is_appended_as_usermod_writes_it() {
        let stock = "#\n# user_attr\n#\nroot::::auths=solaris.*;profiles=All\n";
        assert_eq!(
            write(stock, "fabio"),
            format!("{stock}fabio::::type=normal;defaultpriv=basic,net_privaddr\n")
        );
        assert_eq!(
            write("root::::type=role", "fabio"),
            "root::::type=role\nfabio::::type=normal;defaultpriv=basic,net_privaddr\n"
        );
        assert_eq!(
            write("", "fabio"),
            "fabio::::type=normal;defaultpriv=basic,net_privaddr\n"
        );
        assert_eq!(
            merge("", "fabio", "basic,!file_link_any", None).unwrap(),
            Merge::Write {
                text: "fabio::::type=normal;defaultpriv=basic,!file_link_any,net_privaddr\n".into(),
                started: true
            }
        );
    }

    #[test]
    fn an_existing_entry_keeps_its_other_keys_and_every_other_line() {
        let before = "root::::profiles=All\nfabio::::type=normal;project=web\n# end\n";
        assert_eq!(
            write(before, "fabio"),
            "root::::profiles=All\nfabio::::type=normal;project=web;\
             defaultpriv=basic,net_privaddr\n# end\n"
        );
        assert_eq!(
            write("fabio::::defaultpriv=basic,!proc_info;roles=web", "fabio"),
            "fabio::::defaultpriv=basic,!proc_info,net_privaddr;roles=web"
        );
        // A continued entry is rewritten as one line; its neighbours stay as they are.
        assert_eq!(
            write(
                "a::::x=1\nfabio::::type=normal;\\\nproject=web\nb::::y=2\n",
                "fabio"
            ),
            "a::::x=1\nfabio::::type=normal;project=web;defaultpriv=basic,net_privaddr\n\
             b::::y=2\n"
        );
        // An escaped colon is not a field separator, and a user's name is matched whole.
        assert_eq!(
            write("fabio2::::x=a\\:b\n", "fabio"),
            "fabio2::::x=a\\:b\nfabio::::type=normal;defaultpriv=basic,net_privaddr\n"
        );
        // A comment that names the user is not an entry.
        assert_eq!(
            write("#fabio::::defaultpriv=all\n", "fabio"),
            "#fabio::::defaultpriv=all\nfabio::::type=normal;defaultpriv=basic,net_privaddr\n"
        );
    }

    #[test]
    fn what_already_holds_it_is_in_place() {
        for v in [
            "basic,net_privaddr",
            "all",
            "basic,NET_PRIVADDR",
            "none,net_privaddr",
        ] {
            assert_eq!(
                merge(
                    &format!("fabio::::defaultpriv={v}\n"),
                    "fabio",
                    "basic",
                    None
                )
                .unwrap(),
                Merge::InPlace(v.into()),
                "{v}"
            );
        }
        assert!(matches!(
            merge("fabio::::defaultpriv=all,-net_privaddr\n", "fabio", "basic", None),
            Err(e) if e.contains("removes net_privaddr by name")
        ));
    }

    #[test]
    fn a_limit_without_it_or_a_broken_file_is_left_to_the_operator() {
        for (text, limit, why) in [
            ("fabio::::limitpriv=basic\n", None, "excludes net_privaddr"),
            (
                "fabio::::type=normal\n",
                Some("all,!net_privaddr"),
                "policy.conf",
            ),
            ("", Some("basic"), "policy.conf"),
            ("fabio::::a=1\nfabio::::b=2\n", None, "2 entries"),
            ("fabio:::type=normal\n", None, "4 fields"),
        ] {
            let e = merge(text, "fabio", "basic", limit).unwrap_err();
            assert!(e.contains(why), "{text:?}: {e}");
        }
        // The entry's own limit wins over policy.conf's.
        assert!(merge("fabio::::limitpriv=all\n", "fabio", "basic", Some("basic")).is_ok());
        assert_eq!(holds("zone"), None);
        assert_eq!(holds("basic"), Some(false));
    }

    #[test]
    fn policy_conf_is_read_as_defread_reads_it() {
        let conf = "#PRIV_DEFAULT=basic\npriv_default=basic,!file_link_any\nPRIV_DEFAULT=all\n";
        assert_eq!(
            policy_value(conf, "PRIV_DEFAULT"),
            Some("basic,!file_link_any")
        );
        assert_eq!(policy_value(conf, "PRIV_LIMIT"), None);
    }
}
