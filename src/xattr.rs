//! Extended attributes through the libc calls, without following symlinks on read (lowport
//! always works on resolved paths). File capabilities live in `security.capability`.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub const CAPABILITY: &str = "security.capability";

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

fn cname(n: &str) -> io::Result<CString> {
    CString::new(n).map_err(io::Error::other)
}

/// One attribute's value, `None` when the file has no such attribute.
pub fn get(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let (p, n) = (cpath(path)?, cname(name)?);
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid NUL-terminated strings and a buffer of the stated length.
        let r =
            unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            buf.truncate(r as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENODATA) => return Ok(None),
            Some(libc::ENOTSUP) => return Ok(None),
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            _ => return Err(e),
        }
    }
}

/// Every attribute readable by this process, by name. Filesystems without xattr support give none.
pub fn all(path: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let p = cpath(path)?;
    // SAFETY: a null buffer with length 0 asks for the needed size.
    let size = unsafe { libc::llistxattr(p.as_ptr(), std::ptr::null_mut(), 0) };
    if size < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENOTSUP) {
            Ok(BTreeMap::new())
        } else {
            Err(e)
        };
    }
    let mut names = vec![0u8; size as usize];
    // SAFETY: buffer of the size the kernel just reported.
    let n = unsafe { libc::llistxattr(p.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    names.truncate(n as usize);
    let mut out = BTreeMap::new();
    for raw in names.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(raw).into_owned();
        if let Some(v) = get(path, &name)? {
            out.insert(name, v);
        }
    }
    Ok(out)
}

pub fn set(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let (p, n) = (cpath(path)?, cname(name)?);
    // SAFETY: valid strings and a value slice with its length.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub fn remove(path: &Path, name: &str) -> io::Result<()> {
    let (p, n) = (cpath(path)?, cname(name)?);
    // SAFETY: valid NUL-terminated strings.
    let r = unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENODATA) {
        Ok(())
    } else {
        Err(e)
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
