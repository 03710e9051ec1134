//! `smf`: an SMF service whose start method runs the binary as an unprivileged user holding
//! net_privaddr (`method_credential privileges=`). The per-service method of Solaris 11 and
//! illumos: a manifest in /var/svc/manifest/site, checked with `svccfg validate`, imported and
//! enabled.

use std::path::PathBuf;

use super::{Check, Meta, Method, MethodId, Request, Risk};
use crate::facts::Facts;
use crate::plan::{Action, Target};
use crate::validate::{smf_exec_word, smf_name, xml_attr};

pub struct Smf;

/// filesystem(7): "Site-local SMF service manifests". manifest-import reads this directory at
/// boot, and no package delivers into it.
const MANIFEST_DIR: &str = "/var/svc/manifest/site";

/// The repository holds values of at most 4095 bytes (illumos REP_PROTOCOL_VALUE_LEN, 4096,
/// less the terminator).
const MAX_VALUE: usize = 4095;

const META: Meta = Meta {
    id: MethodId::Smf,
    markdown: include_str!("../../assets/methods/smf.md"),
    risk: Risk::Low,
    families: &["illumos", "solaris"],
};

/// The service lowport defines: `svc:/site/NAME`, its default instance, its manifest.
struct Service {
    name: String,
}

impl Service {
    fn of(req: &Request) -> Result<Service, String> {
        let name = req.service_name().ok_or_else(|| {
            "the binary to run (--binary /path/to/binary) or the service's name (--service NAME)"
                .to_string()
        })?;
        Ok(Service {
            name: smf_name(&name)?,
        })
    }

    fn fmri(&self) -> String {
        format!("svc:/site/{}", self.name)
    }

    fn instance(&self) -> String {
        format!("svc:/site/{}:default", self.name)
    }

    fn manifest(&self) -> PathBuf {
        PathBuf::from(format!("{MANIFEST_DIR}/{}.xml", self.name))
    }
}

/// The user the start method runs as: `--user`, or one named after the service (which must
/// exist: lowport creates users on Linux only).
fn user_of(req: &Request) -> Option<String> {
    req.user.clone().or_else(|| req.service_name())
}

/// Oracle Solaris 11.1 and later take an extended privilege policy, `{net_privaddr}:80/tcp`,
/// that holds the privilege for the named ports only; illumos never took Oracle's syntax.
fn port_policy(facts: &Facts) -> bool {
    if facts.os.family != "solaris" {
        return false;
    }
    let mut v = facts
        .os
        .version_id
        .split('.')
        .map(|n| n.parse::<u32>().ok());
    matches!((v.next().flatten(), v.next().flatten()), (Some(major), Some(minor)) if (major, minor) >= (11, 1))
}

/// The start method's privilege set: basic and net_privaddr, on Oracle Solaris 11.1+ for the
/// requested TCP ports only.
fn privileges(facts: &Facts, ports: &[u16]) -> String {
    if !port_policy(facts) {
        return "basic,net_privaddr".into();
    }
    let mut p = vec!["basic".to_string()];
    p.extend(ports.iter().map(|n| format!("{{net_privaddr}}:{n}/tcp")));
    p.join(",")
}

/// The binary's absolute path on the target: the path the operator gave when it is absolute
/// (a stable symbolic link keeps working across upgrades, and no privilege sits on the file),
/// else the one the facts resolved; a representative document holds no binary, so there only
/// an absolute `--binary` will do.
fn binary_path(facts: &Facts, req: &Request) -> Result<String, String> {
    match (req.binary.as_deref(), &facts.binary) {
        (Some(p), _) if p.starts_with('/') => Ok(p.to_string()),
        (_, Some(b)) => b.path.to_str().map(String::from).ok_or_else(|| {
            format!(
                "the binary's resolved path {} is not valid UTF-8",
                b.path.display()
            )
        }),
        (Some(p), None) => Err(format!(
            "--binary {p} is a command name: an SMF start method needs the binary's absolute \
             path on the target (svc.startd runs it with PATH=/usr/sbin:/usr/bin, not yours); \
             give --binary /path/to/{p}"
        )),
        (None, None) => Err("the binary to run: --binary /path/to/binary".into()),
    }
}

