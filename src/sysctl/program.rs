//! The BSDs and macOS: the base system's `sysctl(8)` from the trusted system directories,
//! `sysctl -n KEY` to read and `sysctl KEY=VALUE` to write (`-w KEY=VALUE` on NetBSD and macOS).

use std::process::{Command, Stdio};

use anyhow::{Context, anyhow, bail};

/// A key the program cannot take for an option or a `KEY=VALUE` pair.
fn is_key(key: &str) -> bool {
    !key.is_empty() && !key.starts_with('-') && !key.contains('=')
}

fn sysctl() -> anyhow::Result<Command> {
    crate::programs::command("sysctl").map_err(|e| anyhow!(e))
}

pub fn read(key: &str) -> Option<String> {
    if !is_key(key) {
        return None;
    }
    let out = sysctl()
        .ok()?
        .args(["-n", key])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

pub fn write(key: &str, value: &str) -> anyhow::Result<()> {
    if !is_key(key) {
        bail!("{key:?} is not a sysctl name");
    }
    let args = super::write_args(std::env::consts::OS, key, value);
    let out = sysctl()?
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running sysctl to set {key}"))?;
    if !out.status.success() {
        bail!(
            "`sysctl {}` failed ({}): {}",
            shell_words::join(&args),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    match read(key) {
        Some(now) if now == value => Ok(()),
        Some(now) => bail!("{key} reads {now} after writing {value}"),
        None => bail!("{key} cannot be read back after writing {value}"),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    const KEY: &str = "net.ipv4.ip_unprivileged_port_start";

    /// Runs `f` on a thread in a new network namespace, whose sysctls start at their defaults
    /// and vanish with it; None without the right to make one.
    fn in_new_netns<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .ok()
                    .map(|()| f())
            })
            .join()
            .expect("thread")
        })
    }

    /// The same code as on the BSDs, against procps' sysctl, which takes the same arguments.
    #[test]
    fn reads_and_writes_through_the_sysctl_program() {
        assert_eq!(read(KEY), super::super::linux::read(KEY));
        assert_eq!(read("no.such.key"), None);
        assert_eq!(read("-a"), None, "an option is not a key");
        if !nix::unistd::geteuid().is_root() {
            crate::testing::say_skipped("sysctl::program write");
            return;
        }
        let done = in_new_netns(|| {
            write(KEY, "80").unwrap();
            assert_eq!(super::super::linux::read(KEY).as_deref(), Some("80"));
            let e = write(KEY, "70000").unwrap_err().to_string();
            assert!(e.contains("failed"), "{e}");
            assert!(write("no.such.key", "1").is_err());
            assert!(write("-w", "1").is_err());
        });
        assert!(done.is_some(), "unshare(CLONE_NEWNET) as root");
    }
}
