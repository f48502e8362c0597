//! Through a NAT that allows nothing but TURN, with real network namespaces, real coturn and real
//! Chromium. The test builds and removes the topology itself; traffic stays inside it:
//!
//! ```text
//!  pod (agent) 10.99.1.2 ── 10.99.1.1 public (coturn) 10.99.2.1 ── 10.99.2.2 nat 192.168.77.1 ── 192.168.77.2 home (Chromium)
//! ```
//!
//! `nat` masquerades the home network and drops every packet from home to the pod except the
//! page and signalling (TCP 8080, the ingress path); optionally all UDP too.

use std::{
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use vdi_e2e::{
    Logged, XServer,
    agent::{PASSWORD, drive_script, steps},
    bin, run, text, tool,
};

const SECRET: &str = "netns-s3cret";

struct Topology {
    prefix: String,
}

fn sh(script: &str) {
    let out = run(Command::new("sh").args(["-ec", script]));
    assert!(out.status.success(), "{script}\n{}", text(&out).1);
}

impl Topology {
    fn new(block_udp: bool) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let prefix = format!("vdi{}x{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let t = Self { prefix };
        let (pod, public, nat, home) = (t.ns("pod"), t.ns("pub"), t.ns("nat"), t.ns("home"));
        let udp = if block_udp { "meta l4proto udp drop" } else { "" };
        sh(&format!(
            r#"
for n in {pod} {public} {nat} {home}; do ip netns add $n; ip -n $n link set lo up; done
ip -n {pod} link add eth0 type veth peer name podlink netns {public}
ip -n {public} link add eth1 type veth peer name eth0 netns {nat}
ip -n {nat} link add eth1 type veth peer name eth0 netns {home}
ip -n {pod} addr add 10.99.1.2/24 dev eth0; ip -n {pod} link set eth0 up; ip -n {pod} route add default via 10.99.1.1
ip -n {public} addr add 10.99.1.1/24 dev podlink; ip -n {public} link set podlink up
ip -n {public} addr add 10.99.2.1/24 dev eth1; ip -n {public} link set eth1 up
ip -n {nat} addr add 10.99.2.2/24 dev eth0; ip -n {nat} link set eth0 up; ip -n {nat} route add default via 10.99.2.1
ip -n {nat} addr add 192.168.77.1/24 dev eth1; ip -n {nat} link set eth1 up
ip -n {home} addr add 192.168.77.2/24 dev eth0; ip -n {home} link set eth0 up; ip -n {home} route add default via 192.168.77.1
ip netns exec {public} sysctl -qw net.ipv4.ip_forward=1
ip netns exec {nat} sysctl -qw net.ipv4.ip_forward=1
ip netns exec {nat} nft -f - <<'NFT'
table ip nat {{
  chain post {{ type nat hook postrouting priority 100; oifname "eth0" masquerade; }}
}}
table inet filter {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    iifname "eth1" {udp}
    iifname "eth1" ip daddr 10.99.1.0/24 tcp dport 8080 accept
    iifname "eth1" ip daddr 10.99.1.0/24 drop
  }}
}}
NFT
"#
        ));
        t
    }

    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    fn exec(&self, ns: &str, program: &std::path::Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(ns)]).arg(program);
        cmd
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for n in ["pod", "pub", "nat", "home"] {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(n)]).status();
        }
    }
}

fn coturn(t: &Topology) -> Logged {
    let mut cmd = t.exec("pub", std::path::Path::new("sh"));
    cmd.args(["-c", r#"exec turnserver "$@" --log-file=stdout --simple-log 1>&2"#, "sh"]).args([
        "-c",
        "/dev/null",
        "--listening-ip=10.99.2.1",
        "--listening-ip=10.99.1.1",
        "--relay-ip=10.99.1.1",
        "--listening-port=3478",
        "--min-port=50000",
        "--max-port=50999",
        "--fingerprint",
        "--realm=vdi",
        "--use-auth-secret",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
    ]);
    cmd.arg(format!("--static-auth-secret={SECRET}"));
    let proc = Logged::spawn(&mut cmd);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !proc.log().contains("IO method (auth thread)") {
        assert!(std::time::Instant::now() < deadline, "coturn did not start: {}", proc.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    proc
}

fn agent(t: &Topology, display: &str, protocol: &str) -> Logged {
    let mut cmd = t.exec("pod", &bin("vdi-agent"));
    cmd.args(["--addr", "0.0.0.0", "--port", "8080"])
        .env("DISPLAY", display)
        .env("SELKIES_ENCODER", "x264enc")
        .env("SELKIES_BASIC_AUTH_PASSWORD", PASSWORD)
        .env("SELKIES_TURN_HOST", "10.99.2.1")
        .env("SELKIES_TURN_PORT", "3478")
        .env("SELKIES_TURN_PROTOCOL", protocol)
        .env("SELKIES_TURN_SHARED_SECRET", SECRET)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("PULSE_SERVER");
    let proc = Logged::spawn(&mut cmd);
    proc.wait_for_addr("listening", Duration::from_secs(30));
    proc
}

fn browse(t: &Topology, opts: serde_json::Value) -> (bool, String) {
    let out = run(t.exec("home", &tool("node")).arg(drive_script()).arg(opts.to_string()));
    let (o, e) = text(&out);
    (out.status.success(), format!("{o}{e}"))
}

#[test]
fn relay_only_behind_nat_connects_twenty_times_out_of_twenty() {
    let t = Topology::new(false);
    let x = XServer::xvfb("640x480");
    let _turn = coturn(&t);
    let agent = agent(&t, &x.display, "udp");
    // The NAT works as drawn: from home the page's port answers, any other port on the pod is
    // silently dropped (curl times out, exit 28) rather than refused (exit 7).
    let curl = |url: &str| {
        let out = run(t.exec("home", std::path::Path::new("curl")).args([
            "-s",
            "-o",
            "/dev/null",
            "--connect-timeout",
            "2",
            url,
        ]));
        out.status.code()
    };
    assert_eq!(curl("http://10.99.1.2:8080/healthz"), Some(0), "the page's port is reachable from home");
    assert_eq!(curl("http://10.99.1.2:9/"), Some(28), "everything else to the pod is dropped");
    let opts = serde_json::json!({
        "url": "http://10.99.1.2:8080/?relay=1", "user": "user", "password": PASSWORD, "repeat": 20, "timeoutMs": 15000,
    });
    let (ok, out) = browse(&t, opts);
    eprintln!("{out}");
    assert!(ok, "{out}\n{}", agent.log());
    let conns = steps(&out, "connection");
    assert_eq!(conns.len(), 20, "{out}");
    for c in &conns {
        assert_eq!(c["playing"], true, "every connection plays: {out}\n{}", agent.log());
        assert_eq!(c["route"]["type"], "relay", "through TURN: {out}");
    }
}

#[test]
fn with_udp_blocked_turn_over_tcp_still_connects() {
    let t = Topology::new(true);
    let x = XServer::xvfb("640x480");
    let _turn = coturn(&t);
    let agent = agent(&t, &x.display, "tcp");
    let opts = serde_json::json!({
        "url": "http://10.99.1.2:8080/", "user": "user", "password": PASSWORD, "repeat": 1, "timeoutMs": 20000,
    });
    let (ok, out) = browse(&t, opts);
    eprintln!("{out}");
    assert!(ok, "{out}\n{}", agent.log());
    let c = &steps(&out, "connection")[0];
    assert_eq!(c["route"]["type"], "relay", "{out}");
    assert_eq!(c["route"]["relayProtocol"], "tcp", "the browser reaches TURN over TCP: {out}");
}
