//! Directory listings without the per-entry cost of `std::fs::read_dir` (an allocation and a
//! copy of every name): the kernel's `getdents64` records are read into one buffer and each
//! name is handed out as bytes. Planning lists /usr/bin (some thousand names) to recognise
//! interpreters, and every command lists the state directory's runs.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir};

/// Calls `each` with the name of every entry of the directory `dir` (an open descriptor of it;
/// never `.` or `..`) and whether the entry is a directory (a link to one is not). The listing
/// reads a descriptor of its own, so `dir`'s offset is left alone.
pub fn each_entry(dir: impl AsFd, mut each: impl FnMut(&[u8], bool)) -> io::Result<()> {
    let fd = rustix::fs::openat(
        &dir,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 64 * 1024];
    let mut entries = RawDir::new(&fd, &mut buf);
    while let Some(e) = entries.next() {
        let e = e?;
        let name = e.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let is_dir = match e.file_type() {
            FileType::Directory => true,
            // Some filesystems do not record the type in the entry: ask the inode.
            FileType::Unknown => rustix::fs::statat(&fd, e.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
            _ => false,
        };
        each(name, is_dir);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_name_once_with_its_kind() {
        let t = tempfile::tempdir().unwrap();
        let mut want = Vec::new();
        // More names than one buffer of records holds.
        for i in 0..3000 {
            let name = format!("entry-{i:04}-{}", "x".repeat(i % 40));
            if i % 7 == 0 {
                std::fs::create_dir(t.path().join(&name)).unwrap();
            } else {
                std::fs::write(t.path().join(&name), "").unwrap();
            }
            want.push((name, i % 7 == 0));
        }
        std::os::unix::fs::symlink(t.path().join("entry-0000-"), t.path().join("link")).unwrap();
        want.push(("link".into(), false));
        let dir = std::fs::File::open(t.path()).unwrap();
        let mut got = Vec::new();
        each_entry(&dir, |name, is_dir| {
            got.push((String::from_utf8(name.to_vec()).unwrap(), is_dir))
        })
        .unwrap();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
}
