//! The state directory: an exclusive lock, and one folder per run holding an append-only journal
//! (one JSON record per line; the first carries the plan; a step's snapshot is synced before the
//! step changes anything) and the backups needed to undo. A run killed at any point leaves
//! enough to be rolled back.
//!
//! Everything here is read back as untrusted input: the directory must be root's and writable by
//! no one else ([`SafeDir`]), nothing in it is reached through a link, and every record is
//! validated before rollback acts on it. A run appears atomically: it is written under a hidden
//! name and renamed into place with its first durable record, so no reader ever sees a run
//! without its start. Runs are numbered by a sequence, so their order never depends on the clock.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::safedir::{OFlag, SafeDir, plain_name, try_write_lock};
use crate::error::{Error, Refusal, Result};
use crate::os::MetadataExt;
use crate::plan::action::ACCOUNT_FILES;
use crate::plan::{Action, FileState, Plan, State};
use crate::root::Root;

const JOURNAL: &str = "journal.jsonl";
const RUNS: &str = "runs";
/// A run folder is written under this prefix until its first durable record.
const NEW: &str = ".new-";

/// The default state directory; `--state-dir` or `LOWPORT_STATE_DIR` override it.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/lowport";

/// Who ran lowport: the effective user, and the person behind sudo or the login session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    pub uid: u32,
    pub user: String,
    pub sudo_user: Option<String>,
    pub login_user: Option<String>,
}

impl Who {
    pub fn current() -> Who {
        let db = crate::facts::users::UserDb::new(&crate::root::Root::new("/".into()));
        let name = |uid: u32| db.user_name(uid).unwrap_or_else(|| uid.to_string());
        let uid = crate::os::euid();
        // loginuid survives sudo and su, unlike SUDO_USER which any caller can set.
        let login = std::fs::read_to_string("/proc/self/loginuid")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|u| *u != u32::MAX)
            .map(name);
        Who {
            uid,
            user: name(uid),
            sudo_user: std::env::var("SUDO_USER").ok().filter(|s| !s.is_empty()),
            login_user: login,
        }
    }

    pub fn describe(&self) -> String {
        let mut s = self.user.clone();
        if let Some(u) = &self.sudo_user {
            s.push_str(&format!(" (sudo by {u})"));
        } else if let Some(u) = self.login_user.as_ref().filter(|u| **u != self.user) {
            s.push_str(&format!(" (login {u})"));
        }
        s
    }
}

/// What a step's target was before the step, and where its backup is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub state: State,
    /// For each file about to be rewritten (an in-root path), the name of its backup inside the
    /// run folder.
    pub backups: BTreeMap<PathBuf, String>,
    /// Directories the step will create (outermost first); undo removes them if empty.
    pub created_dirs: Vec<PathBuf>,
    /// For a new user: the run-folder file that keeps the account entries the step added, so a
    /// rollback removes exactly those, and only while they are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No end record and no run holding the lock: killed mid-way; `lowport rollback` finishes it.
    Interrupted,
    Applied,
    RolledBack,
    RollbackIncomplete,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Interrupted => "interrupted",
            Status::Applied => "applied",
            Status::RolledBack => "rolled back",
            Status::RollbackIncomplete => "rollback incomplete",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    /// The run's first record carries the whole plan, so the journal alone suffices to undo.
    Start {
        time: u64,
        who: Who,
        plan: Box<Plan>,
    },
    /// Durable before step `step` changes anything.
    Before {
        step: usize,
        snapshot: Snapshot,
    },
    Done {
        step: usize,
        after: State,
    },
    Failed {
        step: usize,
        error: String,
    },
    RollbackStart {
        reason: String,
        time: u64,
    },
    Undone {
        step: usize,
    },
    UndoFailed {
        step: usize,
        error: String,
    },
    End {
        status: Status,
    },
}

/// Everything known about one run, read back from its folder and validated.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    pub dir: PathBuf,
    pub plan: Plan,
    pub records: Vec<Record>,
    /// Lines of the journal that could not be read (a record torn by a crash), as messages.
    pub warnings: Vec<String>,
    folder: Arc<SafeDir>,
}

impl Run {
    pub fn status(&self) -> Status {
        // The last end record wins: a later rollback appends its own. A rollback started after
        // it and never ended was interrupted.
        self.records
            .iter()
            .rev()
            .find_map(|r| match r {
                Record::End { status } => Some(*status),
                Record::RollbackStart { .. } => Some(Status::Interrupted),
                _ => None,
            })
            .unwrap_or(Status::Interrupted)
    }

    pub fn started(&self) -> Option<(u64, &Who)> {
        self.records.iter().find_map(|r| match r {
            Record::Start { time, who, .. } => Some((*time, who)),
            _ => None,
        })
    }

    /// Steps that may have changed the host and are not undone yet, in the order they ran.
    pub fn to_undo(&self) -> Vec<(usize, &Snapshot, Option<&State>)> {
        let mut out: Vec<(usize, &Snapshot, Option<&State>)> = Vec::new();
        for r in &self.records {
            match r {
                Record::Before { step, snapshot } => out.push((*step, snapshot, None)),
                Record::Done { step, after } => {
                    if let Some(e) = out.iter_mut().find(|e| e.0 == *step) {
                        e.2 = Some(after);
                    }
                }
                Record::Undone { step } => out.retain(|e| e.0 != *step),
                _ => {}
            }
        }
        out
    }

