//! `detect` reports who listens on a port, asked of the kernel in a private network namespace
//! where this test opens the only sockets.

use crate::support::*;

#[test]
fn detect_names_the_listener_and_its_process_in_a_private_namespace() {
    if !is_root_or_skip("detect_names_the_listener_and_its_process_in_a_private_namespace") {
        return;
    }
    let t = TestEnv::new();
    // Namespaces belong to threads: this one, and the lowport it starts, see only its sockets.
    let (out, established) = std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare -n");
            let up = std::process::Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status();
            assert!(up.is_ok_and(|s| s.success()));
            let tcp = std::net::TcpListener::bind("127.0.0.1:80").unwrap();
            let udp = std::net::UdpSocket::bind("0.0.0.0:80").unwrap();
            // Established connections on port 80 are not listeners.
            let client = std::net::TcpStream::connect("127.0.0.1:80").unwrap();
            let accepted = tcp.accept().unwrap();
            let out = t
                .lowport()
                .args(["detect", "--port", "80", "--port", "443", "--json"])
                .run()
                .code(0);
            (out, (tcp, udp, client, accepted))
        })
        .join()
        .unwrap()
    });
    drop(established);
    let facts = out.json();
    let me = std::process::id();
    let got: Vec<(String, String, u64, u64)> = facts["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["proto"].as_str().unwrap().to_string(),
                l["address"].as_str().unwrap().to_string(),
                l["port"].as_u64().unwrap(),
                l["pid"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("tcp".into(), "127.0.0.1".into(), 80, u64::from(me)),
            ("udp".into(), "0.0.0.0".into(), 80, u64::from(me)),
        ],
        "{}",
        out.stdout
    );
}
