//! Windows: no owners, modes, links lowport would make, or account database of the unix kind.
//! What only reads answers what Windows can say; what changes the host fails with
//! [`unsupported`], which names the export that does the job there.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::process::Command;
use std::time::UNIX_EPOCH;

/// The uid and gid every file and the current process read as: no account has it, so nothing
/// is ever taken for root's.
pub const NO_ID: u32 = u32::MAX;

/// `FILE_FLAG_OPEN_REPARSE_POINT`: open a symbolic link (a reparse point) itself.
const OPEN_REPARSE_POINT: u32 = 0x0020_0000;

/// What a host-changing primitive answers here.
pub fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "lowport does not change a Windows host ({what}); use `lowport export --format \
             powershell` and run the script it writes"
        ),
    )
}

/// The unix metadata lowport reads, as far as Windows has it.
pub trait MetadataExt {
    fn dev(&self) -> u64;
    fn ino(&self) -> u64;
    fn mode(&self) -> u32;
    fn uid(&self) -> u32;
    fn gid(&self) -> u32;
    fn size(&self) -> u64;
    fn mtime(&self) -> i64;
    fn mtime_nsec(&self) -> i64;
    fn ctime(&self) -> i64;
    fn ctime_nsec(&self) -> i64;
    fn nlink(&self) -> u64;
}

impl MetadataExt for std::fs::Metadata {
    /// Not known (std has no stable volume serial): 0.
    fn dev(&self) -> u64 {
        0
    }

    /// Not known (std has no stable file index): 0.
    fn ino(&self) -> u64 {
        0
    }

    /// Read and write for everyone unless the file is read-only: Windows' ACLs are not judged,
    /// so a writer check counts everyone as a possible writer.
    fn mode(&self) -> u32 {
        let all = if self.is_dir() { 0o777 } else { 0o666 };
        if self.permissions().readonly() {
            all & !0o222
        } else {
            all
        }
    }

    fn uid(&self) -> u32 {
        NO_ID
    }

    fn gid(&self) -> u32 {
        NO_ID
    }

    fn size(&self) -> u64 {
        self.len()
    }

    fn mtime(&self) -> i64 {
        since_epoch(self).map_or(0, |d| d.as_secs() as i64)
    }

    fn mtime_nsec(&self) -> i64 {
        since_epoch(self).map_or(0, |d| i64::from(d.subsec_nanos()))
    }

    /// Not known (Windows has no inode change time): -1, a time no listing is kept for.
    fn ctime(&self) -> i64 {
        -1
    }

    fn ctime_nsec(&self) -> i64 {
        0
    }

    /// Not known (std has no stable link count here): 1, one name.
    fn nlink(&self) -> u64 {
        1
    }
}

fn since_epoch(m: &std::fs::Metadata) -> Option<std::time::Duration> {
    m.modified().ok()?.duration_since(UNIX_EPOCH).ok()
}

/// The computer's name, as Windows sets it in the environment.
pub fn hostname() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_default()
}

/// Not read on Windows (`ver` would need a process); the facts say the OS family.
pub fn kernel_release() -> String {
    String::new()
}

pub fn euid() -> u32 {
    NO_ID
}

/// Never: lowport does not check for an elevated token, and changes nothing here anyway.
pub fn is_root() -> bool {
    false
}

/// Windows keeps only the read-only attribute: set when no write bit is.
pub fn set_file_mode(file: &File, mode: u32) -> io::Result<()> {
    let mut p = file.metadata()?.permissions();
    p.set_readonly(mode & 0o222 == 0);
    file.set_permissions(p)
}

/// The directory inherits its parent's ACL: there are no mode bits to give it.
pub fn create_dir(path: &Path, _mode: u32) -> io::Result<()> {
    std::fs::create_dir(path)
}

pub fn create_dir_all(path: &Path, _mode: u32) -> io::Result<()> {
    std::fs::create_dir_all(path)
}

/// The file inherits its directory's ACL: there are no mode bits to give it.
pub fn creation_mode(opts: &mut OpenOptions, _mode: u32) -> &mut OpenOptions {
    opts
}

/// Opens a symbolic link itself rather than its target.
pub fn no_follow(opts: &mut OpenOptions) -> &mut OpenOptions {
    opts.custom_flags(OPEN_REPARSE_POINT)
}

/// Opens never block and there is no controlling terminal here: nothing to add.
pub fn no_block(opts: &mut OpenOptions) -> &mut OpenOptions {
    opts
}

/// Opens never block and there is no controlling terminal: as [`no_follow`].
pub fn no_follow_no_block(opts: &mut OpenOptions) -> &mut OpenOptions {
    no_follow(opts)
}

pub fn fchown(_file: &File, _uid: Option<u32>, _gid: Option<u32>) -> io::Result<()> {
    Err(unsupported("changing a file's owner"))
}

pub fn lchown(_path: &Path, _uid: Option<u32>, _gid: Option<u32>) -> io::Result<()> {
    Err(unsupported("changing a file's owner"))
}

pub fn symlink(_target: &Path, _link: &Path) -> io::Result<()> {
    Err(unsupported("making a symbolic link"))
}

pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    file.seek_read(buf, offset)
}

pub fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

pub fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    file.seek_write(buf, offset)
}

pub fn run_as(_cmd: &mut Command, _uid: u32, _gid: u32) -> io::Result<&mut Command> {
    Err(unsupported("running a program as another user"))
}

// No unix account database: every lookup is unknown.

pub fn user_ids(_name: &str) -> Option<(u32, u32)> {
    None
}

pub fn user_name(_uid: u32) -> Option<String> {
    None
}

pub fn group_gid(_name: &str) -> Option<u32> {
    None
}

pub fn group_name(_gid: u32) -> Option<String> {
    None
}

pub fn group_list(_name: &str, _gid: u32) -> Option<Vec<u32>> {
    None
}

/// Ctrl-C and Ctrl-Break (which the C runtime reports as SIGINT), and SIGTERM for what raises
/// it; Windows has no SIGHUP.
pub const STOP_SIGNALS: &[i32] = &[signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM];

/// Nothing to forward: the wizard reads the console in raw mode, where Ctrl-C is a key press,
/// and no other process can send a signal here.
pub fn on_stop_signal(_f: impl Fn() -> bool + Send + 'static) -> io::Result<()> {
    Ok(())
}

/// Windows processes end with exit codes, not signals.
pub fn signal_name(_sig: i32) -> Option<String> {
    None
}
