//! What the methods of a non-Linux OS read of it (`methods::Needs`): its configuration files,
//! kernel settings and modules, and the interface of the default route. Gathered live on that
//! OS; on any other machine a facts document carries it (`lowport detect --json` there, or the
//! POSIX sh collector `lowport facts-script` prints). A key that is missing is unknown; a null
//! value means absent (no such file, no such sysctl).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::root::Root;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Platform {
    /// The interface of the default route, which pf and npf rules name.
    pub interface: Option<String>,
    /// Configuration file → its text, or null when it does not exist.
    pub files: BTreeMap<PathBuf, Option<String>>,
    /// Kernel setting → its value, or null when the kernel has no such setting.
    pub sysctls: BTreeMap<String, Option<String>>,
    /// Kernel module → whether it is loaded now.
    pub modules: BTreeMap<String, bool>,
}

/// What to read: the union of the `Needs` of a family's methods.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Wanted {
    pub files: Vec<&'static str>,
    pub sysctls: Vec<&'static str>,
    pub modules: Vec<&'static str>,
    /// Programs the methods run (found in the system directories, into `Facts::tools`).
    pub programs: Vec<&'static str>,
}

impl Platform {
    pub fn is_empty(&self) -> bool {
        self == &Platform::default()
    }

    /// A file's text: `None` unknown, `Some(None)` absent.
    pub fn file(&self, path: &str) -> Option<Option<&str>> {
        self.files.get(Path::new(path)).map(Option::as_deref)
    }

    /// A kernel setting: `None` unknown, `Some(None)` the kernel lacks it.
    pub fn sysctl(&self, key: &str) -> Option<Option<&str>> {
        self.sysctls.get(key).map(Option::as_deref)
    }

    /// Whether a module is loaded: `None` unknown.
    pub fn module(&self, name: &str) -> Option<bool> {
        self.modules.get(name).copied()
    }
}

/// Reads what `wanted` names on the running host (files under `root`).
pub fn gather(root: &Root, family: &str, wanted: &Wanted) -> Platform {
    Platform {
        interface: if wanted == &Wanted::default() {
            None
        } else {
            default_interface(family)
        },
        files: wanted
            .files
            .iter()
            .map(|f| {
                let text = super::files::read(&root.host(Path::new(f)))
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned());
                (PathBuf::from(f), text)
            })
            .collect(),
        sysctls: wanted
            .sysctls
            .iter()
            .map(|k| (k.to_string(), crate::sysctl::read(k)))
            .collect(),
        modules: wanted
            .modules
            .iter()
            .filter_map(|m| Some((m.to_string(), module_loaded(family, m)?)))
            .collect(),
    }
}

/// `kldstat -q -m NAME` exits 0 exactly when the module is loaded (FreeBSD); elsewhere unknown.
fn module_loaded(family: &str, name: &str) -> Option<bool> {
    match family {
        "freebsd" => crate::programs::command("kldstat")
            .ok()?
            .args(["-q", "-m", name])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()
            .map(|s| s.success()),
        _ => None,
    }
}

/// The interface `route -n get default` names (the BSDs, macOS and illumos print
/// `interface: NAME`); unknown where there is no default route or no such command.
fn default_interface(family: &str) -> Option<String> {
    if matches!(family, "linux" | "windows") {
        return None;
    }
    let out = crate::programs::command("route")
        .ok()?
        .args(["-n", "get", "default"])
        .output()
        .ok()?;
    parse_route_interface(&String::from_utf8_lossy(&out.stdout))
}

/// The `interface:` line of `route -n get` output, when it names a valid interface.
pub fn parse_route_interface(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("interface:"))
        .and_then(|i| crate::validate::interface(i.trim()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_output_names_the_interface_only_when_valid() {
        let bsd = "   route to: default\ndestination: default\n    gateway: 10.0.2.2\n  \
                   interface: vtnet0\n      flags: <UP,GATEWAY,DONE,STATIC>\n";
        assert_eq!(parse_route_interface(bsd).as_deref(), Some("vtnet0"));
        assert_eq!(parse_route_interface("interface: em0; rm -rf /\n"), None);
        assert_eq!(
            parse_route_interface("route: writing to routing socket"),
            None
        );
    }
}
