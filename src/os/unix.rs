//! Every unix: std's unix extensions, and nix for the effective user and the account database.

use std::ffi::CString;
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::unistd::{Gid, Group, Uid, User};

pub use std::os::unix::fs::MetadataExt;

/// The host's name (uname's nodename: on Linux the UTS namespace's, as /proc/sys/kernel/hostname).
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The kernel's release (`uname -r`).
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn set_file_mode(file: &File, mode: u32) -> io::Result<()> {
    file.set_permissions(Permissions::from_mode(mode))
}

/// Makes one directory with these permission bits (less the umask).
pub fn create_dir(path: &Path, mode: u32) -> io::Result<()> {
    DirBuilder::new().mode(mode).create(path)
}

/// Makes a directory and its missing parents with these permission bits (less the umask).
pub fn create_dir_all(path: &Path, mode: u32) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(mode).create(path)
}

/// The permission bits a file created by this open gets (less the umask).
pub fn creation_mode(opts: &mut OpenOptions, mode: u32) -> &mut OpenOptions {
    opts.mode(mode)
}

/// Opens the entry itself: a symbolic link there fails the open instead of being followed.
pub fn no_follow(opts: &mut OpenOptions) -> &mut OpenOptions {
    opts.custom_flags(libc::O_NOFOLLOW)
}

/// As [`no_follow`], and a FIFO or a device neither blocks the open nor becomes the controlling
/// terminal: the caller then refuses what is not a regular file.
/// Opens without blocking (a FIFO opens at once) or taking a controlling terminal; links are
/// followed.
pub fn no_block(opts: &mut OpenOptions) -> &mut OpenOptions {
    opts.custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
}

pub fn no_follow_no_block(opts: &mut OpenOptions) -> &mut OpenOptions {
    opts.custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK)
}

pub fn fchown(file: &File, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    std::os::unix::fs::fchown(file, uid, gid)
}

/// chown of the entry itself (a link is changed, not its target).
pub fn lchown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    std::os::unix::fs::lchown(path, uid, gid)
}

pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    file.read_at(buf, offset)
}

pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    file.read_exact_at(buf, offset)
}

pub fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    file.write_at(buf, offset)
}

/// Makes `cmd` run as this user and group (set in the child before exec).
pub fn run_as(cmd: &mut Command, uid: u32, gid: u32) -> io::Result<&mut Command> {
    Ok(cmd.uid(uid).gid(gid))
}

/// A user's uid and primary gid from the host's account database (NSS: files, LDAP, …).
pub fn user_ids(name: &str) -> Option<(u32, u32)> {
    let u = User::from_name(name).ok().flatten()?;
    Some((u.uid.as_raw(), u.gid.as_raw()))
}

pub fn user_name(uid: u32) -> Option<String> {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

pub fn group_gid(name: &str) -> Option<u32> {
    Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

pub fn group_name(gid: u32) -> Option<String> {
    Group::from_gid(Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
}

/// Every group `name` is in, `gid` (its primary group) included; None when it cannot be read.
#[cfg(not(any(target_os = "macos", target_os = "illumos")))]
pub fn group_list(name: &str, gid: u32) -> Option<Vec<u32>> {
    let c = CString::new(name).ok()?;
    let groups = nix::unistd::getgrouplist(&c, Gid::from_raw(gid)).ok()?;
    Some(groups.into_iter().map(Gid::as_raw).collect())
}

/// Every group `name` is in, `gid` (its primary group) included; None when it cannot be read.
/// nix has no `getgrouplist` here (macOS passes gids as `int`), so libc's is called directly.
#[cfg(any(target_os = "macos", target_os = "illumos"))]
pub fn group_list(name: &str, gid: u32) -> Option<Vec<u32>> {
    let c = CString::new(name).ok()?;
    let mut room: libc::c_int = 32;
    loop {
        let mut buf = vec![0; usize::try_from(room).ok()?];
        let mut n = room;
        // SAFETY: `c` is a NUL-terminated string and `buf` has room for `n` entries of the type
        // the call writes; it writes at most `n` of them and stores the count in `n`.
        let r = unsafe { libc::getgrouplist(c.as_ptr(), gid as _, buf.as_mut_ptr(), &mut n) };
        if r >= 0 {
            buf.truncate(usize::try_from(n).ok()?);
            return Some(buf.into_iter().map(|g| g as u32).collect());
        }
        // Too small: macOS does not say how much is needed, so the room doubles (to a bound).
        if room >= 1 << 16 {
            return None;
        }
        room *= 2;
    }
}

/// The signals that ask lowport to stop: a run in progress then rolls back.
pub const STOP_SIGNALS: &[i32] = &[
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
];

/// Calls `f` on a thread of its own each time one of [`STOP_SIGNALS`] arrives, until it returns
/// false.
pub fn on_stop_signal(f: impl Fn() -> bool + Send + 'static) -> io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new(STOP_SIGNALS)?;
    std::thread::spawn(move || {
        for _ in signals.forever() {
            if !f() {
                break;
            }
        }
    });
    Ok(())
}

/// A signal's name (`SIGSYS`), None for a number this system does not have.
pub fn signal_name(sig: i32) -> Option<String> {
    nix::sys::signal::Signal::try_from(sig)
        .ok()
        .map(|s| s.to_string())
}
