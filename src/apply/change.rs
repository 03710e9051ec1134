//! Carrying out and undoing one primitive action. This and the journal are the only code that
//! changes the host.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};

use super::journal::{Journal, Snapshot};
use super::safedir::try_write_lock;
use crate::facts::caps;
use crate::facts::users::UserDb;
use crate::os::{self, MetadataExt};
use crate::plan::action::{ACCOUNT_FILES, identity, observe_file};
use crate::plan::{Action, FileState, State};
use crate::root::Root;
use crate::xattr;

/// Missing ancestors of an in-root path, outermost first, as they are once the links above them
/// are followed inside the root.
fn missing_dirs(root: &Root, path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = root
        .inside(path)
        .ancestors()
        .skip(1)
        .filter(|d| std::fs::symlink_metadata(root.entry(d)).is_err())
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
    journal: &mut Journal,
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
        // A FIFO or device there would block the write or useradd's open, under the lock.
        if let Ok(m) = std::fs::symlink_metadata(root.entry(path))
            && !m.is_file()
            && !m.file_type().is_symlink()
        {
            bail!(
                "{} is not a regular file (a FIFO, a device or a folder?): lowport will not write \
                 it or let useradd open it",
                path.display()
            );
        }
        if let (_, Some(content)) = observe_file(&root.entry(path), true)? {
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
        added: matches!(action, Action::CreateUser { .. }).then(|| added_name(step)),
    })
}

/// The files `useradd` adds a user's entries to (the `-` files are its copies of the old ones).
const ENTRY_FILES: [&str; 4] = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"];

/// Per account file, the lines a step added.
type Entries = BTreeMap<PathBuf, Vec<String>>;

fn added_name(step: usize) -> String {
    format!("step-{step}.added")
}

fn read_opt(host: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match crate::facts::files::read(host) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Is this account-file line (with or without its newline) the entry of `name`?
fn is_entry_of(line: &[u8], name: &str) -> bool {
    line.split(|b| *b == b':').next() == Some(name.as_bytes())
}

fn text(line: &[u8]) -> String {
    String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line)).into_owned()
}

/// After a new user's step ran: keeps the entries `useradd` added for it in the run folder, so
/// a rollback can tell them from later edits. Other actions keep nothing.
pub fn keep_added(
    action: &Action,
    root: &Root,
    journal: &mut Journal,
    step: usize,
) -> anyhow::Result<()> {
    let Action::CreateUser { name } = action else {
        return Ok(());
    };
    let mut added = Entries::new();
    for f in ENTRY_FILES {
        let now = read_opt(&root.host(Path::new(f)))?.unwrap_or_default();
        let mine: Vec<String> = now
            .split_inclusive(|b| *b == b'\n')
            .filter(|l| is_entry_of(l, name))
            .map(text)
            .collect();
        added.insert(f.into(), mine);
    }
    journal.save_backup(&added_name(step), &serde_json::to_vec(&added)?)?;
    Ok(())
}

/// Each account file without the entries of `name` that the step added, or why they cannot be
/// removed: an entry changed since (a password set, a member added). Without the record of what
/// was added (a run killed right after `useradd`), the user's current entries are taken as added.
fn without_own_entries(
    name: &str,
    root: &Root,
    snap: &Snapshot,
    backup: &impl Fn(&str) -> std::io::Result<Vec<u8>>,
) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let recorded: Option<Entries> = snap
        .added
        .as_deref()
        .and_then(|file| backup(file).ok())
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut out = Vec::new();
    for f in ENTRY_FILES {
        let Some(now) = read_opt(&root.host(Path::new(f)))? else {
            continue;
        };
        let (mine, rest): (Vec<&[u8]>, Vec<&[u8]>) = now
            .split_inclusive(|b| *b == b'\n')
            .partition(|l| is_entry_of(l, name));
        if mine.is_empty() {
            continue;
        }
        if let Some(rec) = &recorded {
            let have: Vec<String> = mine.iter().map(|l| text(l)).collect();
            if rec.get(Path::new(f)) != Some(&have) {
                bail!(
                    "the entry of {name} in {f} changed since this run created the user; a \
                     rollback removes only entries it added, unchanged. Put the entry back as it \
                     was, or remove the user yourself (`userdel {name}`), then roll back again"
                );
            }
        }
        out.push((PathBuf::from(f), rest.concat()));
    }
    Ok(out)
}

