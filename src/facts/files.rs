//! File state as lowport records it: compared to detect drift, snapshotted for undo, and held
//! in a facts document for the files a plan would touch.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::caps::FileCaps;
use crate::os::MetadataExt;
use crate::xattr;

/// The most lowport reads of one file it plans from: more than any configuration file, unit,
/// account database or plan holds, and bounded memory for a device or a giant file.
pub const MAX_READ: u64 = 16 << 20;

/// Reads an opened file whole, at most [`MAX_READ`] bytes.
pub fn read_limited(file: std::fs::File) -> io::Result<Vec<u8>> {
    let meta = file.metadata()?;
    let too_big = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB, more than lowport reads",
                MAX_READ >> 20
            ),
        )
    };
    if meta.len() > MAX_READ {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_READ + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_READ {
        return Err(too_big());
    }
    Ok(bytes)
}

/// Opens a regular file for reading without blocking on what was swapped in meanwhile (a FIFO
/// would hang the open), and refuses anything else once open.
pub fn open_regular(path: &Path) -> io::Result<std::fs::File> {
    let file = crate::os::no_block(std::fs::OpenOptions::new().read(true)).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Reads a file lowport plans from (configuration, units, account files, a facts document, a
/// saved plan): only a regular file, opened without blocking (a FIFO planted there would hang
/// lowport, perhaps under its lock), and at most [`MAX_READ`] bytes.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    read_limited(open_regular(path)?)
}

/// [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// File modes travel as octal strings ("0644") in JSON, as operators read them.
pub mod octal {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{m:04o}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let s = String::deserialize(d)?;
        u32::from_str_radix(&s, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| serde::de::Error::custom(format!("'{s}' is not an octal file mode")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    pub exists: bool,
    /// Content hash, for files lowport writes. Files whose metadata it changes (a binary of
    /// tens of megabytes) are recognised by `identity` instead of being read whole.
    pub sha256: Option<String>,
    /// `device:inode:size:mtime_ns`: changes when the file is replaced or written to.
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_octal")]
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Extended attributes, values in hex (file capabilities live in `security.capability`).
    pub xattrs: BTreeMap<String, String>,
    /// The target when the entry is a symbolic link (a masked unit points to /dev/null): undo
    /// puts back the same link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<PathBuf>,
}

pub mod opt_octal {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match m {
            Some(m) => super::octal::serialize(m, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        super::octal::deserialize(d).map(Some)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes hex by bytes: anything but pairs of hex digits (a sign, a multi-byte character) is
/// None, never a panic, since journals and plans on disk are untrusted.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |b: &u8| char::from(*b).to_digit(16);
    s.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some((digit(hi)? * 16 + digit(lo)?) as u8),
            _ => None,
        })
        .collect()
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

impl FileState {
    pub fn xattr_bytes(&self) -> BTreeMap<String, Vec<u8>> {
        self.xattrs
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), unhex(v)?)))
            .collect()
    }

    pub fn capability(&self) -> Option<FileCaps> {
        FileCaps::parse(&unhex(self.xattrs.get(xattr::CAPABILITY)?)?)
    }
}

/// `device:inode:size:mtime_ns` of a file (see [`FileState::identity`]); the executor compares
/// it with the planned one on the descriptor it is about to change.
pub fn identity(meta: &std::fs::Metadata) -> String {
    let mtime = meta.mtime() as i128 * 1_000_000_000 + i128::from(meta.mtime_nsec());
    format!("{}:{}:{}:{mtime}", meta.dev(), meta.ino(), meta.size())
}

/// Reads a file's state, and with `content` also its bytes (hashed into the state).
pub fn observe_file(host: &Path, content: bool) -> std::io::Result<(FileState, Option<Vec<u8>>)> {
    let meta = match std::fs::symlink_metadata(host) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let absent = FileState {
                exists: false,
                sha256: None,
                identity: None,
                mode: None,
                uid: None,
                gid: None,
                xattrs: BTreeMap::new(),
                link: None,
            };
            return Ok((absent, None));
        }
        Err(e) => return Err(e),
    };
    let content = (content && meta.is_file())
        .then(|| read(host))
        .transpose()?;
    let state = FileState {
        exists: true,
        sha256: content.as_deref().map(sha256),
        identity: Some(identity(&meta)),
        mode: Some(meta.mode() & 0o7777),
        uid: Some(meta.uid()),
        gid: Some(meta.gid()),
        xattrs: xattr::all(host)?
            .iter()
            .map(|(k, v)| (k.clone(), hex(v)))
            .collect(),
        link: if meta.file_type().is_symlink() {
            Some(std::fs::read_link(host)?)
        } else {
            None
        },
    };
    Ok((state, content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhex_refuses_what_is_not_hex() {
        assert_eq!(unhex(&hex(&[0, 0x7f, 0xff])), Some(vec![0, 0x7f, 0xff]));
        assert_eq!(unhex("0A"), Some(vec![10]));
        for bad in ["0é0", "é0", "+f", "0", "abc", "zz", " 1"] {
            assert_eq!(unhex(bad), None, "{bad:?}");
        }
    }
}
