//! TURN with real coturn: the agent's minted TURN REST credentials are accepted, wrong and
//! expired ones refused, and the hardened configuration shipped in `examples/coturn` refuses to
//! relay to loopback and private addresses.

use std::{
    process::Command,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use vdi_agent::turn::{Credentials, mint};
use vdi_e2e::{Logged, repo, run, text};

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("port")
}

fn coturn(extra: &[&str]) -> (Logged, u16) {
    let port = free_port();
    let relay = 50000 + (port % 100) * 100;
    let proc = Logged::spawn(
        Command::new("sh")
            .args(["-c", r#"exec turnserver "$@" --log-file=stdout --simple-log 1>&2"#, "sh"])
            .args(extra)
            .args([
                "--listening-ip=127.0.0.1",
                "--relay-ip=127.0.0.1",
                "--no-tls",
                "--no-dtls",
                "--static-auth-secret=t0p-s3cret",
            ])
            .arg(format!("--listening-port={port}"))
            .arg(format!("--min-port={relay}"))
            .arg(format!("--max-port={}", relay + 99)),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !proc.log().contains("IO method (auth thread)") {
        assert!(std::time::Instant::now() < deadline, "coturn did not start: {}", proc.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    (proc, port)
}

/// Allocates through coturn and sends to `peer`; the client's exit status and output.
fn allocate(port: u16, c: &Credentials, peer: &str) -> (bool, String) {
    allocate_with(port, c, peer, &[])
}

fn allocate_with(port: u16, c: &Credentials, peer: &str, extra: &[&str]) -> (bool, String) {
    let out = run(Command::new("timeout").args(["20", "turnutils_uclient"]).args(extra).args([
        "-n",
        "1",
        "-m",
        "1",
        "-u",
        &c.username,
        "-w",
        &c.password,
        "-p",
        &port.to_string(),
        "-e",
        peer,
        "127.0.0.1",
    ]));
    let (o, e) = text(&out);
    (out.status.success(), format!("{o}{e}"))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[test]
fn minted_credentials_are_accepted_and_wrong_or_expired_ones_refused() {
    // `-c /dev/null`: Debian's /etc/turnserver.conf sends the log to syslog.
    let (server, port) = coturn(&[
        "-c",
        "/dev/null",
        "--use-auth-secret",
        "--realm=vdi",
        "--fingerprint",
        "--no-cli",
        "--allow-loopback-peers",
    ]);
    let good = mint(b"t0p-s3cret", "alice@example.com", now(), Duration::from_secs(3600));
    let (ok, out) = allocate(port, &good, "127.0.0.1");
    assert!(ok, "minted credentials refused: {out}\n{}", server.log());

    let wrong = mint(b"not-the-secret", "alice@example.com", now(), Duration::from_secs(3600));
    let (ok, _) = allocate(port, &wrong, "127.0.0.1");
    assert!(!ok, "credentials minted with another secret were accepted");

    let expired = mint(b"t0p-s3cret", "alice@example.com", now() - 7200, Duration::from_secs(3600));
    let (ok, _) = allocate(port, &expired, "127.0.0.1");
    assert!(!ok, "expired credentials were accepted");
}

#[test]
fn hardened_configuration_refuses_loopback_and_private_peers() {
    let conf = repo().join("examples/coturn/turnserver.conf");
    let (server, port) = coturn(&["-c", conf.to_str().expect("path")]);
    // One user per attempt: a refused client leaves its allocation behind, and the per-user quota
    // is part of the hardening.
    let creds = |n: usize| mint(b"t0p-s3cret", &format!("user{n}@example.com"), now(), Duration::from_secs(3600));
    for (n, peer) in ["127.0.0.1", "192.168.1.10", "169.254.169.254", "172.16.0.1"].into_iter().enumerate() {
        let (ok, out) = allocate(port, &creds(n), peer);
        assert!(
            !ok && out.contains("403 (Forbidden IP)"),
            "relaying to {peer} was not refused: {out}\n{}",
            server.log()
        );
    }
    // The Pod range stays allowed (the permission is granted; nothing listens there).
    let (_, out) = allocate(port, &creds(9), "10.244.1.5");
    assert!(!out.contains("Forbidden IP"), "the Pod range must stay reachable: {out}");
    // No TCP relays: a credential cannot open TCP connections through the node.
    let (_, out) = allocate_with(port, &creds(10), "10.244.1.5", &["-T"]);
    assert!(out.contains("error 442 (TCP Transport is not allowed"), "a TCP relay was not refused: {out}");
}
