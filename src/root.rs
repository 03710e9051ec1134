//! `--root DIR`: every file path lowport reads or writes is taken under DIR, like
//! `systemctl --root`. Kernel interfaces (`/proc`, live sysctls, mounts) stay the running host's:
//! they have no meaning inside a directory tree.

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

    /// The host path of an absolute in-root path.
    pub fn host(&self, p: &Path) -> PathBuf {
        let rel = p.strip_prefix("/").unwrap_or(p);
        if rel.as_os_str().is_empty() {
            self.0.clone()
        } else {
            self.0.join(rel)
        }
    }

    /// Resolves every symlink in an absolute in-root path. Absolute link targets are taken
    /// relative to the root (as inside a chroot), and `..` never climbs above it.
    pub fn resolve(&self, p: &Path) -> io::Result<Resolved> {
        let mut done = PathBuf::from("/");
        let mut symlinks = Vec::new();
        // Components still to walk, in reverse so pop() yields the next one.
        let mut rest: Vec<std::ffi::OsString> = Vec::new();
        push_components(&mut rest, p);
        while let Some(c) = rest.pop() {
            if c == ".." {
                done.pop();
                continue;
            }
            let candidate = done.join(&c);
            let meta = std::fs::symlink_metadata(self.host(&candidate))?;
            if meta.file_type().is_symlink() {
                if symlinks.len() >= MAX_LINKS {
                    return Err(io::Error::other(format!(
                        "too many symbolic links resolving {}",
                        p.display()
                    )));
                }
                let target = std::fs::read_link(self.host(&candidate))?;
                symlinks.push(candidate);
                if target.is_absolute() {
                    done = PathBuf::from("/");
                }
                push_components(&mut rest, &target);
            } else {
                done = candidate;
            }
        }
        Ok(Resolved {
            path: done,
            symlinks,
        })
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
    fn link_loop_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path().to_path_buf());
        symlink("/b", t.path().join("a")).unwrap();
        symlink("/a", t.path().join("b")).unwrap();
        assert!(root.resolve(Path::new("/a")).is_err());
    }
}
