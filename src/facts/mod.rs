//! Facts: everything lowport learns about the host, gathered once, read-only, serialisable.
//!
//! A facts document (`lowport detect --json`) can be loaded again to plan for another host, so
//! nothing downstream probes the system itself: methods are pure functions of these facts.

pub mod acl;
pub mod binary;
pub mod caps;
pub mod elf;
pub mod files;
pub mod host;
pub mod listeners;
pub mod mounts;
pub mod platform;
pub mod targets;
pub mod unit;
pub mod users;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use binary::BinaryFacts;
pub use files::FileState;
pub use host::{Answers, FactsHost, Host, LiveHost};
pub use listeners::Listener;

use crate::error::Result;
use crate::root::Root;
use users::UserDb;

pub const FORMAT_VERSION: u32 = 1;

/// Tools lowport may use or report on; found in the system directories (`programs::DIRS`).
pub const TOOLS: &[&str] = &[
    "setcap",
    "getcap",
    "nft",
    "iptables",
    "ip6tables",
    "authbind",
    "systemctl",
    "systemd-analyze",
    "sysctl",
    "useradd",
];

pub const UNPRIVILEGED_PORT_START: &str = "net.ipv4.ip_unprivileged_port_start";
pub const LOCAL_PORT_RANGE: &str = "net.ipv4.ip_local_port_range";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Os {
    /// `linux`, `freebsd`, `macos`, … (Rust's target_os names).
    pub family: String,
    pub id: String,
    pub version_id: String,
    pub pretty_name: String,
    pub kernel: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Init {
    /// The command name of PID 1.
    pub pid1: String,
    pub systemd: bool,
    pub systemd_version: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub format_version: u32,
    /// Set in the representative documents of `--target-os NAME`: these facts describe a stock
    /// install of that OS, not a real host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_os: Option<String>,
    pub root: PathBuf,
    pub hostname: String,
    /// The inode of this process's network namespace (/proc/self/ns/net), where known.
    #[serde(default)]
    pub netns: Option<u64>,
    pub os: Os,
    pub init: Init,
    pub is_root: bool,
    pub euid: u32,
    /// Tool name → absolute path, or null when absent.
    pub tools: BTreeMap<String, Option<PathBuf>>,
    /// Live value of `net.ipv4.ip_unprivileged_port_start`; null when the kernel lacks it (<4.11).
    pub unprivileged_port_start: Option<u16>,
    /// Live `net.ipv4.ip_local_port_range` (low, high).
    pub local_port_range: Option<(u16, u16)>,
    /// The kernel was booted with `no_file_caps`: file capabilities are ignored everywhere.
    pub kernel_no_file_caps: bool,
    /// CAP_NET_BIND_SERVICE is in this process's bounding set; a container that dropped it makes
    /// exec of a `+ep` file fail with EPERM.
    pub bounding_set_has_net_bind_service: bool,
    /// Files that set `net.ipv4.ip_unprivileged_port_start` at boot, in the order read.
    pub unprivileged_port_start_files: Vec<SysctlSetting>,
    pub binary: Option<BinaryFacts>,
    pub service: Option<ServiceUnit>,
    #[serde(default)]
    pub accounts: Accounts,
    pub ports: Vec<u16>,
    pub listeners: Vec<Listener>,
    /// What the methods of a non-Linux OS read of it (configuration files, kernel settings,
    /// modules); empty on Linux.
    #[serde(default, skip_serializing_if = "platform::Platform::is_empty")]
    pub platform: platform::Platform,
    /// What planning read of this host for the request `detect` was given (`--method`): what
    /// lets `plan --facts` make the same plan elsewhere.
    #[serde(default, skip_serializing_if = "Answers::is_empty")]
    pub host: Answers,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlSetting {
    pub file: PathBuf,
    pub value: String,
}

/// Directories `systemd-sysctl` and `sysctl --system` read, by precedence for equal file names.
const SYSCTL_DIRS: &[&str] = &[
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];

/// Every boot-time setting of `key`, in the order applied: files sorted by name across the
/// sysctl.d directories (the first directory wins for equal names), `/etc/sysctl.conf` last.
fn sysctl_settings(root: &Root, key: &str) -> Vec<SysctlSetting> {
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in SYSCTL_DIRS {
        let Ok(entries) = std::fs::read_dir(root.host(Path::new(dir))) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".conf") {
                by_name
                    .entry(name)
                    .or_insert_with(|| Path::new(dir).join(e.file_name()));
            }
        }
    }
    let mut files: Vec<PathBuf> = by_name.into_values().collect();
    files.push(PathBuf::from("/etc/sysctl.conf"));
    files
        .into_iter()
        .filter_map(|f| {
            let text = files::read_to_string(&root.host(&f)).ok()?;
            let value = sysctl_value(&text, key)?;
            Some(SysctlSetting { file: f, value })
        })
        .collect()
}

