//! Redirect methods with real packets: two network namespaces joined by a veth pair (the
//! project's own test hosts), an unprivileged HTTP server on 8080 in one (the static Go server,
//! caddy, socat), a client in the other.

use std::path::PathBuf;

use crate::subjects::*;
use crate::support::*;

const SERVER_IP: &str = "10.203.0.1";
const CLIENT_IP: &str = "10.203.0.2";

/// Two namespaces joined by veth; removed on drop.
struct Pair {
    server: Netns,
    client: Netns,
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
        Pair { server, client }
    }

    /// What a client in `ns` reads with an HTTP GET on ip:port ("" when it cannot connect).
    fn fetch(&self, ns: &Netns, ip: &str, port: u16) -> String {
        http_get(ns, ip, port)
    }
}

/// A program serving HTTP on 8080 as nobody, and the body it answers.
struct Subject {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    body: String,
    _files: Option<tempfile::TempDir>,
}

/// The static Go server, caddy and socat (answering a fixed HTTP response from a file).
fn subjects() -> Vec<Subject> {
    let files = tempfile::tempdir().unwrap();
    set_mode(files.path(), 0o755);
    let socat = socat_http(files.path(), 8080);
    vec![
        Subject {
            name: "go",
            program: go_server().to_path_buf(),
            args: vec![":8080".into()],
            body: go_body(8080),
            _files: None,
        },
        Subject {
            name: "caddy",
            program: PathBuf::from(CADDY),
            args: caddy_args(8080),
            body: "caddy on 8080".into(),
            _files: None,
        },
        Subject {
            name: "socat",
            program: PathBuf::from("/usr/bin/socat"),
            args: socat,
            body: "socat on 8080".into(),
            _files: Some(files),
        },
    ]
}

fn redirect_really_carries_packets_and_rolls_back_only_its_rules(
    method: &str,
    other_rules: &[&[&str]],
    list: &[&str],
) {
    for s in subjects() {
        let pair = Pair::new();
        let mut server = Server::start(&pair.server, &s.program, &s.args);
        server.assert_serves(&pair.server, "127.0.0.1", 8080, &s.body);
        carries(&pair, method, other_rules, list, s.name, &s.body);
    }
}

/// Applies the redirect 80 → 8080 in the pair's server namespace, checks what a remote and a
/// local client read on 80, rolls back, and checks only lowport's rules went.
fn carries(
    pair: &Pair,
    method: &str,
    other_rules: &[&[&str]],
    list: &[&str],
    name: &str,
    body: &str,
) {
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
    let before = listing(pair);
    assert_eq!(
        pair.fetch(&pair.client, SERVER_IP, 80),
        "",
        "{name}: nothing answers on 80 before"
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
        body,
        "{name}: a remote client reaches the service on 80"
    );
    assert_eq!(
        pair.fetch(&pair.server, "127.0.0.1", 80),
        body,
        "{name}: a local client does too"
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
        "{name}: gone after rollback"
    );
    assert_eq!(
        listing(pair),
        before,
        "{name}: only lowport's rules were removed"
    );
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

#[test]
fn an_input_chain_that_drops_the_service_port_fails_verification_until_it_accepts_it() {
    if !is_root_or_skip(
        "an_input_chain_that_drops_the_service_port_fails_verification_until_it_accepts_it",
    ) {
        return;
    }
    let pair = Pair::new();
    let mut server = Server::start(&pair.server, go_server(), &[":8080".into()]);
    server.assert_serves(&pair.server, "127.0.0.1", 8080, &go_body(8080));
    let nft = |rule: &str| {
        let out = pair.server.exec(&["nft", rule]);
        assert!(
            out.status.success(),
            "{rule}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // An operator's firewall: drop by default, accept loopback and the public port only.
    nft("add table inet fw");
    nft("add chain inet fw input { type filter hook input priority 0; policy drop; }");
    nft("add rule inet fw input iif lo accept");
    nft("add rule inet fw input tcp dport 80 accept");
    let t = TestEnv::new();
    let apply = || {
        Lowport::new()
            .netns(&pair.server)
            .env_dirs(&t)
            .args([
                "apply",
                "--method",
                "redirect-nft",
                "--port",
                "80:8080",
                "--yes",
            ])
            .run()
    };
    // Locally the redirect works (loopback is accepted), but remote clients' packets reach the
    // input hook on 8080 and are dropped: not verified, rolled back.
    apply()
        .code(4)
        .stderr_has("nft table inet fw chain input drop(s) by default and never accept port 8080");
    assert_eq!(pair.fetch(&pair.client, SERVER_IP, 80), "");
    nft("add rule inet fw input tcp dport 8080 accept");
    apply()
        .code(0)
        .stderr_has("clients from anywhere get through");
    assert_eq!(pair.fetch(&pair.client, SERVER_IP, 80), go_body(8080));
}

#[test]
fn a_redirect_to_a_port_nothing_listens_on_is_not_started_rather_than_verified() {
    if !is_root_or_skip(
        "a_redirect_to_a_port_nothing_listens_on_is_not_started_rather_than_verified",
    ) {
        return;
    }
    let pair = Pair::new();
    let t = TestEnv::new();
    let doc = Lowport::new()
        .netns(&pair.server)
        .env_dirs(&t)
        .args([
            "apply",
            "--method",
            "redirect-nft",
            "--port",
            "80:8080",
            "--yes",
            "--json",
        ])
        .run()
        .code(0)
        .json();
    assert_eq!(doc["verify"]["status"], "not_started", "{doc:#}");
    assert!(
        doc["verify"]["proved"]
            .as_str()
            .unwrap()
            .contains("lowport verify --port 80:8080"),
        "{doc:#}"
    );
}

#[test]
fn a_nat_chain_that_takes_the_port_first_fails_verification() {
    if !is_root_or_skip("a_nat_chain_that_takes_the_port_first_fails_verification") {
        return;
    }
    let pair = Pair::new();
    let mut server = Server::start(&pair.server, go_server(), &[":8080".into()]);
    server.assert_serves(&pair.server, "127.0.0.1", 8080, &go_body(8080));
    for rule in [
        "add table ip other",
        "add chain ip other pre { type nat hook prerouting priority -150; policy accept; }",
        "add rule ip other pre tcp dport 80 redirect to :9999",
    ] {
        let out = pair.server.exec(&["nft", rule]);
        assert!(
            out.status.success(),
            "{rule}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let t = TestEnv::new();
    // Locally (the output hook) lowport's rule works; remote clients are sent to 9999 first.
    Lowport::new()
        .netns(&pair.server)
        .env_dirs(&t)
        .args([
            "apply",
            "--method",
            "redirect-nft",
            "--port",
            "80:8080",
            "--yes",
        ])
        .run()
        .code(4)
        .stderr_has("nft table ip other chain pre rewrite(s) port 80 before lowport's rule");
    assert_eq!(pair.fetch(&pair.client, SERVER_IP, 80), "");
}
