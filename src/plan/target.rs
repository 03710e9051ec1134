//! What verification must prove once a plan ran: part of the plan's data, so the executor and
//! `verify` never go back to the method catalog or into a method's internals.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What to prove: ports, and optionally the user who must bind them and the binary that holds
/// the grant.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Target {
    pub ports: Vec<u16>,
    pub user: Option<String>,
    pub binary: Option<String>,
    /// A systemd service that carries the grant.
    #[serde(default)]
    pub service: Option<String>,
    /// Redirects (client port, service port) to prove.
    #[serde(default)]
    pub redirects: Vec<(u16, u16)>,
    /// The grant goes through authbind's byport files.
    #[serde(default)]
    pub authbind: bool,
    /// authbind's byport file for each of `ports`, in the same order (in-root paths).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub byport: Vec<PathBuf>,
}