/// The value the last line setting `key` in a sysctl.d file gives it. Public for the fuzz
/// target: the file is input (anyone owning a `--root` tree may have written it).
pub fn sysctl_value(text: &str, key: &str) -> Option<String> {
    text.lines().rev().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        // sysctl.d(5) takes `/` as well as `.` between the parts of a key.
        let k = k.trim().trim_start_matches('-').replace('/', ".");
        (k == key).then(|| v.trim().to_string())
    })
}

/// What to probe beyond the host itself.
#[derive(Debug, Default)]
pub struct Probe {
    pub binary: Option<String>,
    pub ports: Vec<u16>,
    /// Also look up who listens on the ports. Off for plan and apply, which do not need it:
    /// reading /proc/net/* walks the kernel's socket tables and can cost milliseconds.
    pub listeners: bool,
    /// The systemd service to look up.
    pub service: Option<String>,
    /// User and group names the request refers to, looked up in the target's account database.
    pub users: Vec<String>,
    pub groups: Vec<String>,
    /// What the methods of this OS family read of it beyond the rest.
    pub platform: platform::Wanted,
    /// Listings of program directories kept from earlier commands, and where this one's go.
    pub listings: binary::Listings,
}

/// The accounts a request refers to, as the target system's user database has them, so that
/// methods judge them from facts (possibly another host's) rather than from this machine.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Accounts {
    /// User name → the account, or null when there is no such user.
    pub users: BTreeMap<String, Option<users::Account>>,
    /// Group name → gid, or null when there is no such group.
    pub groups: BTreeMap<String, Option<u32>>,
}

impl Accounts {
    pub fn user(&self, name: &str) -> Option<&users::Account> {
        self.users.get(name).and_then(Option::as_ref)
    }

    pub fn group_gid(&self, name: &str) -> Option<u32> {
        // root is gid 0 on every Linux system.
        if name == "root" {
            return Some(0);
        }
        self.groups.get(name).copied().flatten()
    }
}

