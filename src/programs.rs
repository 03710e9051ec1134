//! Every program lowport runs as root comes from the system directories, whatever `PATH` says,
//! and only when root alone can replace it: the file, every directory above it and every link on
//! the way are root-owned and not writable by anyone else (mode bits or ACL). The one place
//! that spawns a program is [`command`].

use std::path::{Path, PathBuf};

use crate::facts::acl;
use crate::os::MetadataExt;

/// Where programs are looked up, in order; `PATH` is never consulted.
pub const DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

const MAX_LINKS: usize = 40;

/// The programs a plan's steps run (useradd, and the commands of the systemd and redirect
/// methods; a file capability is written without a setcap process). A journal naming any other
/// program is not lowport's.
pub const STEP_PROGRAMS: &[&str] = &[
    "systemctl",
    "nft",
    "iptables",
    "ip6tables",
    "useradd",
    // FreeBSD (freebsd-portacl): load mac_portacl, check it is loaded, unload it on undo.
    "kldload",
    "kldstat",
    "kldunload",
    // pf and npf redirects (FreeBSD, OpenBSD, NetBSD, macOS): their rules and rc.conf's
    // pf_enable (the pf module with the kld programs above).
    "pfctl",
    "npfctl",
    "sysrc",
    // end of pf and npf
    // Solaris and illumos (smf): import, enable and check SMF services.
    "svccfg",
    "svcadm",
    "svcs",
    // macOS (launchd): /usr/bin/plutil, /bin/launchctl.
    "plutil",
    "launchctl",
];

// ---- Windows (issue 7; branch macwin) --------------------------------------------------------
/// The programs a Windows plan's steps run, by the absolute path a stock Windows has them at
/// (the facts' tool path). They are not unix paths, so [`DIRS`] does not hold them; only these
/// exact paths (compared as Windows does, ignoring ASCII case) pass a journal's check. On any
/// other OS [`command`] still refuses to run them: lowport runs programs from [`DIRS`] only.
const WINDOWS_STEP_PROGRAMS: &[&str] = &[r"C:\Windows\System32\netsh.exe"];

fn is_windows_step_program(prog: &str) -> bool {
    WINDOWS_STEP_PROGRAMS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(prog))
}

/// Whether a Windows facts document's tool `name` may be at `path`: one of these programs, under
/// its own name (`netsh` is `…\netsh.exe`).
pub fn is_windows_tool(name: &str, path: &str) -> bool {
    is_windows_step_program(path)
        && path
            .rsplit('\\')
            .next()
            .is_some_and(|file| file.eq_ignore_ascii_case(&format!("{name}.exe")))
}
// ---- end of Windows --------------------------------------------------------------------------

/// Whether `prog` (a plan step's argv[0]) names one of [`STEP_PROGRAMS`], bare or as it is
/// found in [`DIRS`]: the check a journal's commands pass before a rollback runs them.
pub fn is_step_program(prog: &str) -> bool {
    if is_windows_step_program(prog) {
        return true;
    }
    let path = Path::new(prog);
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let place_ok = match path.parent() {
        Some(d) if path.is_absolute() => DIRS.iter().any(|s| Path::new(s) == d),
        _ => name == prog,
    };
    place_ok && STEP_PROGRAMS.contains(&name)
}

/// The absolute path of a system program, checked by [`trusted`].
pub fn find(name: &str) -> Result<PathBuf, String> {
    find_in(name, &mut Checked::new())
}

/// Finds several programs: the directories they share (/usr/sbin, /usr, /) are checked once.
pub fn find_all<'a>(names: &[&'a str]) -> Vec<(&'a str, Result<PathBuf, String>)> {
    let mut checked = Checked::new();
    names
        .iter()
        .map(|n| (*n, find_in(n, &mut checked)))
        .collect()
}

/// What one lookup learnt of each directory: its owner and why others could replace what is
/// below it (by the owner of the entry below: see [`acl::writers`]). Kept for one lookup only,
/// so a directory put right meanwhile is seen by the next command.
type Checked = std::collections::HashMap<(PathBuf, bool), Option<(u32, Vec<String>)>>;

fn find_in(name: &str, checked: &mut Checked) -> Result<PathBuf, String> {
    if name.is_empty() || name.contains('/') {
        return Err(format!("'{name}' is not a program name"));
    }
    let found = DIRS
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0));
    let path = found.ok_or_else(|| {
        format!(
            "{name} is not installed in {} (lowport runs programs from there only)",
            DIRS.join(":")
        )
    })?;
    trusted_in(&path, checked)?;
    Ok(path)
}

/// The program's absolute path for a plan to show, or its bare name when it is missing or not
/// trusted (running it is then refused by [`command`], with the reason).
pub fn shown(name: &str) -> String {
    find(name).map_or_else(|_| name.to_string(), |p| p.display().to_string())
}

