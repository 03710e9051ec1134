//! What an existing service unit already says, read from every unit directory systemd loads and
//! its drop-ins (lowport's own drop-in left out, so a second run judges the unit as it was): the
//! targets it is enabled into, the user it runs as, and whether it already grants
//! CAP_NET_BIND_SERVICE.

use std::path::Path;

use super::binary::{unit_file, unit_setting, unit_texts};
use super::{ServiceUnit, UNIT_MARKER};
use crate::root::Root;

/// The unit `NAME.service` as systemd would load it, or only its name when no file exists.
pub fn read(root: &Root, name: &str) -> ServiceUnit {
    let service = format!("{name}.service");
    let path = unit_file(root, &service);
    let read = path
        .as_ref()
        .map(|p| super::files::read_to_string(&root.host(p)));
    let unreadable = read
        .as_ref()
        .and_then(|r| r.as_ref().err())
        .map(|e| e.to_string());
    let own = read.and_then(Result::ok).unwrap_or_default();
    let ours = own.starts_with(UNIT_MARKER);
    let texts: Vec<String> = unit_texts(root, &service, own)
        .into_iter()
        .filter(|t| !t.starts_with(UNIT_MARKER) || ours)
        .collect();
    let words = |key: &str| -> Vec<String> {
        // List settings accumulate over lines and drop-ins; an empty assignment resets them.
        let mut out: Vec<String> = Vec::new();
        for l in texts.iter().flat_map(|t| t.lines()) {
            if let Some(v) = l.trim().strip_prefix(key).and_then(|r| r.strip_prefix('=')) {
                if v.trim().is_empty() {
                    out.clear();
                }
                out.extend(v.split_whitespace().map(String::from));
            }
        }
        out
    };
    let ambient = words("AmbientCapabilities");
    let bounding = words("CapabilityBoundingSet");
    let grants = |set: &[String]| set.iter().any(|c| c == "CAP_NET_BIND_SERVICE");
    ServiceUnit {
        name: name.to_string(),
        ours,
        masked: super::binary::masked(root, &service),
        wanted_by: words("WantedBy"),
        user: unit_setting(&texts, "User"),
        already_grants: path.is_some()
            && !ours
            && grants(&ambient)
            && (bounding.is_empty() || grants(&bounding)),
        path,
        unreadable,
    }
}

/// The admin-directory link that enables `service` into `target`.
pub fn enabled_link(target: &str, service: &str) -> std::path::PathBuf {
    Path::new("/etc/systemd/system")
        .join(format!("{target}.wants"))
        .join(service)
}