/// The marker lowport puts on the first line of the units it writes.
pub const UNIT_MARKER: &str = "# Written by lowport";

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceUnit {
    pub name: String,
    /// The file systemd would load for it (by directory precedence), if one exists.
    pub path: Option<PathBuf>,
    /// That file was written by lowport (it carries the marker): it may be regenerated.
    pub ours: bool,
    /// The unit is masked: this link to /dev/null stands where its file would be.
    #[serde(default)]
    pub masked: Option<PathBuf>,
    /// Its `[Install] WantedBy=` targets: where enabling links it.
    #[serde(default)]
    pub wanted_by: Vec<String>,
    /// Its `User=`, if any (None: it runs as root, or with DynamicUser=).
    #[serde(default)]
    pub user: Option<String>,
    /// Someone else's unit already grants CAP_NET_BIND_SERVICE through AmbientCapabilities= and
    /// its bounding set keeps it (Debian's caddy.service does).
    #[serde(default)]
    pub already_grants: bool,
    /// Why that file cannot be read as a unit (not a regular file, over the size lowport reads,
    /// not UTF-8): nothing it says is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

impl Facts {
    /// A facts document (`lowport detect --json`, possibly another host's) from its text;
    /// `origin` names it in messages.
    pub fn from_json(text: &str, origin: &str) -> std::result::Result<Facts, String> {
        let f: Facts = serde_json::from_str(text).map_err(|e| {
            format!("{origin} is not a lowport facts document (detect --json): {e}")
        })?;
        if f.format_version != FORMAT_VERSION {
            return Err(format!(
                "{origin} has facts format_version {}, this lowport reads {FORMAT_VERSION}",
                f.format_version
            ));
        }
        f.check()
            .map_err(|e| format!("{origin} is not a document lowport plans from: {e}"))?;
        Ok(f)
    }

    /// What a document (possibly forged, or made by the facts script from files someone else
    /// controls) may hold where it reaches a plan's commands, files and headers: each program
    /// passes the rule lowport finds its own by (`programs::DIRS`, under its own name), and the
    /// host's and OS's names are one line of text with no control character or bidirectional
    /// override.
    pub fn check(&self) -> std::result::Result<(), String> {
        for (name, path) in &self.tools {
            let Some(path) = path else { continue };
            let named = path.file_name().and_then(|n| n.to_str()) == Some(name.as_str());
            let placed = path
                .parent()
                .is_some_and(|d| crate::programs::DIRS.iter().any(|s| Path::new(s) == d));
            let windows = self.os.family == "windows"
                && crate::programs::is_windows_tool(name, &path.to_string_lossy());
            if !(named && placed || windows) {
                return Err(format!(
                    "its program {name:?} is {:?}; lowport runs a program only by its own name \
                     from {} (gather the facts again with `lowport facts-script` or `lowport \
                     detect --json`)",
                    path.display().to_string(),
                    crate::programs::DIRS.join(", ")
                ));
            }
        }
        let texts = [
            ("host name", &self.hostname),
            ("OS family", &self.os.family),
            ("OS id", &self.os.id),
            ("OS version", &self.os.version_id),
            ("OS name", &self.os.pretty_name),
            ("kernel", &self.os.kernel),
        ];
        for (what, s) in texts {
            let bad = |c: char| {
                c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            };
            if let Some(c) = s.chars().find(|c| bad(*c)) {
                return Err(format!("its {what} {s:?} holds {c:?}, which no {what} has"));
            }
        }
        Ok(())
    }

    pub fn tool(&self, name: &str) -> Option<&Path> {
        self.tools.get(name).and_then(|p| p.as_deref())
    }

    pub fn root(&self) -> Root {
        Root::new(self.root.clone())
    }

    /// Re-reads what an apply can change (the binary, the live sysctls) and keeps the rest, so
    /// verification after apply sees the new state without probing the whole host again.
    pub fn refresh(&mut self) -> Result<()> {
        let root = self.root();
        if let Some(b) = &mut self.binary {
            b.refresh(&root, &UserDb::new(&root))?;
        }
        self.unprivileged_port_start =
            crate::sysctl::read(UNPRIVILEGED_PORT_START).and_then(|v| v.parse().ok());
        Ok(())
    }
}

/// Reads a kernel-made file (under /proc) whole. Such files report a size of 0, which makes
/// `read_to_string` start with reads of a few bytes, and the kernel renders the file again for
/// each read: a buffer that holds it takes one.
pub fn read_proc(path: impl AsRef<Path>) -> std::io::Result<String> {
    let mut text = String::with_capacity(16 * 1024);
    std::io::Read::read_to_string(&mut std::fs::File::open(path)?, &mut text)?;
    Ok(text)
}

fn os_release(root: &Root) -> BTreeMap<String, String> {
    let text = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| files::read_to_string(&root.host(Path::new(p))).ok())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches(['"', '\'']).to_string()))
        .collect()
}

