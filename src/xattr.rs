//! Extended attributes through the maintained `xattr` crate. Path functions never follow a
//! symlink (the crate's plain functions are the `l*xattr` calls; lowport always works on
//! resolved paths, and a link swapped in must not redirect a write). File capabilities live in
//! `security.capability`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::Path;

use xattr::FileExt;

pub const CAPABILITY: &str = "security.capability";

/// A filesystem without extended attributes has none to read.
fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTSUP)
}

/// One attribute's value, `None` when the file has no such attribute.
pub fn get(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    match xattr::get(path, name) {
        Err(e) if unsupported(&e) => Ok(None),
        r => r,
    }
}

/// Every attribute readable by this process, by name. Filesystems without xattr support give none.
pub fn all(path: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let names = match xattr::list(path) {
        Err(e) if unsupported(&e) => return Ok(BTreeMap::new()),
        r => r?,
    };
    let mut out = BTreeMap::new();
    for name in names {
        if let Some(v) = xattr::get(path, &name)? {
            out.insert(name.to_string_lossy().into_owned(), v);
        }
    }
    Ok(out)
}

pub fn set(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    xattr::set(path, name, value)
}

/// Sets an attribute on an open file: the file checked is the file marked, whatever happens
/// to its path meanwhile.
pub fn set_on(file: &File, name: &str, value: &[u8]) -> io::Result<()> {
    file.set_xattr(name, value)
}

/// Removes an attribute; one that is already absent is not an error.
pub fn remove(path: &Path, name: &str) -> io::Result<()> {
    match xattr::remove(path, name) {
        Err(e) if e.raw_os_error() == Some(libc::ENODATA) => Ok(()),
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
