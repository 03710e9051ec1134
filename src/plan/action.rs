//! The primitive changes a plan is made of, the state each one touches, and how each renders
//! itself for the preview. Executing and undoing them is the executor's job (`apply`): this file
//! only reads the host.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::facts::caps::{CAP_NET_BIND_SERVICE, FileCaps, encode as encode_caps};
use crate::facts::users::UserDb;
use crate::facts::{read_sysctl, sysctl_path};
use crate::root::Root;
use crate::xattr;

/// File modes travel as octal strings ("0644") in JSON, as operators read them.
mod octal {
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
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Write a whole file atomically (temporary file, fsync, rename).
    WriteFile {
        path: PathBuf,
        content: String,
        #[serde(with = "octal")]
        mode: u32,
        owner: String,
        group: String,
    },
    /// chown then chmod an existing file.
    SetOwnerMode {
        path: PathBuf,
        owner: String,
        group: String,
        #[serde(with = "octal")]
        mode: u32,
    },
    /// Write `security.capability` as `setcap CAPS PATH` would, on the open file once it is
    /// checked to be the one planned.
    SetFileCap { path: PathBuf, caps: String },
    /// Write a value to `/proc/sys/<key>` (the live kernel setting).
    SetSysctl { key: String, value: String },
    /// Create a symbolic link (e.g. the `.wants/` link `systemctl enable` makes).
    Symlink { path: PathBuf, target: PathBuf },
    /// Create a system user with `useradd`; undone by restoring the account files exactly.
    CreateUser { name: String },
    /// Run programs (argv vectors, never a shell); `undo` runs on rollback. `check`, when given,
    /// exits 0 when the effect is in place; a rollback skips `undo` when it no longer is.
    RunCommands {
        what: String,
        run: Vec<Vec<String>>,
        undo: Vec<Vec<String>>,
        check: Option<Vec<String>>,
    },
}

/// The files `useradd` edits (and the `-` backups it leaves), snapshotted for an exact undo.
pub const ACCOUNT_FILES: &[&str] = &[
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/passwd-",
    "/etc/group-",
    "/etc/shadow-",
    "/etc/gshadow-",
    "/etc/.pwd.lock",
];

/// What an action's target looks like now: compared to detect drift, snapshotted for undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum State {
    File(FileState),
    Sysctl {
        value: Option<String>,
    },
    Link {
        target: Option<PathBuf>,
    },
    Files {
        files: BTreeMap<PathBuf, FileState>,
        user_exists: bool,
    },
    /// `in_place` is the check's verdict, or None without a check.
    Command {
        in_place: Option<bool>,
    },
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
}

mod opt_octal {
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

/// `device:inode:size:mtime_ns` of a file (see [`FileState::identity`]).
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
            };
            return Ok((absent, None));
        }
        Err(e) => return Err(e),
    };
    let content = (content && meta.is_file())
        .then(|| std::fs::read(host))
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
    };
    Ok((state, content))
}

impl Action {
    /// The file this action changes, if it changes a file (an in-root path).
    pub fn path(&self) -> Option<&Path> {
        match self {
            Action::WriteFile { path, .. }
            | Action::SetOwnerMode { path, .. }
            | Action::SetFileCap { path, .. }
            | Action::Symlink { path, .. } => Some(path),
            Action::SetSysctl { .. } | Action::CreateUser { .. } | Action::RunCommands { .. } => {
                None
            }
        }
    }

    /// Names the target for messages: a path or a sysctl key.
    pub fn target(&self) -> String {
        match self {
            Action::SetSysctl { key, .. } => key.clone(),
            Action::CreateUser { name } => format!("user {name}"),
            Action::RunCommands { what, .. } => what.clone(),
            _ => self
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        }
    }

    pub fn observe(&self, root: &Root) -> std::io::Result<State> {
        Ok(match self {
            Action::SetSysctl { key, .. } => State::Sysctl {
                value: read_sysctl(key),
            },
            Action::Symlink { path, .. } => State::Link {
                target: std::fs::read_link(root.host(path)).ok(),
            },
            Action::CreateUser { name } => State::Files {
                files: ACCOUNT_FILES
                    .iter()
                    .map(|f| {
                        Ok((
                            PathBuf::from(f),
                            observe_file(&root.host(Path::new(f)), true)?.0,
                        ))
                    })
                    .collect::<std::io::Result<_>>()?,
                user_exists: UserDb::new(root).user(name).is_some(),
            },
            Action::RunCommands { check, .. } => State::Command {
                in_place: check.as_ref().map(|c| succeeds(c)),
            },
            _ => {
                let host = root.host(self.path().unwrap_or(Path::new("/")));
                let content = matches!(self, Action::WriteFile { .. });
                State::File(observe_file(&host, content)?.0)
            }
        })
    }

