//! Kernel settings by name (`net.ipv4.ip_unprivileged_port_start`,
//! `net.inet.ip.portrange.reservedhigh`), through each system's own interface: `/proc/sys` on
//! Linux, the base system's `sysctl` program on the BSDs and macOS, none on illumos (its network
//! tunables are `ipadm` properties, set by a method's commands) or Windows. Facts and drift
//! read; only the executor writes.
//!
//! The BSDs and macOS go through the program rather than `sysctlbyname(3)`: OpenBSD has no
//! `sysctlbyname`, the program knows each setting's type (an `int`, a `u_int`, a string, …)
//! where the call hands back bytes to guess from, and its text in and out is what the operator
//! reads in the plan and types by hand. It runs only from the trusted system directories
//! (`programs`).

use std::path::{Path, PathBuf};

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as imp;

// Compiled on Linux for its tests too: procps' sysctl takes the same arguments.
#[cfg(any(
    all(test, target_os = "linux"),
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly",
    target_os = "macos"
))]
mod program;
#[cfg(any(
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly",
    target_os = "macos"
))]
use program as imp;

#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly",
    target_os = "macos"
)))]
mod none;
#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly",
    target_os = "macos"
)))]
use none as imp;

/// The live value, None when the kernel has no such setting or it cannot be read.
pub fn read(key: &str) -> Option<String> {
    imp::read(key)
}

/// Sets the live value, then reads it back: the kernel may clamp a value or silently keep
/// another one, which is an error here.
pub fn write(key: &str, value: &str) -> anyhow::Result<()> {
    imp::write(key, value)
}

/// The families whose settings the base system's `sysctl` program reads and sets.
const BY_PROGRAM: &[&str] = &["freebsd", "openbsd", "netbsd", "dragonfly", "macos"];

/// Where Linux keeps a setting: `/proc/sys/<key with dots as slashes>`.
pub fn proc_sys_path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key.replace('.', "/"))
}

/// The `sysctl` arguments that set `key` on `family`: `-w` first on NetBSD and macOS, whose
/// sysctl sets only with it (older macOS releases), not on FreeBSD (whose manual has no `-w`) or
/// OpenBSD (which ignores it); the sh export writes the same.
fn write_args(family: &str, key: &str, value: &str) -> Vec<String> {
    let mut args = Vec::new();
    if matches!(family, "netbsd" | "macos") {
        args.push("-w".to_string());
    }
    args.push(format!("{key}={value}"));
    args
}

/// An argument as a shell reads it: bare when it holds only characters no shell treats
/// specially after the command name (`=`, `:` and `,` included, which `shell_words` quotes).
fn shell_word(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_.-=:,/+@%".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        shell_words::quote(arg).into_owned()
    }
}

/// How [`write`] sets `key` on a host of `family` (Rust's target_os names), for a plan, which
/// may be made here for another system: "by writing /proc/sys/…", "by running `sysctl …`".
pub fn how(family: &str, key: &str, value: &str) -> String {
    if family == "linux" {
        format!("by writing {}", proc_sys_path(key).display())
    } else if BY_PROGRAM.contains(&family) {
        let mut argv = vec!["sysctl".to_string()];
        argv.extend(write_args(family, key, value));
        let shown: Vec<String> = argv.iter().map(|a| shell_word(a)).collect();
        format!("by running `{}`", shown.join(" "))
    } else {
        format!("though {family} has no sysctl interface (the step fails there)")
    }
}

#[cfg(test)]
mod tests {
    use super::how;

    #[test]
    fn the_plan_names_the_target_family_s_way() {
        let key = "net.inet.ip.portrange.reservedhigh";
        assert_eq!(
            how("linux", "net.ipv4.ip_unprivileged_port_start", "80"),
            "by writing /proc/sys/net/ipv4/ip_unprivileged_port_start"
        );
        assert_eq!(
            how("freebsd", key, "0"),
            format!("by running `sysctl {key}=0`")
        );
        assert_eq!(
            how("netbsd", key, "0"),
            format!("by running `sysctl -w {key}=0`")
        );
        assert_eq!(
            how("macos", key, "0"),
            format!("by running `sysctl -w {key}=0`")
        );
        assert_eq!(
            how("freebsd", "kern.x", "a b"),
            "by running `sysctl 'kern.x=a b'`"
        );
        assert!(how("illumos", key, "0").contains("no sysctl interface"));
    }
}
