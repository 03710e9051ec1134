//! `--root DIR`: every file path lowport reads or writes is taken under DIR, like
//! `systemctl --root`, and stays there as in a chroot: symlinks in the tree are followed inside
//! it (an absolute target is taken from DIR, `..` stops at DIR), so no link in the tree can send
//! a read or a write elsewhere. Kernel interfaces (`/proc`, live sysctls, mounts) stay the
//! running host's: they have no meaning inside a directory tree.
//!
//! The walk is done with lstat and readlink before each use, not with `openat2(RESOLVE_IN_ROOT)`:
//! it guards against links that are in the tree, not against someone who can write into the
//! tree while lowport runs (such a tree is refused for the binary by its writer checks).

use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root(PathBuf);

/// A path resolved inside a root: its canonical in-root form and the symlinks followed to get there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    pub path: PathBuf,
    pub symlinks: Vec<PathBuf>,
}

const MAX_LINKS: usize = 40;

impl Root {
    pub fn new(dir: PathBuf) -> Self {
        Root(dir)
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }

    pub fn is_host(&self) -> bool {
        self.0 == Path::new("/")
    }

    /// Where an in-root path is on the host, for reading: every symlink on the way, the last
    /// component's included, is followed inside the root (as in a chroot), so no link in the
    /// tree can point a read outside it.
    pub fn host(&self, p: &Path) -> PathBuf {
        self.confined(p, true)
    }

    /// Where an in-root path is on the host, for changing the entry itself (write by rename,
    /// create, remove, lstat, link): the parent directories are resolved inside the root, the
    /// last component is not followed, so a symlink there is what gets replaced or restored.
    pub fn entry(&self, p: &Path) -> PathBuf {
        self.confined(p, false)
    }

    /// The in-root path with its parent directories resolved (the last component as written):
    /// where `entry` puts it, as the tree sees it. A loop of links leaves the path as given, and
    /// `entry` then fails on it.
    pub fn inside(&self, p: &Path) -> PathBuf {
        if self.is_host() {
            return p.to_path_buf();
        }
        self.walk(p, false, false)
            .unwrap_or_else(|_| p.to_path_buf())
    }

    fn confined(&self, p: &Path, follow_last: bool) -> PathBuf {
        // On the host the kernel resolves paths exactly as a chroot at / would.
        if self.is_host() {
            return p.to_path_buf();
        }
        match self.walk(p, follow_last, false) {
            Ok(inside) => self.join(&inside),
            // A loop of links: a path no call can open (NUL is refused by every path API), so
            // the failure is reported where the path is used and nothing outside is touched.
            Err(_) => self.0.join("lowport: too many symbolic links\0"),
        }
    }

    fn join(&self, p: &Path) -> PathBuf {
        let rel = p.strip_prefix("/").unwrap_or(p);
        if rel.as_os_str().is_empty() {
            self.0.clone()
        } else {
            self.0.join(rel)
        }
    }

    /// Resolves every symlink in an absolute in-root path, which must exist. Absolute link
    /// targets are taken relative to the root (as inside a chroot), and `..` never climbs above
    /// it.
    pub fn resolve(&self, p: &Path) -> io::Result<Resolved> {
        let mut symlinks = Vec::new();
        let path = self.walk_links(p, true, true, &mut symlinks)?;
        Ok(Resolved { path, symlinks })
    }

    fn walk(&self, p: &Path, follow_last: bool, strict: bool) -> io::Result<PathBuf> {
        self.walk_links(p, follow_last, strict, &mut Vec::new())
    }