    /// What the run left and has not undone: for each target, the last completed step that
    /// changed it and the state it recorded afterwards (several steps may touch one target).
    pub fn left(&self) -> Vec<(usize, &Action, &State)> {
        let mut last: Vec<(usize, &Action, &State)> = Vec::new();
        for (n, _, after) in self.to_undo() {
            let (Some(after), Some(step)) = (after, self.plan.steps.get(n - 1)) else {
                continue;
            };
            let target = step.action.target();
            last.retain(|(_, a, _)| a.target() != target);
            last.push((n, &step.action, after));
        }
        last
    }

    /// What a rollback will do, step by step in the order it does it: derived from each step's
    /// validated action and the state its snapshot will restore, never from text in the journal.
    pub fn undo_steps(&self) -> Vec<(usize, String)> {
        let root = Root::new(self.plan.root.clone());
        self.to_undo()
            .iter()
            .rev()
            .filter_map(|(n, snap, _)| {
                let step = self.plan.steps.get(n - 1)?;
                Some((*n, step.action.undo(&snap.state, &root)))
            })
            .collect()
    }

    /// A file of the run folder (a backup), never through a link.
    pub fn backup(&self, name: &str) -> std::io::Result<Vec<u8>> {
        if !plain_name(name) {
            return Err(std::io::Error::other(format!(
                "'{name}' is not a file name of the run folder"
            )));
        }
        self.folder.read(name)
    }
}

/// An open run. Records that must survive a crash before the host changes (a step's snapshot,
/// the start of a rollback, the end) are synced; progress records ride along with the next sync,
/// since losing one only makes a later rollback restore a snapshot again, which is idempotent.
///
/// The syncs, each for a reason: per step, one `fdatasync` of the journal before the step runs
/// (its snapshot must outlive it), plus one of each backup's content; once per run, an `fsync`
/// of the run folder (the journal's and backups' names) and of the runs folder (the run's name
/// and open marker) with the first snapshot; one `fdatasync` of the end record (an apply the
/// operator was told succeeded must not come back as interrupted). A rollback adds one for its
/// start (a crash in it must leave the run unfinished) and one for its end; its marker is still
/// there from the apply. `setcap` on one file: four for the apply, two for the rollback (one
/// fewer than before runs were published by rename).
pub struct Journal {
    pub id: String,
    pub dir: PathBuf,
    file: File,
    folder: Arc<SafeDir>,
    runs: SafeDir,
    /// False while the folder still has its hidden name: nothing has changed yet.
    published: bool,
    /// New names in the run folder (journal, backups) / in the runs folder (the open marker)
    /// that must reach the disk with the next durable record.
    folder_dirty: bool,
    runs_dirty: bool,
    /// Every record written, so a rollback in this process needs no re-reading.
    records: Vec<Record>,
    /// The first write that failed: nothing is appended after it, since a record after a gap
    /// (or after a torn line) would mislead a later reader.
    broken: Option<String>,
}

impl Journal {
    pub fn append(&mut self, r: &Record) -> Result<()> {
        if let Some(e) = &self.broken {
            return Err(anyhow::anyhow!("{e}").into());
        }
        match self.write(r) {
            Ok(()) => {
                self.records.push(r.clone());
                Ok(())
            }
            Err(e) => {
                let e = format!(
                    "cannot write the journal {}: {e}",
                    self.path(JOURNAL).display()
                );
                self.broken = Some(e.clone());
                Err(anyhow::anyhow!("{e}").into())
            }
        }
    }

    /// Appends when it can: during a rollback, undoing comes first, and a journal that cannot
    /// record it is reported at the end ([`Journal::write_error`]).
    pub fn note(&mut self, r: &Record) {
        let _ = self.append(r);
    }

