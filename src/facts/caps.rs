//! File capabilities: parsing the `security.capability` xattr (`struct vfs_cap_data`,
//! little-endian) so lowport can read and compare them without running getcap, whose output
//! format changed between libcap versions.

use serde::{Deserialize, Serialize};

pub const CAP_NET_BIND_SERVICE: u32 = 10;

const VFS_CAP_REVISION_MASK: u32 = 0xFF00_0000;
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x0000_0001;
const REVISION_1: u32 = 0x0100_0000;
const REVISION_2: u32 = 0x0200_0000;
const REVISION_3: u32 = 0x0300_0000;

/// Names of capability bits, in bit order (capability.h).
const NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCaps {
    /// 1, 2 or 3 (3: namespaced, honoured only in the user namespace owned by `rootid`).
    pub revision: u8,
    pub permitted: u64,
    pub inheritable: u64,
    pub effective: bool,
    pub rootid: Option<u32>,
    /// The same set in getcap's modern notation, e.g. `cap_net_bind_service=ep`.
    pub text: String,
}

impl FileCaps {
    pub fn parse(raw: &[u8]) -> Option<FileCaps> {
        let word = |i: usize| -> Option<u32> {
            raw.get(i * 4..i * 4 + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let magic = word(0)?;
        let (revision, words, rootid) = match (magic & VFS_CAP_REVISION_MASK, raw.len()) {
            (REVISION_1, 12) => (1, 1, None),
            (REVISION_2, 20) => (2, 2, None),
            (REVISION_3, 24) => (3, 2, Some(word(5)?)),
            _ => return None,
        };
        let (mut permitted, mut inheritable) = (0u64, 0u64);
        for i in 0..words {
            permitted |= u64::from(word(1 + 2 * i)?) << (32 * i);
            inheritable |= u64::from(word(2 + 2 * i)?) << (32 * i);
        }
        let effective = magic & VFS_CAP_FLAGS_EFFECTIVE != 0;
        let text = render(permitted, inheritable, effective);
        Some(FileCaps {
            revision,
            permitted,
            inheritable,
            effective,
            rootid,
            text,
        })
    }

    /// True when the capability is permitted and, through the effective flag, raised at exec:
    /// what `cap_net_bind_service=+ep` means.
    pub fn grants(&self, cap: u32) -> bool {
        self.effective && self.permitted & (1 << cap) != 0
    }
}

/// The `security.capability` value for setcap's text form `NAME[,NAME...]=[+]FLAGS` (FLAGS
/// from `e`, `i`, `p`): revision 2, byte for byte what `setcap` writes outside a user
/// namespace. None for any other text, so nothing unreviewed is ever encoded.
pub fn encode(text: &str) -> Option<Vec<u8>> {
    let (list, flags) = text.split_once('=')?;
    let flags = flags.strip_prefix('+').unwrap_or(flags);
    if flags.is_empty() || !flags.chars().all(|c| "eip".contains(c)) {
        return None;
    }
    let mut mask = 0u64;
    for n in list.split(',') {
        mask |= 1 << NAMES.iter().position(|known| *known == n)?;
    }
    let set = |flag: char| if flags.contains(flag) { mask } else { 0 };
    let (permitted, inheritable) = (set('p'), set('i'));
    let effective = if flags.contains('e') {
        VFS_CAP_FLAGS_EFFECTIVE
    } else {
        0
    };
    let words = [
        REVISION_2 | effective,
        permitted as u32,
        inheritable as u32,
        (permitted >> 32) as u32,
        (inheritable >> 32) as u32,
    ];
    Some(words.iter().flat_map(|w| w.to_le_bytes()).collect())
}

fn names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|b| mask & (1 << b) != 0)
        .map(|b| {
            NAMES
                .get(b)
                .map_or_else(|| format!("cap_{b}"), |n| n.to_string())
        })
        .collect()
}

fn render(permitted: u64, inheritable: u64, effective: bool) -> String {
    let mut groups: Vec<String> = Vec::new();
    let both = permitted & inheritable;
    for (mask, flags) in [
        (both, if effective { "eip" } else { "ip" }),
        (permitted & !both, if effective { "ep" } else { "p" }),
        (inheritable & !both, if effective { "ei" } else { "i" }),
    ] {
        if mask != 0 {
            groups.push(format!("{}={flags}", names(mask).join(",")));
        }
    }
    if groups.is_empty() {
        "=".to_string()
    } else {
        groups.join(" ")
    }
}

pub fn name(cap: u32) -> &'static str {
    NAMES.get(cap as usize).copied().unwrap_or("cap_unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn parses_v2_net_bind_service_ep() {
        // The bytes getfattr shows after `setcap cap_net_bind_service=+ep` (reference §2.1).
        let c = FileCaps::parse(&hex("0100000200040000000000000000000000000000")).unwrap();
        assert_eq!(c.revision, 2);
        assert!(c.grants(CAP_NET_BIND_SERVICE));
        assert_eq!(c.text, "cap_net_bind_service=ep");
    }

    #[test]
    fn permitted_only_does_not_grant() {
        let c = FileCaps::parse(&hex("0000000200040000000000000000000000000000")).unwrap();
        assert!(!c.grants(CAP_NET_BIND_SERVICE));
        assert_eq!(c.text, "cap_net_bind_service=p");
    }

    #[test]
    fn encodes_setcaps_text() {
        let ep = encode("cap_net_bind_service=+ep").unwrap();
        assert_eq!(ep, hex("0100000200040000000000000000000000000000"));
        assert_eq!(
            FileCaps::parse(&ep).unwrap().text,
            "cap_net_bind_service=ep"
        );
        let high = FileCaps::parse(&encode("cap_bpf,cap_chown=eip").unwrap()).unwrap();
        assert_eq!(high.text, "cap_chown,cap_bpf=eip");
        for bad in [
            "",
            "=ep",
            "cap_net_bind_service",
            "cap_nope=+ep",
            "cap_chown=+x",
            "cap_chown=+",
        ] {
            assert_eq!(encode(bad), None, "{bad:?}");
        }
    }

    /// Byte-equality with the real `setcap` (needs root for CAP_SETFCAP).
    #[test]
    fn encodes_exactly_what_setcap_writes() {
        if !nix::unistd::geteuid().is_root() {
            crate::testing::say_skipped("facts::caps::encodes_exactly_what_setcap_writes");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("f");
        std::fs::write(&file, "x").unwrap();
        for text in [
            "cap_net_bind_service=+ep",
            "cap_net_bind_service=+p",
            "cap_net_bind_service,cap_net_raw=+eip",
            "cap_bpf=+ep",
        ] {
            let ok = std::process::Command::new("setcap")
                .args([text, file.to_str().unwrap()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "setcap {text}");
            let written = crate::xattr::get(&file, crate::xattr::CAPABILITY).unwrap();
            assert_eq!(written, encode(text), "{text}");
        }
    }

    #[test]
    fn v3_carries_rootid_and_bad_sizes_fail() {
        let c = FileCaps::parse(&hex("010000030004000000000000000000000000000000100000")).unwrap();
        assert_eq!(c.rootid, Some(4096));
        assert!(FileCaps::parse(&hex("01000002000400")).is_none());
    }
}
