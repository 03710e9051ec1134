//! Who besides root can change a file: its owner, its mode bits, and its POSIX ACL
//! (`system.posix_acl_access`), whose named user and group entries give access the mode bits
//! do not show.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::os::MetadataExt;
use crate::xattr;

pub const ACCESS: &str = "system.posix_acl_access";

// Tags and the version of the kernel's on-disk format (linux/posix_acl_xattr.h).
const VERSION: u32 = 2;
const USER: u16 = 0x02;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;

pub const READ: u16 = 4;
pub const WRITE: u16 = 2;
pub const EXECUTE: u16 = 1;

/// One named entry, with its effective permissions (the mask applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    /// `user` or `group`.
    pub kind: String,
    pub id: u32,
    /// The account's name where the database has it, else the number.
    pub name: String,
    pub perm: u16,
}

impl Named {
    /// As `getfacl` writes it: `user:nobody:r-x`.
    pub fn text(&self) -> String {
        let bit = |b: u16, c: char| if self.perm & b != 0 { c } else { '-' };
        format!(
            "{}:{}:{}{}{}",
            self.kind,
            self.name,
            bit(READ, 'r'),
            bit(WRITE, 'w'),
            bit(EXECUTE, 'x')
        )
    }
}

/// Parses the attribute; None when it is not a well-formed version-2 ACL.
pub fn parse(raw: &[u8]) -> Option<Vec<(u16, u32, u16)>> {
    let (head, body) = raw.split_at_checked(4)?;
    if u32::from_le_bytes(head.try_into().ok()?) != VERSION || body.len() % 8 != 0 {
        return None;
    }
    let entries: Vec<(u16, u32, u16)> = body
        .chunks_exact(8)
        .map(|e| {
            let tag = u16::from_le_bytes([e[0], e[1]]);
            let perm = u16::from_le_bytes([e[2], e[3]]);
            let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            (tag, id, perm)
        })
        .collect();
    let mask = entries
        .iter()
        .find(|(t, _, _)| *t == MASK)
        .map_or(0o7, |(_, _, p)| *p);
    Some(
        entries
            .into_iter()
            .filter(|(t, _, _)| *t == USER || *t == GROUP)
            .map(|(t, id, p)| (t, id, p & mask))
            .collect(),
    )
}

/// The named entries of a file's access ACL (none without one), names looked up with `name`.
pub fn named(path: &Path, name: &dyn Fn(bool, u32) -> Option<String>) -> io::Result<Vec<Named>> {
    let Some(raw) = xattr::get(path, ACCESS)? else {
        return Ok(Vec::new());
    };
    let entries = parse(&raw)
        .ok_or_else(|| io::Error::other(format!("{} has a malformed ACL", path.display())))?;
    Ok(entries
        .into_iter()
        .map(|(tag, id, perm)| {
            let user = tag == USER;
            Named {
                kind: if user { "user" } else { "group" }.into(),
                id,
                name: name(user, id).unwrap_or_else(|| id.to_string()),
                perm,
            }
        })
        .collect())
}

/// Why someone other than root could change an entry (a file, or a directory above one), one
/// reason per way: `host` is where it is, `shown` how messages name it, `names` turns a uid
/// (`true`) or gid into a name. `below_root_owned` says the entry beneath a directory is root's,
/// which makes a sticky directory (like /tmp) safe: others may add entries, not replace root's.
pub fn writers(
    host: &Path,
    shown: &Path,
    meta: &std::fs::Metadata,
    below_root_owned: bool,
    names: &dyn Fn(bool, u32) -> Option<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let what = if meta.is_dir() {
        "directory"
    } else {
        "the file"
    };
    let name = shown.display();
    let user = |id| names(true, id).unwrap_or_else(|| id.to_string());
    if meta.uid() != 0 {
        out.push(format!(
            "{what} {name} is owned by {}, who can replace it",
            user(meta.uid())
        ));
    }
    if meta.is_dir() && meta.mode() & 0o1000 != 0 && below_root_owned {
        return out;
    }
    if meta.mode() & 0o020 != 0 && meta.gid() != 0 {
        let g = names(false, meta.gid()).unwrap_or_else(|| meta.gid().to_string());
        out.push(format!("{what} {name} is writable by group {g}"));
    }
    if meta.mode() & 0o002 != 0 {
        out.push(format!("{what} {name} is writable by every user"));
    }
    match self::named(host, names) {
        Ok(entries) => out.extend(
            entries
                .iter()
                .filter(|e| e.perm & WRITE != 0 && e.id != 0)
                .map(|e| {
                    format!(
                        "{what} {name} has the ACL entry {}, who can write it",
                        e.text()
                    )
                }),
        ),
        Err(e) => out.push(format!("{what} {name}: {e}")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_format_and_applies_the_mask() {
        let mut raw = VERSION.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (0x01u16, 6u16, u32::MAX),
            (USER, 7, 65534),
            (0x04, 4, u32::MAX),
            (GROUP, 6, 100),
            (MASK, 5, u32::MAX),
            (0x20, 4, u32::MAX),
        ] {
            raw.extend(tag.to_le_bytes());
            raw.extend(perm.to_le_bytes());
            raw.extend(id.to_le_bytes());
        }
        assert_eq!(parse(&raw).unwrap(), [(USER, 65534, 5), (GROUP, 100, 4)]);
        assert!(parse(&raw[..7]).is_none());
        assert!(parse(&[1, 0, 0, 0]).is_none());
        assert!(parse(&[]).is_none());
    }
}
