//! Redirect methods with real packets: two network namespaces joined by a veth pair (the
//! project's own test hosts), an unprivileged server on 8080 in one, a client in the other.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const SERVER_IP: &str = "10.203.0.1";
const CLIENT_IP: &str = "10.203.0.2";

/// Two namespaces joined by veth, and a server as nobody on 8080 in the first; all removed on drop.
struct Pair {
    server: Netns,
    client: Netns,
    socat: Child,
}

impl Pair {
    fn new() -> Pair {
        let (server, client) = (Netns::new(), Netns::new());
        let run = |ns: &Netns, argv: &[&str]| {
            let out = ns.exec(argv);
            assert!(
                out.status.success(),
                "{argv:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(
            &server,
            &[
                "ip",
                "link",
                "add",
                "vs",
                "type",
                "veth",
                "peer",
                "name",
                "vc",
                "netns",
                &client.name,
            ],
        );
        run(
            &server,
            &["ip", "addr", "add", &format!("{SERVER_IP}/24"), "dev", "vs"],
        );
        run(&server, &["ip", "link", "set", "vs", "up"]);
        run(
            &client,
            &["ip", "addr", "add", &format!("{CLIENT_IP}/24"), "dev", "vc"],
        );
        run(&client, &["ip", "link", "set", "vc", "up"]);
        let socat = Command::new("ip")
            .args([
                "netns",
                "exec",
                &server.name,
                "setpriv",
                "--reuid",
                "nobody",
                "--regid",
                "nogroup",
            ])
            .args([
                "--clear-groups",
                "socat",
                "TCP-LISTEN:8080,fork,reuseaddr",
                "EXEC:/bin/echo served",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so the forked children are ended with it.
            .process_group(0)
            .spawn()
            .unwrap();
        let pair = Pair {
            server,
            client,
            socat,
        };
        let start = Instant::now();
        while pair.fetch(&pair.server, "127.0.0.1", 8080) != "served" {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the server never listened"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        pair
    }

    /// What a client in `ns` reads from ip:port ("" when it cannot connect).
    fn fetch(&self, ns: &Netns, ip: &str, port: u16) -> String {
        let out = ns.exec(&[
            "socat",
            "-u",
            &format!("TCP:{ip}:{port},connect-timeout=2"),
            "STDOUT",
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.socat.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
        let _ = self.socat.wait();
    }
}

fn redirect_really_carries_packets_and_rolls_back_only_its_rules(
    method: &str,
    other_rules: &[&[&str]],
    list: &[&str],
) {
    let pair = Pair::new();
    let t = TestEnv::new();
    for argv in other_rules {
        let out = pair.server.exec(argv);
        assert!(
            out.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // iptables-save stamps its output with the time: compare the rules only.
    let listing = |p: &Pair| {
        let out = String::from_utf8_lossy(&p.server.exec(list).stdout).into_owned();
        out.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let before = listing(&pair);
    assert_eq!(
        pair.fetch(&pair.client, SERVER_IP, 80),
        "",
        "nothing answers on 80 before"
    );

    Lowport::new()
        .netns(&pair.server)
        .env_dirs(&t)
        .args(["apply", "--method", method, "--port", "80:8080", "--yes"])
        .run()
        .code(0)
        .stderr_has("a connection to 127.0.0.1:80 reached the service on 8080");
    assert_eq!(
        pair.fetch(&pair.client, SERVER_IP, 80),
        "served",
        "a remote client reaches the service on 80"
    );
    assert_eq!(
        pair.fetch(&pair.server, "127.0.0.1", 80),
        "served",
        "a local client does too"
    );

    Lowport::new()
        .netns(&pair.server)
        .env_dirs(&t)
        .args(["rollback", "--last", "--yes"])
        .run()
        .code(0);
    assert_eq!(
        pair.fetch(&pair.client, SERVER_IP, 80),
        "",
        "gone after rollback"
    );
    assert_eq!(listing(&pair), before, "only lowport's rules were removed");
    assert!(!t.root.join("etc/lowport").exists() && !t.root.join("etc/systemd").exists());
}

#[test]
fn nftables_redirect() {
    if !is_root_or_skip("nftables_redirect") {
        return;
    }
    redirect_really_carries_packets_and_rolls_back_only_its_rules(
        "redirect-nft",
        &[
            &["nft", "add", "table", "inet", "keepme"],
            &[
                "nft",
                "add",
                "chain",
                "inet",
                "keepme",
                "input",
                "{ type filter hook input priority 0; policy accept; }",
            ],
            &[
                "nft", "add", "rule", "inet", "keepme", "input", "tcp", "dport", "22", "accept",
            ],
        ],
        &["nft", "list", "ruleset"],
    );
}

#[test]
fn iptables_redirect() {
    if !is_root_or_skip("iptables_redirect") {
        return;
    }
    redirect_really_carries_packets_and_rolls_back_only_its_rules(
        "redirect-iptables",
        &[&[
            "iptables",
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-p",
            "tcp",
            "--dport",
            "2222",
            "-j",
            "REDIRECT",
            "--to-ports",
            "22",
        ]],
        &["iptables-save", "-t", "nat"],
    );
}