    /// The walk behind `resolve`, `host` and `entry`. `strict` makes a missing component an
    /// error; otherwise the rest is taken as written (it does not exist, so holds no link).
    fn walk_links(
        &self,
        p: &Path,
        follow_last: bool,
        strict: bool,
        symlinks: &mut Vec<PathBuf>,
    ) -> io::Result<PathBuf> {
        let mut done = PathBuf::from("/");
        // Components still to walk, in reverse so pop() yields the next one.
        let mut rest: Vec<std::ffi::OsString> = Vec::new();
        push_components(&mut rest, p);
        while let Some(c) = rest.pop() {
            if c == ".." {
                done.pop();
                continue;
            }
            let candidate = done.join(&c);
            if rest.is_empty() && !follow_last {
                done = candidate;
                continue;
            }
            let meta = match std::fs::symlink_metadata(self.join(&candidate)) {
                Ok(m) => m,
                Err(e) if !strict && e.kind() == io::ErrorKind::NotFound => {
                    done = candidate;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if meta.file_type().is_symlink() {
                if symlinks.len() >= MAX_LINKS {
                    return Err(io::Error::other(format!(
                        "too many symbolic links resolving {}",
                        p.display()
                    )));
                }
                let target = std::fs::read_link(self.join(&candidate))?;
                symlinks.push(candidate);
                if target.is_absolute() {
                    done = PathBuf::from("/");
                }
                push_components(&mut rest, &target);
            } else {
                done = candidate;
            }
        }
        Ok(done)
    }
}

fn push_components(rest: &mut Vec<std::ffi::OsString>, p: &Path) {
    let comps: Vec<_> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    rest.extend(comps.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolves_links_inside_root() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path().to_path_buf());
        std::fs::create_dir_all(t.path().join("opt/app/bin")).unwrap();
        std::fs::write(t.path().join("opt/app/bin/app"), "x").unwrap();
        std::fs::create_dir_all(t.path().join("usr/bin")).unwrap();
        // An absolute link must stay inside the root, and a relative one with `..` too.
        symlink("/opt/app/bin/app", t.path().join("usr/bin/app")).unwrap();
        symlink("../../../../../usr/bin/app", t.path().join("usr/bin/up")).unwrap();
        let r = root.resolve(Path::new("/usr/bin/up")).unwrap();
        assert_eq!(r.path, Path::new("/opt/app/bin/app"));
        assert_eq!(r.symlinks.len(), 2);
        assert_eq!(root.host(&r.path), t.path().join("opt/app/bin/app"));
    }

    #[test]
    fn writes_and_reads_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = Root::new(t.path().to_path_buf());
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::create_dir_all(t.path().join("elsewhere")).unwrap();
        // A symlinked parent, absolute and relative, is followed within the root.
        symlink(outside.path(), t.path().join("etc/systemd")).unwrap();
        symlink("../../../../../..", t.path().join("etc/up")).unwrap();
        let unit = Path::new("/etc/systemd/system/x.service");
        let host = root.entry(unit);
        assert!(host.starts_with(t.path()), "{}", host.display());
        let want = t.path().join(outside.path().strip_prefix("/").unwrap());
        assert_eq!(host, want.join("system/x.service"));
        assert_eq!(
            root.entry(Path::new("/etc/up/etc/passwd")),
            t.path().join("etc/passwd")
        );
        // The last component: `entry` leaves a link as the thing to replace, `host` follows it.
        symlink("/dev/null", t.path().join("elsewhere/masked")).unwrap();
        let masked = Path::new("/elsewhere/masked");
        assert_eq!(root.entry(masked), t.path().join("elsewhere/masked"));
        assert_eq!(root.host(masked), t.path().join("dev/null"));
        // A loop fails closed.
        symlink("/elsewhere/b", t.path().join("elsewhere/a")).unwrap();
        symlink("/elsewhere/a", t.path().join("elsewhere/b")).unwrap();
        assert!(std::fs::read(root.host(Path::new("/elsewhere/a/f"))).is_err());
    }

    #[test]
    fn link_loop_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path().to_path_buf());
        symlink("/b", t.path().join("a")).unwrap();
        symlink("/a", t.path().join("b")).unwrap();
        assert!(root.resolve(Path::new("/a")).is_err());
    }
}
