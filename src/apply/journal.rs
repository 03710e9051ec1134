//! The state directory: an exclusive lock, and one append-only journal per run (one JSON record
//! per line; the first carries the plan; a step's snapshot is synced before the step changes
//! anything), with a folder beside it for the backups needed to undo when a step makes any. A
//! run killed at any point leaves enough to be rolled back.
//!
//! Everything here is read back as untrusted input: the directory must be root's and writable by
//! no one else ([`SafeDir`]), nothing in it is reached through a link, and every record is
//! validated before rollback acts on it. A run appears atomically: its journal is written under a
//! hidden name and renamed into place with its first durable record, so no reader ever sees a run
//! without its start. Runs are numbered by a sequence, so their order never depends on the clock.
//!
//! Layout of `runs/` (ID is a run id):
//! - `ID.open.jsonl`: the journal, from before the run's first change until its rollback ended;
//!   `ID.jsonl` once it is rolled back. The status comes from the records, but for one case:
//!   a closed journal whose last record is its rollback's start lost its end record in a crash
//!   (the end is not synced; the name is given only after it is written), and is rolled back.
//! - `ID.backups/`: the files the run's steps saved to be undone (only when a step saves any).
//! - `.new-ID.jsonl`: the journal before its first durable record (removed by the next lock).
//! - Earlier versions: `ID/journal.jsonl` with its backups beside it, marked by an empty
//!   `ID.open` while it may be unfinished; read, rolled back and closed in place.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::safedir::{OFlag, SafeDir, plain_name, try_write_lock};
use crate::error::{Error, Refusal, Result};
use crate::os::MetadataExt;
use crate::plan::action::ACCOUNT_FILES;
use crate::plan::{Action, FileState, Plan, State};
use crate::root::Root;

const RUNS: &str = "runs";
/// What a command keeps for the next, to skip reads (see `facts::binary::Listings`).
const LISTINGS: &str = "listings.json";

/// `name` is `prefix` followed by a pid: how lowport names what it writes before a rename.
pub(super) fn named_by_pid(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Listings are written under this prefix and the writer's pid, then renamed to [`LISTINGS`].
fn temp_listings_prefix() -> String {
    format!(".{LISTINGS}.")
}
/// A run's journal is written under this prefix until its first durable record.
const NEW: &str = ".new-";
const OPEN: &str = ".open.jsonl";
const CLOSED: &str = ".jsonl";
const BACKUPS: &str = ".backups";
/// The layout of earlier versions: `ID/JOURNAL`, marked by `ID.open`.
const LEGACY_JOURNAL: &str = "journal.jsonl";
const LEGACY_MARKER: &str = ".open";

/// Where a run's journal is, which says how it is marked while it may be unfinished. Ordered
/// by precedence, should one run have more than one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    /// `ID.open.jsonl`.
    Open,
    /// `ID.jsonl`: rolled back.
    Closed,
    /// `ID/journal.jsonl`, written by an earlier version; marked by `ID.open`.
    Legacy,
}

impl Place {
    fn journal(self, id: &str) -> String {
        match self {
            Place::Open => format!("{id}{OPEN}"),
            Place::Closed => format!("{id}{CLOSED}"),
            Place::Legacy => format!("{id}/{LEGACY_JOURNAL}"),
        }
    }

    /// The entry of `runs/` that holds the journal.
    fn entry(self, id: &str) -> String {
        match self {
            Place::Legacy => id.to_string(),
            Place::Open | Place::Closed => self.journal(id),
        }
    }

    /// The folder (in `runs/`) that holds the run's backups.
    fn backups(self, id: &str) -> String {
        match self {
            Place::Legacy => id.to_string(),
            Place::Open | Place::Closed => format!("{id}{BACKUPS}"),
        }
    }
}

