//! The settings both interactive front ends ask for: one list, with the validator each uses and
//! the methods that read it, so the wizard's form and the plain prompts reach the same settings
//! as the command line's options and turn the answers into a request the same way.

use crate::methods::{MethodId, ServiceOptions, Want};
use crate::validate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldId {
    Binary,
    Ports,
    User,
    Group,
    Interface,
    Service,
    Args,
    DynamicUser,
    Writable,
    StateDirectory,
    AllowJit,
    Unmask,
}

impl FieldId {
    /// In the order they are asked.
    pub const ALL: [FieldId; 12] = [
        FieldId::Binary,
        FieldId::Ports,
        FieldId::User,
        FieldId::Group,
        FieldId::Interface,
        FieldId::Service,
        FieldId::Args,
        FieldId::DynamicUser,
        FieldId::Writable,
        FieldId::StateDirectory,
        FieldId::AllowJit,
        FieldId::Unmask,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FieldId::Binary => "Binary",
            FieldId::Ports => "Ports",
            FieldId::User => "User",
            FieldId::Group => "Group",
            FieldId::Interface => "Interface",
            FieldId::Service => "Service",
            FieldId::Args => "Args",
            FieldId::DynamicUser => "Dynamic user",
            FieldId::Writable => "Writable",
            FieldId::StateDirectory => "State dir",
            FieldId::AllowJit => "Allow JIT",
            FieldId::Unmask => "Unmask",
        }
    }

    /// What to type, with the command-line option it stands for.
    pub fn hint(self) -> &'static str {
        match self {
            FieldId::Binary => "absolute path or command name",
            FieldId::Ports => "e.g. 80 443",
            FieldId::User => "the service's user (optional)",
            FieldId::Group => "the service's group; setcap: only it may run the binary",
            FieldId::Interface => "pf/npf: the interface clients come in on (default: route's)",
            FieldId::Service => "unit name, .service optional (default: the binary's name)",
            FieldId::Args => "the binary's arguments, quoted as in a shell: -cfg \"my file\"",
            FieldId::DynamicUser => "DynamicUser=yes: a user made at each start (--dynamic-user)",
            FieldId::Writable => "paths the service may write (--writable), space-separated",
            FieldId::StateDirectory => "a private /var/lib/NAME for its data (--state-directory)",
            FieldId::AllowJit => "allow W+X memory for JIT runtimes: Java, Node (--allow-jit)",
            FieldId::Unmask => "replace a masked unit (-> /dev/null) with lowport's (--unmask)",
        }
    }

    /// A yes/no switch rather than text.
    pub fn is_switch(self) -> bool {
        matches!(
            self,
            FieldId::DynamicUser | FieldId::AllowJit | FieldId::Unmask
        )
    }

    /// Whether `method` reads this setting: only those are asked, and only those reach the
    /// request (the same options the command line gives that method).
    pub fn used_by(self, method: MethodId) -> bool {
        match self {
            FieldId::Binary | FieldId::Ports | FieldId::User => true,
            FieldId::Group => matches!(method, MethodId::Setcap | MethodId::Systemd),
            FieldId::Interface => matches!(
                method,
                MethodId::PfFreebsd | MethodId::PfOpenbsd | MethodId::PfMacos | MethodId::Npf
            ),
            FieldId::Service
            | FieldId::Args
            | FieldId::DynamicUser
            | FieldId::Writable
            | FieldId::StateDirectory
            | FieldId::AllowJit
            | FieldId::Unmask => method == MethodId::Systemd,
        }
    }

    /// Checks a typed value with the same rule as the command-line option; empty means "not
    /// given" for every optional setting.
    pub fn check(self, value: &str) -> Result<(), String> {
        let v = value.trim();
        let optional = |check: fn(&str) -> Result<String, String>| match v {
            "" => Ok(()),
            v => check(v).map(|_| ()),
        };
        match self {
            FieldId::Binary => optional(validate::binary),
            FieldId::Ports => validate::port_list(v).map(|_| ()),
            FieldId::User | FieldId::Group => optional(validate::account_name),
            FieldId::Interface => optional(validate::interface),
            FieldId::Service => optional(validate::service_name),
            FieldId::StateDirectory => optional(validate::state_directory),
            FieldId::Args => validate::exec_args(v).map(|_| ()),
            // Refused here already when the unit could not hold it (a space splits the list).
            FieldId::Writable => validate::path_list(v)?
                .iter()
                .try_for_each(|p| validate::unit_path("writable path", p).map(|_| ())),
            FieldId::DynamicUser | FieldId::AllowJit | FieldId::Unmask => {
                validate::yes_no(v).map(|_| ())
            }
        }
    }

    /// The value that stands for what `want` already says, as the operator would type it.
    pub fn initial(self, want: &Want) -> String {
        let s = &want.service;
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        match self {
            FieldId::Binary => want.binary.clone().unwrap_or_default(),
            FieldId::Ports => {
                let ports: Vec<String> = want.ports.iter().map(ToString::to_string).collect();
                ports.join(" ")
            }
            FieldId::User => want.user.clone().unwrap_or_default(),
            FieldId::Group => want.group.clone().unwrap_or_default(),
            FieldId::Interface => want.interface.clone().unwrap_or_default(),
            FieldId::Service => s.name.clone().unwrap_or_default(),
            FieldId::Args => shell_words::join(&s.args),
            FieldId::DynamicUser => yes_no(s.dynamic_user),
            FieldId::Writable => {
                shell_words::join(s.writable.iter().map(|p| p.to_string_lossy().into_owned()))
            }
            FieldId::StateDirectory => s.state_directory.clone().unwrap_or_default(),
            FieldId::AllowJit => yes_no(s.allow_jit),
            FieldId::Unmask => yes_no(s.unmask),
        }
    }
}

