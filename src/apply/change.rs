//! Carrying out and undoing one primitive action. This and the journal are the only code that
//! changes the host.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};

use super::journal::{Journal, Snapshot};
use crate::facts::caps;
use crate::facts::sysctl_path;
use crate::facts::users::UserDb;
use crate::plan::action::{ACCOUNT_FILES, identity, observe_file};
use crate::plan::{Action, FileState, State};
use crate::root::Root;
use crate::xattr;

/// Missing ancestors of an in-root path, outermost first.
fn missing_dirs(root: &Root, path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = path
        .ancestors()
        .skip(1)
        .filter(|d| !root.host(d).exists())
        .map(Path::to_path_buf)
        .collect();
    out.reverse();
    out
}

/// Records the target's state (and, for files about to be rewritten, their content) in the
/// journal folder. Called, and made durable, before the action runs.
pub fn snapshot(
    action: &Action,
    root: &Root,
    journal: &Journal,
    step: usize,
) -> anyhow::Result<Snapshot> {
    let state = action.observe(root)?;
    let rewritten: Vec<PathBuf> = match action {
        Action::WriteFile { path, .. } => vec![path.clone()],
        Action::CreateUser { .. } => ACCOUNT_FILES.iter().map(PathBuf::from).collect(),
        _ => Vec::new(),
    };
    let mut backups = BTreeMap::new();
    for (i, path) in rewritten.iter().enumerate() {
        if let (_, Some(content)) = observe_file(&root.host(path), true)? {
            let name = format!("step-{step}.{i}.backup");
            journal.save_backup(&name, &content)?;
            backups.insert(path.clone(), name);
        }
    }
    let created_dirs = match action {
        Action::WriteFile { path, .. } | Action::Symlink { path, .. } => missing_dirs(root, path),
        _ => Vec::new(),
    };
    Ok(Snapshot {
        state,
        backups,
        created_dirs,
    })
}

