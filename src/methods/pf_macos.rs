//! `pf-macos`: legacy `rdr pass … ->` rules in `com.apple/lowport`, a sub-anchor of the stock
//! `rdr-anchor "com.apple/*"`, so /etc/pf.conf (which macOS updates replace) is not edited. pf
//! is enabled with a reference (`pfctl -E`) and a LaunchDaemon loads the rules again at boot.
//! On macOS 10.14 and later a service that binds the wildcard address needs none of this.

use super::pf::{self, PF_CONF, RULES, argv};
use super::{Check, Meta, Method, MethodId, Needs, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};
use crate::request::Want;
use crate::validate;

pub struct PfMacos;

const SUB_ANCHOR: &str = "com.apple/lowport";
const LABEL: &str = "lowport.pf-redirect";
const PLIST: &str = "/Library/LaunchDaemons/lowport.pf-redirect.plist";
/// The stock main ruleset's attachment point that evaluates `com.apple/lowport`.
const APPLE_RDR: &str = "rdr-anchor \"com.apple/*\"";

/// (major, minor) of a macOS version such as `14.7` or `10.13.6`.
fn version(facts: &Facts) -> Option<(u32, u32)> {
    let mut parts = facts
        .os
        .version_id
        .split('.')
        .map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
}

/// Where no redirect is needed for a wildcard bind, said first (as the Linux sysctl method says
/// an already open boundary first): on macOS 10.14 and later, xnu's in_pcbbind checks the
/// reserved-port privilege only for a bind to a specific IPv4 address.
fn wildcard_note(facts: &Facts, want: &Want) -> Option<String> {
    if facts.os.family != "macos" || version(facts)? < (10, 14) {
        return None;
    }
    let low = want.public_ports().into_iter().min()?;
    Some(format!(
        "usually not needed: on macOS {} (10.14 and later) the kernel asks for privilege for a \
         port below 1024 only when the bind names a specific IPv4 address (xnu in_pcbbind), so \
         a service that listens on the wildcard address (fabio `:{low}`) binds port {low} itself, \
         as any user, with no redirect. pf-macos is for a service that must listen on a \
         specific address.",
        facts.os.version_id
    ))
}

fn rules(ifname: &str, pairs: &[(u16, u16)]) -> String {
    let mut s = format!(
        "# Written by lowport: clients of the low ports on {ifname} go to the ports the service \
         listens on.\n# pfctl loads it into anchor {SUB_ANCHOR} (at boot: {PLIST}); `lowport \
         rollback` removes it.\n"
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

/// The LaunchDaemon that loads the rules and takes a pf reference at every boot (macOS does not
/// enable pf at boot). Every value passes the plist string rule.
fn plist(pfctl: &str) -> Result<String, String> {
    let s = |what: &str, v: &str| validate::plist_string(what, v);
    let mut args = String::new();
    for a in [pfctl, "-E", "-a", SUB_ANCHOR, "-f", RULES] {
        args.push_str(&format!(
            "\t\t<string>{}</string>\n",
            s("pfctl argument", a)?
        ));
    }
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD \
         PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<!-- Written by \
         lowport: loads {} at boot; `lowport rollback` removes it. -->\n<plist \
         version=\"1.0\">\n<dict>\n\t<key>Label</key>\n\t<string>{}</string>\n\
         \t<key>ProgramArguments</key>\n\t<array>\n{args}\t</array>\n\t<key>RunAtLoad</key>\n\
         \t<true/>\n</dict>\n</plist>\n",
        s("rule file", RULES)?,
        s("label", LABEL)?
    ))
}

const META: Meta = Meta {
    id: MethodId::PfMacos,
    markdown: include_str!("../../assets/methods/pf-macos.md"),
    risk: Risk::Medium,
    families: &["macos"],
};

