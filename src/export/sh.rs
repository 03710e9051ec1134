//! POSIX shell export: built by the `os` branch (issue 7). This placeholder keeps the dispatch
//! compiling until that branch replaces the file.

use super::File;
use crate::error::{Error, Result};
use crate::plan::Plan;

pub fn export(_plan: &Plan) -> Result<Vec<File>> {
    Err(Error::Invalid(
        "--format sh is not built in this build yet (it comes with the other-OS work)".into(),
    ))
}
