//! The state directory: an exclusive lock, and one folder per run holding an append-only journal
//! (one JSON record per line; the first carries the plan; a step's snapshot is synced before the
//! step changes anything) and the backups needed to undo. A run killed at any point leaves
//! enough to be rolled back.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plan::{Action, Plan, State};

const JOURNAL: &str = "journal.jsonl";

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
        let uid = nix::unistd::geteuid().as_raw();
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
#[serde(tag = "event", rename_all = "snake_case")]
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

/// Everything known about one run, read back from its folder.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    pub dir: PathBuf,
    pub plan: Plan,
    pub records: Vec<Record>,
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

    pub fn backup(&self, name: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.dir.join(name))
    }
}

/// An open run. Records that must survive a crash before the host changes (a step's snapshot,
/// the start of a rollback, the end) are synced; progress records ride along with the next sync,
/// since losing one only makes a later rollback restore a snapshot again, which is idempotent.
pub struct Journal {
    pub id: String,
    pub dir: PathBuf,
    file: File,
    runs: PathBuf,
    /// Directories whose new entries (the run folder, its journal, the marker) must reach the
    /// disk with the next durable record.
    dirs_pending: Vec<PathBuf>,
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Journal {
    pub fn append(&mut self, r: &Record) -> Result<()> {
        let mut line = serde_json::to_vec(r).map_err(anyhow::Error::from)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        let durable = matches!(
            r,
            Record::Before { .. } | Record::RollbackStart { .. } | Record::End { .. }
        );
        if durable {
            self.file.sync_data()?;
            for dir in std::mem::take(&mut self.dirs_pending) {
                fsync_dir(&dir)?;
            }
        }
        if let Record::End {
            status: Status::Applied | Status::RolledBack,
        } = r
        {
            match std::fs::remove_file(marker(&self.runs, &self.id)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Saves a backup file in the run folder, durably, before the change it protects.
    pub fn save_backup(&self, name: &str, content: &[u8]) -> Result<()> {
        let path = self.dir.join(name);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(content)?;
        f.sync_all()?;
        fsync_dir(&self.dir)?;
        Ok(())
    }
}

pub struct StateDir {
    pub dir: PathBuf,
}

/// A run is marked open by an empty `runs/<id>.open` file from before its first change until
/// its end record is durable (an incomplete rollback keeps it). Creating it costs no extra fsync
/// (the runs directory is synced for the new run anyway), and finding unfinished runs is one
/// directory read. Removal is not synced: a stale marker is confirmed against the journal.
fn marker(runs: &Path, id: &str) -> PathBuf {
    runs.join(format!("{id}.open"))
}

/// Holds the exclusive lock until dropped.
pub struct Lock {
    _flock: Flock<File>,
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn new_run_id() -> String {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = stamp.chars().filter(|c| *c != '-' && *c != ':').collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{stamp}-{:04x}", (nanos ^ std::process::id()) & 0xffff)
}

impl StateDir {
    pub fn new(dir: PathBuf) -> Self {
        StateDir { dir }
    }

    fn runs_dir(&self) -> PathBuf {
        self.dir.join("runs")
    }

    fn ensure(&self) -> Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(self.runs_dir())
            .map_err(|e| {
                Error::refused(
                    crate::error::Refusal::StateDir,
                    format!(
                        "cannot create the state directory {}: {e}; run as root or give \
                         --state-dir",
                        self.dir.display()
                    ),
                )
            })
    }

    /// Takes the exclusive lock, or fails at once if another run holds it.
    pub fn lock(&self) -> Result<Lock> {
        self.ensure()?;
        let path = self.dir.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut flock) => {
                // Record our pid so a second run can say who holds the lock.
                flock.set_len(0)?;
                flock.write_all(format!("{}\n", std::process::id()).as_bytes())?;
                Ok(Lock { _flock: flock })
            }
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                Err(Error::LockHeld(format!(
                    "another lowport run (pid {}) holds the lock {}; wait for it to finish. \
                     Nothing was changed.",
                    pid.trim(),
                    path.display()
                )))
            }
            Err((_, e)) => Err(anyhow::anyhow!("cannot lock {}: {e}", path.display()).into()),
        }
    }

    /// Starts a run: its folder, its open marker and the start record holding the plan. They
    /// become durable with the first step's snapshot, before anything changes.
    pub fn create_run(&self, plan: &Plan, who: Who, _lock: &Lock) -> Result<Journal> {
        let id = new_run_id();
        let runs = self.runs_dir();
        let dir = runs.join(&id);
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let new = |path: PathBuf| {
            OpenOptions::new()
                .append(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
        };
        new(marker(&runs, &id))?;
        let file = new(dir.join(JOURNAL))?;
        let dirs_pending = vec![dir.clone(), runs.clone()];
        let mut j = Journal {
            id,
            dir,
            file,
            runs,
            dirs_pending,
        };
        j.append(&Record::Start {
            time: now(),
            who,
            plan: Box::new(plan.clone()),
        })?;
        Ok(j)
    }

    /// Reopens a run to append to it (a later rollback), marked open again until it ends.
    pub fn reopen(&self, run: &Run, _lock: &Lock) -> Result<Journal> {
        let runs = self.runs_dir();
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(marker(&runs, &run.id))?;
        let file = OpenOptions::new()
            .append(true)
            .open(run.dir.join(JOURNAL))?;
        Ok(Journal {
            id: run.id.clone(),
            dir: run.dir.clone(),
            // Only the marker is new: the run folder is on disk already.
            dirs_pending: vec![runs.clone()],
            file,
            runs,
        })
    }

    pub fn load(&self, id: &str) -> Result<Run> {
        let dir = self.runs_dir().join(id);
        if !dir.is_dir() {
            return Err(Error::Invalid(format!(
                "no run '{id}' in {}; `lowport history` lists the runs",
                self.dir.display()
            )));
        }
        let mut records: Vec<Record> = Vec::new();
        let f = File::open(dir.join(JOURNAL))?;
        for line in std::io::BufReader::new(f).lines() {
            let line = line?;
            // A run killed mid-write leaves at most one torn last line; the record it would have
            // been never took effect, since every change waits for its snapshot's sync.
            match serde_json::from_str(&line) {
                Ok(r) => records.push(r),
                Err(_) => break,
            }
        }
        let plan = match records.first() {
            Some(Record::Start { plan, .. }) => (**plan).clone(),
            _ => {
                return Err(anyhow::anyhow!(
                    "run {id}: journal {} has no start record",
                    dir.join(JOURNAL).display()
                )
                .into());
            }
        };
        Ok(Run {
            id: id.to_string(),
            dir,
            plan,
            records,
        })
    }

    /// Every run id, oldest first (ids sort by time).
    pub fn ids(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.runs_dir()) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().to_str().map(String::from))
            .collect();
        ids.sort();
        ids
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<Run>> {
        self.ids().iter().map(|id| self.load(id)).collect()
    }

    /// Refuses to start while an earlier run is unfinished: its undo information must not be
    /// mixed up with a new run's changes.
    pub fn ensure_no_unfinished(&self) -> Result<()> {
        match self.unfinished()?.first() {
            None => Ok(()),
            Some(r) => Err(Error::refused(
                crate::error::Refusal::UnfinishedRun,
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
        let Ok(entries) = std::fs::read_dir(self.runs_dir()) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".open") else {
                continue;
            };
            let run = self.load(id)?;
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
