//! Who already listens on a port, from `/proc/net/{tcp,tcp6,udp,udp6}` and, for the owning
//! process, `/proc/<pid>/fd`. Read-only and cheap: the fd scan runs only when a port is in use.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub proto: String,
    pub address: String,
    pub port: u16,
    pub uid: u32,
    pub pid: Option<u32>,
    pub command: Option<String>,
}

const TCP_LISTEN: &str = "0A";
const UDP_UNCONNECTED: &str = "07";

fn address(hex: &str) -> Option<String> {
    // The kernel prints each 32-bit word in host byte order.
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).map(u32::from_be))
        .collect::<Result<_, _>>()
        .ok()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    match bytes.len() {
        4 => Some(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()),
        16 => {
            let a: [u8; 16] = bytes.try_into().ok()?;
            Some(format!("[{}]", Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

/// Parses one `/proc/net/*` table; returns (listener, socket inode).
pub fn parse(proto: &str, text: &str, ports: &[u16]) -> Vec<(Listener, u64)> {
    let want_state = if proto.starts_with("tcp") {
        TCP_LISTEN
    } else {
        UDP_UNCONNECTED
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (addr, port) = f.get(1)?.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            if f.get(3)? != &want_state || !ports.contains(&port) {
                return None;
            }
            let l = Listener {
                proto: proto.to_string(),
                address: address(addr)?,
                port,
                uid: f.get(7)?.parse().ok()?,
                pid: None,
                command: None,
            };
            Some((l, f.get(9)?.parse().ok()?))
        })
        .collect()
}

/// Maps socket inodes to (pid, command) by scanning `/proc/*/fd`.
fn owners(inodes: &[u64]) -> BTreeMap<u64, (u32, String)> {
    let mut found = BTreeMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            let inode = t
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok());
            if let Some(i) = inode.filter(|i| inodes.contains(i)) {
                let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
                found.insert(i, (pid, comm.trim().to_string()));
            }
        }
    }
    found
}

/// Every socket listening (TCP) or bound (UDP) on one of `ports` in this network namespace.
pub fn on_ports(ports: &[u16]) -> Vec<Listener> {
    if ports.is_empty() {
        return Vec::new();
    }
    let mut all = Vec::new();
    for proto in ["tcp", "tcp6", "udp", "udp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/net/{proto}")) {
            all.extend(parse(proto, &text, ports));
        }
    }
    if all.is_empty() {
        return Vec::new();
    }
    let inodes: Vec<u64> = all.iter().map(|(_, i)| *i).collect();
    let owners = owners(&inodes);
    all.into_iter()
        .map(|(mut l, inode)| {
            if let Some((pid, comm)) = owners.get(&inode) {
                l.pid = Some(*pid);
                l.command = Some(comm.clone());
            }
            l
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_sockets() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000    65534        0 4242 1
   1: 0100007F:0051 00000000:0000 01 00000000:00000000 00:00000000 00000000    0        0 4243 1
";
        let l = parse("tcp", tcp, &[80, 81]);
        assert_eq!(l.len(), 1, "only the LISTEN row on a wanted port");
        assert_eq!(l[0].0.address, "127.0.0.1");
        assert_eq!((l[0].0.port, l[0].0.uid, l[0].1), (80, 65534, 4242));
        let tcp6 = "h\n 0: 00000000000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 7 1\n";
        assert_eq!(parse("tcp6", tcp6, &[443])[0].0.address, "[::1]");
    }

    #[test]
    fn sees_a_real_listener() {
        let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let found = on_ports(&[port]);
        let me = found
            .iter()
            .find(|l| l.port == port)
            .expect("own listener found");
        assert_eq!(me.pid, Some(std::process::id()));
    }
}
