//! Who already listens on a port: on Linux from the kernel's socket tables (`linux`). Other
//! systems report no listeners here (their tables are another interface: `sockstat`, `netstat`
//! or `lsof`), so a busy port there shows up as the bind probe's "address in use" instead of
//! with its holder's name.

use serde::{Deserialize, Serialize};

#[cfg(target_os = "linux")]
mod linux;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub proto: String,
    pub address: String,
    pub port: u16,
    pub uid: u32,
    pub pid: Option<u32>,
    pub command: Option<String>,
}

/// Every socket listening (TCP) or bound (UDP) on one of `ports` in this network namespace.
#[cfg(target_os = "linux")]
pub fn on_ports(ports: &[u16]) -> Vec<Listener> {
    linux::on_ports(ports)
}

/// None known: see the module.
#[cfg(not(target_os = "linux"))]
pub fn on_ports(_ports: &[u16]) -> Vec<Listener> {
    Vec::new()
}