/// The request's settings from the answers (`value` gives each field's text): the fields
/// `method` does not read stay unset, and every value is parsed by its field's rule, so a
/// typed `fabio.service` is the unit `fabio`.
pub fn want<'a>(method: MethodId, value: impl Fn(FieldId) -> &'a str) -> Result<Want, String> {
    let get = |id: FieldId| {
        if id.used_by(method) {
            value(id).trim()
        } else {
            ""
        }
    };
    // Each answer passes its field's whole check first (the same the form shows in place).
    for id in FieldId::ALL.into_iter().filter(|id| id.used_by(method)) {
        id.check(get(id))
            .map_err(|e| format!("{}: {e}", id.label()))?;
    }
    let text = |id: FieldId| Some(get(id).to_string()).filter(|v| !v.is_empty());

    Ok(Want {
        binary: text(FieldId::Binary)
            .map(|b| validate::binary(&b))
            .transpose()?,
        ports: validate::port_list(get(FieldId::Ports))?,
        user: text(FieldId::User)
            .map(|u| validate::account_name(&u))
            .transpose()?,
        group: text(FieldId::Group)
            .map(|g| validate::account_name(&g))
            .transpose()?,
        interface: text(FieldId::Interface)
            .map(|i| validate::interface(&i))
            .transpose()?,
        service: ServiceOptions {
            name: text(FieldId::Service)
                .map(|n| validate::service_name(&n))
                .transpose()?,
            dynamic_user: validate::yes_no(get(FieldId::DynamicUser))?,
            args: validate::exec_args(get(FieldId::Args))?,
            writable: validate::path_list(get(FieldId::Writable))?,
            state_directory: text(FieldId::StateDirectory)
                .map(|d| validate::state_directory(&d))
                .transpose()?,
            allow_jit: validate::yes_no(get(FieldId::AllowJit))?,
            unmask: validate::yes_no(get(FieldId::Unmask))?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(pairs: &[(FieldId, &'static str)]) -> impl Fn(FieldId) -> &'static str + use<> {
        let pairs = pairs.to_vec();
        move |id| pairs.iter().find(|(f, _)| *f == id).map_or("", |(_, v)| v)
    }

    #[test]
    fn answers_become_the_request_the_options_would_make() {
        let typed = answers(&[
            (FieldId::Binary, "/usr/local/bin/fabio"),
            (FieldId::Ports, "80 443"),
            (FieldId::Service, "fabio.service"),
            (FieldId::Args, r#"-cfg "/etc/fabio/my file.properties" -x"#),
            (FieldId::DynamicUser, "yes"),
            (FieldId::Writable, "/var/log/fabio /srv/data"),
            (FieldId::StateDirectory, "fabio"),
            (FieldId::AllowJit, "y"),
            (FieldId::Unmask, "yes"),
        ]);
        let w = want(MethodId::Systemd, &typed).unwrap();
        assert_eq!(
            w.service.name.as_deref(),
            Some("fabio"),
            "never fabio.service.service"
        );
        assert_eq!(
            w.service.args,
            ["-cfg", "/etc/fabio/my file.properties", "-x"],
            "a quoted argument is one argument"
        );
        assert!(w.service.dynamic_user && w.service.allow_jit && w.service.unmask);
        let writable: Vec<_> = w
            .service
            .writable
            .iter()
            .map(|p| p.to_str().unwrap())
            .collect();
        assert_eq!(writable, ["/var/log/fabio", "/srv/data"]);
        assert_eq!(w.service.state_directory.as_deref(), Some("fabio"));
        // The same answers for setcap: only what setcap reads reaches its request.
        let w = want(MethodId::Setcap, &typed).unwrap();
        assert_eq!(w.service, ServiceOptions::default());
        assert_eq!(w.binary.as_deref(), Some("/usr/local/bin/fabio"));
        // What the form shows for a request reads back as that request.
        let full = want(MethodId::Systemd, &typed).unwrap();
        let shown: Vec<(FieldId, String)> = FieldId::ALL
            .iter()
            .map(|id| (*id, id.initial(&full)))
            .collect();
        let again = want(MethodId::Systemd, |id| {
            shown
                .iter()
                .find(|(f, _)| *f == id)
                .map_or("", |(_, v)| v.as_str())
        })
        .unwrap();
        assert_eq!(again, full);
    }

    #[test]
    fn bad_answers_are_refused_with_the_options_rules() {
        for (id, bad, says) in [
            (FieldId::Args, r#"-cfg "unclosed"#, "quote"),
            (FieldId::Writable, "relative/path", "absolute"),
            (FieldId::Writable, "'/srv/a b'", "separator"),
            (FieldId::Service, "a b", "not a service name"),
            (FieldId::DynamicUser, "maybe", "yes or no"),
            (FieldId::Ports, "99999", "99999"),
        ] {
            let e = id.check(bad).unwrap_err();
            assert!(e.contains(says), "{id:?} {bad:?}: {e}");
            let typed = answers(&[(id, bad), (FieldId::Ports, "80")]);
            assert!(want(MethodId::Systemd, typed).is_err(), "{id:?} {bad:?}");
        }
        assert_eq!(FieldId::Args.check(""), Ok(()), "no arguments is fine");
    }
}
