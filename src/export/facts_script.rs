//! `lowport facts-script`: a POSIX sh collector of the facts lowport plans from, for a host
//! where lowport is not installed. Being built.

use crate::error::{Error, Result};
use crate::request::Want;

pub fn render(_family: &str, _want: &Want) -> Result<String> {
    Err(Error::Invalid("facts-script is not built yet".into()))
}