/// A command for `prog` (a name, or an absolute path in one of [`DIRS`]) after checking it.
pub fn command(prog: &str) -> Result<std::process::Command, String> {
    let path = if prog.starts_with('/') {
        let p = PathBuf::from(prog);
        let in_dirs = p
            .parent()
            .is_some_and(|d| DIRS.iter().any(|s| Path::new(s) == d));
        if !in_dirs {
            return Err(format!(
                "refusing to run {prog}: lowport runs programs from {} only",
                DIRS.join(":")
            ));
        }
        trusted(&p)?;
        p
    } else {
        find(prog)?
    };
    Ok(std::process::Command::new(path))
}

/// Refuses a file that anyone but root could replace: checks it, the directories above it, and
/// every symlink followed on the way (and their directories).
pub fn trusted(path: &Path) -> Result<(), String> {
    trusted_in(path, &mut Checked::new())
}

fn trusted_in(path: &Path, checked: &mut Checked) -> Result<(), String> {
    let mut at = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let meta = std::fs::symlink_metadata(&at).map_err(|e| format!("{}: {e}", at.display()))?;
        let mut reasons = Vec::new();
        let mut below_root_owned = meta.uid() == 0;
        for dir in at.ancestors().skip(1) {
            let seen = checked
                .entry((dir.to_path_buf(), below_root_owned))
                .or_insert_with(|| {
                    let m = std::fs::metadata(dir).ok()?;
                    let why = acl::writers(dir, dir, &m, below_root_owned, &|_, id| {
                        Some(id.to_string())
                    });
                    Some((m.uid(), why))
                });
            let Some((uid, why)) = seen else {
                continue;
            };
            reasons.extend(why.iter().cloned());
            below_root_owned = *uid == 0;
        }
        if meta.file_type().is_symlink() {
            if !reasons.is_empty() {
                return Err(refusal(path, &reasons));
            }
            let target = std::fs::read_link(&at).map_err(|e| format!("{}: {e}", at.display()))?;
            at = at.parent().unwrap_or(Path::new("/")).join(target);
            continue;
        }
        reasons.splice(
            0..0,
            acl::writers(&at, &at, &meta, false, &|_, id| Some(id.to_string())),
        );
        return if reasons.is_empty() {
            Ok(())
        } else {
            Err(refusal(path, &reasons))
        };
    }
    Err(format!("{}: too many symbolic links", path.display()))
}

fn refusal(path: &Path, reasons: &[String]) -> String {
    format!(
        "refusing {}: someone other than root could replace it ({}); make it and its \
         directories root-owned and not writable by group or others",
        path.display(),
        reasons.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_system_programs_and_ignores_path() {
        let ls = find("ls").unwrap();
        assert!(DIRS.iter().any(|d| ls.starts_with(d)), "{}", ls.display());
        assert!(find("../ls").is_err());
        assert!(command("/tmp/ls").is_err());
        assert!(command("ls").is_ok());
    }

    #[test]
    fn finding_several_at_once_judges_each_as_alone() {
        let names = ["ls", "sh", "no-such-program-here", "../ls"];
        for (name, found) in find_all(&names) {
            assert_eq!(found, find(name), "{name}");
        }
    }

    #[test]
    fn step_programs_are_named_bare_or_from_the_system_directories() {
        assert!(is_step_program("useradd"));
        assert!(!is_step_program("setcap"));
        assert!(is_step_program("/usr/sbin/nft"));
        assert!(!is_step_program("/usr/local/bin/nft"));
        assert!(!is_step_program("/tmp/setcap"));
        assert!(!is_step_program("sh"));
        assert!(!is_step_program("/usr/bin/sh"));
        assert!(!is_step_program(""));
        assert!(is_step_program("/bin/launchctl") && is_step_program("/usr/bin/plutil"));
        assert!(is_step_program(r"C:\Windows\System32\netsh.exe"));
        assert!(is_step_program(r"c:\windows\system32\NETSH.EXE"));
        assert!(is_windows_tool("netsh", r"C:\Windows\System32\netsh.exe"));
        assert!(!is_windows_tool("netsh", r"C:\Windows\System32\cmd.exe"));
        assert!(!is_windows_tool("cmd", r"C:\Windows\System32\netsh.exe"));
        assert!(!is_windows_tool("netsh", r"C:\Temp\netsh.exe"));
        for not_ours in [
            "netsh",
            r"C:\Temp\netsh.exe",
            r"C:\Windows\System32\cmd.exe",
            r"C:\Windows\System32\netsh.exe.bak",
        ] {
            assert!(!is_step_program(not_ours), "{not_ours}");
        }
    }

    #[test]
    fn a_file_others_can_write_is_refused() {
        // A file is trusted only when root owns it: a test file is root's only when root made it.
        if !nix::unistd::geteuid().is_root() {
            crate::testing::say_skipped("programs::a_file_others_can_write_is_refused");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let f = t.path().join("prog");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(trusted(&f), Ok(()));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o757)).unwrap();
        assert!(trusted(&f).unwrap_err().contains("writable by every user"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        let ok = std::process::Command::new("setfacl")
            .args(["-m", "u:nobody:rwx"])
            .arg(&f)
            .status()
            .unwrap()
            .success();
        assert!(ok);
        assert!(trusted(&f).unwrap_err().contains("ACL entry user:"));
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(trusted(&link).is_err());
    }
}
