//! Representative facts documents for `--target-os NAME`: a stock install of each OS lowport
//! plans for from here. They hold what such an install has (the OS and its version, where its
//! programs live, its stock configuration files); what belongs to one host (its users and uids,
//! its interfaces, its binaries) is absent, so a method that needs it asks for a real facts
//! document (`--facts FILE`, from `lowport detect --json` or `lowport facts-script` there).

use super::Facts;

/// Every name `--target-os` takes, with its document.
pub const TARGETS: &[(&str, &str)] = &[
    (
        "freebsd-14",
        include_str!("../../assets/targets/freebsd-14.json"),
    ),
    (
        "freebsd-15",
        include_str!("../../assets/targets/freebsd-15.json"),
    ),
    (
        "openbsd-7",
        include_str!("../../assets/targets/openbsd-7.json"),
    ),
    (
        "netbsd-10",
        include_str!("../../assets/targets/netbsd-10.json"),
    ),
    ("illumos", include_str!("../../assets/targets/illumos.json")),
    (
        "solaris-11.4",
        include_str!("../../assets/targets/solaris-11.4.json"),
    ),
    (
        "macos-14",
        include_str!("../../assets/targets/macos-14.json"),
    ),
    (
        "macos-10.13",
        include_str!("../../assets/targets/macos-10.13.json"),
    ),
    ("windows", include_str!("../../assets/targets/windows.json")),
];

/// A `--target-os` value: one of [`TARGETS`]; the message lists them.
pub fn parse(name: &str) -> Result<String, String> {
    if TARGETS.iter().any(|(n, _)| *n == name) {
        return Ok(name.to_string());
    }
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    Err(format!(
        "unknown target OS '{name}'; known: {} (or plan from a real host's facts with --facts \
         FILE)",
        names.join(", ")
    ))
}

/// The representative document for `name` (a name [`parse`] accepted).
pub fn load(name: &str) -> Result<Facts, String> {
    let text = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| parse(name).unwrap_err())?;
    Facts::from_json(text, &format!("the representative document for {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_loads_names_itself_and_holds_no_host_of_its_own() {
        for (name, _) in TARGETS {
            let f = load(name).unwrap();
            assert_eq!(f.target_os.as_deref(), Some(*name));
            assert!(name.starts_with(f.os.family.as_str()) || f.os.family == "illumos");
            assert!(f.binary.is_none() && f.accounts.users.is_empty(), "{name}");
        }
        assert!(
            parse("freebsd-13")
                .unwrap_err()
                .contains("freebsd-14, freebsd-15")
        );
    }
}
