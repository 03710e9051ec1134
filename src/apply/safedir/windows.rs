//! Windows: no state directory ever opens (to create one is refused, pointing at the export
//! that does the job there; a missing one holds no runs), so no lock, journal or run exists and
//! the rest only gives the executor's code its shape.

use std::convert::Infallible;
use std::fs::File;
use std::io;
use std::ops::BitOr;
use std::path::{Path, PathBuf};

/// The open(2) flags the journal names, as values only: nothing is opened with them here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OFlag(u8);

impl OFlag {
    pub const O_WRONLY: OFlag = OFlag(1);
    pub const O_RDWR: OFlag = OFlag(2);
    pub const O_CREAT: OFlag = OFlag(4);
    pub const O_EXCL: OFlag = OFlag(8);
    pub const O_APPEND: OFlag = OFlag(16);

    /// Read-only, as nix's `OFlag::empty()`.
    pub const fn empty() -> OFlag {
        OFlag(0)
    }
}

impl BitOr for OFlag {
    type Output = OFlag;

    fn bitor(self, other: OFlag) -> OFlag {
        OFlag(self.0 | other.0)
    }
}

/// Never made: [`SafeDir::open_trusted`] returns none, so every method is unreachable.
#[derive(Debug)]
pub struct SafeDir {
    never: Infallible,
    pub path: PathBuf,
}

impl SafeDir {
    pub fn open_trusted(path: &Path, create: bool) -> Result<Option<SafeDir>, String> {
        if !create {
            return Ok(None);
        }
        Err(format!(
            "lowport keeps no state directory ({}) on Windows, since it does not change this host; \
             use `lowport export --format powershell` and run the script it writes",
            path.display()
        ))
    }

    pub fn join(&self, _name: impl AsRef<Path>) -> PathBuf {
        match self.never {}
    }

    pub fn make_subdir(&self, _name: &str) -> io::Result<(SafeDir, bool)> {
        match self.never {}
    }

    pub fn subdir(&self, _name: &str) -> io::Result<Option<SafeDir>> {
        match self.never {}
    }

    pub fn exists(&self, _name: &str) -> bool {
        match self.never {}
    }

    pub fn open(&self, _name: &str, _flags: OFlag) -> io::Result<File> {
        match self.never {}
    }

    pub fn read(&self, _name: &str) -> io::Result<Vec<u8>> {
        match self.never {}
    }

    pub fn entries(&self) -> io::Result<Vec<(String, bool)>> {
        match self.never {}
    }

    pub fn rename(&self, _from: &str, _to: &str) -> io::Result<()> {
        match self.never {}
    }

    pub fn remove(&self, _name: &str) -> io::Result<()> {
        match self.never {}
    }

    pub fn remove_tree(&self, _name: &str) -> io::Result<()> {
        match self.never {}
    }

    pub fn sync(&self) -> io::Result<()> {
        match self.never {}
    }
}

/// No POSIX locks here (nor anything to lock: see the module).
pub fn try_write_lock(_file: &File) -> io::Result<bool> {
    Err(crate::os::unsupported("locking a file"))
}
