//! The operator's request, resolved once: the method as a typed id (parsed where the text comes
//! in, never looked up by string again) and the ports split once into grants and redirects.
//! Everything below the front ends takes these values.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::validate::{self, PortArg};

/// Every method lowport knows, in the order they are recommended. The catalog (`methods`) maps
/// each to its implementation; the serde and command-line spelling is the kebab-case id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MethodId {
    Systemd,
    Setcap,
    RedirectNft,
    RedirectIptables,
    Authbind,
    Sysctl,
    SocketActivation,
    FreebsdPortacl,
    PfFreebsd,
    FreebsdReservedhigh,
    PfOpenbsd,
    Npf,
    Smf,
    SolarisDefaultpriv,
    Launchd,
    PfMacos,
    Windows,
}

impl MethodId {
    pub const ALL: &[MethodId] = &[
        MethodId::Systemd,
        MethodId::Setcap,
        MethodId::RedirectNft,
        MethodId::RedirectIptables,
        MethodId::Authbind,
        MethodId::Sysctl,
        MethodId::SocketActivation,
        MethodId::FreebsdPortacl,
        MethodId::PfFreebsd,
        MethodId::FreebsdReservedhigh,
        MethodId::PfOpenbsd,
        MethodId::Npf,
        MethodId::Smf,
        MethodId::SolarisDefaultpriv,
        MethodId::Launchd,
        MethodId::PfMacos,
        MethodId::Windows,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MethodId::Systemd => "systemd",
            MethodId::Setcap => "setcap",
            MethodId::RedirectNft => "redirect-nft",
            MethodId::RedirectIptables => "redirect-iptables",
            MethodId::Authbind => "authbind",
            MethodId::Sysctl => "sysctl",
            MethodId::SocketActivation => "socket-activation",
            MethodId::FreebsdPortacl => "freebsd-portacl",
            MethodId::PfFreebsd => "pf-freebsd",
            MethodId::FreebsdReservedhigh => "freebsd-reservedhigh",
            MethodId::PfOpenbsd => "pf-openbsd",
            MethodId::Npf => "npf",
            MethodId::Smf => "smf",
            MethodId::SolarisDefaultpriv => "solaris-defaultpriv",
            MethodId::Launchd => "launchd",
            MethodId::PfMacos => "pf-macos",
            MethodId::Windows => "windows",
        }
    }

    /// Parses a method id as typed by the operator; the message lists the known ones.
    pub fn parse(s: &str) -> Result<MethodId, String> {
        MethodId::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let ids: Vec<_> = MethodId::ALL.iter().map(|m| m.as_str()).collect();
                format!("unknown method '{s}'; known methods: {}", ids.join(", "))
            })
    }
}

impl std::fmt::Display for MethodId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the operator wants, whatever the method: the part of a request that detection and the
/// assessment of every method need before one is chosen.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Want {
    pub binary: Option<String>,
    pub ports: Vec<PortArg>,
    pub user: Option<String>,
    pub group: Option<String>,
    /// The network interface packet-filter rules (pf, npf) attach to; by default the one the
    /// target's default route uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Options of methods that run the binary as a service (systemd).
    #[serde(default)]
    pub service: ServiceOptions,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceOptions {
    /// The unit name without `.service`; defaults to the binary's file name.
    pub name: Option<String>,
    /// `DynamicUser=yes` instead of a named user.
    pub dynamic_user: bool,
    /// Arguments for the binary in ExecStart.
    pub args: Vec<String>,
    /// Relaxations of the sandbox, each with its cost explained in the plan.
    pub writable: Vec<PathBuf>,
    pub state_directory: Option<String>,
    pub allow_jit: bool,
    /// Replace a masked unit (a link to /dev/null) with lowport's; without it a mask is kept.
    #[serde(default)]
    pub unmask: bool,
}

impl Want {
    /// The systemd unit name: `--service`, or the binary's file name (a Windows program's
    /// without `.exe`).
    pub fn service_name(&self) -> Option<String> {
        self.service.name.clone().or_else(|| {
            let name = validate::binary_file_name(self.binary.as_deref()?)?;
            validate::service_name(name).ok()
        })
    }

    /// Checks every value, wherever the request comes from (the command line, the wizard, a
    /// saved plan file), exactly as the command line does: a value a plan file carries is no
    /// more trusted than one typed. (The method id is typed already: serde refuses unknown ones.)
    pub fn validate(&self) -> Result<(), String> {
        if let Some(b) = &self.binary {
            validate::binary(b)?;
        }
        for p in &self.ports {
            // A plan file can spell any number; only what `--port` accepts passes.
            if validate::port_arg(&p.to_string())? != *p {
                return Err(format!("port {p} is not what --port {p} means"));
            }
        }
        for name in self.user.iter().chain(&self.group) {
            validate::account_name(name)?;
        }
        if let Some(i) = &self.interface {
            validate::interface(i)?;
        }
        let o = &self.service;
        if let Some(n) = &o.name
            && validate::service_name(n)? != *n
        {
            return Err(format!("service name '{n}' must be given without .service"));
        }
        for a in &o.args {
            validate::exec_arg(a)?;
        }
        for w in &o.writable {
            let s = w
                .to_str()
                .ok_or_else(|| format!("--writable {} is not valid UTF-8", w.display()))?;
            validate::absolute_path(s)?;
        }
        if let Some(d) = &o.state_directory {
            validate::state_directory(d)?;
        }
        Ok(())
    }