/// Why the user a step created cannot be removed exactly, if it cannot.
pub fn account_drift(
    action: &Action,
    root: &Root,
    snap: &Snapshot,
    backup: &impl Fn(&str) -> std::io::Result<Vec<u8>>,
) -> Option<String> {
    let Action::CreateUser { name } = action else {
        return None;
    };
    without_own_entries(name, root, snap, backup)
        .err()
        .map(|e| format!("{e:#}"))
}

/// Takes `/etc/.pwd.lock` under the root as shadow-utils' `lckpwdf` does (a POSIX write lock,
/// waiting up to 15 s) so that no `useradd`, `passwd` or `vipw` edits the account files
/// meanwhile. The file stays: shadow-utils never removes it either.
fn lock_account_files(root: &Root) -> anyhow::Result<File> {
    let path = root.host(Path::new("/etc/.pwd.lock"));
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    os::creation_mode(&mut opts, 0o600);
    let file = os::no_follow(&mut opts)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !try_write_lock(&file).with_context(|| format!("locking {}", path.display()))? {
        if std::time::Instant::now() >= deadline {
            bail!(
                "the account files stay locked by another program ({} held for 15 s): let it \
                 finish (useradd, passwd, vipw…), then roll back again",
                path.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(file)
}

/// Removes exactly the entries a step's `useradd` added, under the account-file lock, keeping
/// every other line (later users, password changes) and each file's owner, mode and attributes.
/// A `-` copy `useradd` made is put back only while it still is that copy.
fn remove_user(
    name: &str,
    root: &Root,
    snap: &Snapshot,
    files: &BTreeMap<PathBuf, FileState>,
    backup: &impl Fn(&str) -> std::io::Result<Vec<u8>>,
) -> anyhow::Result<()> {
    let _lock = lock_account_files(root)?;
    for f in ACCOUNT_FILES {
        sweep_temporaries(&root.host(Path::new(f)));
    }
    for (path, content) in without_own_entries(name, root, snap, backup)? {
        let host = root.host(&path);
        let (now, _) = observe_file(&host, false)?;
        write_atomic(
            &host,
            &content,
            now.mode.unwrap_or(0o644),
            now.uid.unwrap_or(0),
            now.gid.unwrap_or(0),
        )?;
        restore_meta(&host, &now)?;
    }
    for f in ENTRY_FILES {
        let copy = PathBuf::from(format!("{f}-"));
        let made_by_step = snap
            .backups
            .get(Path::new(f))
            .map(|b| backup(b))
            .transpose()
            .with_context(|| format!("reading the backup of {f}"))?;
        let now = read_opt(&root.host(&copy))?;
        if let (Some(state), Some(_)) = (files.get(&copy), &now)
            && now == made_by_step
        {
            restore_file(root, &copy, state, snap.backups.get(&copy), backup)?;
        }
    }
    Ok(())
}

/// True when the target is back as the snapshot recorded it (a rollback that ran but could not
/// be journaled). A rewritten file counts by content, since a rewrite gives it a new inode.
pub fn is_restored(action: &Action, root: &Root, snap: &Snapshot) -> bool {
    let by_content = |f: &FileState| FileState {
        identity: f.sha256.is_none().then(|| f.identity.clone()).flatten(),
        ..f.clone()
    };
    match (action.observe(root), &snap.state) {
        (Ok(State::File(now)), State::File(then)) => by_content(&now) == by_content(then),
        (Ok(now), then) => now == *then,
        (Err(_), _) => false,
    }
}

/// Runs argv vectors in order; the first failure stops, with the program's stderr.
fn run_all(argvs: &[Vec<String>]) -> anyhow::Result<()> {
    for argv in argvs {
        let Some((prog, args)) = argv.split_first() else {
            continue;
        };
        let out = crate::programs::command(prog)
            .map_err(|e| anyhow!(e))?
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("running {prog}"))?;
        if !out.status.success() {
            bail!(
                "`{}` failed ({}): {}",
                shell_words::join(argv),
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

/// The temporary name next to `target` that lowport writes or links in before renaming it over
/// `target`: `.NAME.lowport-PID`.
fn temporary(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    target.with_file_name(format!(".{name}.lowport-{}", std::process::id()))
}

/// Removes what a killed lowport left of its temporaries for `target` (`.NAME.lowport-PID`, any
/// pid: the caller holds the lock, so no other lowport is writing one): only what lowport makes
/// there, a root-owned file with no other name or a root-owned link, unlinked by name, never
/// followed.
fn sweep_temporaries(target: &Path) {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return;
    };
    let prefix = format!(".{}.lowport-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        let ours = file
            .to_str()
            .is_some_and(|f| super::journal::named_by_pid(f, &prefix));
        let made = std::fs::symlink_metadata(e.path()).is_ok_and(|m| {
            m.uid() == 0 && (m.file_type().is_symlink() || (m.is_file() && m.nlink() == 1))
        });
        if ours && made {
            let _ = std::fs::remove_file(e.path());
        }
    }
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
    let tmp = temporary(target);
    let result = (|| -> anyhow::Result<()> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        let mut f = os::creation_mode(&mut opts, 0o600).open(&tmp)?;
        f.write_all(content)?;
        os::fchown(&f, Some(uid), Some(gid))?;
        os::set_file_mode(&f, mode)?;
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
    let file = os::no_follow_no_block(OpenOptions::new().read(true))
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
                os::create_dir(&root.entry(&d), 0o755)?;
            }
            write_atomic(&root.entry(path), content.as_bytes(), *mode, uid, gid)
        }
        Action::SetOwnerMode {
            path,
            owner,
            group,
            mode,
        } => {
            let (uid, gid) = ids(db, owner, group)?;
            set_owner_mode(&root.entry(path), Some(uid), Some(gid), Some(*mode))
        }
        // File capabilities and the shadow-utils account files are Linux's; elsewhere a method
        // grants and creates users with its own commands (RunCommands).
        Action::SetFileCap { path, .. } if !cfg!(target_os = "linux") => bail!(
            "cannot set a file capability on {}: file capabilities exist on Linux only",
            path.display()
        ),
        Action::CreateUser { name } if !cfg!(target_os = "linux") => bail!(
            "cannot create user {name}: this step runs shadow-utils' useradd and is undone by \
             editing /etc/passwd, group, shadow and gshadow, which only Linux keeps that way"
        ),
        Action::SetFileCap { path, caps } => set_file_cap(&root.host(path), caps, planned),
        Action::SetSysctl { key, value } => crate::sysctl::write(key, value),
        Action::Symlink { path, target } => {
            for d in missing_dirs(root, path) {
                os::create_dir(&root.entry(&d), 0o755)?;
            }
            let host = root.entry(path);
            // Only a link is replaced: a file or directory there is someone's, and the snapshot
            // of a link step could not bring it back.
            if std::fs::symlink_metadata(&host).is_ok_and(|m| !m.file_type().is_symlink()) {
                bail!(
                    "{} exists and is not a symbolic link; lowport leaves it as it is",
                    path.display()
                );
            }
            // A link in a temporary name renamed over the target replaces it atomically.
            let tmp = temporary(&host);
            let _ = std::fs::remove_file(&tmp);
            os::symlink(target, &tmp)?;
            std::fs::rename(&tmp, &host).with_context(|| format!("linking {}", host.display()))
        }
        Action::CreateUser { .. } | Action::RunCommands { .. } => {
            run_all(&action.commands(root, &crate::programs::shown))
        }
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
    let host = root.entry(path);
    if let Some(target) = &f.link {
        return restore_link(&host, target, f);
    }
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

/// Puts a symlink back as it was (a masked unit's `-> /dev/null`, say): the same target, the same
/// owner, replacing whatever is there now in one rename.
fn restore_link(host: &Path, target: &Path, f: &FileState) -> anyhow::Result<()> {
    let tmp = temporary(host);
    let _ = std::fs::remove_file(&tmp);
    os::symlink(target, &tmp)?;
    os::lchown(&tmp, f.uid, f.gid)?;
    std::fs::rename(&tmp, host)
        .with_context(|| format!("restoring the link {}", host.display()))?;
    if let Some(parent) = host.parent() {
        fsync_dir(parent).ok();
    }
    Ok(())
}

/// Sets the owner and mode of the regular file at `host` through a descriptor opened without
/// following a symlink or blocking on a FIFO: chmod by path would follow a link planted there,
/// and change whatever it points at.
fn set_owner_mode(
    host: &Path,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: Option<u32>,
) -> anyhow::Result<()> {
    let file = os::no_follow_no_block(OpenOptions::new().read(true))
        .open(host)
        .with_context(|| format!("opening {} as a file, not following a link", host.display()))?;
    if !file.metadata()?.is_file() {
        bail!("{} is not a regular file: not changing it", host.display());
    }
    os::fchown(&file, uid, gid)?;
    if let Some(mode) = mode {
        os::set_file_mode(&file, mode)?;
    }
    Ok(())
}

fn restore_meta(host: &Path, f: &FileState) -> anyhow::Result<()> {
    set_owner_mode(host, f.uid, f.gid, f.mode)?;
    // Last: chown and chmod can clear security.capability.
    xattr::restore(host, &f.xattr_bytes())?;
    Ok(())
}

/// For a step that changes a file's owner, mode or capability (only ever a regular file, through
/// the file itself): why the file is no longer there to undo it on (moved away, removed, a link
/// in its place), said for the operator. The undo leaves what is there now alone.
pub fn moved_away(action: &Action, root: &Root) -> Option<String> {
    let (Action::SetFileCap { path, .. } | Action::SetOwnerMode { path, .. }) = action else {
        return None;
    };
    if std::fs::symlink_metadata(root.entry(path)).is_ok_and(|m| m.is_file()) {
        return None;
    }
    Some(format!(
        "{} is no longer the file this run changed (it was moved, removed or replaced by a link): \
         lowport leaves what is there alone, and the file it changed, if it still exists \
         elsewhere, keeps what the step set; `getcap -r DIR` finds a capability left behind",
        path.display()
    ))
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
            let _ = std::fs::remove_dir(root.entry(d));
        }
    };
    match (action, &snap.state) {
        (Action::WriteFile { path, .. }, State::File(f)) => {
            restore_file(root, path, f, snap.backups.get(path), &backup)?;
            sweep_temporaries(&root.entry(path));
            remove_created();
            Ok(())
        }
        // Outside Linux the step is refused before useradd runs: there is no user to remove,
        // and no account-file lock to take.
        (Action::CreateUser { .. }, _) if !cfg!(target_os = "linux") => Ok(()),
        (Action::CreateUser { name }, State::Files { files, .. }) => {
            remove_user(name, root, snap, files, &backup)
        }
        (Action::Symlink { path, .. }, State::Link { target }) => {
            let host = root.entry(path);
            // Only a link can be lowport's: anything else there was never replaced.
            if std::fs::symlink_metadata(&host).is_ok_and(|m| !m.file_type().is_symlink()) {
                return Ok(());
            }
            match std::fs::remove_file(&host) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
            if let Some(old) = target {
                os::symlink(old, &host)?;
            }
            sweep_temporaries(&host);
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
            // What is there now instead of the file is not what the step changed: left alone.
            if moved_away(action, root).is_some() {
                return Ok(());
            }
            restore_meta(&root.entry(path), f)
        }
        (Action::SetSysctl { key, .. }, State::Sysctl { value: Some(v) }) => {
            crate::sysctl::write(key, v)
        }
        _ => bail!(
            "the snapshot of {} does not match its step",
            action.target()
        ),
    }
}