    /// Why the journal stopped recording, if it did.
    pub fn write_error(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// False until the run's first durable record: until then nothing has changed and no run
    /// exists for `history` or `rollback`.
    pub fn published(&self) -> bool {
        self.published
    }

    /// Where a file of the run folder is now, for messages.
    fn path(&self, name: &str) -> PathBuf {
        if self.published {
            self.dir.join(name)
        } else {
            self.folder.join(name)
        }
    }

    /// The run as written so far.
    pub fn run(&self) -> Result<Run> {
        let Some(Record::Start { plan, .. }) = self.records.first() else {
            return Err(anyhow::anyhow!("journal of run {} has no start record", self.id).into());
        };
        Ok(Run {
            id: self.id.clone(),
            dir: self.dir.clone(),
            plan: (**plan).clone(),
            records: self.records.clone(),
            warnings: Vec::new(),
            folder: Arc::clone(&self.folder),
        })
    }

    fn write(&mut self, r: &Record) -> std::io::Result<()> {
        write_fault()?;
        let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        let durable = matches!(
            r,
            Record::Before { .. } | Record::RollbackStart { .. } | Record::End { .. }
        );
        if durable {
            // The record itself: fdatasync also covers the file's new length.
            self.file.sync_data()?;
            // New names in the run folder (the journal, backups): once per batch of new names.
            if std::mem::take(&mut self.folder_dirty) {
                self.folder.sync()?;
            }
            if !self.published {
                self.runs
                    .open(&marker(&self.id), OFlag::O_WRONLY | OFlag::O_CREAT)?;
                self.runs.rename(&format!("{NEW}{}", self.id), &self.id)?;
                self.published = true;
                self.runs_dirty = true;
            }
            // The run's name and its open marker, so the run cannot vanish in a crash after the
            // host changed.
            if std::mem::take(&mut self.runs_dirty) {
                self.runs.sync()?;
            }
        }
        if let Record::End {
            status: Status::RolledBack,
        } = r
        {
            // Not synced: a stale marker is checked against the journal.
            self.runs.remove(&marker(&self.id))?;
        }
        Ok(())
    }

    /// Saves a file in the run folder before the change it protects. Its content is synced
    /// now; its name reaches the disk with the step's snapshot record, which is synced before
    /// the step runs.
    pub fn save_backup(&mut self, name: &str, content: &[u8]) -> Result<()> {
        let r = (|| -> std::io::Result<()> {
            write_fault()?;
            let mut f = self
                .folder
                .open(name, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL)?;
            f.write_all(content)?;
            f.sync_data()
        })();
        r.map_err(|e| {
            let e = format!("cannot write the backup {}: {e}", self.path(name).display());
            if self.broken.is_none() {
                self.broken = Some(e.clone());
            }
            anyhow::anyhow!("{e}")
        })?;
        self.folder_dirty = true;
        Ok(())
    }
}

/// Test-only fault injection for journal writes (debug builds on the unixes): `LOWPORT_TEST_FAULT` is
/// `journal-full:K` (the K-th write of this process and every later one fail with ENOSPC, as on
/// a full disk) or `fork-kill:K` (at the K-th write, fork a child that lives on, like the bind
/// probe, then SIGKILL ourselves). Writes are journal records and backups, counted from 1.
#[cfg(all(debug_assertions, unix))]
fn write_fault() -> std::io::Result<()> {
    static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    let Ok(spec) = std::env::var("LOWPORT_TEST_FAULT") else {
        return Ok(());
    };
    let at = |point: &str| {
        spec.strip_prefix(point)
            .and_then(|k| k.parse::<usize>().ok())
    };
    if at("journal-full:").is_some_and(|k| n >= k) {
        return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
    }
    if at("fork-kill:") == Some(n) {
        // SAFETY: the child only calls async-signal-safe functions (close, sleep, _exit).
        if let Ok(nix::unistd::ForkResult::Child) = unsafe { nix::unistd::fork() } {
            unsafe {
                // Let go of the output pipes (a test waits for them), keep every other fd.
                libc::close(1);
                libc::close(2);
                libc::sleep(10);
                libc::_exit(0);
            }
        }
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
    Ok(())
}

#[cfg(not(all(debug_assertions, unix)))]
fn write_fault() -> std::io::Result<()> {
    Ok(())
}

pub struct StateDir {
    pub dir: PathBuf,
}

/// A run is marked by an empty `runs/<id>.open` file from before its first change until its
/// rollback's end record is durable (an applied run keeps it, so a later rollback needs no new
/// name and no sync for one). It is made, and synced, together with the run's own name; finding
/// unfinished runs reads the journals of marked runs only. Removal is not synced: a stale marker
/// is confirmed against the journal.
fn marker(id: &str) -> String {
    format!("{id}.open")
}

/// The lock files (device, inode) this process holds. POSIX locks belong to the process: a
/// second lock of the same file would succeed, and closing its descriptor would silently drop
/// the first.
static HELD: std::sync::Mutex<Vec<(u64, u64)>> = std::sync::Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<(u64, u64)>> {
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Holds the exclusive lock until dropped.
pub struct Lock {
    file: File,
    key: (u64, u64),
}

impl Drop for Lock {
    fn drop(&mut self) {
        held().retain(|k| *k != self.key);
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The order of a run id: `SEQ-YYYYMMDDTHHMMSSZ` by its sequence number, after every id of the
/// earlier `YYYYMMDDTHHMMSSZ-hhhh` form (ordered by their text). Other names are not runs.
fn id_order(id: &str) -> Option<(u64, String)> {
    let stamp = |s: &str| {
        s.len() == 16
            && s.bytes().enumerate().all(|(i, b)| match i {
                8 => b == b'T',
                15 => b == b'Z',
                _ => b.is_ascii_digit(),
            })
    };
    if let Some((seq, rest)) = id.split_once('-')
        && !seq.is_empty()
        && seq.len() <= 12
        && seq.bytes().all(|b| b.is_ascii_digit())
        && stamp(rest)
    {
        return Some((seq.parse::<u64>().ok()? + 1, String::new()));
    }
    let (old, hex) = id.split_once('-')?;
    (stamp(old) && hex.len() == 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (0, id.to_string()))
}

fn new_run_id(seq: u64) -> String {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = stamp.chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{seq}-{stamp}")
}

/// A problem with the state directory: refused, naming the path and the fix, changing nothing.
fn refused(what: String) -> Error {
    refused_as(Refusal::StateDir, what)
}

fn refused_as(cause: Refusal, what: String) -> Error {
    Error::refused(cause, format!("{what}. Nothing was changed."))
}

impl StateDir {
    pub fn new(dir: PathBuf) -> Self {
        StateDir { dir }
    }

    /// The state directory, checked; `None` when it does not exist and `create` is false.
    fn open(&self, create: bool) -> Result<Option<SafeDir>> {
        SafeDir::open_trusted(&self.dir, create).map_err(|why| {
            refused(format!(
                "refusing the state directory {}: {why}",
                self.dir.display()
            ))
        })
    }

    fn runs_dir(&self, create: bool) -> Result<Option<SafeDir>> {
        let Some(base) = self.open(create)? else {
            return Ok(None);
        };
        base.subdir(RUNS, create)
            .map_err(|e| refused(format!("cannot open {}: {e}", base.join(RUNS).display())))
    }

    /// Takes the exclusive lock, or fails at once if another run holds it. Holding it, clears
    /// what a killed run can leave that never took effect: a run folder that was never
    /// published, an open marker without its run.
    pub fn lock(&self) -> Result<Lock> {
        let base = self.open(true)?.ok_or_else(|| {
            refused(format!(
                "cannot create the state directory {}",
                self.dir.display()
            ))
        })?;
        let path = base.join("lock");
        let file = base
            .open("lock", OFlag::O_RDWR | OFlag::O_CREAT)
            .map_err(|e| {
                refused(format!(
                    "cannot open the lock {}: {e}; if it is a link or not a regular file, \
                     remove it",
                    path.display()
                ))
            })?;
        let meta = file
            .metadata()
            .map_err(|e| refused(format!("cannot read {}: {e}", path.display())))?;
        let key = (meta.dev(), meta.ino());
        if held().contains(&key) {
            // Closing this descriptor would release the lock this process already holds.
            std::mem::forget(file);
            return Err(Error::LockHeld(format!(
                "this lowport process already holds the lock {}",
                path.display()
            )));
        }
        let lock = match try_write_lock(&file) {
            Ok(true) => {
                held().push(key);
                Lock { file, key }
            }
            Ok(false) => {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut &file, &mut text);
                let holder = text
                    .trim()
                    .parse::<u32>()
                    .map_or("a process that did not say its pid".into(), |p| {
                        format!("pid {p}")
                    });
                return Err(Error::LockHeld(format!(
                    "another lowport run ({holder}) holds the lock {}; wait for it to finish. \
                     Nothing was changed.",
                    path.display()
                )));
            }
            Err(e) => return Err(refused(format!("cannot lock {}: {e}", path.display()))),
        };
        // Record our pid so a second run can say who holds the lock: written over the old one,
        // then cut, so the file never reads empty.
        let pid = format!("{}\n", std::process::id());
        let _ = crate::os::write_at(&lock.file, pid.as_bytes(), 0);
        let _ = lock.file.set_len(pid.len() as u64);
        self.clean_up()?;
        Ok(lock)
    }

    fn clean_up(&self) -> Result<()> {
        let Some(runs) = self.runs_dir(true)? else {
            return Ok(());
        };
        let gone = |e: std::io::Error| refused(format!("cannot tidy {}: {e}", runs.path.display()));
        let entries = runs.entries().map_err(gone)?;
        for (name, is_dir) in &entries {
            if *is_dir && name.starts_with(NEW) {
                runs.remove_tree(name).map_err(gone)?;
            } else if let Some(id) = name.strip_suffix(".open")
                && !entries.iter().any(|(n, d)| *d && n == id)
            {
                runs.remove(name).map_err(gone)?;
            }
        }
        Ok(())
    }

    /// Starts a run: its folder (under a hidden name) and the start record holding the plan.
    /// The run comes into existence with the first step's snapshot, before anything changes.
    pub fn create_run(&self, plan: &Plan, who: Who, _lock: &Lock) -> Result<Journal> {
        let runs = self
            .runs_dir(true)?
            .ok_or_else(|| refused(format!("cannot create {}", self.dir.join(RUNS).display())))?;
        let seq = runs
            .entries()
            .map_err(|e| refused(format!("cannot read {}: {e}", runs.path.display())))?
            .iter()
            .filter_map(|(n, _)| id_order(n.trim_start_matches(NEW).trim_end_matches(".open")))
            .map(|(seq, _)| seq)
            .max()
            .unwrap_or(0);
        let id = new_run_id(seq.max(1));
        let hidden = format!("{NEW}{id}");
        let cannot = |e: std::io::Error| {
            refused(format!(
                "cannot start a run in {}: {e}",
                runs.join(&hidden).display()
            ))
        };
        let folder = runs
            .subdir(&hidden, true)
            .map_err(cannot)?
            .ok_or_else(|| cannot(std::io::ErrorKind::NotFound.into()))?;
        let file = folder
            .open(
                JOURNAL,
                OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT | OFlag::O_EXCL,
            )
            .map_err(cannot)?;
        let mut j = Journal {
            dir: runs.join(&id),
            id,
            file,
            folder: Arc::new(folder),
            runs,
            published: false,
            folder_dirty: true,
            runs_dirty: true,
            records: Vec::new(),
            broken: None,
        };
        j.append(&Record::Start {
            time: now(),
            who,
            plan: Box::new(plan.clone()),
        })
        .map_err(|e| refused(format!("{e}")))?;
        Ok(j)
    }

    /// Reopens a run to append to it (a later rollback), marked until its rollback ends. Refused
    /// while a later run still relies on an account this run created.
    pub fn reopen(&self, run: &Run, _lock: &Lock) -> Result<Journal> {
        let runs = self.runs_dir(false)?.ok_or_else(|| self.no_run(&run.id))?;
        let used = self.accounts_used_later(&runs, run)?;
        if !used.is_empty() {
            return Err(refused_as(
                Refusal::AccountInUse,
                format!(
                    "run {} created {}: removing it would pull it from under that run. Roll that \
                 run back first",
                    run.id,
                    used.join("; ")
                ),
            ));
        }
        let fail =
            |e: std::io::Error| refused(format!("cannot reopen run {}: {e}", run.dir.display()));
        // A run applied by this version still has its marker; one rolled back before, or applied
        // by an earlier version, gets a new one, which must be synced.
        let new_marker = runs.open(&marker(&run.id), OFlag::O_WRONLY).is_err();
        if new_marker {
            runs.open(&marker(&run.id), OFlag::O_WRONLY | OFlag::O_CREAT)
                .map_err(fail)?;
        }
        let mut file = run
            .folder
            .open(JOURNAL, OFlag::O_RDWR | OFlag::O_APPEND)
            .map_err(fail)?;
        // A record torn by a crash is closed off, so the next one starts on a line of its own.
        let len = file.metadata().map_err(fail)?.len();
        let mut last = [0u8];
        if len > 0
            && crate::os::read_at(&file, &mut last, len - 1).map_err(fail)? == 1
            && last[0] != b'\n'
        {
            file.write_all(b"\n").map_err(fail)?;
        }
        Ok(Journal {
            id: run.id.clone(),
            dir: run.dir.clone(),
            file,
            folder: Arc::clone(&run.folder),
            runs,
            published: true,
            folder_dirty: false,
            // Only a marker can be new: the run folder is on disk already.
            runs_dirty: new_marker,
            records: run.records.clone(),
            broken: None,
        })
    }

    /// Accounts this run created (and has not undone) that a later run, not rolled back, names
    /// as its user or group.
    fn accounts_used_later(&self, runs: &SafeDir, run: &Run) -> Result<Vec<String>> {
        let created: Vec<&str> = run
            .to_undo()
            .iter()
            .filter_map(|(n, ..)| match &run.plan.steps.get(n - 1)?.action {
                Action::CreateUser { name } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        let Some(order) = id_order(&run.id).filter(|_| !created.is_empty()) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let later = self.list()?.map(|(_, ids)| ids).unwrap_or_default();
        for id in later.iter().filter(|id| id_order(id) > Some(order.clone())) {
            // A later run that cannot be read is reported by `history`; it cannot name anyone.
            let Ok(Some(other)) = self.read(runs, id) else {
                continue;
            };
            if other.status() == Status::RolledBack {
                continue;
            }
            let req = &other.plan.request;
            for name in &created {
                if req.user.as_deref() == Some(name) || req.group.as_deref() == Some(name) {
                    out.push(format!(
                        "the account {name}, which the later run {id} ({}) still uses",
                        other.plan.method
                    ));
                }
            }
        }
        Ok(out)
    }

    fn no_run(&self, id: &str) -> Error {
        Error::Invalid(format!(
            "no run '{id}' in {}; `lowport history` lists the runs",
            self.dir.display()
        ))
    }

    pub fn load(&self, id: &str) -> Result<Run> {
        if id_order(id).is_none() {
            return Err(self.no_run(id));
        }
        let runs = self.runs_dir(false)?.ok_or_else(|| self.no_run(id))?;
        self.read(&runs, id)?.ok_or_else(|| {
            refused(format!(
                "run {id} has an empty journal {}: it was killed before its first change, so \
                 it changed nothing; remove that folder",
                runs.join(id).join(JOURNAL).display()
            ))
        })
    }

    /// Reads and validates a run. `Ok(None)`: its journal is missing or empty, so the run never
    /// reached its first change (only versions that created runs in place leave these).
    fn read(&self, runs: &SafeDir, id: &str) -> Result<Option<Run>> {
        let folder = match runs.subdir(id, false) {
            Ok(Some(f)) => f,
            Ok(None) => return Err(self.no_run(id)),
            Err(e) => {
                return Err(refused(format!(
                    "cannot open the run folder {}: {e}",
                    runs.join(id).display()
                )));
            }
        };
        let path = folder.join(JOURNAL);
        let bytes = match folder.read(JOURNAL) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(refused(format!("cannot read {}: {e}", path.display()))),
        };
        let (records, warnings) = parse(&bytes).map_err(|(line, why)| {
            refused_as(
                Refusal::InvalidJournal,
                format!(
                    "run {id}: line {line} of {} is not a valid lowport record ({why}); lowport \
                 will not act on it. Inspect the file, and move the run folder away if it is \
                 not lowport's",
                    path.display()
                ),
            )
        })?;
        let Some(Record::Start { plan, .. }) = records.first() else {
            return Ok(None);
        };
        let warnings = warnings
            .into_iter()
            .map(|line| {
                format!(
                    "run {id}: line {line} of {} was torn by a crash and is skipped (the step \
                     it recorded never took effect, or is undone again)",
                    path.display()
                )
            })
            .collect();
        Ok(Some(Run {
            id: id.to_string(),
            dir: runs.join(id),
            plan: (**plan).clone(),
            records,
            warnings,
            folder: Arc::new(folder),
        }))
    }

    fn list(&self) -> Result<Option<(SafeDir, Vec<String>)>> {
        let Some(runs) = self.runs_dir(false)? else {
            return Ok(None);
        };
        let entries = runs
            .entries()
            .map_err(|e| refused(format!("cannot read {}: {e}", runs.path.display())))?;
        let mut ids: Vec<(u64, String, String)> = entries
            .into_iter()
            .filter(|(_, is_dir)| *is_dir)
            .filter_map(|(id, _)| id_order(&id).map(|(seq, text)| (seq, text, id)))
            .collect();
        ids.sort();
        Ok(Some((runs, ids.into_iter().map(|(_, _, id)| id).collect())))
    }

    /// Every run id, oldest first (by sequence).
    pub fn ids(&self) -> Vec<String> {
        self.list()
            .ok()
            .flatten()
            .map(|(_, ids)| ids)
            .unwrap_or_default()
    }

    /// Every readable run, oldest first, and a message for each folder that is not one.
    pub fn scan(&self) -> Result<(Vec<Run>, Vec<String>)> {
        let Some((runs, ids)) = self.list()? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let mut out = Vec::new();
        let mut notes = Vec::new();
        for id in ids {
            match self.read(&runs, &id) {
                Ok(Some(run)) => out.push(run),
                Ok(None) => notes.push(format!(
                    "run {id} never started (its journal in {} is empty or missing) and \
                     changed nothing; remove that folder",
                    runs.join(&id).display()
                )),
                Err(e) => notes.push(e.to_string()),
            }
        }
        Ok((out, notes))
    }

    /// Every readable run, oldest first.
    pub fn runs(&self) -> Result<Vec<Run>> {
        Ok(self.scan()?.0)
    }

    /// The newest run that is not rolled back yet (what `rollback --last` undoes).
    pub fn last_to_undo(&self) -> Result<Option<Run>> {
        let Some((runs, ids)) = self.list()? else {
            return Ok(None);
        };
        for id in ids.iter().rev() {
            // A folder that never started changed nothing: look further back.
            if let Some(run) = self.read(&runs, id)?
                && run.status() != Status::RolledBack
            {
                return Ok(Some(run));
            }
        }
        Ok(None)
    }

    /// Refuses to start while an earlier run is unfinished: its undo information must not be
    /// mixed up with a new run's changes.
    pub fn ensure_no_unfinished(&self) -> Result<()> {
        match self.unfinished()?.first() {
            None => Ok(()),
            Some(r) => Err(Error::refused(
                Refusal::UnfinishedRun,
                format!(
                    "run {} is unfinished ({}); finish it first with `lowport rollback {}`. \
                     Nothing was changed.",
                    r.id,
                    r.status(),
                    r.id
                ),
            )),
        }
    }

    /// Runs that were interrupted or whose rollback is incomplete.
    pub fn unfinished(&self) -> Result<Vec<Run>> {
        let Some(runs) = self.runs_dir(false)? else {
            return Ok(Vec::new());
        };
        let entries = runs
            .entries()
            .map_err(|e| refused(format!("cannot read {}: {e}", runs.path.display())))?;
        let mut out = Vec::new();
        for (name, _) in entries {
            let Some(id) = name.strip_suffix(".open") else {
                continue;
            };
            // A marker left without its run (or for a run that never started) marks nothing.
            if id_order(id).is_none() || runs.subdir(id, false).ok().flatten().is_none() {
                continue;
            }
            let Some(run) = self.read(&runs, id)? else {
                continue;
            };
            if matches!(
                run.status(),
                Status::Interrupted | Status::RollbackIncomplete
            ) {
                out.push(run);
            }
        }
        Ok(out)
    }
}

/// Splits a journal into records. A line that is not JSON (a record torn by a crash: the last
/// line, or one a later rollback closed off) is skipped and its number returned; a JSON line that
/// is not a known record, or breaks the rules, is refused as `Err((line, why))`. Public for the
/// fuzz target: a journal is input to a root process.
pub fn parse(bytes: &[u8]) -> std::result::Result<(Vec<Record>, Vec<usize>), (usize, String)> {
    let mut records: Vec<Record> = Vec::new();
    let mut torn = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) else {
            torn.push(i + 1);
            continue;
        };
        let r: Record = serde_json::from_value(value).map_err(|e| (i + 1, e.to_string()))?;
        check_record(&records, &r).map_err(|why| (i + 1, why))?;
        records.push(r);
    }
    Ok((records, torn))
}

/// The rules a record must follow before rollback may act on it: the start first and once, a
/// known plan whose every path lies inside its root, steps that exist, snapshots that match
/// their step's action.
fn check_record(before: &[Record], r: &Record) -> std::result::Result<(), String> {
    let plan = match (before.first(), r) {
        (None, Record::Start { plan, .. }) => return check_plan(plan),
        (None, _) => return Err("the first record must be the start".into()),
        (Some(_), Record::Start { .. }) => return Err("a second start record".into()),
        (Some(Record::Start { plan, .. }), _) => plan,
        (Some(_), _) => return Err("the first record must be the start".into()),
    };
    let step = |n: usize| -> std::result::Result<&Action, String> {
        n.checked_sub(1)
            .and_then(|i| plan.steps.get(i))
            .map(|s| &s.action)
            .ok_or_else(|| format!("step {n} is not in the run's plan"))
    };
    match r {
        Record::Before { step: n, snapshot } => {
            check_snapshot(step(*n)?, snapshot, &Root::new(plan.root.clone()))
        }
        Record::Done { step: n, after } => check_state(step(*n)?, after),
        Record::Failed { step: n, .. }
        | Record::Undone { step: n }
        | Record::UndoFailed { step: n, .. } => step(*n).map(drop),
        Record::Start { .. } | Record::RollbackStart { .. } | Record::End { .. } => Ok(()),
    }
}

/// An absolute path in normal form (no `.`, `..`, `//` or trailing `/`) without control
/// characters: joined under the run's root, it stays inside it.
fn check_path(p: &Path) -> std::result::Result<(), String> {
    let text = p.to_string_lossy();
    let normal: PathBuf = p.components().collect();
    let ok = p.is_absolute()
        && normal.as_os_str() == p.as_os_str()
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && !text.chars().any(char::is_control)
        && text.len() <= 4096;
    if ok {
        Ok(())
    } else {
        Err(format!("{text:?} is not an absolute path in normal form"))
    }
}

fn check_name(s: &str) -> std::result::Result<(), String> {
    crate::validate::account_name(s).map(drop)
}

fn check_argv(argv: &[String]) -> std::result::Result<(), String> {
    let prog = argv.first().ok_or_else(|| "an empty command".to_string())?;
    if prog.starts_with('/') {
        check_path(Path::new(prog))?;
    }
    // The one list of programs plans run, kept with the rule that finds them.
    if !crate::programs::is_step_program(prog) {
        return Err(format!("the command {prog:?} is not one lowport runs"));
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(format!("an argument of {prog} holds a NUL byte"));
    }
    Ok(())
}

fn check_plan(plan: &Plan) -> std::result::Result<(), String> {
    // The method is a typed id: reading the record refused any other.
    check_path(&plan.root)?;
    for (i, step) in plan.steps.iter().enumerate() {
        check_action(&step.action)
            .and_then(|()| check_state(&step.action, &step.before))
            .map_err(|e| format!("step {}: {e}", i + 1))?;
    }
    Ok(())
}

fn check_action(a: &Action) -> std::result::Result<(), String> {
    match a {
        Action::WriteFile {
            path, owner, group, ..
        }
        | Action::SetOwnerMode {
            path, owner, group, ..
        } => {
            check_path(path)?;
            check_name(owner)?;
            check_name(group)
        }
        Action::SetFileCap { path, caps } => {
            check_path(path)?;
            if caps
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b"_,=+-".contains(&b))
            {
                Ok(())
            } else {
                Err(format!("{caps:?} is not a capability text"))
            }
        }
        Action::SetSysctl { key, value } => {
            let key_ok = key.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
            if !key_ok {
                return Err(format!("{key:?} is not a sysctl key"));
            }
            check_sysctl_value(value)
        }
        Action::Symlink { path, target } => {
            check_path(path)?;
            check_path(target)
        }
        Action::CreateUser { name } => check_name(name),
        Action::RunCommands {
            what,
            run,
            undo,
            check,
        } => {
            if what.chars().any(char::is_control) {
                return Err(format!("{what:?} holds control characters"));
            }
            run.iter()
                .chain(undo)
                .chain(check.iter())
                .try_for_each(|argv| check_argv(argv))
        }
    }
}

fn check_sysctl_value(v: &str) -> std::result::Result<(), String> {
    if v.len() <= 256
        && v.bytes()
            .all(|b| b.is_ascii_graphic() || b == b' ' || b == b'\t')
    {
        Ok(())
    } else {
        Err(format!("{v:?} is not a sysctl value"))
    }
}

/// Hex digits only: what lowport's hex encoder writes.
fn check_hex(s: &str) -> std::result::Result<(), String> {
    if s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err("an attribute value is not hex".into())
    }
}

fn check_file_state(f: &FileState) -> std::result::Result<(), String> {
    if f.link
        .as_ref()
        .is_some_and(|t| t.to_string_lossy().chars().any(char::is_control))
    {
        return Err("a link target holds control characters".into());
    }
    for (name, value) in &f.xattrs {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("{name:?} is not an attribute name"));
        }
        check_hex(value)?;
    }
    if f.sha256.as_deref().is_some_and(|h| check_hex(h).is_err()) {
        return Err("a content hash is not hex".into());
    }
    Ok(())
}