/// The start method's `exec` string: every word through SMF's token and shell rules.
fn exec(facts: &Facts, req: &Request) -> Result<String, String> {
    let mut exec = smf_exec_word("the binary's path", &binary_path(facts, req)?)?;
    for a in &req.service.args {
        exec.push(' ');
        exec.push_str(&smf_exec_word("argument", a)?);
    }
    if exec.len() > MAX_VALUE {
        return Err(format!(
            "the start method's command line is {} bytes; the SMF repository holds at most \
             {MAX_VALUE}",
            exec.len()
        ));
    }
    Ok(exec)
}

/// `--group`, else the user's primary group when the facts name it (else SMF takes the
/// passwd entry's group).
fn group_of(facts: &Facts, req: &Request, user: &str) -> Option<String> {
    req.group
        .clone()
        .or_else(|| facts.accounts.user(user).and_then(|a| a.group.clone()))
}

/// The manifest, in the element order of the service_bundle DTD
/// (/usr/share/lib/xml/dtd/service_bundle.dtd.1). Every value goes through the XML rule; no
/// value reaches the comment, where `--` would end it.
fn manifest(facts: &Facts, req: &Request, svc: &Service) -> Result<String, String> {
    let user = user_of(req).ok_or("the user the service runs as: --user NAME")?;
    let name = xml_attr("service name", &svc.name)?;
    let exec = xml_attr("start method", &exec(facts, req)?)?;
    let credential = {
        let mut c = format!("user=\"{}\"", xml_attr("user", &user)?);
        if let Some(g) = group_of(facts, req, &user) {
            c.push_str(&format!(" group=\"{}\"", xml_attr("group", &g)?));
        }
        let ports = req.grant_ports().unwrap_or_default();
        c.push_str(&format!(
            " privileges=\"{}\"",
            xml_attr("privileges", &privileges(facts, &ports))?
        ));
        c
    };
    Ok(format!(
        r#"<?xml version="1.0"?>
<!DOCTYPE service_bundle SYSTEM "/usr/share/lib/xml/dtd/service_bundle.dtd.1">
<!-- Written by lowport; `lowport rollback` disables the service, deletes it from the
     repository and removes this file. -->
<service_bundle type="manifest" name="{name}">
  <service name="site/{name}" type="service" version="1">
    <create_default_instance enabled="false"/>
    <dependency name="network" grouping="require_all" restart_on="error" type="service">
      <service_fmri value="svc:/milestone/network:default"/>
    </dependency>
    <dependency name="filesystem-local" grouping="require_all" restart_on="none" type="service">
      <service_fmri value="svc:/system/filesystem/local:default"/>
    </dependency>
    <exec_method type="method" name="start" exec="{exec}" timeout_seconds="60">
      <method_context working_directory="/">
        <method_credential {credential}/>
      </method_context>
    </exec_method>
    <exec_method type="method" name="stop" exec=":kill" timeout_seconds="60"/>
    <property_group name="startd" type="framework">
      <propval name="duration" type="astring" value="child"/>
    </property_group>
    <stability value="Unstable"/>
    <template>
      <common_name>
        <loctext xml:lang="C">{name}: ports below 1024 through net_privaddr</loctext>
      </common_name>
    </template>
  </service>
</service_bundle>
"#
    ))
}

impl Method for Smf {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn accounts(&self, req: &Request) -> Vec<String> {
        user_of(req).into_iter().collect()
    }

    fn needs(&self) -> super::Needs {
        super::Needs {
            programs: &["svccfg", "svcadm", "svcs"],
            ..super::Needs::default()
        }
    }