    /// Ports to grant (sorted, without duplicates), and the (client, service) redirect pairs:
    /// the one split of the port list.
    pub fn split_ports(&self) -> (Vec<u16>, Vec<(u16, u16)>) {
        let (mut grants, redirects) = validate::split_ports(&self.ports);
        grants.sort_unstable();
        grants.dedup();
        (grants, redirects)
    }

    /// Every port a client would use (the low side of a redirect): what detection looks at.
    pub fn public_ports(&self) -> Vec<u16> {
        let (mut ports, redirects) = self.split_ports();
        ports.extend(redirects.iter().map(|(low, _)| *low));
        ports
    }
}

/// A request for one method. It dereferences to its [`Want`], so methods read `req.binary`
/// as the operator gave it; the JSON shape is the flat one plans have always had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub method: MethodId,
    #[serde(flatten)]
    pub want: Want,
}

impl Request {
    pub fn new(method: MethodId, want: Want) -> Request {
        Request { method, want }
    }

    /// The ports to grant; `LOW:HIGH` pairs belong to redirect methods and are refused here.
    pub fn grant_ports(&self) -> Result<Vec<u16>, String> {
        let (grants, redirects) = self.split_ports();
        match redirects.first() {
            Some((public, backend)) => Err(format!(
                "--port {public}:{backend} is a redirect (LOW:HIGH); method {} grants ports: \
                 give --port {public}",
                self.method
            )),
            None => Ok(grants),
        }
    }

    /// The `--port LOW:HIGH` pairs of redirect methods; a bare `--port N` is refused with the
    /// syntax to use.
    pub fn redirect_pairs(&self) -> Result<Vec<(u16, u16)>, String> {
        let (grants, redirects) = validate::split_ports(&self.ports);
        if let Some(n) = grants.first() {
            return Err(format!(
                "--port {n}: method {} redirects, give --port {n}:HIGH with the port the \
                 service listens on (e.g. --port {n}:8080)",
                self.method
            ));
        }
        if redirects.is_empty() {
            return Err(
                "the ports to redirect: --port LOW:HIGH (repeatable), e.g. --port 80:8080".into(),
            );
        }
        Ok(redirects)
    }
}

impl Request {
    /// The `lowport apply` options that make this same request again (the profile, if one was
    /// used, is already resolved into binary, ports and arguments). Values are separate argv
    /// items, and `--arg=VALUE` keeps an argument that starts with `-` an argument.
    pub fn apply_args(&self) -> Vec<String> {
        let mut a = vec!["--method".to_string(), self.method.to_string()];
        let mut opt = |name: &str, value: String| {
            a.push(name.to_string());
            a.push(value);
        };
        if let Some(b) = &self.binary {
            opt("--binary", b.clone());
        }
        for p in &self.ports {
            opt("--port", p.to_string());
        }
        if let Some(u) = &self.user {
            opt("--user", u.clone());
        }
        if let Some(g) = &self.group {
            opt("--group", g.clone());
        }
        let s = &self.service;
        if let Some(n) = &s.name {
            opt("--service", n.clone());
        }
        for w in &s.writable {
            opt("--writable", w.display().to_string());
        }
        if let Some(d) = &s.state_directory {
            opt("--state-directory", d.clone());
        }
        a.extend(s.args.iter().map(|x| format!("--arg={x}")));
        if s.dynamic_user {
            a.push("--dynamic-user".into());
        }
        if s.allow_jit {
            a.push("--allow-jit".into());
        }
        if s.unmask {
            a.push("--unmask".into());
        }
        a
    }
}

impl std::ops::Deref for Request {
    type Target = Want;

    fn deref(&self) -> &Want {
        &self.want
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_ids_round_trip_and_unknown_ones_list_the_known() {
        for m in MethodId::ALL {
            assert_eq!(MethodId::parse(m.as_str()), Ok(*m));
            let json = serde_json::to_string(m).unwrap();
            assert_eq!(json, format!("\"{m}\""));
        }
        let e = MethodId::parse("setuid").unwrap_err();
        assert!(
            e.contains("unknown method 'setuid'") && e.contains("redirect-nft"),
            "{e}"
        );
    }

    #[test]
    fn a_request_serialises_flat() {
        let req = Request::new(
            MethodId::Setcap,
            Want {
                ports: vec![PortArg::Grant(80)],
                ..Want::default()
            },
        );
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["method"], "setcap");
        assert_eq!(v["ports"][0], 80);
        assert_eq!(serde_json::from_value::<Request>(v).unwrap(), req);
    }

    #[test]
    fn the_port_list_is_split_once_into_grants_and_redirects() {
        let want = Want {
            ports: vec![
                PortArg::Grant(443),
                PortArg::Redirect {
                    public: 80,
                    backend: 8080,
                },
                PortArg::Grant(443),
                PortArg::Grant(22),
            ],
            ..Want::default()
        };
        assert_eq!(want.split_ports(), (vec![22, 443], vec![(80, 8080)]));
        assert_eq!(want.public_ports(), vec![22, 443, 80]);
        let grant = Request::new(MethodId::Setcap, want.clone());
        let e = grant.grant_ports().unwrap_err();
        assert!(
            e.contains("--port 80:8080 is a redirect") && e.contains("give --port 80"),
            "{e}"
        );
        let redirect = Request::new(MethodId::RedirectNft, want);
        let e = redirect.redirect_pairs().unwrap_err();
        assert!(
            e.starts_with("--port 443: method redirect-nft redirects"),
            "{e}"
        );
        let none = Request::new(MethodId::RedirectNft, Want::default());
        assert!(
            none.redirect_pairs()
                .unwrap_err()
                .contains("--port LOW:HIGH")
        );
    }
}
