//! Directories lowport keeps its own state in, opened as trusted: the directory and every parent
//! up to `/` must belong to root (or to the user running lowport) and be writable by no one else,
//! as sudo and ssh require of their files. Everything inside is then reached through the
//! directory's descriptor (`openat`) without following symbolic links, so no name in it can be
//! swapped for a link to somewhere else.
//!
//! Windows has neither the owners nor the calls this rests on, so no state directory opens
//! there: lowport applies and rolls back on the unixes only.

use std::ffi::OsStr;
use std::path::Path;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

/// A plain file name: no separator, not `.`/`..`, not hidden.
pub fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains('/')
        && Path::new(name).file_name() == Some(OsStr::new(name))
}

#[cfg(test)]
mod tests {
    use super::plain_name;

    #[test]
    fn only_plain_names_are_plain() {
        assert!(plain_name("step-1.0.backup"));
        for bad in ["", ".", "..", "a/b", ".hidden"] {
            assert!(!plain_name(bad), "{bad}");
        }
    }
}