    fn check(&self, facts: &Facts, req: &Request) -> Check {
        let mut c = Check::default();
        c.grant_ports(req, true);
        for tool in ["svccfg", "svcadm", "svcs"] {
            if facts.tool(tool).is_none() {
                c.blockers.push(format!(
                    "{tool} is not installed here: this system has no SMF to run the service"
                ));
            }
        }
        let svc = match Service::of(req) {
            Ok(s) => Some(s),
            Err(e) => {
                c.input.push(e);
                None
            }
        };
        // Without a binary or a name, the service's own message above asks for both.
        if let Err(e) = binary_path(facts, req)
            && svc.is_some()
        {
            c.input.push(e);
        }
        let user = user_of(req);
        let account = match &user {
            None => None,
            Some(u) => match facts.accounts.users.get(u) {
                None => {
                    c.input.push(format!(
                        "whether user '{u}' exists on the target is unknown (a representative \
                         document holds no accounts): plan with --facts FILE, saved there by \
                         `lowport detect --json --method smf` or printed by `lowport \
                         facts-script`"
                    ));
                    None
                }
                Some(None) => {
                    c.input.push(format!(
                        "user '{u}' does not exist on the target; create it there (useradd) or \
                         give another --user"
                    ));
                    None
                }
                Some(Some(a)) => Some(a),
            },
        };
        if account.is_some_and(|a| a.uid == 0) {
            c.input.push(
                "the service would run as root (uid 0), which keeps root's access to every \
                 root-owned file whatever its privileges; give a dedicated user with --user"
                    .into(),
            );
        }
        if let Some(g) = &req.group {
            match facts.accounts.groups.get(g) {
                None => c.input.push(format!(
                    "whether group '{g}' exists on the target is unknown: plan with --facts \
                     FILE from the target"
                )),
                Some(None) => c.input.push(format!(
                    "group '{g}' does not exist on the target; create it there or drop --group"
                )),
                Some(Some(_)) => {}
            }
        }
        if c.input.is_empty()
            && let Some(svc) = &svc
            && let Err(e) = manifest(facts, req, svc)
        {
            c.input.push(e);
        }
        if let (Some(b), Some(a)) = (&facts.binary, account) {
            if !a.can_execute(b.uid, b.gid, b.mode) {
                c.blockers.push(format!(
                    "user {} could not execute {} (mode {:04o}, owner {}:{}); the start method \
                     would fail",
                    a.name,
                    b.path.display(),
                    b.mode,
                    b.owner,
                    b.group
                ));
            }
            for why in &b.writable_by_non_root {
                c.warnings.push(format!(
                    "{why}: whoever can replace it has their program run as {} with \
                     net_privaddr at the service's next start",
                    a.name
                ));
            }
        }
        if user.as_deref() == Some("nobody") {
            c.warnings.push(
                "nobody is shared by many services: whatever else runs as nobody could tamper \
                 with this one; a dedicated user is safer"
                    .into(),
            );
        }
        let ports = req.grant_ports().unwrap_or_default();
        let list = |suffix: &str| {
            ports
                .iter()
                .map(|p| format!("{p}{suffix}"))
                .collect::<Vec<_>>()
                .join(" and ")
        };
        if port_policy(facts) {
            c.warnings.push(format!(
                "{}: the start method holds net_privaddr for {} only (extended privilege \
                 policy); UDP and every other privileged port stay refused to it",
                facts.os.pretty_name,
                list("/tcp")
            ));
        } else {
            let why = if facts.os.family == "solaris" {
                format!(
                    "Oracle Solaris {} predates the extended privilege policy of 11.1",
                    facts.os.version_id
                )
            } else {
                "illumos has no extended privilege policy (an Oracle Solaris 11.1+ feature)".into()
            };
            c.warnings.push(format!(
                "{why}: net_privaddr lets the service bind every privileged port, TCP and UDP \
                 (1 to 1023 and any extra privileged port, except NFS's 2049 and 4045, which need \
                 sys_nfs), not only {}",
                list("")
            ));
        }
        if let Some(svc) = &svc {
            c.warnings.push(format!(
                "if {} already exists (`svcs {}` lists it), importing the manifest replaces its \
                 configuration, and rollback deletes the service; choose a free name with \
                 --service",
                svc.fmri(),
                svc.fmri()
            ));
        }
        c.warnings.push(
            "in a non-global zone the service gets net_privaddr only if the zone's privilege \
             limit (zonecfg limitpriv) holds it; lowport does not know the target's zone"
                .into(),
        );
        c
    }

