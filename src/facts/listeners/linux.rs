//! Linux: the kernel is asked over `NETLINK_SOCK_DIAG` for listening TCP sockets and unconnected
//! UDP sockets only (a state filter, as `ss -ltun` does), so the cost does not grow with the
//! established connections of a busy server. Only when sock_diag is
//! unavailable for a protocol (a kernel built without `INET_DIAG`/`INET_UDP_DIAG`, a sandbox that
//! forbids netlink) or answers something unreadable is that protocol's `/proc/net/{tcp,tcp6,udp,
//! udp6}` table parsed whole instead. The owning process comes from `/proc/<pid>/fd`, read only
//! when a listener was found and only until each one has its owner.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, connect, recv, send,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

use super::Listener;

/// `TCP_LISTEN` for TCP; an unconnected UDP socket is in `TCP_CLOSE` (include/net/tcp_states.h).
const TCP_LISTEN: u8 = 10;
const UDP_UNCONNECTED: u8 = 7;

/// One table to read: the name `/proc/net` uses for it, and what sock_diag needs to dump it.
#[derive(Debug, Clone, Copy)]
struct Table {
    proto: &'static str,
    family: u8,
    protocol: u8,
    state: u8,
}

const TABLES: [Table; 4] = [
    Table {
        proto: "tcp",
        family: libc::AF_INET as u8,
        protocol: libc::IPPROTO_TCP as u8,
        state: TCP_LISTEN,
    },
    Table {
        proto: "tcp6",
        family: libc::AF_INET6 as u8,
        protocol: libc::IPPROTO_TCP as u8,
        state: TCP_LISTEN,
    },
    Table {
        proto: "udp",
        family: libc::AF_INET as u8,
        protocol: libc::IPPROTO_UDP as u8,
        state: UDP_UNCONNECTED,
    },
    Table {
        proto: "udp6",
        family: libc::AF_INET6 as u8,
        protocol: libc::IPPROTO_UDP as u8,
        state: UDP_UNCONNECTED,
    },
];

/// The netlink wire format (linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h), written and
/// read field by field in native byte order (ports and addresses are big-endian) rather than by
/// casting structs, so no `unsafe` is needed and no reply can be read out of bounds.
mod wire {
    pub const NLMSG_HDRLEN: usize = 16;
    pub const NLMSG_ERROR: u16 = 2;
    pub const NLMSG_DONE: u16 = 3;
    pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
    pub const NLM_F_REQUEST: u16 = 0x1;
    pub const NLM_F_DUMP: u16 = 0x300;
    /// The dump was interrupted by a change of the socket tables: it may miss entries.
    pub const NLM_F_DUMP_INTR: u16 = 0x10;
    /// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, then a 48-byte sockid.
    pub const REQ_LEN: usize = 56;
    /// `struct inet_diag_msg`: family, state, timer, retrans, 48-byte sockid, expires, rqueue,
    /// wqueue, uid, inode.
    pub const MSG_LEN: usize = 72;

    pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
    }

    pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    }

    /// Netlink messages start on 4-byte boundaries.
    pub fn align(len: usize) -> usize {
        len.saturating_add(3) & !3
    }
}

