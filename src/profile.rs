//! Service profiles (data in `assets/profiles/`): what a known program is called, how it takes
//! its configuration file, and which settings in that file name the ports it listens on.

use std::collections::HashMap;
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

/// Key/value pairs as fabio's properties library (magiconair/properties) reads them: `key =
/// value`, `key: value` or `key value`; `#`/`!` comments; a trailing `\` continues the line (the
/// next line's leading blanks dropped); a later assignment replaces an earlier one; `${key}`
/// expands to another key's final value. Keys in first-seen order.
fn properties(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    // Where each key is in `out`: a file of many keys is read in linear time, not quadratic.
    let mut index: HashMap<String, usize> = HashMap::new();
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
        let at = full
            .find(|c: char| c == '=' || c == ':' || c.is_whitespace())
            .unwrap_or(full.len());
        let (k, rest) = full.split_at(at);
        // The separator: blanks, then at most one `=` or `:`, then blanks.
        let rest = rest.trim_start();
        let v = rest
            .strip_prefix(['=', ':'])
            .unwrap_or(rest)
            .trim()
            .to_string();
        match index.get(k) {
            Some(&i) => out[i].1 = v,
            None => {
                index.insert(k.to_string(), out.len());
                out.push((k.to_string(), v));
            }
        }
    }
    let values: HashMap<String, String> = out.iter().cloned().collect();
    // Each value may grow by EXPANSION_LIMIT, and all of them together by TOTAL_EXPANSION.
    let mut total = TOTAL_EXPANSION;
    for (_, v) in &mut out {
        let mut budget = EXPANSION_LIMIT.min(total);
        let before = budget;
        *v = expand(v, &values, 0, &mut budget);
        total -= before - budget;
    }
    out
}

/// How many bytes the expansions of one value may add: `a=${b}${b}`, `b=${c}${c}`, … doubles at
/// every level, so a depth limit alone lets a small file exhaust memory (found by fuzzing).
const EXPANSION_LIMIT: usize = 64 * 1024;

/// How many bytes the expansions of all values together may add: many keys each expanding one
/// large value would otherwise multiply it.
const TOTAL_EXPANSION: usize = 4 << 20;

/// `${key}` references replaced by the key's value, recursively (a depth limit stops cycles, a
/// byte budget stops exponential growth); an unknown key, or one past either limit, is left as
/// written (fabio would look in its environment, unknown here).
fn expand(
    value: &str,
    values: &HashMap<String, String>,
    depth: usize,
    budget: &mut usize,
) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            break;
        };
        let key = &rest[start + 2..start + 2 + len];
        out.push_str(&rest[..start]);
        match values.get(key) {
            Some(v) if depth < 16 && v.len() <= *budget => {
                *budget -= v.len();
                out.push_str(&expand(v, values, depth + 1, budget));
            }
            _ => out.push_str(&rest[start..start + 3 + len]),
        }
        rest = &rest[start + 3 + len..];
    }
    out.push_str(rest);
    out
}

/// A listener's port as Go's net package reads it: a number, or a service name from Go's own
/// table (used where /etc/services lacks it): `:http` is 80, `:https` is 443.
fn go_port(port: &str) -> Option<u16> {
    if let Ok(n) = port.parse() {
        return Some(n);
    }
    Some(match port.to_ascii_lowercase().as_str() {
        "ftp" => 21,
        "ssh" => 22,
        "telnet" => 23,
        "smtp" => 25,
        "gopher" => 70,
        "http" => 80,
        "pop3" => 110,
        "imap2" => 143,
        "imap3" => 220,
        "https" => 443,
        "submissions" => 465,
        "imaps" => 993,
        "ftps" => 990,
        "pop3s" => 995,
        _ => return None,
    })
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
            let port = addr.rsplit(':').next().and_then(go_port);
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
    let text = crate::facts::files::read_to_string(&root.host(config)).map_err(|e| {
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
    let mut list: Vec<u16> = found.iter().map(|(_, _, p)| *p).collect();
    list.sort_unstable();
    list.dedup();
    let named = |l: &[u16]| l.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
    if ports.is_empty() {
        if list.is_empty() {
            return Err(Error::Invalid(format!(
                "{} names no port below 1024 in {}: there is nothing to grant, so nothing was \
                 planned (give --port to plan for a port anyway)",
                config.display(),
                p.port_keys.join(" or ")
            )));
        }
        *ports = list.into_iter().map(PortArg::Grant).collect();
    } else {
        // The operator's --port wins, but never silently: say where it and the file disagree.
        let mut given: Vec<u16> = ports
            .iter()
            .filter_map(|a| match a {
                PortArg::Grant(p) => Some(*p),
                _ => None,
            })
            .collect();
        given.sort_unstable();
        given.dedup();
        if given != list {
            notes.push(format!(
                "--port {} differs from what {} makes {profile} listen on below 1024 ({}): \
                 lowport plans for --port as given; {profile} itself follows its configuration",
                named(&given),
                config.display(),
                if list.is_empty() {
                    "nothing".to_string()
                } else {
                    named(&list)
                }
            ));
        }
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

    #[test]
    fn reads_fabio_properties_as_fabio_does() {
        let fabio = all().into_iter().find(|p| p.name == "fabio").unwrap();
        let ports = |text: &str| -> Vec<u16> {
            privileged_listeners(&fabio, text)
                .iter()
                .map(|l| l.2)
                .collect()
        };
        // The last value wins.
        assert_eq!(ports("proxy.addr = :80\nproxy.addr = :443\n"), [443]);
        // Every separator fabio accepts.
        assert_eq!(ports("proxy.addr 0.0.0.0:80"), [80]);
        assert_eq!(ports("proxy.addr: :80"), [80]);
        assert_eq!(ports("proxy.addr=:80"), [80]);
        // References expand, also to keys defined later.
        assert_eq!(
            ports("proxy.addr = ${web}\nweb = :80;proto=http,${tls}\ntls = :443;proto=https\n"),
            [80, 443]
        );
        // A reference cycle ends.
        assert_eq!(
            ports("proxy.addr = ${a}\na = ${proxy.addr}\n"),
            Vec::<u16>::new()
        );
        // References that double at every level stop at the byte budget instead of filling
        // memory (2^16 copies of a 1 KiB value otherwise).
        let mut laughs = format!("proxy.addr = :80,${{k0}}\nk16 = {}\n", "x".repeat(1024));
        for i in 0..16 {
            laughs.push_str(&format!("k{i} = ${{k{n}}}${{k{n}}}\n", n = i + 1));
        }
        assert_eq!(ports(&laughs), [80]);
        let longest = properties(&laughs).iter().map(|(_, v)| v.len()).max();
        assert!(longest <= Some(2 * EXPANSION_LIMIT), "{longest:?}");
        // Service names resolve as Go's net package does; specific addresses keep their port.
        assert_eq!(ports("proxy.addr = :http,:https"), [80, 443]);
        assert_eq!(ports("proxy.addr = 10.0.0.1:443,[::1]:80"), [443, 80]);
    }
}