    fn actions(&self, facts: &Facts, req: &Request) -> Vec<Action> {
        // `check` reported what the manifest cannot hold; nothing is planned around it.
        let Ok(svc) = Service::of(req) else {
            return Vec::new();
        };
        let Ok(content) = manifest(facts, req, &svc) else {
            return Vec::new();
        };
        let tool = |name: &str| {
            facts
                .tool(name)
                .map_or(name.to_string(), |p| p.display().to_string())
        };
        let (svccfg, svcadm) = (tool("svccfg"), tool("svcadm"));
        let path = svc.manifest();
        let file = path.display().to_string();
        let argv = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        vec![
            Action::WriteFile {
                path: path.clone(),
                content,
                // As the OS's own manifests are installed.
                mode: 0o444,
                owner: "root".into(),
                group: "sys".into(),
            },
            Action::RunCommands {
                what: format!("check {file} against the service_bundle DTD"),
                run: vec![argv(&[&svccfg, "validate", &file])],
                undo: Vec::new(),
                check: None,
            },
            Action::RunCommands {
                what: format!("import {} into the SMF repository", svc.fmri()),
                run: vec![argv(&[&svccfg, "import", &file])],
                undo: vec![argv(&[&svccfg, "delete", &svc.fmri()])],
                check: Some(argv(&[&tool("svcs"), "-H", &svc.instance()])),
            },
            Action::RunCommands {
                what: format!(
                    "enable {} (it starts now and at every boot)",
                    svc.instance()
                ),
                // -s waits until it is online, and fails (lowport rolls back) when svcadm
                // sees it cannot come online.
                run: vec![argv(&[&svcadm, "enable", "-s", &svc.instance()])],
                // -s waits until it is disabled, so the service's deletion that follows finds
                // it stopped.
                undo: vec![argv(&[&svcadm, "disable", "-s", &svc.instance()])],
                check: None,
            },
        ]
    }

    fn target(&self, _facts: &Facts, req: &Request) -> Target {
        // The privilege belongs to the start method, not to the user: a bind as the user
        // proves nothing, so only the ports are named.
        Target {
            ports: req.grant_ports().unwrap_or_default(),
            ..Target::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Want;
    use crate::validate::PortArg;

    fn facts(family: &str, version: &str) -> Facts {
        let mut f = crate::facts::targets::load("illumos").unwrap();
        f.os.family = family.into();
        f.os.version_id = version.into();
        f
    }

    #[test]
    fn only_oracle_solaris_11_1_and_later_restrict_the_privilege_to_ports() {
        let ports = [80, 443];
        assert_eq!(
            privileges(&facts("solaris", "11.4"), &ports),
            "basic,{net_privaddr}:80/tcp,{net_privaddr}:443/tcp"
        );
        assert_eq!(
            privileges(&facts("solaris", "11.1"), &ports),
            "basic,{net_privaddr}:80/tcp,{net_privaddr}:443/tcp"
        );
        for (family, version) in [
            ("solaris", "11"),
            ("solaris", "11.0"),
            ("solaris", "10"),
            ("illumos", "r151054"),
            ("illumos", "11.4"),
        ] {
            assert_eq!(
                privileges(&facts(family, version), &ports),
                "basic,net_privaddr",
                "{family} {version}"
            );
        }
    }

    #[test]
    fn the_exec_string_is_quoted_for_the_shell_and_needs_an_absolute_path() {
        let f = facts("illumos", "r151054");
        let req = |binary: &str, args: &[&str]| {
            Request::new(
                MethodId::Smf,
                Want {
                    binary: Some(binary.into()),
                    ports: vec![PortArg::Grant(80)],
                    service: crate::request::ServiceOptions {
                        args: args.iter().map(|a| a.to_string()).collect(),
                        ..Default::default()
                    },
                    ..Want::default()
                },
            )
        };
        assert_eq!(
            exec(
                &f,
                &req("/opt/fabio's/fabio", &["-proxy.addr", ":80;proto=http"])
            )
            .unwrap(),
            "'/opt/fabio'\\''s/fabio' -proxy.addr ':80;proto=http'"
        );
        assert!(
            exec(&f, &req("fabio", &[]))
                .unwrap_err()
                .contains("absolute path")
        );
        let long = "a".repeat(MAX_VALUE);
        assert!(
            exec(&f, &req("/opt/fabio", &[&long]))
                .unwrap_err()
                .contains("at most 4095")
        );
    }
}