/// A dump request for every socket of `t`'s family and protocol in state `t.state`.
fn request(t: Table, seq: u32) -> Vec<u8> {
    let len = (wire::NLMSG_HDRLEN + wire::REQ_LEN) as u32;
    let mut m = Vec::with_capacity(len as usize);
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&wire::SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&(wire::NLM_F_REQUEST | wire::NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills in ours
    m.extend_from_slice(&[t.family, t.protocol, 0, 0]); // no extensions wanted
    m.extend_from_slice(&(1u32 << t.state).to_ne_bytes());
    m.resize(len as usize, 0); // sockid: all zero, no filter
    m
}

/// Why a dump could not be read; the caller then falls back to `/proc`.
#[derive(Debug, PartialEq, Eq)]
enum DiagError {
    /// The kernel answered with this errno (e.g. ENOENT: no diag module for the protocol).
    Kernel(i32),
    /// A message shorter than its header says, or than the structure it must hold.
    Malformed(&'static str),
    Io(nix::Error),
}

/// What one received datagram says.
#[derive(Debug, Default, PartialEq, Eq)]
struct Batch {
    /// (listener, socket inode) on a wanted port.
    found: Vec<(Listener, u64)>,
    done: bool,
    interrupted: bool,
}

/// Reads the messages of one datagram of a dump for `t` sent with `seq`. Messages of other
/// sequence numbers are skipped; a truncated or inconsistent message is an error, never a panic.
fn parse(t: Table, buf: &[u8], seq: u32, ports: &[u16]) -> Result<Batch, DiagError> {
    let mut out = Batch::default();
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        let (Some(len), Some(kind), Some(flags), Some(msg_seq)) = (
            wire::u32_at(rest, 0),
            wire::u16_at(rest, 4),
            wire::u16_at(rest, 6),
            wire::u32_at(rest, 8),
        ) else {
            return Err(DiagError::Malformed("truncated netlink header"));
        };
        let len = len as usize;
        if len < wire::NLMSG_HDRLEN || len > rest.len() {
            return Err(DiagError::Malformed("netlink length out of bounds"));
        }
        let body = &rest[wire::NLMSG_HDRLEN..len];
        at += wire::align(len);
        if msg_seq != seq {
            continue;
        }
        out.interrupted |= flags & wire::NLM_F_DUMP_INTR != 0;
        match kind {
            wire::NLMSG_DONE => {
                out.done = true;
                return Ok(out);
            }
            wire::NLMSG_ERROR => {
                let errno = wire::u32_at(body, 0)
                    .ok_or(DiagError::Malformed("truncated netlink error"))?
                    as i32;
                return Err(DiagError::Kernel(-errno));
            }
            wire::SOCK_DIAG_BY_FAMILY => {
                if let Some(found) = listener(t, body, ports)? {
                    out.found.push(found);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// One `inet_diag_msg`, when it is a socket of `t` on a wanted port.
fn listener(t: Table, m: &[u8], ports: &[u16]) -> Result<Option<(Listener, u64)>, DiagError> {
    if m.len() < wire::MSG_LEN {
        return Err(DiagError::Malformed("truncated inet_diag_msg"));
    }
    // Checked above: every index below is within the first MSG_LEN bytes.
    let (family, state) = (m[0], m[1]);
    let port = u16::from_be_bytes([m[4], m[5]]);
    if family != t.family || state != t.state || !ports.contains(&port) {
        return Ok(None);
    }
    let src = &m[8..24];
    let address = if family == libc::AF_INET as u8 {
        Ipv4Addr::new(src[0], src[1], src[2], src[3]).to_string()
    } else {
        let a: [u8; 16] = src.try_into().unwrap_or_default();
        format!("[{}]", Ipv6Addr::from(a))
    };
    let (uid, inode) = (wire::u32_at(m, 64), wire::u32_at(m, 68));
    let (Some(uid), Some(inode)) = (uid, inode) else {
        return Err(DiagError::Malformed("truncated inet_diag_msg"));
    };
    let l = Listener {
        proto: t.proto.to_string(),
        address,
        port,
        uid,
        pid: None,
        command: None,
    };
    Ok(Some((l, u64::from(inode))))
}

/// A sock_diag socket connected to the kernel: a connected netlink socket accepts messages from
/// its peer only, so no local process can slip forged replies in. A receive timeout turns a
/// dump that never ends into an error (and the `/proc` fallback) instead of a hang.
fn diag_socket() -> nix::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    connect(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
    setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(2, 0))?;
    Ok(fd)
}

/// Dumps one table over `fd`. A dump the kernel marks interrupted (the tables changed during
/// it) is asked again, a few times at most.
fn dump(
    fd: &OwnedFd,
    t: Table,
    seq: &mut u32,
    ports: &[u16],
) -> Result<Vec<(Listener, u64)>, DiagError> {
    // The kernel sizes dump datagrams to at most 32 KiB; twice that never truncates one.
    let mut buf = vec![0u8; 64 * 1024];
    let mut attempts = 0;
    loop {
        *seq = seq.wrapping_add(1);
        let req = request(t, *seq);
        let sent = send(fd.as_raw_fd(), &req, MsgFlags::empty()).map_err(DiagError::Io)?;
        if sent != req.len() {
            return Err(DiagError::Malformed("short send"));
        }
        let mut found = Vec::new();
        let mut interrupted = false;
        loop {
            // MSG_TRUNC makes netlink return the datagram's full length, so a cut one shows.
            let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_TRUNC).map_err(DiagError::Io)?;
            let data = buf
                .get(..n)
                .ok_or(DiagError::Malformed("datagram larger than the buffer"))?;
            let b = parse(t, data, *seq, ports)?;
            found.extend(b.found);
            interrupted |= b.interrupted;
            if b.done {
                break;
            }
        }
        attempts += 1;
        if !interrupted || attempts == 3 {
            return Ok(found);
        }
    }
}

fn proc_address(hex: &str) -> Option<String> {
    // The kernel prints each 32-bit word in host byte order.
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| {
            let w = hex.get(i * 8..i * 8 + 8)?;
            u32::from_str_radix(w, 16).ok().map(u32::from_be)
        })
        .collect::<Option<_>>()?;
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

/// Parses one `/proc/net/*` table (the fallback); returns (listener, socket inode).
fn parse_proc(proto: &str, text: &str, ports: &[u16]) -> Vec<(Listener, u64)> {
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
            let state = u8::from_str_radix(f.get(3)?, 16).ok()?;
            if state != want_state || !ports.contains(&port) {
                return None;
            }
            let l = Listener {
                proto: proto.to_string(),
                address: proc_address(addr)?,
                port,
                uid: f.get(7)?.parse().ok()?,
                pid: None,
                command: None,
            };
            Some((l, f.get(9)?.parse().ok()?))
        })
        .collect()
}

fn from_proc(t: Table, ports: &[u16]) -> Vec<(Listener, u64)> {
    std::fs::read_to_string(format!("/proc/net/{}", t.proto))
        .map(|text| parse_proc(t.proto, &text, ports))
        .unwrap_or_default()
}

/// Maps socket inodes (sorted) to (pid, command) from the `fd` links of the processes under
/// `proc`, as `ss -p` does. A socket held by several processes (socket activation: systemd
/// and the service) goes to the highest pid, usually the service. Processes are read from the
/// highest pid down and the scan stops once every socket has its owner, so a busy server's
/// thousands of connection descriptors are not all read: its listener is among its first.
fn owners(proc: &Path, inodes: &[u64]) -> BTreeMap<u64, (u32, String)> {
    let mut found = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(proc) else {
        return found;
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable_by(|a, b| b.cmp(a));
    for pid in pids {
        let dir = proc.join(pid.to_string());
        let mut done = false;
        each_fd_link(&dir.join("fd"), |target| {
            let inode = target
                .strip_prefix(b"socket:[")
                .and_then(|s| s.strip_suffix(b"]"))
                .and_then(|s| std::str::from_utf8(s).ok()?.parse::<u64>().ok());
            let Some(i) = inode.filter(|i| inodes.binary_search(i).is_ok()) else {
                return true;
            };
            if let std::collections::btree_map::Entry::Vacant(e) = found.entry(i) {
                let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
                e.insert((pid, comm.trim().to_string()));
                done = found.len() == inodes.len();
            }
            !done
        });
        if done {
            break;
        }
    }
    found
}

/// Calls `each` with the target of each link in a process's `fd` directory, lowest descriptor
/// first, while it returns true. The directory is read a few dozen entries at a time, not 32 KiB
/// of them as `readdir` does: the kernel makes an inode for every entry it lists, which for a
/// server holding thousands of connections cost more than the rest of detection together, and
/// the listener is usually among its first descriptors.
fn each_fd_link(fds: &Path, mut each: impl FnMut(&[u8]) -> bool) {
    use rustix::fs::{CWD, Mode, OFlags, RawDir, openat, readlinkat};
    let Ok(dir) = openat(
        CWD,
        fds,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1024];
    let mut entries = RawDir::new(&dir, &mut buf);
    while let Some(Ok(e)) = entries.next() {
        let name = e.file_name();
        if name.to_bytes().starts_with(b".") {
            continue;
        }
        let Ok(target) = readlinkat(&dir, name, Vec::new()) else {
            continue;
        };
        if !each(target.as_bytes()) {
            return;
        }
    }
}

/// Every socket listening (TCP) or bound (UDP) on one of `ports` in this network namespace.
pub fn on_ports(ports: &[u16]) -> Vec<Listener> {
    if ports.is_empty() {
        return Vec::new();
    }
    let diag = diag_socket().ok();
    let mut seq = 0;
    let mut all = Vec::new();
    for t in TABLES {
        let via_netlink = diag.as_ref().map(|fd| dump(fd, t, &mut seq, ports));
        match via_netlink {
            Some(Ok(found)) => all.extend(found),
            _ => all.extend(from_proc(t, ports)),
        }
    }
    if all.is_empty() {
        return Vec::new();
    }
    let mut inodes: Vec<u64> = all.iter().map(|(_, i)| *i).collect();
    inodes.sort_unstable();
    inodes.dedup();
    let owners = owners(Path::new("/proc"), &inodes);
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

    const TCP: Table = TABLES[0];
    const TCP6: Table = TABLES[1];

    /// One netlink message: header then body, padded to 4 bytes.
    fn nlmsg(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((wire::NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&4242u32.to_ne_bytes());
        m.extend_from_slice(body);
        m.resize(wire::align(m.len()), 0);
        m
    }

    /// An `inet_diag_msg` as the kernel sends it.
    fn diag_msg(family: u8, state: u8, port: u16, addr: &[u8], uid: u32, inode: u32) -> Vec<u8> {
        let mut m = vec![family, state, 0, 0];
        m.extend_from_slice(&port.to_be_bytes());
        m.extend_from_slice(&[0, 0]); // dport
        let mut src = [0u8; 16];
        src[..addr.len()].copy_from_slice(addr);
        m.extend_from_slice(&src);
        m.extend_from_slice(&[0u8; 16]); // dst
        m.extend_from_slice(&[0u8; 4 + 8]); // interface, cookie
        m.extend_from_slice(&[0u8; 12]); // expires, rqueue, wqueue
        m.extend_from_slice(&uid.to_ne_bytes());
        m.extend_from_slice(&inode.to_ne_bytes());
        m
    }

    #[test]
    fn request_matches_the_kernel_layout() {
        let r = request(TCP6, 7);
        assert_eq!(r.len(), 72, "nlmsghdr (16) + inet_diag_req_v2 (56)");
        assert_eq!(wire::u32_at(&r, 0), Some(72));
        assert_eq!(wire::u16_at(&r, 4), Some(wire::SOCK_DIAG_BY_FAMILY));
        assert_eq!(wire::u16_at(&r, 6), Some(0x301));
        assert_eq!(wire::u32_at(&r, 8), Some(7));
        assert_eq!(
            &r[16..20],
            &[libc::AF_INET6 as u8, libc::IPPROTO_TCP as u8, 0, 0]
        );
        assert_eq!(wire::u32_at(&r, 20), Some(1 << 10), "LISTEN only");
    }

    #[test]
    fn reads_listeners_on_wanted_ports_and_the_end() {
        let mut buf = nlmsg(20, 2, 9, &diag_msg(2, 10, 80, &[127, 0, 0, 1], 65534, 4242));
        buf.extend(nlmsg(20, 2, 9, &diag_msg(2, 10, 81, &[0; 4], 0, 1)));
        // A message of another dump is not ours.
        buf.extend(nlmsg(20, 2, 8, &diag_msg(2, 10, 80, &[10, 0, 0, 1], 0, 2)));
        buf.extend(nlmsg(3, 2, 9, &0i32.to_ne_bytes()));
        let b = parse(TCP, &buf, 9, &[80]).unwrap();
        assert!(b.done && !b.interrupted);
        assert_eq!(b.found.len(), 1, "{b:?}");
        let (l, inode) = &b.found[0];
        assert_eq!((l.proto.as_str(), l.address.as_str()), ("tcp", "127.0.0.1"));
        assert_eq!((l.port, l.uid, *inode), (80, 65534, 4242));

        let v6 = diag_msg(10, 10, 443, &Ipv6Addr::LOCALHOST.octets(), 0, 5);
        let b = parse(TCP6, &nlmsg(20, 0x12, 1, &v6), 1, &[443]).unwrap();
        assert!(!b.done && b.interrupted);
        assert_eq!(b.found[0].0.address, "[::1]");
    }

    #[test]
    fn kernel_errors_are_reported() {
        let mut err = (-libc::ENOENT).to_ne_bytes().to_vec();
        err.extend(request(TCP, 3)); // the kernel echoes the request
        let buf = nlmsg(2, 0, 3, &err);
        assert_eq!(
            parse(TCP, &buf, 3, &[80]),
            Err(DiagError::Kernel(libc::ENOENT))
        );
    }

    #[test]
    fn truncated_or_odd_replies_are_errors_not_panics() {
        let good = nlmsg(20, 2, 1, &diag_msg(2, 10, 80, &[127, 0, 0, 1], 0, 9));
        // Every prefix of a valid reply: an error or (empty input) nothing, never a panic.
        for cut in 0..good.len() {
            let r = parse(TCP, &good[..cut], 1, &[80]);
            assert!(cut == 0 || r.is_err(), "cut at {cut}: {r:?}");
        }
        // A header claiming less than itself, or more than was received.
        let mut short = good.clone();
        short[..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(parse(TCP, &short, 1, &[80]).is_err());
        let mut long = good.clone();
        long[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(parse(TCP, &long, 1, &[80]).is_err());
        // A well-framed message whose body is too short for an inet_diag_msg.
        assert!(parse(TCP, &nlmsg(20, 2, 1, &[2, 10, 0]), 1, &[80]).is_err());
        // An error message without its errno.
        assert!(parse(TCP, &nlmsg(2, 0, 1, &[]), 1, &[80]).is_err());
        // Unknown message types and garbage sequence numbers are skipped.
        let b = parse(TCP, &nlmsg(99, 0, 1, &[1, 2, 3]), 1, &[80]).unwrap();
        assert_eq!(b, Batch::default());
    }

    #[test]
    fn parses_proc_tables_for_the_fallback() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000    65534        0 4242 1
   1: 0100007F:0051 00000000:0000 01 00000000:00000000 00:00000000 00000000    0        0 4243 1
   2: 0100007F:0050 00000000:0000 0A
   3: 01é0007F:0050 00000000:0000 0A 0 0 0 0 0 1
";
        let l = parse_proc("tcp", tcp, &[80, 81]);
        assert_eq!(l.len(), 1, "only the complete LISTEN row on a wanted port");
        assert_eq!(l[0].0.address, "127.0.0.1");
        assert_eq!((l[0].0.port, l[0].0.uid, l[0].1), (80, 65534, 4242));
        let tcp6 = "h\n 0: 00000000000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 7 1\n";
        assert_eq!(parse_proc("tcp6", tcp6, &[443])[0].0.address, "[::1]");
    }

    #[test]
    fn a_shared_socket_goes_to_the_highest_pid() {
        let t = tempfile::tempdir().unwrap();
        let proc = t.path();
        let fd = |pid: u32, n: u32, target: &str, comm: &str| {
            let dir = proc.join(pid.to_string());
            std::fs::create_dir_all(dir.join("fd")).unwrap();
            std::fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
            std::os::unix::fs::symlink(target, dir.join("fd").join(n.to_string())).unwrap();
        };
        fd(1, 3, "socket:[77]", "systemd"); // socket activation: systemd holds it too
        fd(900, 3, "socket:[77]", "fabio");
        fd(900, 4, "socket:[78]", "fabio");
        fd(950, 0, "/dev/null", "cat");
        fd(2, 5, "socket:[99]", "getty");
        std::fs::create_dir_all(proc.join("self")).unwrap();
        let got = owners(proc, &[77, 78, 99]);
        assert_eq!(got.get(&77), Some(&(900, "fabio".to_string())));
        assert_eq!(got.get(&78), Some(&(900, "fabio".to_string())));
        assert_eq!(got.get(&99), Some(&(2, "getty".to_string())));
        assert!(owners(&proc.join("missing"), &[77]).is_empty());
    }

    /// Runs `f` on a thread moved into a new, empty network namespace (`unshare -n` for one
    /// thread: namespaces belong to threads), so only the sockets it opens exist there.
    fn in_new_netns<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .ok()
                    .map(|()| f())
            })
            .join()
            .expect("thread")
        })
    }

    #[test]
    fn asks_the_kernel_in_a_private_namespace() {
        let seen = in_new_netns(|| {
            let lo_up = std::process::Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(lo_up, "ip link set lo up in the new namespace");
            let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = v4.local_addr().unwrap().port();
            let v6 = std::net::TcpListener::bind("[::]:0").unwrap();
            let port6 = v6.local_addr().unwrap().port();
            let udp = std::net::UdpSocket::bind(("0.0.0.0", port)).unwrap();
            // Both ends of an established connection; the accepted end has the listener's
            // port as its own and must not be reported.
            let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let accepted = v4.accept().unwrap();
            let fd = diag_socket().expect("sock_diag available");
            let direct = dump(&fd, TCP, &mut 0, &[port]).unwrap();
            let found = on_ports(&[port, port6]);
            (port, port6, found, direct, (v4, v6, udp, client, accepted))
        });
        let Some((port, port6, found, direct, _sockets)) = seen else {
            crate::testing::say_skipped("facts::listeners::asks_the_kernel_in_a_private_namespace");
            return;
        };
        assert_eq!(direct.len(), 1, "sock_diag itself answered: {direct:?}");
        let mut seen: Vec<(&str, &str, u16)> = found
            .iter()
            .map(|l| (l.proto.as_str(), l.address.as_str(), l.port))
            .collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            [
                ("tcp", "127.0.0.1", port),
                ("tcp6", "[::]", port6),
                ("udp", "0.0.0.0", port)
            ]
        );
        for l in &found {
            assert_eq!(l.pid, Some(std::process::id()), "owner resolved: {l:?}");
            assert_eq!(l.uid, nix::unistd::geteuid().as_raw());
        }
        // The namespace is private: the host's has none of these sockets.
        assert!(
            on_ports(&[port, port6])
                .iter()
                .all(|l| l.pid != Some(std::process::id()))
        );
    }

    #[test]
    fn sees_a_real_listener_in_this_namespace() {
        let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let found = on_ports(&[port]);
        let me = found
            .iter()
            .find(|l| l.port == port)
            .expect("own listener found");
        assert_eq!(me.pid, Some(std::process::id()));
        assert_eq!(me.command.as_deref().map(str::is_empty), Some(false));
    }
}