    /// The programs this action runs, in order (paths are host paths).
    pub fn commands(&self, root: &Root) -> Vec<Vec<String>> {
        match self {
            Action::CreateUser { name } => vec![useradd(root, name)],
            Action::RunCommands { run, .. } => run.clone(),
            _ => Vec::new(),
        }
    }

    /// True when the target already is as this action would leave it.
    pub fn satisfied(&self, state: &State, db: &UserDb) -> bool {
        let ids = |owner: &str, group: &str| (db.user(owner).map(|a| a.uid), db.group_gid(group));
        match (self, state) {
            (
                Action::WriteFile {
                    content,
                    mode,
                    owner,
                    group,
                    ..
                },
                State::File(f),
            ) => {
                let (uid, gid) = ids(owner, group);
                f.exists
                    && f.sha256.as_deref() == Some(sha256(content.as_bytes()).as_str())
                    && f.mode == Some(*mode)
                    && f.uid == uid
                    && f.gid == gid
            }
            (
                Action::SetOwnerMode {
                    owner, group, mode, ..
                },
                State::File(f),
            ) => {
                let (uid, gid) = ids(owner, group);
                f.mode == Some(*mode) && f.uid == uid && f.gid == gid
            }
            (Action::SetFileCap { .. }, State::File(f)) => f
                .capability()
                .is_some_and(|c| c.grants(CAP_NET_BIND_SERVICE)),
            (Action::SetSysctl { value, .. }, State::Sysctl { value: now }) => {
                now.as_deref() == Some(value.as_str())
            }
            (Action::Symlink { target, .. }, State::Link { target: now }) => {
                now.as_ref() == Some(target)
            }
            (Action::CreateUser { .. }, State::Files { user_exists, .. }) => *user_exists,
            (Action::RunCommands { .. }, State::Command { in_place }) => in_place.unwrap_or(true),
            _ => false,
        }
    }

    /// One line saying what changes.
    pub fn summary(&self, before: &State, db: &UserDb) -> String {
        let who = |uid: Option<u32>, gid: Option<u32>| {
            let u = uid.map(|u| db.user_name(u).unwrap_or_else(|| u.to_string()));
            let g = gid.map(|g| db.group_name(g).unwrap_or_else(|| g.to_string()));
            format!("{}:{}", u.unwrap_or_default(), g.unwrap_or_default())
        };
        match (self, before) {
            (
                Action::WriteFile {
                    path,
                    mode,
                    owner,
                    group,
                    ..
                },
                State::File(f),
            ) => {
                let what = if f.exists { "replace" } else { "create" };
                format!("{what} {} ({mode:04o} {owner}:{group})", path.display())
            }
            (
                Action::SetOwnerMode {
                    path,
                    owner,
                    group,
                    mode,
                },
                State::File(f),
            ) => format!(
                "set owner {} -> {owner}:{group} and mode {:04o} -> {mode:04o} on {}",
                who(f.uid, f.gid),
                f.mode.unwrap_or(0),
                path.display()
            ),
            (Action::SetFileCap { path, caps }, State::File(f)) => format!(
                "write security.capability = {} on {}, if still the reviewed file (as `setcap \
                 {caps}` would; now: {})",
                encode_caps(caps)
                    .and_then(|v| FileCaps::parse(&v))
                    .map_or_else(|| caps.clone(), |c| c.text),
                path.display(),
                f.capability().map_or("none".to_string(), |c| c.text),
            ),
            (Action::SetSysctl { key, value }, State::Sysctl { value: now }) => format!(
                "set {key} = {value} (now {}) by writing {}",
                now.as_deref().unwrap_or("absent"),
                sysctl_path(key).display()
            ),
            (Action::Symlink { path, target }, State::Link { target: now }) => format!(
                "link {} -> {} (now: {})",
                path.display(),
                target.display(),
                now.as_ref()
                    .map_or("absent".to_string(), |t| format!("-> {}", t.display()))
            ),
            (Action::CreateUser { name }, _) => {
                format!("create system user {name} (no home, no login shell)")
            }
            (Action::RunCommands { what, .. }, _) => what.clone(),
            _ => self.target(),
        }
    }

