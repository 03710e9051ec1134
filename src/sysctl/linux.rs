//! Linux: `/proc/sys/<key with dots as slashes>`.

use anyhow::{Context, bail};

use super::proc_sys_path as path;

pub fn read(key: &str) -> Option<String> {
    std::fs::read_to_string(path(key))
        .ok()
        .map(|s| s.trim().to_string())
}

pub fn write(key: &str, value: &str) -> anyhow::Result<()> {
    let path = path(key);
    std::fs::write(&path, format!("{value}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    let now = std::fs::read_to_string(&path)?;
    if now.trim() != value {
        bail!("{key} reads {} after writing {value}", now.trim());
    }
    Ok(())
}