/// Runs argv vectors in order; the first failure stops, with the program's stderr.
fn run_all(argvs: &[Vec<String>]) -> anyhow::Result<()> {
    for argv in argvs {
        let Some((prog, args)) = argv.split_first() else {
            continue;
        };
        let out = std::process::Command::new(prog)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("running {prog}"))?;
        if !out.status.success() {
            bail!(
                "`{}` failed ({}): {}",
                crate::render::shell_words(argv),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes a file atomically: a temporary file in the same directory, owner and mode set, fsync,
/// rename over the target, fsync of the directory.
fn write_atomic(
    target: &Path,
    content: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
) -> anyhow::Result<()> {
    let dir = target
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent", target.display()))?;
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.lowport-{}", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(content)?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)?;
        fsync_dir(dir)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", target.display()))
}

fn ids(db: &UserDb, owner: &str, group: &str) -> anyhow::Result<(u32, u32)> {
    let uid = db
        .user(owner)
        .map(|a| a.uid)
        .ok_or_else(|| anyhow!("no user '{owner}'"))?;
    let gid = db
        .group_gid(group)
        .ok_or_else(|| anyhow!("no group '{group}'"))?;
    Ok((uid, gid))
}

fn write_sysctl(key: &str, value: &str) -> anyhow::Result<()> {
    let path = sysctl_path(key);
    std::fs::write(&path, format!("{value}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    // Read back: the kernel may clamp or silently keep another value.
    let now = std::fs::read_to_string(&path)?;
    if now.trim() != value {
        bail!("{key} reads {} after writing {value}", now.trim());
    }
    Ok(())
}

/// Marks the file the plan observed, and only it: opens the path without following a symlink
/// (and without blocking on a FIFO or taking a terminal), then checks the open file itself
/// (fstat) — a regular file with the planned device, inode, size and mtime, owned by root and
/// writable by nobody else (an ACL granting write shows as the group write bit, its mask) — and
/// writes `security.capability` through that descriptor (fsetxattr). A file swapped, edited or
/// opened up after the review is refused; nothing runs `setcap`.
fn set_file_cap(host: &Path, caps: &str, planned: &State) -> anyhow::Result<()> {
    let refuse = |why: String| {
        anyhow!(
            "refusing to set the capability on {}: {why}; nothing was marked. Review the file and \
             make a new plan",
            host.display()
        )
    };
    let value =
        caps::encode(caps).ok_or_else(|| refuse(format!("'{caps}' is not a capability text")))?;
    let State::File(FileState {
        identity: Some(want),
        ..
    }) = planned
    else {
        return Err(refuse("the plan recorded no file there".into()));
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(host)
        .map_err(|e| refuse(format!("it cannot be opened as a file ({e})")))?;
    let meta = file
        .metadata()
        .with_context(|| format!("fstat {}", host.display()))?;
    if !meta.is_file() {
        return Err(refuse("it is no longer a regular file".into()));
    }
    let now = identity(&meta);
    if now != *want {
        return Err(refuse(format!(
            "it was replaced or written to since the plan was made (device:inode:size:mtime \
             {want} then, {now} now)"
        )));
    }
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "it is now owned by uid {} with mode {:04o}: only root may be able to write a file \
             that carries a capability",
            meta.uid(),
            meta.mode() & 0o7777
        )));
    }
    xattr::set_on(&file, xattr::CAPABILITY, &value)
        .with_context(|| format!("writing security.capability on {}", host.display()))
}

/// Carries out one action. `planned` is the target's state when the plan was made: a step that
/// must act on exactly what was reviewed (a file capability) checks it.
pub fn execute(action: &Action, planned: &State, root: &Root, db: &UserDb) -> anyhow::Result<()> {
    match action {
        Action::WriteFile {
            path,
            content,
            mode,
            owner,
            group,
        } => {
            let (uid, gid) = ids(db, owner, group)?;
            for d in missing_dirs(root, path) {
                std::fs::DirBuilder::new()
                    .mode(0o755)
                    .create(root.host(&d))?;
            }
            write_atomic(&root.host(path), content.as_bytes(), *mode, uid, gid)
        }
        Action::SetOwnerMode {
            path,
            owner,
            group,
            mode,
        } => {
            let (uid, gid) = ids(db, owner, group)?;
            let host = root.host(path);
            std::os::unix::fs::lchown(&host, Some(uid), Some(gid))?;
            std::fs::set_permissions(&host, std::fs::Permissions::from_mode(*mode))?;
            Ok(())
        }
        Action::SetFileCap { path, caps } => set_file_cap(&root.host(path), caps, planned),
        Action::SetSysctl { key, value } => write_sysctl(key, value),
        Action::Symlink { path, target } => {
            for d in missing_dirs(root, path) {
                std::fs::DirBuilder::new()
                    .mode(0o755)
                    .create(root.host(&d))?;
            }
            let host = root.host(path);
            // A link in a temporary name renamed over the target replaces it atomically.
            let tmp = host.with_file_name(format!(".lowport-link-{}", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(target, &tmp)?;
            std::fs::rename(&tmp, &host).with_context(|| format!("linking {}", host.display()))
        }
        Action::CreateUser { .. } | Action::RunCommands { .. } => run_all(&action.commands(root)),
    }
}

/// Puts one file back: the backed-up content with its mode, owner and attributes, or removes it
/// when it did not exist.
fn restore_file(
    root: &Root,
    path: &Path,
    f: &FileState,
    backup: Option<&String>,
    read: &impl Fn(&str) -> std::io::Result<Vec<u8>>,
) -> anyhow::Result<()> {
    let host = root.host(path);
    if f.exists {
        let name = backup.ok_or_else(|| anyhow!("no backup recorded for {}", path.display()))?;
        let content = read(name).with_context(|| format!("reading backup {name}"))?;
        let mode = f.mode.unwrap_or(0o644);
        write_atomic(
            &host,
            &content,
            mode,
            f.uid.unwrap_or(0),
            f.gid.unwrap_or(0),
        )?;
        return restore_meta(&host, f);
    }
    match std::fs::remove_file(&host) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", host.display())),
    }
    if let Some(parent) = host.parent() {
        fsync_dir(parent).ok();
    }
    Ok(())
}

fn restore_meta(host: &Path, f: &FileState) -> anyhow::Result<()> {
    std::os::unix::fs::lchown(host, f.uid, f.gid)?;
    if let Some(mode) = f.mode {
        std::fs::set_permissions(host, std::fs::Permissions::from_mode(mode))?;
    }
    // Last: chown and chmod can clear security.capability.
    xattr::restore(host, &f.xattr_bytes())?;
    Ok(())
}

/// Puts the target back as the snapshot recorded it. Safe to repeat, and safe when the action
/// never ran or ran only partly.
pub fn restore(
    action: &Action,
    root: &Root,
    snap: &Snapshot,
    backup: impl Fn(&str) -> std::io::Result<Vec<u8>>,
) -> anyhow::Result<()> {
    let remove_created = || {
        for d in snap.created_dirs.iter().rev() {
            // Only if empty: never delete what someone else put there since.
            let _ = std::fs::remove_dir(root.host(d));
        }
    };
    match (action, &snap.state) {
        (Action::WriteFile { path, .. }, State::File(f)) => {
            restore_file(root, path, f, snap.backups.get(path), &backup)?;
            remove_created();
            Ok(())
        }
        (Action::CreateUser { .. }, State::Files { files, .. }) => {
            for (path, f) in files {
                restore_file(root, path, f, snap.backups.get(path), &backup)?;
            }
            Ok(())
        }
        (Action::Symlink { path, .. }, State::Link { target }) => {
            let host = root.host(path);
            match std::fs::remove_file(&host) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
            if let Some(old) = target {
                std::os::unix::fs::symlink(old, &host)?;
            }
            remove_created();
            Ok(())
        }
        (Action::RunCommands { undo, check, .. }, State::Command { .. }) => {
            // Nothing to undo when the check says the effect is not there (the step never ran).
            if check
                .as_ref()
                .is_some_and(|c| !crate::plan::action::succeeds(c))
            {
                return Ok(());
            }
            run_all(undo)
        }
        (Action::SetOwnerMode { path, .. } | Action::SetFileCap { path, .. }, State::File(f)) => {
            restore_meta(&root.host(path), f)
        }
        (Action::SetSysctl { key, .. }, State::Sysctl { value: Some(v) }) => write_sysctl(key, v),
        _ => bail!(
            "the snapshot of {} does not match its step",
            action.target()
        ),
    }
}