    /// How this action is undone, in words precise enough to do it by hand.
    pub fn undo(&self, before: &State, root: &Root) -> String {
        match (self, before) {
            (Action::WriteFile { path, .. }, State::File(f)) if !f.exists => format!(
                "remove {}, and any directory lowport created for it",
                path.display()
            ),
            (Action::WriteFile { path, .. }, State::File(_)) => format!(
                "restore the previous {} (content, mode, owner, extended attributes; \
                 kept in the journal)",
                path.display()
            ),
            (Action::SetOwnerMode { path, .. }, State::File(f)) => format!(
                "chown {}:{} and chmod {:04o} {}, then restore its extended attributes \
                 (chown clears file capabilities)",
                f.uid.unwrap_or(0),
                f.gid.unwrap_or(0),
                f.mode.unwrap_or(0),
                path.display()
            ),
            (Action::SetFileCap { path, .. }, State::File(f)) => match f.capability() {
                None => format!(
                    "remove the security.capability attribute (as `setcap -r {}`)",
                    root.host(path).display()
                ),
                Some(c) => format!("restore the previous capability {}", c.text),
            },
            (Action::SetSysctl { key, .. }, State::Sysctl { value: Some(v) }) => {
                format!("set {key} back to {v}")
            }
            (Action::Symlink { path, .. }, State::Link { target: None }) => {
                format!("remove the link {}", path.display())
            }
            (Action::CreateUser { name }, _) => format!(
                "restore /etc/passwd, group, shadow and gshadow (and their - backups) exactly as \
                 they were, which removes {name}"
            ),
            (Action::RunCommands { undo, .. }, _) if undo.is_empty() => "nothing to undo".into(),
            (Action::RunCommands { undo, .. }, _) => format!(
                "runs: {}",
                undo.iter()
                    .map(|a| crate::render::shell_words(a))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            _ => format!("restore {}", self.target()),
        }
    }
}

/// A unified diff of a planned file against what is on disk, or None for other actions.
pub fn diff(action: &Action, root: &Root) -> Option<String> {
    let Action::WriteFile { path, content, .. } = action else {
        return None;
    };
    let current = std::fs::read(root.host(path)).ok();
    let old = current
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let name = path.display().to_string();
    let old_name = if current.is_some() {
        name.clone()
    } else {
        "/dev/null".to_string()
    };
    Some(
        similar::TextDiff::from_lines(old.as_ref(), content.as_str())
            .unified_diff()
            .context_radius(3)
            .header(&old_name, &name)
            .to_string(),
    )
}

/// Runs a read-only check; true when it exits 0.
pub fn succeeds(argv: &[String]) -> bool {
    let Some((prog, args)) = argv.split_first() else {
        return false;
    };
    std::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `useradd` for a system account with no home and no login shell, under `--root` when given.
pub fn useradd(root: &Root, name: &str) -> Vec<String> {
    let mut argv: Vec<String> = vec!["useradd".into()];
    if !root.is_host() {
        argv.extend(["--root".into(), root.dir().display().to_string()]);
    }
    argv.extend(
        [
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    argv.extend(["/usr/sbin/nologin".into(), "--".into(), name.into()]);
    argv
}

/// `systemd-analyze security --offline=true` on a full unit lowport is about to write: the
/// overall exposure line, then every ✗ line. None for other actions, or without systemd-analyze.
pub fn exposure(action: &Action) -> Option<String> {
    let Action::WriteFile { path, content, .. } = action else {
        return None;
    };
    let name = path.file_name()?.to_str()?;
    if !name.ends_with(".service") || !content.contains("[Service]") {
        return None;
    }
    let dir = tempfile::tempdir().ok()?;
    let file = dir.path().join(name);
    std::fs::write(&file, content).ok()?;
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&file)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let overall = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))?;
    let mut lines = vec![overall.trim_start_matches(['→', ' ']).to_string()];
    lines.extend(text.lines().filter(|l| l.starts_with('✗')).map(|l| {
        // "✗ NAME   DESCRIPTION   VALUE": keep the name and the value, the columns are wide.
        let words: Vec<&str> = l.split_whitespace().collect();
        format!(
            "✗ {} ({})",
            words.get(1).unwrap_or(&""),
            words.last().unwrap_or(&"")
        )
    }));
    Some(lines.join("\n"))
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