impl Method for PfMacos {
    fn meta(&self) -> &'static Meta {
        &META
    }

    /// Said before the methods: a wildcard bind on 10.14 and later needs none of them.
    fn already_open(&self, facts: &Facts, want: &Want) -> Option<String> {
        wildcard_note(facts, want)
    }

    fn needs(&self) -> Needs {
        Needs {
            files: &[PF_CONF, RULES, PLIST],
            programs: &["pfctl"],
            ..Needs::default()
        }
    }

    fn check(&self, facts: &Facts, req: &Request) -> Check {
        let mut c = Check::default();
        pf::require_tools(facts, &["pfctl"], &mut c);
        let ifname = pf::interface(facts, req, None, &mut c);
        pf::pairs(
            req,
            "port {high} stays reachable directly from the network unless a firewall filters \
             it: the service listens on it on the wildcard address or the interface's own",
            &mut c,
        );
        match pf::text(facts, PF_CONF) {
            None => c.warnings.push(format!(
                "these facts do not hold {PF_CONF}: lowport's anchor works only while the loaded \
                 main ruleset has `{APPLE_RDR}`, as the stock file has"
            )),
            Some(t) if !t.is_some_and(|t| t.lines().any(|l| pf::code(l).trim() == APPLE_RDR)) => {
                c.blockers.push(format!(
                    "{PF_CONF} has no `{APPLE_RDR}` line: pf never evaluates an anchor below \
                     com.apple, so lowport's rules would never apply (the stock file has it)"
                ));
            }
            Some(_) => {}
        }
        if let Err(e) = plist(&pf::program(facts, "pfctl")) {
            c.input.push(e);
        }
        c.warnings.push(format!(
            "connections from this Mac itself are not redirected: they do not arrive on {}",
            ifname.as_deref().unwrap_or("the interface")
        ));
        c.warnings.push(
            "undo cannot release the pf reference the plan takes (`pfctl -E` prints its token \
             only as it runs): pf stays enabled until `pfctl -X TOKEN` or the next reboot"
                .into(),
        );
        // Said first: on 10.14 and later a wildcard bind needs none of this.
        if let Some(note) = wildcard_note(facts, req) {
            c.warnings.insert(0, note);
        }
        c
    }

    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action> {
        let mut c = Check::default();
        let pfctl = pf::program(facts, "pfctl");
        let (Some(ifname), Ok(pairs), Ok(daemon)) = (
            pf::interface(facts, req, None, &mut c),
            req.redirect_pairs(),
            plist(&pfctl),
        ) else {
            return Vec::new();
        };
        let file = pf::host_path(facts, RULES);
        vec![
            pf::write(RULES, rules(&ifname, &pairs), 0o600),
            pf::run(
                format!("check lowport's rules for anchor {SUB_ANCHOR} without loading them"),
                vec![argv(&pfctl, &["-n", "-a", SUB_ANCHOR, "-f", &file])],
                Vec::new(),
            ),
            pf::run(
                format!("load lowport's rules into anchor {SUB_ANCHOR}"),
                vec![argv(&pfctl, &["-a", SUB_ANCHOR, "-f", &file])],
                vec![argv(&pfctl, &["-a", SUB_ANCHOR, "-F", "nat"])],
            ),
            pf::run(
                "enable pf with a reference (`pfctl -E`; macOS does not enable pf at boot): undo \
                 cannot release it, pf stays enabled until `pfctl -X TOKEN` or a reboot"
                    .into(),
                vec![argv(&pfctl, &["-E"])],
                Vec::new(),
            ),
            // launchd refuses a daemon plist that is group- or world-writable.
            pf::write(PLIST, daemon, 0o644),
        ]
    }

    fn target(&self, _facts: &Facts, req: &Request) -> Target {
        pf::target(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The LaunchDaemon, as Python's plistlib (a real plist parser) reads it: the keys launchd
    /// needs, with their types. Skipped without python3, except in CI.
    #[test]
    fn the_launch_daemon_is_a_plist_with_the_keys_launchd_needs() {
        let python = std::path::Path::new("/usr/bin/python3");
        if !python.exists() {
            assert!(std::env::var_os("CI").is_none(), "python3 is not installed");
            eprintln!("SKIPPED (needs /usr/bin/python3)");
            return;
        }
        let script = "import plistlib, sys, json\nd = plistlib.loads(sys.stdin.buffer.read())\n\
                      assert isinstance(d['Label'], str)\n\
                      assert all(isinstance(a, str) for a in d['ProgramArguments'])\n\
                      assert d['ProgramArguments'][0].startswith('/')\n\
                      assert d['RunAtLoad'] is True\nprint(json.dumps(d))";
        for pfctl in ["/sbin/pfctl", "/sbin/pf&ctl <x>"] {
            let mut child = std::process::Command::new(python)
                .args(["-c", script])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(plist(pfctl).unwrap().as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(d["Label"], LABEL);
            assert_eq!(
                d["ProgramArguments"],
                serde_json::json!([pfctl, "-E", "-a", SUB_ANCHOR, "-f", RULES])
            );
        }
        assert!(plist("/sbin/pf\u{1}ctl").is_err());
    }

    #[test]
    fn the_wildcard_note_is_for_10_14_and_later() {
        let want = Want {
            ports: vec![crate::validate::PortArg::Redirect {
                public: 80,
                backend: 8080,
            }],
            ..Want::default()
        };
        let mut f = crate::facts::targets::load("macos-14").unwrap();
        assert!(
            wildcard_note(&f, &want)
                .unwrap()
                .starts_with("usually not needed")
        );
        for (v, some) in [
            ("10.14", true),
            ("10.13.6", false),
            ("11.0", true),
            ("x", false),
        ] {
            f.os.version_id = v.into();
            assert_eq!(wildcard_note(&f, &want).is_some(), some, "{v}");
        }
    }
}
