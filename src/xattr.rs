//! Extended attributes through the maintained `xattr` crate. Path functions never follow a
//! symlink (the crate's plain functions are the `l*xattr` calls; lowport always works on
//! resolved paths, and a link swapped in must not redirect a write). File capabilities live in
//! `security.capability`. Systems the crate does not support (OpenBSD, illumos, Windows) have
//! no attributes here: none to read, none to restore.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::Path;

pub const CAPABILITY: &str = "security.capability";

#[cfg(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "macos"
))]
mod sys {
    use xattr::FileExt;
    pub use xattr::{get, list, remove, set};

    /// The error of removing an attribute the file does not have.
    #[cfg(target_os = "linux")]
    pub const NO_ATTRIBUTE: i32 = libc::ENODATA;
    #[cfg(not(target_os = "linux"))]
    pub const NO_ATTRIBUTE: i32 = libc::ENOATTR;

    pub fn set_on(file: &std::fs::File, name: &str, value: &[u8]) -> std::io::Result<()> {
        file.set_xattr(name, value)
    }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "macos"
)))]
mod sys {
    use std::ffi::{OsStr, OsString};
    use std::io;
    use std::path::Path;

    /// Never returned: removing is always fine where no file has attributes.
    pub const NO_ATTRIBUTE: i32 = 0;

    fn none() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{} has no extended attributes", std::env::consts::OS),
        )
    }

    pub fn get(_path: &Path, _name: impl AsRef<OsStr>) -> io::Result<Option<Vec<u8>>> {
        Ok(None)
    }

    pub fn list(_path: &Path) -> io::Result<Vec<OsString>> {
        Ok(Vec::new())
    }

    pub fn set(_path: &Path, _name: impl AsRef<OsStr>, _value: &[u8]) -> io::Result<()> {
        Err(none())
    }

    pub fn remove(_path: &Path, _name: impl AsRef<OsStr>) -> io::Result<()> {
        Ok(())
    }

    pub fn set_on(_file: &std::fs::File, _name: &str, _value: &[u8]) -> io::Result<()> {
        Err(none())
    }
}

/// A filesystem without extended attributes has none to read.
fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTSUP)
}

/// One attribute's value, `None` when the file has no such attribute.
pub fn get(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    match sys::get(path, name) {
        Err(e) if unsupported(&e) => Ok(None),
        r => r,
    }
}

/// Every attribute readable by this process, by name. Filesystems without xattr support give none.
pub fn all(path: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let names = match sys::list(path) {
        Err(e) if unsupported(&e) => return Ok(BTreeMap::new()),
        r => r?,
    };
    let mut out = BTreeMap::new();
    for name in names {
        if let Some(v) = sys::get(path, &name)? {
            out.insert(name.to_string_lossy().into_owned(), v);
        }
    }
    Ok(out)
}

pub fn set(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    sys::set(path, name, value)
}

/// Sets an attribute on an open file: the file checked is the file marked, whatever happens
/// to its path meanwhile.
pub fn set_on(file: &File, name: &str, value: &[u8]) -> io::Result<()> {
    sys::set_on(file, name, value)
}

/// Removes an attribute; one that is already absent is not an error.
pub fn remove(path: &Path, name: &str) -> io::Result<()> {
    match sys::remove(path, name) {
        Err(e) if e.raw_os_error() == Some(sys::NO_ATTRIBUTE) => Ok(()),
        r => r,
    }
}

/// Makes the file's attributes equal `want`: sets every wanted one, removes the others.
pub fn restore(path: &Path, want: &BTreeMap<String, Vec<u8>>) -> io::Result<()> {
    for name in all(path)?.keys() {
        if !want.contains_key(name) {
            remove(path, name)?;
        }
    }
    for (name, value) in want {
        if get(path, name)?.as_deref() != Some(value.as_slice()) {
            set(path, name, value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_without_following_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        if set(&file, "user.lowport", b"1").is_err() {
            eprintln!("skipped: no user xattrs on {}", t.path().display());
            return;
        }
        assert_eq!(
            get(&file, "user.lowport").unwrap().as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(all(&file).unwrap().len(), 1);
        // Through the link: the link's own (none), never the target's.
        assert_eq!(get(&link, "user.lowport").unwrap(), None);
        assert!(all(&link).unwrap().is_empty());
        // User attributes cannot be put on a symlink itself, so this must fail.
        assert!(set(&link, "user.lowport", b"2").is_err());
        assert_eq!(
            get(&file, "user.lowport").unwrap().as_deref(),
            Some(&b"1"[..])
        );
        set_on(&File::open(&file).unwrap(), "user.lowport", b"3").unwrap();
        restore(
            &file,
            &BTreeMap::from([("user.other".into(), b"4".to_vec())]),
        )
        .unwrap();
        assert_eq!(
            all(&file).unwrap(),
            BTreeMap::from([("user.other".into(), b"4".to_vec())])
        );
        remove(&file, "user.other").unwrap();
        remove(&file, "user.other").unwrap();
    }
}