/// What an entry of `runs/` is, by its name; `None` for names lowport does not write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry<'a> {
    Journal(&'a str, Place),
    /// A journal never published: its run never changed anything.
    Unpublished(&'a str),
    Backups(&'a str),
    /// A run folder of an earlier version, its open marker, and its never-published folder.
    Legacy(&'a str),
    LegacyMarker(&'a str),
    LegacyUnpublished(&'a str),
}

impl<'a> Entry<'a> {
    fn of(name: &'a str, is_dir: bool) -> Option<Entry<'a>> {
        let valid = |id: &'a str| id_order(id).map(|_| id);
        let e = if let Some(id) = name.strip_prefix(NEW) {
            if is_dir {
                Entry::LegacyUnpublished(valid(id)?)
            } else {
                Entry::Unpublished(valid(id.strip_suffix(CLOSED)?)?)
            }
        } else if is_dir {
            match name.strip_suffix(BACKUPS) {
                Some(id) => Entry::Backups(valid(id)?),
                None => Entry::Legacy(valid(name)?),
            }
        } else if let Some(id) = name.strip_suffix(OPEN) {
            Entry::Journal(valid(id)?, Place::Open)
        } else if let Some(id) = name.strip_suffix(CLOSED) {
            Entry::Journal(valid(id)?, Place::Closed)
        } else {
            Entry::LegacyMarker(valid(name.strip_suffix(LEGACY_MARKER)?)?)
        };
        Some(e)
    }

    fn id(self) -> &'a str {
        match self {
            Entry::Journal(id, _)
            | Entry::Unpublished(id)
            | Entry::Backups(id)
            | Entry::Legacy(id)
            | Entry::LegacyMarker(id)
            | Entry::LegacyUnpublished(id) => id,
        }
    }
}

/// The default state directory; `--state-dir` or `LOWPORT_STATE_DIR` override it.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/lowport";

/// The option that points another lowport command at the state directory `dir`, when it is not
/// the default: every command lowport prints for the operator to run next carries it.
pub fn state_dir_option(dir: &Path) -> Vec<String> {
    if dir == Path::new(DEFAULT_STATE_DIR) {
        return Vec::new();
    }
    vec!["--state-dir".into(), dir.display().to_string()]
}

/// `lowport OPTIONS rollback RUN`, quoted for a shell: the command that undoes `run`, with the
/// global options (`--state-dir`, …) that point it at the run's state directory.
pub fn rollback_command(options: &[String], run: &str) -> String {
    let argv = std::iter::once("lowport").chain(options.iter().map(String::as_str));
    shell_words::join(argv.chain(["rollback", run]))
}

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

/// Everything known about one run, read back from its journal and validated.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    /// The journal's path, for messages.
    pub journal: PathBuf,
    pub plan: Plan,
    pub records: Vec<Record>,
    /// Lines of the journal that could not be read (a record torn by a crash), as messages.
    pub warnings: Vec<String>,
    runs: Arc<SafeDir>,
    place: Place,
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

    /// A file of the run's backups folder, never through a link.
    pub fn backup(&self, name: &str) -> std::io::Result<Vec<u8>> {
        if !plain_name(name) {
            return Err(std::io::Error::other(format!(
                "'{name}' is not a file name of the run's backups"
            )));
        }
        let folder = self.place.backups(&self.id);
        self.runs
            .subdir(&folder)?
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{} does not exist", self.runs.join(&folder).display()),
                )
            })?
            .read(name)
    }
}

/// An open run. Records that must survive a crash before the host changes (a step's snapshot,
/// the start of a rollback, the end) are synced; progress records ride along with the next sync,
/// since losing one only makes a later rollback restore a snapshot again, which is idempotent.
///
/// The syncs, each for a reason: per step, one `fdatasync` of the journal before the step runs
/// (its snapshot must outlive it), plus one of each backup's content and, once, an `fsync` of
/// the backups folder (their names); once per run, an `fsync` of the runs folder with the first
/// snapshot (the journal's published name, so the run cannot vanish after the host changed); one
/// `fdatasync` of the end record (an apply the operator was told succeeded must not come back as
/// interrupted). A rollback adds one for its start (a crash in it must leave the run unfinished);
/// its end is not synced, since the closed name given after it records the same (see
/// `Journal::write`). `setcap` on one file: three for the apply, one for the rollback.
pub struct Journal {
    pub id: String,
    file: File,
    runs: Arc<SafeDir>,
    place: Place,
    /// False while the journal still has its hidden name: nothing has changed yet.
    published: bool,
    /// The backups folder, once a step saved a file in it.
    backups: Option<SafeDir>,
    /// New names in the backups folder / in the runs folder (the journal's published name, the
    /// backups folder, an open name given back) that must reach the disk with the next durable
    /// record.
    backups_dirty: bool,
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
                let e = format!("cannot write the journal {}: {e}", self.path().display());
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

    fn hidden(&self) -> String {
        format!("{NEW}{}{CLOSED}", self.id)
    }

    /// Where the journal is now, for messages.
    fn path(&self) -> PathBuf {
        if self.published {
            self.runs.join(self.place.journal(&self.id))
        } else {
            self.runs.join(self.hidden())
        }
    }

    /// The run as written so far.
    pub fn run(&self) -> Result<Run> {
        let Some(Record::Start { plan, .. }) = self.records.first() else {
            return Err(anyhow::anyhow!("journal of run {} has no start record", self.id).into());
        };
        Ok(Run {
            id: self.id.clone(),
            journal: self.path(),
            plan: (**plan).clone(),
            records: self.records.clone(),
            warnings: Vec::new(),
            runs: Arc::clone(&self.runs),
            place: self.place,
        })
    }

    fn write(&mut self, r: &Record) -> std::io::Result<()> {
        write_fault()?;
        let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        let durable = match r {
            Record::Before { .. } | Record::RollbackStart { .. } => true,
            // A rollback's end is not synced where the journal's closed name, given only after
            // the record is written, says the same (see `StateDir::read`): should a crash keep
            // the name and lose the record, the run still reads as rolled back; should it lose
            // both, the run reads as a rollback to finish, which then finds every target as it
            // was. Syncing it would not make the undo itself durable either.
            Record::End {
                status: Status::RolledBack,
            } => self.place != Place::Open,
            Record::End { .. } => true,
            _ => false,
        };
        if durable {
            // The record itself: fdatasync also covers the file's new length. (No run folder is
            // synced for the journal's name, as runs of earlier versions needed: the journal
            // itself is the entry in runs/, whose sync below makes its name durable.)
            self.file.sync_data()?;
            // New backup names: once per batch, with the snapshot that refers to them.
            if std::mem::take(&mut self.backups_dirty)
                && let Some(b) = &self.backups
            {
                b.sync()?;
            }
            if !self.published {
                // The journal's content is durable before its name is: a run that exists after
                // a crash always has its start and first snapshot.
                self.runs
                    .rename(&self.hidden(), &self.place.journal(&self.id))?;
                self.published = true;
                self.runs_dirty = true;
            }
            // The run's name (and its backups folder's), so the run cannot vanish in a crash
            // after the host changed.
            if std::mem::take(&mut self.runs_dirty) {
                self.runs.sync()?;
            }
        }
        if self.published
            && let Record::End {
                status: Status::RolledBack,
            } = r
        {
            // Neither synced nor required: a journal left under its open name (or a legacy
            // marker left behind) by a crash is read and found rolled back.
            let _ = match self.place {
                Place::Open => self.runs.rename(
                    &Place::Open.journal(&self.id),
                    &Place::Closed.journal(&self.id),
                ),
                Place::Legacy => self.runs.remove(&format!("{}{LEGACY_MARKER}", self.id)),
                Place::Closed => Ok(()),
            };
            if self.place == Place::Open {
                self.place = Place::Closed;
            }
        }
        Ok(())
    }

    /// Saves a file in the run's backups folder before the change it protects. Its content is
    /// synced now; its name (and the folder's, when new) reaches the disk with the step's
    /// snapshot record, which is synced before the step runs.
    pub fn save_backup(&mut self, name: &str, content: &[u8]) -> Result<()> {
        let folder = self.place.backups(&self.id);
        let r = (|| -> std::io::Result<()> {
            write_fault()?;
            let dir = match &mut self.backups {
                Some(dir) => dir,
                none => {
                    let (dir, _) = self.runs.make_subdir(&folder)?;
                    self.runs_dirty = true;
                    none.insert(dir)
                }
            };
            let mut f = dir.open(name, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL)?;
            f.write_all(content)?;
            f.sync_data()
        })();
        r.map_err(|e| {
            let path = self.runs.join(&folder).join(name);
            let e = format!("cannot write the backup {}: {e}", path.display());
            if self.broken.is_none() {
                self.broken = Some(e.clone());
            }
            anyhow::anyhow!("{e}")
        })?;
        self.backups_dirty = true;
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

/// The state directory. It is checked and opened once per value: everything after goes through
/// that descriptor, so every command works on the one directory it checked.
pub struct StateDir {
    pub dir: PathBuf,
    base: OnceLock<SafeDir>,
    runs: OnceLock<Arc<SafeDir>>,
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
        StateDir {
            dir,
            base: OnceLock::new(),
            runs: OnceLock::new(),
        }
    }

    /// The state directory, checked; `None` when it does not exist and `create` is false.
    fn open(&self, create: bool) -> Result<Option<&SafeDir>> {
        if let Some(base) = self.base.get() {
            return Ok(Some(base));
        }
        let opened = SafeDir::open_trusted(&self.dir, create).map_err(|why| {
            refused(format!(
                "refusing the state directory {}: {why}",
                self.dir.display()
            ))
        })?;
        Ok(opened.map(|d| self.base.get_or_init(|| d)))
    }

    fn runs_dir(&self, create: bool) -> Result<Option<Arc<SafeDir>>> {
        if let Some(runs) = self.runs.get() {
            return Ok(Some(Arc::clone(runs)));
        }
        let Some(base) = self.open(create)? else {
            return Ok(None);
        };
        let cannot =
            |e: std::io::Error| refused(format!("cannot open {}: {e}", base.join(RUNS).display()));
        let runs = if create {
            let (runs, made) = base.make_subdir(RUNS).map_err(cannot)?;
            // Its name must outlive a crash, as the journals in it do.
            if made {
                base.sync().map_err(cannot)?;
            }
            Some(runs)
        } else {
            base.subdir(RUNS).map_err(cannot)?
        };
        Ok(runs.map(|r| Arc::clone(self.runs.get_or_init(|| Arc::new(r)))))
    }

    /// The entries of `runs/` lowport writes, with their kind.
    fn entries(runs: &SafeDir) -> Result<Vec<(String, bool)>> {
        let mut entries = runs
            .entries()
            .map_err(|e| refused(format!("cannot read {}: {e}", runs.path.display())))?;
        entries.retain(|(name, is_dir)| Entry::of(name, *is_dir).is_some());
        Ok(entries)
    }

    /// The program directory listings an earlier command kept; none when the state directory
    /// does not exist or cannot be used (the command that needs it says why), or holds none.
    pub fn listings(&self) -> Vec<u8> {
        match self.open(false) {
            Ok(Some(base)) => base.read(LISTINGS).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Keeps listings for the next command, replacing the old ones at once (a reader sees
    /// either whole). Only into a state directory that exists: a read-only command does not
    /// create one. Not synced, and failures are ignored: losing them only costs a listing.
    pub fn keep_listings(&self, bytes: &[u8]) {
        let Ok(Some(base)) = self.open(false) else {
            return;
        };
        let temp = format!("{}{}", temp_listings_prefix(), std::process::id());
        // A leftover of a killed command under this pid is removed (its name only, never
        // through a link) and the file made anew, so nothing existing is written through.
        let _ = base.remove(&temp);
        let written = base
            .open(&temp, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL)
            .and_then(|mut f| f.write_all(bytes))
            .and_then(|()| base.rename(&temp, LISTINGS));
        if written.is_err() {
            let _ = base.remove(&temp);
        }
    }

    /// Takes the exclusive lock, or fails at once if another run holds it. Holding it, clears
    /// what a killed run can leave that never took effect: a journal that was never published
    /// and backups without their journal, and the like of earlier versions; and the temporary
    /// listings of killed commands.
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
        // then cut (only when the length changes: pids mostly keep their width), so the file
        // never reads empty.
        let pid = format!("{}\n", std::process::id());
        let _ = crate::os::write_at(&lock.file, pid.as_bytes(), 0);
        if meta.len() != pid.len() as u64 {
            let _ = lock.file.set_len(pid.len() as u64);
        }
        self.clean_up()?;
        Self::sweep_listings(base);
        Ok(lock)
    }

    fn clean_up(&self) -> Result<()> {
        let Some(runs) = self.runs_dir(true)? else {
            return Ok(());
        };
        let gone = |e: std::io::Error| refused(format!("cannot tidy {}: {e}", runs.path.display()));
        let entries = Self::entries(&runs)?;
        let kinds: Vec<Entry> = entries
            .iter()
            .filter_map(|(name, is_dir)| Entry::of(name, *is_dir))
            .collect();
        let has =
            |id: &str, what: fn(&Entry) -> bool| kinds.iter().any(|k| k.id() == id && what(k));
        for ((name, _), kind) in entries.iter().zip(&kinds) {
            match *kind {
                Entry::Unpublished(_) => runs.remove(name).map_err(gone)?,
                Entry::LegacyUnpublished(_) => runs.remove_tree(name).map_err(gone)?,
                Entry::Backups(id) if !has(id, |k| matches!(k, Entry::Journal(..))) => {
                    runs.remove_tree(name).map_err(gone)?
                }
                Entry::LegacyMarker(id) if !has(id, |k| matches!(k, Entry::Legacy(_))) => {
                    runs.remove(name).map_err(gone)?
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes the temporary listings of commands killed before their rename
    /// ([`StateDir::keep_listings`]), named by their pid. A command still writing one loses
    /// only its listing. Failures are ignored, as for the listings themselves.
    fn sweep_listings(base: &SafeDir) {
        let prefix = temp_listings_prefix();
        for (name, is_dir) in base.entries().unwrap_or_default() {
            if !is_dir && named_by_pid(&name, &prefix) {
                let _ = base.remove(&name);
            }
        }
    }

    /// Starts a run: its journal (under a hidden name) and the start record holding the plan.
    /// The run comes into existence with the first step's snapshot, before anything changes.
    pub fn create_run(&self, plan: &Plan, who: Who, _lock: &Lock) -> Result<Journal> {
        let runs = self
            .runs_dir(true)?
            .ok_or_else(|| refused(format!("cannot create {}", self.dir.join(RUNS).display())))?;
        let seq = Self::entries(&runs)?
            .iter()
            .filter_map(|(name, is_dir)| id_order(Entry::of(name, *is_dir)?.id()))
            .map(|(seq, _)| seq)
            .max()
            .unwrap_or(0);
        let id = new_run_id(seq.max(1));
        let hidden = format!("{NEW}{id}{CLOSED}");
        let file = runs
            .open(
                &hidden,
                OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT | OFlag::O_EXCL,
            )
            .map_err(|e| {
                refused(format!(
                    "cannot start a run in {}: {e}",
                    runs.join(&hidden).display()
                ))
            })?;
        let mut j = Journal {
            id,
            file,
            runs,
            place: Place::Open,
            published: false,
            backups: None,
            backups_dirty: false,
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
        let fail = |e: std::io::Error| {
            refused(format!("cannot reopen run {}: {e}", run.journal.display()))
        };
        // A run applied by this version still has its open name. One rolled back before gets it
        // back, and one of an earlier version its marker (if it lost it): that new name must be
        // durable before anything is undone, with the rollback's start.
        let (place, new_name) = match run.place {
            Place::Open => (Place::Open, false),
            Place::Closed => {
                runs.rename(
                    &Place::Closed.journal(&run.id),
                    &Place::Open.journal(&run.id),
                )
                .map_err(fail)?;
                (Place::Open, true)
            }
            Place::Legacy => {
                let marker = format!("{}{LEGACY_MARKER}", run.id);
                let missing = runs.open(&marker, OFlag::O_WRONLY).is_err();
                if missing {
                    runs.open(&marker, OFlag::O_WRONLY | OFlag::O_CREAT)
                        .map_err(fail)?;
                }
                (Place::Legacy, missing)
            }
        };
        let mut file =
            open_journal(&runs, &run.id, place, OFlag::O_RDWR | OFlag::O_APPEND).map_err(fail)?;
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
            file,
            runs,
            place,
            published: true,
            backups: None,
            backups_dirty: false,
            runs_dirty: new_name,
            records: run.records.clone(),
            broken: None,
        })
    }

    /// Accounts this run created (and has not undone) that a later run, not rolled back, names
    /// as its user or group.
    fn accounts_used_later(&self, runs: &Arc<SafeDir>, run: &Run) -> Result<Vec<String>> {
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
        for (id, place) in later
            .iter()
            .filter(|(id, _)| id_order(id) > Some(order.clone()))
        {
            // A later run that cannot be read is reported by `history`; it cannot name anyone.
            let Ok(Some(other)) = self.read(runs, id, *place) else {
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
        let place = find(&runs, id).ok_or_else(|| self.no_run(id))?;
        self.read(&runs, id, place)?.ok_or_else(|| {
            refused(format!(
                "run {id} has an empty journal {}: it was killed before its first change, so \
                 it changed nothing; remove {}",
                runs.join(place.journal(id)).display(),
                runs.join(place.entry(id)).display()
            ))
        })
    }

    /// Reads and validates a run. `Ok(None)`: its journal is missing or empty, so the run never
    /// reached its first change (only versions that created runs in place leave these).
    fn read(&self, runs: &Arc<SafeDir>, id: &str, place: Place) -> Result<Option<Run>> {
        let path = runs.join(place.journal(id));
        let bytes = match open_journal(runs, id, place, OFlag::empty()).and_then(|mut f| {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut out).map(|_| out)
        }) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(refused(format!("cannot read {}: {e}", path.display()))),
        };
        let (records, warnings) = parse(&bytes).map_err(|(line, why)| {
            refused_as(
                Refusal::InvalidJournal,
                format!(
                    "run {id}: line {line} of {} is not a valid lowport record ({why}); lowport \
                 will not act on it. Inspect the file, and move it away if it is not lowport's",
                    path.display()
                ),
            )
        })?;
        let Some(Record::Start { plan, .. }) = records.first() else {
            return Ok(None);
        };
        let plan = (**plan).clone();
        let mut warnings: Vec<String> = warnings
            .into_iter()
            .map(|line| {
                format!(
                    "run {id}: line {line} of {} is unreadable (torn by a crash) and is \
                     skipped: a step whose snapshot it was never ran (snapshots are synced \
                     first), and any other step is undone from its snapshot",
                    path.display()
                )
            })
            .collect();
        let mut records = records;
        let rolled_back = Record::End {
            status: Status::RolledBack,
        };
        // The closed name is given only once the rollback's end record is written, which is
        // not synced: a crash can keep the name and lose the record (and the undo records
        // before it), never the synced start of the rollback (see `Journal::write`). Only that
        // pattern is completed; any other closed journal (renamed by hand, restored from a
        // copy) is read as its records say.
        let rollback_began = records
            .iter()
            .rev()
            .find_map(|r| match r {
                Record::End { .. } => Some(false),
                Record::RollbackStart { .. } => Some(true),
                _ => None,
            })
            .unwrap_or(false);
        if place == Place::Closed && rollback_began {
            warnings.push(format!(
                "run {id}: {} lost its last record in a crash after its rollback ended; its \
                 closed name says it was rolled back",
                path.display()
            ));
            records.push(rolled_back);
        }
        Ok(Some(Run {
            id: id.to_string(),
            journal: path,
            plan,
            records,
            warnings,
            runs: Arc::clone(runs),
            place,
        }))
    }

    /// The runs folder and every run id with where its journal is, oldest first (by sequence).
    fn list(&self) -> Result<Option<Listing>> {
        let Some(runs) = self.runs_dir(false)? else {
            return Ok(None);
        };
        let mut ids: Vec<(u64, String, String, Place)> = Self::entries(&runs)?
            .iter()
            .filter_map(|(name, is_dir)| match Entry::of(name, *is_dir)? {
                Entry::Journal(id, place) => Some((id, place)),
                Entry::Legacy(id) => Some((id, Place::Legacy)),
                _ => None,
            })
            .filter_map(|(id, place)| {
                let (seq, text) = id_order(id)?;
                Some((seq, text, id.to_string(), place))
            })
            .collect();
        ids.sort();
        // One journal per run, should a copy have made two: the one `load` finds.
        ids.dedup_by(|b, a| a.2 == b.2);
        let ids = ids.into_iter().map(|(.., id, place)| (id, place)).collect();
        Ok(Some((runs, ids)))
    }

    /// Every run id, oldest first (by sequence).
    pub fn ids(&self) -> Vec<String> {
        self.list()
            .ok()
            .flatten()
            .map(|(_, ids)| ids.into_iter().map(|(id, _)| id).collect())
            .unwrap_or_default()
    }

    /// Every readable run, oldest first, and a message for each journal that is not one.
    pub fn scan(&self) -> Result<(Vec<Run>, Vec<String>)> {
        let Some((runs, ids)) = self.list()? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let mut out = Vec::new();
        let mut notes = Vec::new();
        for (id, place) in ids {
            match self.read(&runs, &id, place) {
                Ok(Some(run)) => out.push(run),
                Ok(None) => notes.push(format!(
                    "run {id} never started (its journal {} is empty or missing) and changed \
                     nothing; remove {}",
                    runs.join(place.journal(&id)).display(),
                    runs.join(place.entry(&id)).display()
                )),
                Err(e) => notes.push(e.to_string()),
            }
        }
        Ok((out, notes))
    }

    /// Every run, oldest first; a journal that cannot be read or validated is an error, so
    /// that what checks the runs (`verify --all`) never passes over one. Journals that never
    /// started changed nothing and are left out.
    pub fn runs(&self) -> Result<Vec<Run>> {
        let Some((runs, ids)) = self.list()? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (id, place) in ids {
            out.extend(self.read(&runs, &id, place)?);
        }
        Ok(out)
    }

    /// The newest run that is not rolled back yet (what `rollback --last` undoes).
    pub fn last_to_undo(&self) -> Result<Option<Run>> {
        let Some((runs, ids)) = self.list()? else {
            return Ok(None);
        };
        for (id, place) in ids.iter().rev() {
            // A journal that never started changed nothing: look further back.
            if let Some(run) = self.read(&runs, id, *place)?
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
                    "run {} is unfinished ({}); finish it first with `{}`. Nothing was changed.",
                    r.id,
                    r.status(),
                    rollback_command(&state_dir_option(&self.dir), &r.id)
                ),
            )),
        }
    }

    /// Runs that were interrupted or whose rollback is incomplete. Only marked runs are read:
    /// journals under their open name, and an earlier version's runs with their marker.
    pub fn unfinished(&self) -> Result<Vec<Run>> {
        let Some(runs) = self.runs_dir(false)? else {
            return Ok(Vec::new());
        };
        let entries = Self::entries(&runs)?;
        let kinds: Vec<Entry> = entries
            .iter()
            .filter_map(|(name, is_dir)| Entry::of(name, *is_dir))
            .collect();
        let mut out = Vec::new();
        for kind in &kinds {
            let (id, place) = match *kind {
                Entry::Journal(id, Place::Open) => (id, Place::Open),
                // A marker left without its run marks nothing.
                Entry::LegacyMarker(id) if kinds.contains(&Entry::Legacy(id)) => {
                    (id, Place::Legacy)
                }
                _ => continue,
            };
            // A run that never started is no unfinished run.
            let Some(run) = self.read(&runs, id, place)? else {
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

/// The runs folder, and its runs with where their journals are.
type Listing = (Arc<SafeDir>, Vec<(String, Place)>);

/// Where run `id`'s journal is: its open or closed name, or an earlier version's folder (an
/// entry of any type: reading it refuses what is not a regular file or folder).
fn find(runs: &SafeDir, id: &str) -> Option<Place> {
    [Place::Open, Place::Closed, Place::Legacy]
        .into_iter()
        .find(|p| runs.exists(&p.entry(id)))
}

/// Opens run `id`'s journal at `place`, never through a link (an earlier version's through its
/// folder, which is no link either).
fn open_journal(runs: &SafeDir, id: &str, place: Place, flags: OFlag) -> std::io::Result<File> {
    match place {
        Place::Open | Place::Closed => runs.open(&place.journal(id), flags),
        Place::Legacy => runs
            .subdir(id)?
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?
            .open(LEGACY_JOURNAL, flags),
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
    // A step is carried out, and undone, only after its snapshot is durable: a record of either
    // without one (its line damaged) leaves nothing lowport could undo it with.
    let snapshotted = |n: usize| {
        let found = before
            .iter()
            .any(|r| matches!(r, Record::Before { step, .. } if *step == n));
        found.then_some(()).ok_or_else(|| {
            format!("step {n} is recorded as carried out or undone, but no snapshot of it is")
        })
    };
    match r {
        Record::Before { step: n, snapshot } => {
            check_snapshot(step(*n)?, snapshot, &Root::new(plan.root.clone()))
        }
        Record::Done { step: n, after } => {
            check_state(step(*n)?, after)?;
            snapshotted(*n)
        }
        Record::Undone { step: n } | Record::UndoFailed { step: n, .. } => {
            step(*n)?;
            snapshotted(*n)
        }
        Record::Failed { step: n, .. } => step(*n).map(drop),
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
    fn entries_of_the_runs_folder_are_told_apart_by_name() {
        let id = "7-20261129T125133Z";
        let old = "20261129T115958Z-0001";
        let cases = [
            (
                format!("{id}.open.jsonl"),
                false,
                Some(Entry::Journal(id, Place::Open)),
            ),
            (
                format!("{id}.jsonl"),
                false,
                Some(Entry::Journal(id, Place::Closed)),
            ),
            (
                format!(".new-{id}.jsonl"),
                false,
                Some(Entry::Unpublished(id)),
            ),
            (format!("{id}.backups"), true, Some(Entry::Backups(id))),
            (id.to_string(), true, Some(Entry::Legacy(id))),
            (old.to_string(), true, Some(Entry::Legacy(old))),
            (format!("{id}.open"), false, Some(Entry::LegacyMarker(id))),
            (
                format!(".new-{id}"),
                true,
                Some(Entry::LegacyUnpublished(id)),
            ),
            // The right name on the wrong kind of entry, and names lowport never writes.
            (format!("{id}.open.jsonl"), true, None),
            (format!("{id}.backups"), false, None),
            (id.to_string(), false, None),
            (format!("{id}.open"), true, None),
            (format!(".new-{id}"), false, None),
            ("lock".to_string(), false, None),
            (format!("{id}.jsonl.tmp"), false, None),
            (format!("x{id}.jsonl"), false, None),
            (".new-.jsonl".to_string(), false, None),
        ];
        for (name, dir, want) in &cases {
            assert_eq!(Entry::of(name, *dir), *want, "{name} (dir: {dir})");
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