fn init() -> Init {
    let pid1 = std::fs::read_to_string("/proc/1/comm")
        .unwrap_or_default()
        .trim()
        .to_string();
    let systemd = pid1 == "systemd" || Path::new("/run/systemd/system").is_dir();
    // Only ask systemctl for its version when systemd really runs: a process spawn is the most
    // expensive probe here.
    let systemd_version = systemd
        .then(|| {
            crate::programs::command("systemctl")
                .ok()?
                .arg("--version")
                .output()
                .ok()
        })
        .flatten()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.split_whitespace().nth(1)?.parse().ok()
        });
    Init {
        pid1,
        systemd,
        systemd_version,
    }
}

fn bounding_has(cap: u32) -> bool {
    let status = read_proc("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << cap) != 0)
}

/// The inode that names this process's network namespace: two processes share the namespace
/// exactly when it is the same.
pub fn netns() -> Option<u64> {
    use crate::os::MetadataExt;
    std::fs::metadata("/proc/self/ns/net").ok().map(|m| m.ino())
}

pub fn gather(root: &Root, probe: &Probe) -> Result<Facts> {
    let binary = match &probe.binary {
        Some(b) => {
            let found = binary::find(root, b)?;
            let interpreter = binary::interpreter(root, &found, &probe.listings);
            Some(binary::describe(
                root,
                &found,
                &UserDb::new(root),
                interpreter,
            )?)
        }
        None => None,
    };
    Ok(Facts {
        binary,
        ..gather_rest(root, probe)?
    })
}

/// Everything but the binary.
fn gather_rest(root: &Root, probe: &Probe) -> Result<Facts> {
    let rel = os_release(root);
    let get = |k: &str| rel.get(k).cloned().unwrap_or_default();
    let db = UserDb::new(root);
    let euid = crate::os::euid();
    // These settings are Linux's; elsewhere there is nothing to read (and nothing to spawn).
    let linux = cfg!(target_os = "linux");
    let range = linux
        .then(|| crate::sysctl::read(LOCAL_PORT_RANGE))
        .flatten()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        });
    Ok(Facts {
        format_version: FORMAT_VERSION,
        target_os: None,
        root: root.dir().to_path_buf(),
        netns: netns(),
        hostname: crate::os::hostname(),
        os: Os {
            family: std::env::consts::OS.to_string(),
            id: get("ID"),
            version_id: get("VERSION_ID"),
            pretty_name: get("PRETTY_NAME"),
            kernel: crate::os::kernel_release(),
        },
        init: init(),
        is_root: euid == 0,
        euid,
        tools: crate::programs::find_all(&[TOOLS, &probe.platform.programs].concat())
            .into_iter()
            .map(|(t, found)| (t.to_string(), found.ok()))
            .collect(),
        unprivileged_port_start: linux
            .then(|| crate::sysctl::read(UNPRIVILEGED_PORT_START))
            .flatten()
            .and_then(|v| v.parse().ok()),
        local_port_range: range,
        kernel_no_file_caps: read_proc("/proc/cmdline")
            .unwrap_or_default()
            .split_whitespace()
            .any(|w| w == "no_file_caps"),
        bounding_set_has_net_bind_service: bounding_has(caps::CAP_NET_BIND_SERVICE),
        unprivileged_port_start_files: sysctl_settings(root, UNPRIVILEGED_PORT_START),
        binary: None,
        accounts: Accounts {
            users: probe
                .users
                .iter()
                .map(|u| (u.clone(), db.user(u)))
                .collect(),
            groups: probe
                .groups
                .iter()
                .map(|g| (g.clone(), db.group_gid(g)))
                .collect(),
        },
        service: probe.service.as_ref().map(|name| unit::read(root, name)),
        platform: platform::gather(root, std::env::consts::OS, &probe.platform),
        ports: probe.ports.clone(),
        listeners: if probe.listeners {
            listeners::on_ports(&probe.ports)
        } else {
            Vec::new()
        },
        host: Answers::default(),
    })
}