/// The state recorded for an action is of the kind that action observes.
fn check_state(a: &Action, s: &State) -> std::result::Result<(), String> {
    match (a, s) {
        (
            Action::WriteFile { .. } | Action::SetOwnerMode { .. } | Action::SetFileCap { .. },
            State::File(f),
        ) => check_file_state(f),
        (Action::SetSysctl { .. }, State::Sysctl { value }) => {
            value.as_deref().map_or(Ok(()), check_sysctl_value)
        }
        (Action::Symlink { .. }, State::Link { target }) => match target {
            // The link as it was: any text a link can hold, but no control characters.
            Some(t) if t.to_string_lossy().chars().any(char::is_control) => {
                Err("a link target holds control characters".into())
            }
            _ => Ok(()),
        },
        (Action::CreateUser { .. }, State::Files { files, .. }) => {
            for (path, f) in files {
                if !ACCOUNT_FILES.iter().any(|a| Path::new(a) == path) {
                    return Err(format!("{} is not an account file", path.display()));
                }
                check_file_state(f)?;
            }
            Ok(())
        }
        (Action::RunCommands { .. }, State::Command { .. }) => Ok(()),
        _ => Err(format!(
            "the state recorded for {} is of another kind",
            a.target()
        )),
    }
}

fn check_snapshot(a: &Action, snap: &Snapshot, root: &Root) -> std::result::Result<(), String> {
    check_state(a, &snap.state)?;
    let rewritten: Vec<&Path> = match a {
        Action::WriteFile { path, .. } => vec![path],
        Action::CreateUser { .. } => ACCOUNT_FILES.iter().map(Path::new).collect(),
        _ => Vec::new(),
    };
    for (path, name) in &snap.backups {
        if !rewritten.contains(&path.as_path()) {
            return Err(format!(
                "a backup of {}, which the step does not write",
                path.display()
            ));
        }
        if !plain_name(name) {
            return Err(format!("{name:?} is not a backup file name"));
        }
    }
    if let Some(name) = &snap.added
        && !(matches!(a, Action::CreateUser { .. }) && plain_name(name))
    {
        return Err(format!("{name:?} is not a file of added account entries"));
    }
    if !snap.created_dirs.is_empty() {
        let target = a
            .path()
            .ok_or("directories created by a step that makes no file")?;
        // The executor creates the directories where the target lands inside the run's root,
        // links in the tree followed as in a chroot: a parent of that path, or of the target
        // as written.
        let inside = root.inside(target);
        for d in &snap.created_dirs {
            check_path(d)?;
            let parent_of = |t: &Path| d != t && t.starts_with(d);
            if !parent_of(target) && !parent_of(&inside) {
                return Err(format!(
                    "{} is not a parent of {}",
                    d.display(),
                    target.display()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_by_sequence_after_the_old_form() {
        let mut ids = vec![
            "10-20261129T120000Z",
            "9-20261129T120000Z",
            "20261129T115959Z-ffff",
            "20261129T115958Z-0001",
        ];
        ids.sort_by_key(|id| id_order(id).unwrap());
        assert_eq!(
            ids,
            [
                "20261129T115958Z-0001",
                "20261129T115959Z-ffff",
                "9-20261129T120000Z",
                "10-20261129T120000Z"
            ]
        );
        for bad in [
            "",
            "..",
            "x-20261129T120000Z",
            "1-20261129T120000",
            "lock",
            "1.open",
        ] {
            assert!(id_order(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn paths_must_be_absolute_and_normal() {
        for good in ["/", "/etc/passwd", "/etc/systemd/system/app.service"] {
            assert!(check_path(Path::new(good)).is_ok(), "{good}");
        }
        for bad in [
            "etc/passwd",
            "/etc/../root",
            "/etc/./x",
            "/etc//x",
            "/etc/x/",
            "/a\nb",
            "",
        ] {
            assert!(check_path(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_lowports_programs_are_accepted() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for good in [
            &["systemctl", "stop", "x"][..],
            &["/usr/sbin/nft", "-f", "x"],
        ] {
            assert!(check_argv(&v(good)).is_ok(), "{good:?}");
        }
        for bad in [
            &["sh", "-c", "x"][..],
            &["/tmp/systemctl"],
            &["./nft"],
            &["/usr/sbin/../../tmp/nft"],
            &[],
        ] {
            assert!(check_argv(&v(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_second_lock_in_one_process_is_refused_and_keeps_the_first() {
        let t = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            t.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let state = StateDir::new(t.path().join("state"));
        let _first = state.lock().unwrap();
        assert!(matches!(state.lock(), Err(Error::LockHeld(_))));
        // The kernel still records our POSIX lock on the file.
        let ino = std::fs::metadata(t.path().join("state/lock"))
            .unwrap()
            .ino();
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        let ours = format!("POSIX  ADVISORY  WRITE {} ", std::process::id());
        assert!(
            locks
                .lines()
                .any(|l| l.contains(&ours) && l.contains(&format!(":{ino} "))),
            "{locks}"
        );
    }

    #[test]
    fn non_hex_attribute_values_are_refused_before_decoding() {
        assert!(check_hex("01ff").is_ok());
        for bad in ["0", "zz", "é1", "1é"] {
            assert!(check_hex(bad).is_err(), "{bad}");
        }
    }
}
