//! The mount a file lives on, from `/proc/self/mountinfo`: its options decide whether file
//! capabilities are honoured (`nosuid` makes execve ignore them).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub mount_point: PathBuf,
    pub fstype: String,
    pub options: Vec<String>,
}

impl Mount {
    pub fn nosuid(&self) -> bool {
        self.options.iter().any(|o| o == "nosuid")
    }
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo octal.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text; later lines win for the same mount point, as later mounts stack on top.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            let mut options: Vec<String> = l.get(5)?.split(',').map(String::from).collect();
            options.extend(r.get(2).unwrap_or(&"").split(',').map(String::from));
            Some(Mount {
                mount_point: PathBuf::from(unescape(l.get(4)?)),
                fstype: r.first()?.to_string(),
                options,
            })
        })
        .collect()
}

/// The mount holding `path` (a canonical host path): the longest mount point prefixing it.
pub fn find(mounts: &[Mount], path: &Path) -> Option<Mount> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.mount_point))
        .max_by_key(|(i, m)| (m.mount_point.components().count(), *i))
        .map(|(_, m)| m.clone())
}

pub fn for_path(path: &Path) -> Option<Mount> {
    let text = super::read_proc("/proc/self/mountinfo").ok()?;
    let canonical = std::fs::canonicalize(path).ok()?;
    find(&parse(&text), &canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_longest_prefix_and_nosuid() {
        let text = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:25 / /srv rw,nosuid,nodev shared:2 - tmpfs tmpfs rw
31 22 0:26 / /srv\\040data rw shared:3 - ext4 /dev/vdb rw
";
        let m = parse(text);
        let srv = find(&m, Path::new("/srv/bin/app")).unwrap();
        assert!(srv.nosuid());
        assert_eq!(srv.fstype, "tmpfs");
        let root = find(&m, Path::new("/usr/bin/app")).unwrap();
        assert!(!root.nosuid());
        // "/srv data" must not be taken for a child of "/srv".
        let data = find(&m, Path::new("/srv data/app")).unwrap();
        assert_eq!(data.mount_point, Path::new("/srv data"));
    }
}
