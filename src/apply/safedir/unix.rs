//! The unixes: the trusted chain is checked by owner and mode, and every entry is reached with
//! `openat` and `O_NOFOLLOW` from the directory's descriptor.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::dir::{Dir, Type};
use nix::fcntl::AtFlags;
pub use nix::fcntl::OFlag;
use nix::fcntl::{openat, renameat};
use nix::sys::stat::{Mode, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// What is wrong with a directory on the way to the state directory, and how to fix it.
fn unsafe_reason(
    p: &Path,
    m: &std::fs::Metadata,
    last: bool,
    next_owner: Option<u32>,
) -> Option<String> {
    let me = nix::unistd::geteuid().as_raw();
    let trusted = |uid: u32| uid == 0 || uid == me;
    let shown = p.display();
    if !m.file_type().is_symlink() && !m.is_dir() {
        return Some(format!("{shown} is not a directory"));
    }
    if !trusted(m.uid()) {
        return Some(format!(
            "{shown} is owned by uid {}, not root; fix it with `chown root {shown}`",
            m.uid()
        ));
    }
    if m.file_type().is_symlink() || m.mode() & 0o022 == 0 {
        return None;
    }
    // A sticky directory (like /tmp) lets others add names but not replace one they do not own:
    // a root-owned entry in it cannot be swapped. The state directory itself gets no such pass.
    let sticky = m.mode() & 0o1000 != 0;
    if sticky && !last && next_owner.is_some_and(trusted) {
        return None;
    }
    Some(format!(
        "{shown} is writable by {} (mode {:04o}); fix it with `chmod go-w {shown}`",
        if m.mode() & 0o002 != 0 {
            "everyone"
        } else {
            "its group"
        },
        m.mode() & 0o7777
    ))
}

/// Checks `path` (which exists) and each parent: the path as given (its links included) and as
/// resolved, so a link can neither point somewhere unsafe nor sit in an unsafe place. When `path`
/// is only the nearest existing parent of the state directory, what lowport creates below it is
/// its own.
fn check_trusted(path: &Path, is_state_dir: bool) -> Result<(), String> {
    let real = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for full in [path, real.as_path()] {
        let mut below = (!is_state_dir).then(|| nix::unistd::geteuid().as_raw());
        // Innermost first, so each directory knows the owner of the entry below it.
        for (i, p) in full.ancestors().enumerate() {
            let m = std::fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
            if let Some(why) = unsafe_reason(p, &m, i == 0 && is_state_dir, below) {
                return Err(why);
            }
            below = Some(m.uid());
        }
    }
    Ok(())
}

/// An open, trusted directory, and its path for messages.
#[derive(Debug)]
pub struct SafeDir {
    fd: OwnedFd,
    pub path: PathBuf,
}

fn io(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

impl SafeDir {
    /// Opens the directory at `path` after checking it and its parents. With `create`, missing
    /// directories are made (mode 0700) below the nearest existing one, which is checked first.
    /// Without it, a missing directory is `Ok(None)`. `Err` says what is unsafe and how to fix it.
    pub fn open_trusted(path: &Path, create: bool) -> Result<Option<SafeDir>, String> {
        let existing = path
            .ancestors()
            .find(|p| std::fs::symlink_metadata(p).is_ok())
            .unwrap_or(Path::new("/"));
        check_trusted(existing, existing == path)?;
        if existing != path {
            if !create {
                return Ok(None);
            }
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            check_trusted(path, true)?;
            // The new directories' names must outlive a crash, as the journals in them do.
            for made in path.ancestors().take_while(|p| *p != existing) {
                let parent = made.parent().unwrap_or(Path::new("/"));
                File::open(parent)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| format!("cannot sync {}: {e}", parent.display()))?;
            }
        }
        // The checked chain belongs to root: it cannot change between the check and this open.
        let fd = nix::fcntl::open(path, DIR_FLAGS, Mode::empty())
            .map_err(|e| format!("cannot open {}: {}", path.display(), io(e)))?;
        Ok(Some(SafeDir {
            fd,
            path: path.to_path_buf(),
        }))
    }

    /// The path of an entry, for messages.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// A subdirectory (never through a link), made with mode 0700 if absent, and whether it was
    /// made (its name is then not durable until this directory is synced).
    pub fn make_subdir(&self, name: &str) -> io::Result<(SafeDir, bool)> {
        let made = match mkdirat(self.fd.as_fd(), name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => true,
            Err(nix::errno::Errno::EEXIST) => false,
            Err(e) => return Err(io(e)),
        };
        let dir = self
            .subdir(name)?
            .ok_or_else(|| io(nix::errno::Errno::ENOENT))?;
        Ok((dir, made))
    }

    /// A subdirectory (never through a link); `None` when absent.
    pub fn subdir(&self, name: &str) -> io::Result<Option<SafeDir>> {
        match openat(self.fd.as_fd(), name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(Some(SafeDir {
                fd,
                path: self.join(name),
            })),
            Err(nix::errno::Errno::ENOENT) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// Opens an entry, never through a link. `flags` adds to read-only; created files get 0600.
    pub fn open(&self, name: &str, flags: OFlag) -> io::Result<File> {
        // O_NONBLOCK: opening a FIFO planted under a lowport name must not hang (it is refused
        // below); it changes nothing for regular files.
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = openat(
            self.fd.as_fd(),
            name,
            flags,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(io)?;
        let file = File::from(fd);
        // O_NOFOLLOW alone still opens a FIFO or a device: only regular files are ours.
        if !file.metadata()?.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file",
                self.join(name).display()
            )));
        }
        Ok(file)
    }

    /// Whether an entry of that name exists, whatever it is (a link is not followed).
    pub fn exists(&self, name: &str) -> bool {
        nix::sys::stat::fstatat(
            self.fd.as_fd(),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .is_ok()
    }

    pub fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        io::Read::read_to_end(&mut self.open(name, OFlag::empty())?, &mut out)?;
        Ok(out)
    }

    /// Entry names with whether each is a real directory (links are not), of this very
    /// directory, whatever its path now is.
    pub fn entries(&self) -> io::Result<Vec<(String, bool)>> {
        // "." from the descriptor is this very directory, whatever its path now is.
        let mut dir = Dir::openat(self.fd.as_fd(), ".", DIR_FLAGS, Mode::empty()).map_err(io)?;
        let mut out = Vec::new();
        for e in dir.iter() {
            let e = e.map_err(io)?;
            // Names lowport did not write (not UTF-8) are not runs: leave them out.
            let Ok(name) = e.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let is_dir = match e.file_type() {
                Some(t) => t == Type::Directory,
                // The filesystem does not say: ask without following a link.
                None => {
                    fstatat(self.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                        .map_err(io)?
                        .st_mode
                        & libc::S_IFMT
                        == libc::S_IFDIR
                }
            };
            out.push((name.to_string(), is_dir));
        }
        Ok(out)
    }

    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        renameat(self.fd.as_fd(), from, self.fd.as_fd(), to).map_err(io)
    }

    /// Removes a file; a missing one is fine.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        match unlinkat(self.fd.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    /// Removes a subdirectory and the files in it (lowport's folders hold no deeper levels).
    pub fn remove_tree(&self, name: &str) -> io::Result<()> {
        if let Some(d) = self.subdir(name)? {
            for (entry, _) in d.entries()? {
                d.remove(&entry)?;
            }
        }
        match unlinkat(self.fd.as_fd(), name, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    /// Makes new names in this directory durable.
    pub fn sync(&self) -> io::Result<()> {
        nix::unistd::fsync(self.fd.as_fd()).map_err(io)
    }
}

/// Takes a POSIX write lock on the whole file without waiting, as `lckpwdf` does. Unlike
/// `flock`, such a lock belongs to the process: a child made by `fork` (the bind probe) never
/// holds it, and it is gone the moment the process dies. `Ok(false)`: another process holds it.
pub fn try_write_lock(file: &File) -> io::Result<bool> {
    // SAFETY: an all-zero flock is a valid value; the fields that matter are set below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    match nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_SETLK(&fl)) {
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::EACCES | nix::errno::Errno::EAGAIN) => Ok(false),
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }

    #[test]
    fn writable_or_foreign_directories_are_refused_with_the_fix() {
        let t = tempfile::tempdir().unwrap();
        mode(t.path(), 0o755);
        let state = t.path().join("state");
        std::fs::create_dir(&state).unwrap();
        assert!(SafeDir::open_trusted(&state, false).unwrap().is_some());
        mode(&state, 0o777);
        let e = SafeDir::open_trusted(&state, false).unwrap_err();
        assert!(
            e.contains("writable by everyone") && e.contains("chmod go-w"),
            "{e}"
        );
        mode(&state, 0o775);
        assert!(
            SafeDir::open_trusted(&state, false)
                .unwrap_err()
                .contains("its group")
        );
        mode(&state, 0o700);
        // A parent that others can write is as bad as the directory itself.
        mode(t.path(), 0o777);
        let e = SafeDir::open_trusted(&state, true).unwrap_err();
        assert!(e.contains(&t.path().display().to_string()), "{e}");
        mode(t.path(), 0o755);
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&state, Some(65534), None).unwrap();
            let e = SafeDir::open_trusted(&state, false).unwrap_err();
            assert!(
                e.contains("owned by uid 65534") && e.contains("chown root"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_link_to_a_safe_place_from_an_unsafe_one_is_refused() {
        let t = tempfile::tempdir().unwrap();
        mode(t.path(), 0o755);
        let good = t.path().join("good");
        let open = t.path().join("open");
        std::fs::create_dir(&good).unwrap();
        std::fs::create_dir(&open).unwrap();
        mode(&open, 0o777);
        std::os::unix::fs::symlink(&good, open.join("state")).unwrap();
        let e = SafeDir::open_trusted(&open.join("state"), false).unwrap_err();
        assert!(e.contains("writable by everyone"), "{e}");
    }

    #[test]
    fn entries_are_never_reached_through_links() {
        let t = tempfile::tempdir().unwrap();
        mode(t.path(), 0o755);
        let d = SafeDir::open_trusted(&t.path().join("s"), true)
            .unwrap()
            .unwrap();
        std::fs::write(t.path().join("target"), "x").unwrap();
        std::os::unix::fs::symlink(t.path().join("target"), t.path().join("s/link")).unwrap();
        std::os::unix::fs::symlink(t.path(), t.path().join("s/dirlink")).unwrap();
        assert!(d.read("link").is_err());
        nix::unistd::mkfifo(
            &t.path().join("s/fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert!(
            d.read("fifo")
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
        assert!(d.subdir("dirlink").is_err());
        assert_eq!(d.entries().unwrap().len(), 3);
    }
}
