//! The errors an operator can meet, each tied to one documented exit code.
//!
//! Engine code returns [`Error`]; `main` turns it into a message and [`Exit`] code. Outcomes that
//! are reports rather than errors (a failed apply that was rolled back, a failed verification) are
//! returned as an `Exit` directly by the command that produced the report.

use std::process::ExitCode;

/// Exit codes, documented in README.md and `lowport --help`. Scripts rely on them: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done (for `plan`: a plan with pending changes).
    Success = 0,
    /// An unexpected failure inside lowport (a bug or an I/O error it cannot attribute).
    Internal = 1,
    /// Invalid input: a bad port, name, path, method or plan file. Nothing was changed.
    InvalidInput = 2,
    /// The operator declined, or a high-risk method was not acknowledged. Nothing was changed.
    Declined = 3,
    /// A step failed (or the run was interrupted) and every completed step was undone.
    RolledBack = 4,
    /// A step failed and at least one undo failed too: the journal is kept for `lowport rollback`.
    RollbackIncomplete = 5,
    /// Another lowport run holds the lock. Nothing was changed.
    LockHeld = 6,
    /// The host's state does not allow it (method unavailable, stale plan, unfinished run, file
    /// edited since apply, not root). Nothing was changed.
    Refused = 7,
    /// `verify` (or the verification at the end of `apply`) could not prove the grant.
    VerifyFailed = 8,
    /// `plan`: nothing to do, everything is already in place.
    NothingToDo = 9,
    /// `verify --all`: at least one applied run is no longer in place (the report names the fix).
    Drift = 10,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// The exit-code table as shown in `--help`; kept next to the enum so the two cannot drift.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success (plan: changes pending)
  1  internal error
  2  invalid input; nothing changed
  3  declined, or high risk not accepted; nothing changed
  4  failed or interrupted; every completed step was rolled back
  5  failed and rollback incomplete; journal kept, run `lowport rollback --last`
  6  another lowport run holds the lock; nothing changed
  7  refused by the host's state (unavailable method, stale plan, unfinished run,
     file edited since apply, not root); nothing changed
  8  verification failed
  9  plan: nothing to do, already in place
 10  verify --all: drift found (a run is no longer in place; the fix is printed)";

/// Why the host's state refused a request (exit 7): callers branch on this, not on the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The method cannot work on this host (its blockers are in the message).
    Unavailable,
    /// A saved plan no longer matches the host.
    StalePlan,
    /// The plan was made from a facts document: it is for review and export only.
    FromFacts,
    /// An earlier run is interrupted or its rollback incomplete.
    UnfinishedRun,
    /// Changing the host needs root.
    NotRoot,
    /// Files changed since the run being rolled back wrote them.
    EditedSinceApply,
    /// `rollback --last` found no run left to roll back.
    NothingToRollBack,
    /// The state directory, or something in it, cannot be used or trusted (cannot be created,
    /// writable by others, a link where a file should be, an unreadable run).
    StateDir,
    /// A journal record breaks a rule: lowport does not act on it.
    InvalidJournal,
    /// The run created an account that a later run, still applied, names.
    AccountInUse,
    /// An account entry the run created was changed since (a password set, a member added).
    AccountChanged,
    /// The run changed another network namespace's state; roll it back there.
    OtherNetns,
    /// A saved plan file someone other than root (or the caller) could have written.
    PlanFile,
    /// An alternate root (`--root`) someone other than root could replace.
    UntrustedRoot,
    /// lowport does not change hosts of this operating system (Windows): it plans and exports.
    NotOnThisOs,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Declined(String),
    #[error("{message}")]
    Refused { cause: Refusal, message: String },
    #[error("{0}")]
    LockHeld(String),
    /// An I/O error on a named file or directory.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Invalid(_) => Exit::InvalidInput,
            Error::Declined(_) => Exit::Declined,
            Error::Refused { .. } => Exit::Refused,
            Error::LockHeld(_) => Exit::LockHeld,
            Error::Io { .. } | Error::Internal(_) => Exit::Internal,
        }
    }

    pub fn refused(cause: Refusal, message: impl Into<String>) -> Error {
        Error::Refused {
            cause,
            message: message.into(),
        }
    }

    /// An I/O error on `path` (a path or another name for what was read or written).
    pub fn io(path: impl std::fmt::Display, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }

    /// The refusal's cause, when this is one.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Error::Refused { cause, .. } => Some(*cause),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(e.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_typed_and_map_to_their_exit_codes() {
        let e = Error::refused(Refusal::UnfinishedRun, "run x is unfinished");
        assert_eq!(
            (e.exit(), e.refusal()),
            (Exit::Refused, Some(Refusal::UnfinishedRun))
        );
        assert_eq!(e.to_string(), "run x is unfinished");
        let lock = Error::LockHeld("held".into());
        assert_eq!((lock.exit(), lock.refusal()), (Exit::LockHeld, None));
        let io = Error::io(
            "/etc/passwd",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(io.exit(), Exit::Internal);
        assert!(io.to_string().starts_with("/etc/passwd: "), "{io}");
    }
}
