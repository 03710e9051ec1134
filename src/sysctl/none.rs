//! Systems without sysctl (illumos, Windows): nothing to read, and a write says where the
//! setting lives instead.

use anyhow::bail;

pub fn read(_key: &str) -> Option<String> {
    None
}

pub fn write(key: &str, value: &str) -> anyhow::Result<()> {
    bail!(
        "cannot set {key} = {value}: {} has no sysctl interface (on illumos, network tunables \
         are ipadm properties)",
        std::env::consts::OS
    )
}
