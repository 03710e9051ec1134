//! Service profiles (data in `assets/profiles/`): what a known program is called, how it takes
//! its configuration file, and which settings in that file name the ports it listens on.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::root::Root;
use crate::validate::{FIRST_UNPRIVILEGED, PortArg};

#[derive(Debug, Clone, Deserialize)]
pub struct Profile {
    pub name: String,
    pub binary: String,
    pub config_flag: String,
    pub port_keys: Vec<String>,
}

const PROFILES: &[&str] = &[include_str!("../assets/profiles/fabio.json")];

pub fn all() -> Vec<Profile> {
    PROFILES
        .iter()
        .filter_map(|p| serde_json::from_str(p).ok())
        .collect()
}

/// clap value parser for `--profile`.
pub fn name(s: &str) -> std::result::Result<String, String> {
    let names: Vec<String> = all().into_iter().map(|p| p.name).collect();
    if names.iter().any(|n| n == s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unknown profile '{s}'; known profiles: {}",
            names.join(", ")
        ))
    }
}

/// Java-properties key/value pairs (`key = value`, `key: value`, `\` continuations).
fn properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with(['#', '!'])) {
            continue;
        }
        if let Some(cont) = line.strip_suffix('\\') {
            pending.push_str(cont);
            continue;
        }
        pending.push_str(line);
        let full = std::mem::take(&mut pending);
        let at = full.find(['=', ':']).unwrap_or(full.len());
        let (k, v) = full.split_at(at);
        out.push((
            k.trim().to_string(),
            v.get(1..).unwrap_or("").trim().to_string(),
        ));
    }
    out
}

/// Every listener (`[host]:port;options`, comma-separated) of the profile's keys whose port is
/// privileged: (key, listener, port).
pub fn privileged_listeners(profile: &Profile, text: &str) -> Vec<(String, String, u16)> {
    let mut out = Vec::new();
    for (key, value) in properties(text) {
        if !profile.port_keys.contains(&key) {
            continue;
        }
        for listener in value.split(',').map(str::trim).filter(|l| !l.is_empty()) {
            let addr = listener.split(';').next().unwrap_or("");
            let port = addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
            if let Some(p) = port.filter(|p| *p > 0 && *p < FIRST_UNPRIVILEGED) {
                out.push((key.clone(), listener.to_string(), p));
            }
        }
    }
    out
}

/// Fills in what the profile knows: the binary's name, `CONFIG_FLAG FILE` as its arguments, and
/// the privileged ports the file's listeners use (unless ports were given). Returns notes that
/// say what was taken from where.
pub fn resolve(
    root: &Root,
    profile: &str,
    config: Option<&Path>,
    binary: &mut Option<String>,
    ports: &mut Vec<PortArg>,
    args: &mut Vec<String>,
) -> Result<Vec<String>> {
    let p = all()
        .into_iter()
        .find(|p| p.name == profile)
        .ok_or_else(|| Error::Invalid(format!("unknown profile '{profile}'")))?;
    let mut notes = Vec::new();
    if binary.is_none() {
        *binary = Some(p.binary.clone());
    }
    let Some(config) = config else {
        return Ok(notes);
    };
    let text = std::fs::read_to_string(root.host(config)).map_err(|e| {
        Error::Invalid(format!(
            "cannot read the {profile} configuration {}: {e}",
            config.display()
        ))
    })?;
    if args.is_empty() {
        *args = vec![p.config_flag.clone(), config.display().to_string()];
    }
    let found = privileged_listeners(&p, &text);
    for (key, listener, port) in &found {
        notes.push(format!(
            "{} sets {key} = {listener}: port {port}",
            config.display()
        ));
    }
    if ports.is_empty() {
        let mut list: Vec<u16> = found.iter().map(|(_, _, p)| *p).collect();
        list.sort_unstable();
        list.dedup();
        *ports = list.into_iter().map(PortArg::Grant).collect();
    }
    if found.is_empty() {
        notes.push(format!(
            "{} names no port below 1024 in {}",
            config.display(),
            p.port_keys.join(" or ")
        ));
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fabio_listeners_below_1024() {
        let fabio = all().into_iter().find(|p| p.name == "fabio").unwrap();
        let text = "# comment\nproxy.addr = :80;proto=http,[::]:443;proto=https;cs=web,1.2.3.4:9999;rt=3s\n\
                    ui.addr=127.0.0.1:81\nproxy.cs = cs=web;type=file;cert=/c.pem\n";
        let ports: Vec<u16> = privileged_listeners(&fabio, text)
            .iter()
            .map(|l| l.2)
            .collect();
        assert_eq!(ports, [80, 443, 81]);
        let continued = "proxy.addr = :8080,\\\n   :443;proto=https\n";
        let ports: Vec<u16> = privileged_listeners(&fabio, continued)
            .iter()
            .map(|l| l.2)
            .collect();
        assert_eq!(ports, [443]);
    }
}
