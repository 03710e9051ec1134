//! The operating-system layer: the primitives lowport needs whose spelling differs between the
//! unixes and Windows (file owners and modes, opening an entry without following a link,
//! positioned I/O, the effective user, the account database, termination signals), one module
//! per family with the same names. Code that only exists on some systems (sock_diag, the state
//! directory's `openat`, the bind probe's `fork`) keeps its own seam where it is used.
//!
//! On Windows lowport detects, plans and exports, but never changes the host: the writing
//! primitives fail saying so (pointing at `lowport export --format powershell`), and file owners
//! read as an id no account has, so every "only root can change it" check fails closed.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;
