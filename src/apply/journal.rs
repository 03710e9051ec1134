//! The state directory: an exclusive lock, and one folder per run holding the plan, an
//! append-only journal (one JSON record per line, fsynced before the change it announces) and
//! the backups needed to undo. A run killed at any point leaves enough to be rolled back.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plan::{Plan, State};

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
        let name = |uid: u32| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .ok()
                .flatten()
                .map_or_else(|| uid.to_string(), |u| u.name)
        };
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
    /// File name, inside the run folder, of the previous content.
    pub backup: Option<String>,
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
    Start {
        time: u64,
        who: Who,
    },
    /// Written and fsynced before step `step` changes anything.
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
        // The last end record wins: a later rollback appends its own.
        self.records
            .iter()
            .rev()
            .find_map(|r| match r {
                Record::End { status } => Some(*status),
                _ => None,
            })
            .unwrap_or(Status::Interrupted)
    }

    pub fn started(&self) -> Option<(u64, &Who)> {
        self.records.iter().find_map(|r| match r {
            Record::Start { time, who } => Some((*time, who)),
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

    pub fn backup(&self, name: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.dir.join(name))
    }
}

/// An open run: appends records durably.
pub struct Journal {
    pub id: String,
    pub dir: PathBuf,
    file: File,
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Journal {
    pub fn append(&mut self, r: &Record) -> Result<()> {
        let mut line = serde_json::to_vec(r).map_err(anyhow::Error::from)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()?;
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
                Error::Refused(format!(
                    "cannot create the state directory {}: {e}; run as root or give \
                     --state-dir",
                    self.dir.display()
                ))
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

    /// Starts a run: its folder, the plan, and the start record, all durable.
    pub fn create_run(&self, plan: &Plan, who: Who, _lock: &Lock) -> Result<Journal> {
        let id = new_run_id();
        let dir = self.runs_dir().join(&id);
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let plan_json = serde_json::to_vec_pretty(plan).map_err(anyhow::Error::from)?;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join("plan.json"))?;
        f.write_all(&plan_json)?;
        f.sync_all()?;
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join("journal.jsonl"))?;
        fsync_dir(&dir)?;
        fsync_dir(&self.runs_dir())?;
        let mut j = Journal { id, dir, file };
        j.append(&Record::Start { time: now(), who })?;
        Ok(j)
    }

    /// Reopens a run to append to it (a later rollback).
    pub fn reopen(&self, run: &Run, _lock: &Lock) -> Result<Journal> {
        let file = OpenOptions::new()
            .append(true)
            .open(run.dir.join("journal.jsonl"))?;
        Ok(Journal {
            id: run.id.clone(),
            dir: run.dir.clone(),
            file,
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
        let plan_text = std::fs::read_to_string(dir.join("plan.json"))?;
        let plan = Plan::load(&plan_text, &format!("run {id}'s plan.json"))?;
        let mut records = Vec::new();
        let f = File::open(dir.join("journal.jsonl"))?;
        for line in std::io::BufReader::new(f).lines() {
            let line = line?;
            // A run killed mid-write leaves at most one torn last line; the record it would have
            // been never took effect, since every change waits for its record's fsync.
            match serde_json::from_str(&line) {
                Ok(r) => records.push(r),
                Err(_) => break,
            }
        }
        Ok(Run {
            id: id.to_string(),
            dir,
            plan,
            records,
        })
    }

    /// Every run, oldest first (ids sort by time).
    pub fn runs(&self) -> Result<Vec<Run>> {
        let Ok(entries) = std::fs::read_dir(self.runs_dir()) else {
            return Ok(Vec::new());
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(String::from))
            .collect();
        ids.sort();
        ids.iter().map(|id| self.load(id)).collect()
    }
}
