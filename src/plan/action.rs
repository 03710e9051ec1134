//! The primitive changes a plan is made of, the state each one touches, and how each renders
//! itself for the preview. Executing and undoing them is the executor's job (`apply`): this file
//! only reads the host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::facts::caps::{CAP_NET_BIND_SERVICE, FileCaps, encode as encode_caps};
use crate::facts::files::octal;
pub use crate::facts::files::{FileState, hex, identity, observe_file, sha256, unhex};
pub use crate::facts::host::succeeds;
use crate::facts::host::{Host, LiveHost};
use crate::root::Root;

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
    /// Set a live kernel setting (`/proc/sys/<key>` on Linux; see `sysctl`).
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
    /// Planned from a facts document that does not hold this target's state.
    Unknown,
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

    /// The target's state on the running host under `root`, read now.
    pub fn observe(&self, root: &Root) -> std::io::Result<State> {
        self.observe_on(&LiveHost::new(root.clone()))
    }

    /// The target's state as `host` knows it; `State::Unknown` where it does not.
    pub fn observe_on(&self, host: &dyn Host) -> std::io::Result<State> {
        let known = match self {
            Action::SetSysctl { key, .. } => host.sysctl(key).map(|value| State::Sysctl { value }),
            Action::Symlink { path, .. } => host.link(path).map(|target| State::Link { target }),
            Action::CreateUser { name } => {
                let mut files = BTreeMap::new();
                for f in ACCOUNT_FILES {
                    let Some(state) = host.file(Path::new(f), true)? else {
                        return Ok(State::Unknown);
                    };
                    files.insert(PathBuf::from(f), state);
                }
                host.user(name).map(|u| State::Files {
                    files,
                    user_exists: u.is_some(),
                })
            }
            Action::RunCommands { check, .. } => match check {
                None => Some(State::Command { in_place: None }),
                Some(c) => host
                    .check(c)
                    .map(|ok| State::Command { in_place: Some(ok) }),
            },
            _ => {
                let path = self.path().unwrap_or(Path::new("/"));
                let content = matches!(self, Action::WriteFile { .. });
                host.file(path, content)?.map(State::File)
            }
        };
        Ok(known.unwrap_or(State::Unknown))
    }

    /// The programs this action runs, in order (paths are host paths).
    /// `program` names the absolute path of a system program (the facts' tool path when
    /// planning, so a plan from a facts document shows the target host's path).
    pub fn commands(&self, root: &Root, program: &dyn Fn(&str) -> String) -> Vec<Vec<String>> {
        match self {
            Action::CreateUser { name } => vec![useradd(root, name, program)],
            Action::RunCommands { run, .. } => run.clone(),
            _ => Vec::new(),
        }
    }

    /// True when the target already is as this action would leave it (never for a state that
    /// is not known).
    pub fn satisfied(&self, state: &State, host: &dyn Host) -> bool {
        let ids = |owner: &str, group: &str| {
            (
                host.user(owner).flatten().map(|a| a.uid),
                host.group_gid(group).flatten(),
            )
        };
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
    pub fn summary(&self, before: &State, host: &dyn Host) -> String {
        let who = |uid: Option<u32>, gid: Option<u32>| {
            let u = uid.map(|u| host.user_name(u).flatten().unwrap_or_else(|| u.to_string()));
            let g = gid.map(|g| {
                host.group_name(g)
                    .flatten()
                    .unwrap_or_else(|| g.to_string())
            });
            format!("{}:{}", u.unwrap_or_default(), g.unwrap_or_default())
        };
        match (self, before) {
            (Action::CreateUser { name }, _) => {
                format!("create system user {name} (no home, no login shell)")
            }
            (Action::RunCommands { what, .. }, State::Unknown) => {
                format!("{what} (whether it is in place is unknown)")
            }
            (Action::RunCommands { what, .. }, _) => what.clone(),
            (_, State::Unknown) => format!(
                "{} (its current state is unknown: unreadable here, or not in the facts)",
                self.change(host.family())
            ),
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
                "set {key} = {value} (now {}) {}",
                now.as_deref().unwrap_or("absent"),
                crate::sysctl::how(host.family(), key, value)
            ),
            (Action::Symlink { path, target }, State::Link { target: now }) => format!(
                "link {} -> {} (now: {})",
                path.display(),
                target.display(),
                now.as_ref()
                    .map_or("absent".to_string(), |t| format!("-> {}", t.display()))
            ),
            _ => self.target(),
        }
    }

    /// What the action does, without the state it starts from, on an OS of `family`.
    fn change(&self, family: &str) -> String {
        match self {
            Action::WriteFile {
                path,
                mode,
                owner,
                group,
                ..
            } => format!("write {} ({mode:04o} {owner}:{group})", path.display()),
            Action::SetOwnerMode {
                path,
                owner,
                group,
                mode,
            } => format!(
                "set owner {owner}:{group} and mode {mode:04o} on {}",
                path.display()
            ),
            Action::SetFileCap { path, caps } => {
                format!("set file capability {caps} on {}", path.display())
            }
            Action::SetSysctl { key, value } => {
                format!(
                    "set {key} = {value} {}",
                    crate::sysctl::how(family, key, value)
                )
            }
            Action::Symlink { path, target } => {
                format!("link {} -> {}", path.display(), target.display())
            }
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
            (Action::WriteFile { path, .. }, State::File(FileState { link: Some(t), .. })) => {
                format!(
                    "put back the symbolic link {} -> {}",
                    path.display(),
                    t.display()
                )
            }
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
                "remove the entries of {name} that useradd added to /etc/passwd, group, shadow \
                 and gshadow (only while unchanged; other accounts and edits stay)"
            ),
            (Action::RunCommands { undo, .. }, _) if undo.is_empty() => "nothing to undo".into(),
            (Action::RunCommands { undo, .. }, _) => format!(
                "runs: {}",
                undo.iter()
                    .map(shell_words::join)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            _ => format!("restore {}", self.target()),
        }
    }
}

/// A unified diff of a planned file against the target's current text, or None for other
/// actions. A text the host does not know is said so instead of a guessed diff.
pub fn diff(action: &Action, host: &dyn Host) -> Option<String> {
    let Action::WriteFile { path, content, .. } = action else {
        return None;
    };
    let name = path.display().to_string();
    let Some(current) = host.text(path) else {
        return Some(format!(
            "(the current content of {name} is unknown: the facts do not hold it)\n"
        ));
    };
    let old_name = if current.is_some() {
        name.clone()
    } else {
        "/dev/null".to_string()
    };
    Some(
        similar::TextDiff::from_lines(current.as_deref().unwrap_or_default(), content.as_str())
            .unified_diff()
            .context_radius(3)
            .header(&old_name, &name)
            .to_string(),
    )
}

/// For a full systemd unit lowport is about to write: its `systemd-analyze security` exposure.
/// None for other actions, or when the host has no answer.
pub fn exposure(action: &Action, host: &dyn Host) -> Option<String> {
    let Action::WriteFile { path, content, .. } = action else {
        return None;
    };
    let name = path.file_name()?.to_str()?;
    if !name.ends_with(".service") || !content.contains("[Service]") {
        return None;
    }
    host.exposure(name, content).flatten()
}

/// `useradd` for a system account with no home and no login shell, under `--root` when given.
pub fn useradd(root: &Root, name: &str, program: &dyn Fn(&str) -> String) -> Vec<String> {
    let mut argv: Vec<String> = vec![program("useradd")];
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
