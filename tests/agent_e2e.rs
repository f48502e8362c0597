//! `vdi-agent` end to end with real components: Xvfb, the agent (x264enc here: this machine has
//! no NVIDIA GPU), headless Chromium driving the embedded page, and an X client (`xev`) watching
//! what arrives at the X server; and `vdi-encoder-cost` on the same display.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use vdi_e2e::{Logged, XEvents, XServer, bin, run, text};

use vdi_e2e::agent::{Agent, PASSWORD, drive, drive_script, node};

/// curl's headers for a WebSocket upgrade.
const WS_UPGRADE: [&str; 8] = [
    "-H",
    "Connection: Upgrade",
    "-H",
    "Upgrade: websocket",
    "-H",
    "Sec-WebSocket-Version: 13",
    "-H",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
];

fn curl(args: &[&str]) -> String {
    let out = run(Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]).args(args));
    text(&out).0
}

#[test]
fn page_plays_the_display_and_input_reaches_the_x_server() {
    let x = XServer::xvfb("1024x768");
    let xev = XEvents::watch(&x.display, &["-event", "keyboard", "-event", "button"]);
    let agent = Agent::start(&x.display, "x264enc", &[]);
    let url = format!("http://{}/", agent.addr);
    let (ok, out) = drive(serde_json::json!({
        "url": url, "user": "user", "password": PASSWORD, "click": [300, 200], "type": "a", "reconnect": true,
    }));
    assert!(ok, "browser run failed: {out}\nagent log:\n{}", agent.log());
    assert!(
        out.contains(r#""step":"first","playing":true,"width":1024,"height":768"#),
        "video of the display's size: {out}"
    );
    assert!(out.contains(r#""step":"again","playing":true"#), "video again after reconnecting: {out}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = xev.seen();
        if seen.contains("ButtonPress") && seen.contains("keysym 0x61, a") {
            break;
        }
        assert!(Instant::now() < deadline, "the click and the key did not reach the X server: {seen}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // While a viewer watches, the stats loop reports the ICE candidate type and counts frames.
    let mut viewer = Command::new(node())
        .arg(drive_script())
        .arg(serde_json::json!({ "url": url, "user": "user", "password": PASSWORD, "holdMs": 30000 }).to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("node");
    let deadline = Instant::now() + Duration::from_secs(30);
    let m = loop {
        let metrics = run(Command::new("curl").args(["-s", &format!("http://{}/metrics", agent.metrics)]));
        let m = text(&metrics).0;
        if m.contains("vdi_agent_ice_candidate{type=") {
            break m;
        }
        assert!(Instant::now() < deadline, "the candidate type in use is never reported: {m}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = viewer.kill();
    let _ = viewer.wait();
    let frames: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("vdi_agent_encoded_frames_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(frames > 0, "encoded frames are counted: {m}");
    let keyframes: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("vdi_agent_encoded_keyframes_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!((1..frames).contains(&keyframes), "the stream's keyframes are counted among its frames: {m}");
    assert!(agent.log().contains("encoder chosen"));
    assert!(
        agent.log().contains("no desktop sound; streaming video alone")
            && agent.log().contains("PULSE_SERVER is not set"),
        "without PulseAudio the video plays and the log says why there is no sound: {}",
        agent.log()
    );
    assert!(m.contains(r#"vdi_agent_audio{state="off"} 1"#), "{m}");
    assert!(!agent.log().contains(PASSWORD), "the password never appears in the log");
}

#[test]
fn wrong_or_missing_credentials_get_401_on_page_and_websocket() {
    let x = XServer::xvfb("640x480");
    let agent = Agent::start(&x.display, "x264enc", &[]);
    let base = format!("http://{}", agent.addr);
    let good = format!("user:{PASSWORD}");
    assert_eq!(curl(&[&format!("{base}/")]), "401");
    assert_eq!(curl(&["-u", "user:wrong", &format!("{base}/")]), "401");
    assert_eq!(curl(&["-u", "other:wrong", &format!("{base}/ws")]), "401");
    let mut args: Vec<&str> = WS_UPGRADE.to_vec();
    let ws_url = format!("{base}/ws");
    args.push(&ws_url);
    assert_eq!(curl(&args), "401");
    assert_eq!(curl(&["-u", &good, &format!("{base}/")]), "200");
    assert_eq!(curl(&[&format!("{base}/healthz")]), "200", "the kubelet needs no password");
    assert_eq!(curl(&[&format!("{base}/readyz")]), "200");
    let page = run(Command::new("curl").args(["-s", "-u", &good, &format!("{base}/")]));
    assert!(!text(&page).0.contains(PASSWORD), "the password is not in the page");
    let metrics = run(Command::new("curl").args(["-s", &format!("http://{}/metrics", agent.metrics)]));
    let m = text(&metrics).0;
    assert!(m.contains(r#"vdi_agent_encoder{encoder="x264enc"} 1"#), "{m}");
    assert!(m.contains("vdi_agent_auth_failures_total 4"), "{m}");
    assert!(!m.contains(PASSWORD));
    assert!(!agent.log().contains(PASSWORD));
}

#[test]
fn refuses_to_start_without_password_or_with_an_unknown_encoder() {
    let out = run(Command::new(bin("vdi-agent")).env_remove("SELKIES_BASIC_AUTH_PASSWORD").env("DISPLAY", ":99"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("SELKIES_BASIC_AUTH_PASSWORD"), "{:?}", text(&out));
    let out =
        run(Command::new(bin("vdi-agent")).env("SELKIES_ENCODER", "h265magic").env("SELKIES_BASIC_AUTH_PASSWORD", "x"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("h265magic"));
    // A display that cannot be opened: exit 1 with the reason.
    let out = run(Command::new(bin("vdi-agent")).env("DISPLAY", ":4242").env("SELKIES_BASIC_AUTH_PASSWORD", "x"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains(":4242"), "{:?}", text(&out));
}

/// What the kubelet keeps as the container's termination message (and vdi-status shows as the
/// session's Failed reason) is the agent's own sentence, for each way it can give up.
#[test]
fn a_fatal_error_is_written_to_the_termination_message_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("termination-log");
    for (env, expect) in [
        (vec![("DISPLAY", ":4242"), ("SELKIES_BASIC_AUTH_PASSWORD", "x")], "the display does not open"),
        (vec![("DISPLAY", ":4242")], "SELKIES_BASIC_AUTH_PASSWORD"),
    ] {
        // Kubernetes creates the file empty; the agent only writes one that exists.
        std::fs::write(&log, "").expect("create");
        let mut cmd = Command::new(bin("vdi-agent"));
        cmd.env_remove("SELKIES_BASIC_AUTH_PASSWORD").env("VDI_TERMINATION_LOG", &log).envs(env);
        let out = run(&mut cmd);
        assert!(!out.status.success());
        let written = std::fs::read_to_string(&log).expect("read");
        assert!(written.contains(expect), "`{written}` should say `{expect}`");
        assert!(!written.contains("error:"), "the sentence itself, not the CLI's prefix: {written}");
    }
    // Outside a container (no such file) nothing is created.
    let absent = dir.path().join("absent");
    let out = run(Command::new(bin("vdi-agent"))
        .env("DISPLAY", ":4242")
        .env("SELKIES_BASIC_AUTH_PASSWORD", "x")
        .env("VDI_TERMINATION_LOG", &absent));
    assert_eq!(out.status.code(), Some(1));
    assert!(!absent.exists());
}

#[test]
fn nvenc_request_falls_back_to_x264_with_a_warning() {
    let x = XServer::xvfb("640x480");
    let agent = Agent::start(&x.display, "nvh264enc", &[]);
    let log = agent.log();
    assert!(log.contains(r#"encoder="nvh264enc""#) && log.contains("falling back"), "{log}");
    assert!(log.contains("not installed"), "the warning says why: {log}");
    assert!(log.contains(r#"encoder chosen encoder="x264enc""#), "{log}");
    let m = run(Command::new("curl").args(["-s", &format!("http://{}/readyz", agent.addr)]));
    assert!(text(&m).0.contains("x264enc"));
}

#[test]
fn a_new_viewer_takes_over_and_sigterm_exits_cleanly() {
    let x = XServer::xvfb("800x600");
    let mut agent = Agent::start(&x.display, "x264enc", &[]);
    let url = format!("http://{}/", agent.addr);
    let (ok, out) =
        drive(serde_json::json!({ "url": url, "user": "user", "password": PASSWORD, "stats": true, "takeover": true }));
    assert!(ok, "{out}\n{}", agent.log());
    assert!(out.contains("another viewer connected and took over"), "the first viewer is told why: {out}");
    for field in ["encoder   x264enc", "size      800x600", "bitrate", "rtt", "latency", "route     host"] {
        assert!(out.contains(field), "the statistics overlay shows `{field}`: {out}");
    }
    assert!(out.contains(r#""step":"second","playing":true"#), "{out}");

    let status = agent.proc.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}\n{}", agent.log());
}

#[test]
fn capture_pacing_sweeps_the_phase_locks_and_the_picture_keeps_coming() {
    let x = XServer::xvfb("800x600");
    let agent = Agent::start(&x.display, "x264enc", &[]);
    let url = format!("http://{}/", agent.addr);
    let (ok, out) = drive(serde_json::json!({ "url": url, "user": "user", "password": PASSWORD, "pacing": true }));
    assert!(ok, "{out}\n{}", agent.log());
    assert!(out.contains("pacing    locked"), "the page sweeps the capture phase and locks: {out}");
    assert!(out.contains(r#""step":"paced","playing":true"#), "frames keep coming after the moves: {out}");
    let metrics = run(Command::new("curl").args(["-s", &format!("http://{}/metrics", agent.metrics)]));
    let moves: u64 = text(&metrics)
        .0
        .lines()
        .find_map(|l| l.strip_prefix("vdi_agent_capture_phase_moves_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    // Seven eighths of the sweep, then the move to the best eighth (none when that is the last).
    assert!(moves >= 7, "the agent moved the real capture for each step of the sweep: {moves}\n{}", text(&metrics).0);
}

/// Each viewer gets the first of the agent's codecs its browser decodes, and every one plays:
/// Chromium decodes H.264, VP8 and VP9, so the agent's order decides; the overlay, the SDP and
/// `/metrics` name the codec and encoder.
#[test]
fn a_viewer_gets_the_first_codec_of_the_agents_order_its_browser_decodes() {
    let x = XServer::xvfb("800x600");
    for (order, codec, encoder) in
        [("vp8,h264", "VP8", "vp8enc"), ("vp9,vp8", "VP9", "vp9enc"), ("h264,vp8,vp9", "H264", "x264enc")]
    {
        let agent = Agent::start(&x.display, "x264enc", &[("VDI_CODECS", order)]);
        let url = format!("http://{}/", agent.addr);
        let (ok, out) =
            drive(serde_json::json!({ "url": url, "user": "user", "password": PASSWORD, "sdp": true, "stats": true }));
        assert!(ok, "VDI_CODECS={order}: {out}\n{}", agent.log());
        assert!(out.contains(r#""step":"first","playing":true,"width":800,"height":600"#), "{order}: {out}");
        assert!(out.contains(&format!("encoder   {encoder} ({codec})")), "the overlay names it: {out}");
        let step = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["step"] == "sdp")
            .unwrap_or_else(|| panic!("no sdp step: {out}"));
        let answer = step["answer"].as_str().unwrap_or_default();
        let video = answer.split("m=").find(|m| m.starts_with("video")).unwrap_or_default();
        assert!(
            video.contains(&format!(" {codec}/90000")),
            "VDI_CODECS={order}: the answer's video is {codec}: {video}"
        );
        let m = text(&run(Command::new("curl").args(["-s", &format!("http://{}/metrics", agent.metrics)]))).0;
        let counted = format!(r#"vdi_agent_viewer_codecs_total{{codec="{codec}",encoder="{encoder}"}} 1"#);
        assert!(m.contains(&counted), "{counted} in {m}");
        assert!(agent.log().contains("codec chosen"), "the log says which and why");
    }
}

/// Chromium draws each frame as soon as it is decoded: the agent's offer carries the RTP
/// playout-delay header extension on the video (minimum and maximum 0) and Chromium's answer
/// accepts it; `VDI_PLAYOUT_DELAY=browser` leaves it out and the picture still plays.
#[test]
fn the_browser_is_asked_to_draw_each_frame_on_arrival() {
    const EXTMAP: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";
    const TWCC: &str = vdi_agent::media::extensions::TWCC_URI;
    let x = XServer::xvfb("800x600");
    for (setting, offered) in [("none", true), ("browser", false)] {
        let agent = Agent::start(&x.display, "x264enc", &[("VDI_PLAYOUT_DELAY", setting)]);
        let url = format!("http://{}/", agent.addr);
        let (ok, out) = drive(serde_json::json!({ "url": url, "user": "user", "password": PASSWORD, "sdp": true }));
        assert!(ok, "{out}\n{}", agent.log());
        let step = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["step"] == "sdp")
            .unwrap_or_else(|| panic!("no sdp step: {out}"));
        let video = |sdp: &str| sdp.split("m=").find(|m| m.starts_with("video")).unwrap_or_default().to_owned();
        let (offer, answer) =
            (video(step["offer"].as_str().unwrap_or_default()), video(step["answer"].as_str().unwrap_or_default()));
        assert_eq!(offer.contains(EXTMAP), offered, "VDI_PLAYOUT_DELAY={setting}, the offer's video: {offer}");
        assert_eq!(answer.contains(EXTMAP), offered, "VDI_PLAYOUT_DELAY={setting}, Chromium's answer: {answer}");
        // Transport-wide congestion control either way: the browser reports each packet's
        // arrival, and the agent reads what it received from that.
        for (side, sdp) in [("offer", &offer), ("answer", &answer)] {
            assert!(sdp.contains(TWCC) && sdp.contains("transport-cc"), "the {side}'s video has no TWCC: {sdp}");
        }
        let received = agent.metric("vdi_agent_received_kbps");
        assert!(received.is_some_and(|kbps| kbps > 0.0), "the viewer's feedback was read: {received:?}");
        eprintln!("VDI_PLAYOUT_DELAY={setting}: the jitter buffer held each frame {} ms", step["heldMs"]);
    }
}

/// The attacks of a security review, against the real agent (issue 17): a page on another site
/// opening the signalling socket with the browser's cached credentials, the page in a frame,
/// parallel password guessing, and metrics behind the session's URL.
#[test]
fn hostile_clients_are_refused() {
    let x = XServer::xvfb("640x480");
    let agent = Agent::start(&x.display, "x264enc", &[]);
    let base = format!("http://{}", agent.addr);
    let good = format!("user:{PASSWORD}");

    // The page: a token for its socket, and headers that keep it out of frames and caches.
    let page = run(Command::new("curl").args(["-s", "-D", "-", "-u", &good, &format!("{base}/")]));
    let page = text(&page).0;
    let head = page.to_ascii_lowercase();
    let csp = head.lines().find(|l| l.starts_with("content-security-policy:")).unwrap_or_default().to_owned();
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
    for h in [
        "x-frame-options: deny",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
        "cache-control: no-store",
    ] {
        assert!(head.contains(h), "{h} missing:\n{page}");
    }
    let token =
        page.split(r#"name="vdi-token" content=""#).nth(1).and_then(|t| t.split('"').next()).expect("token").to_owned();

    // The socket: only this page's origin, only with a token this agent issued.
    let upgrade = |origin: &str, token: &str| {
        let url = format!("{base}/ws?token={token}");
        let mut args = vec!["-u", &good, "--max-time", "2"];
        args.extend(WS_UPGRADE);
        let origin_header = format!("Origin: {origin}");
        if !origin.is_empty() {
            args.extend(["-H", &origin_header]);
        }
        args.push(&url);
        curl(&args)
    };
    assert_eq!(upgrade("https://evil.example", &token), "403", "a cross-site page");
    assert_eq!(upgrade("null", &token), "403", "a sandboxed page");
    assert_eq!(upgrade(&base, ""), "403", "no page token");
    assert_eq!(upgrade(&base, "1796000000.forged"), "403", "a forged token");
    assert_eq!(upgrade(&base, &token), "101", "the page itself");

    // Metrics are not behind the page's port (the session's URL); they have a port of their own.
    assert_eq!(curl(&[&format!("{base}/metrics")]), "404");
    assert_eq!(curl(&[&format!("http://{}/metrics", agent.metrics)]), "200");

    // Guessing: past a few failures a source waits, and its attempts are not even checked (the
    // right password gets 429 too), while another source is not held back.
    let guesses: Vec<_> = (0..30)
        .map(|i| {
            let url = format!("{base}/");
            std::thread::spawn(move || curl(&["-u", &format!("user:guess{i}"), &url]))
        })
        .collect();
    let codes: Vec<String> = guesses.into_iter().map(|g| g.join().expect("thread")).collect();
    let refused = codes.iter().filter(|c| *c == "429").count();
    assert!(refused >= 20, "most guesses refused unchecked: {codes:?}");
    assert!(codes.iter().all(|c| c == "401" || c == "429"), "{codes:?}");
    assert_eq!(curl(&["-u", &good, &format!("{base}/")]), "429", "the source waits, even with the password");
    assert_eq!(
        curl(&["--interface", "127.0.0.2", "-u", &good, &format!("{base}/")]),
        "200",
        "another source is let in"
    );
}

/// The page's token for its socket (the agent issues one per page load).
fn page_token(agent: &Agent) -> String {
    let good = format!("user:{PASSWORD}");
    let page = run(Command::new("curl").args(["-s", "-u", &good, &format!("http://{}/", agent.addr)]));
    let page = text(&page).0;
    page.split(r#"name="vdi-token" content=""#).nth(1).and_then(|t| t.split('"').next()).expect("token").to_owned()
}

/// A signalling socket opened as a WebSocket client opens it, past the `101` answer.
fn open_socket(agent: &Agent, token: &str) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(agent.addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let auth = base64_encode(format!("user:{PASSWORD}").as_bytes());
    let request = format!(
        "GET /ws?token={token} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {auth}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        agent.addr
    );
    tcp.write_all(request.as_bytes()).expect("upgrade");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).expect("answer");
        head.push(byte[0]);
    }
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    // What the page says first: the codecs it decodes.
    send_text(&mut tcp, r#"{"v":1,"type":"hello","codecs":["H264"]}"#);
    tcp
}

/// Sends one text frame as a client must (masked).
fn send_text(tcp: &mut std::net::TcpStream, text: &str) {
    use std::io::Write;
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let len = text.len();
    let mut frame = vec![0x81u8];
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        frame.push(0x80 | 126);
        frame.extend(short.to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend((len as u64).to_be_bytes());
    }
    frame.extend(mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    tcp.write_all(&frame).expect("frame");
}

/// The next frame the server sends (unmasked): its opcode and payload.
fn read_frame(tcp: &mut std::net::TcpStream) -> (u8, Vec<u8>) {
    use std::io::Read;
    let mut h = [0u8; 2];
    tcp.read_exact(&mut h).expect("frame header");
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            tcp.read_exact(&mut l).expect("len");
            u64::from(u16::from_be_bytes(l))
        }
        127 => {
            let mut l = [0u8; 8];
            tcp.read_exact(&mut l).expect("len");
            u64::from_be_bytes(l)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).expect("size")];
    tcp.read_exact(&mut payload).expect("payload");
    (h[0] & 0x0f, payload)
}

/// A signalling message far larger than any SDP (2 MiB) closes that socket instead of being
/// buffered, and the agent goes on serving the next viewer.
#[test]
fn an_oversized_signalling_message_closes_the_socket() {
    use std::io::Read;
    let x = XServer::xvfb("640x480");
    let agent = Agent::start(&x.display, "x264enc", &[]);
    let token = page_token(&agent);
    let mut tcp = open_socket(&agent, &token);
    let huge = format!(r#"{{"v":1,"type":"ice","candidate":"{}","sdpMLineIndex":0}}"#, "x".repeat(2 << 20));
    send_text(&mut tcp, &huge);
    // The agent answers with a close (or drops the connection): the socket reaches its end.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    tcp.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    let closed = loop {
        match tcp.read(&mut buf) {
            Ok(0) => break true,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break true,
            Ok(_) => {}
        }
        if Instant::now() > deadline {
            break false;
        }
    };
    assert!(closed, "the oversized message's socket stays open");
    let mut next = open_socket(&agent, &token);
    while !String::from_utf8_lossy(&read_frame(&mut next).1).contains(r#""offer""#) {}
}

/// An idle signalling socket is kept alive: the agent pings it (every
/// `VDI_WS_PING_SECONDS`), so a proxy's read timeout does not close a desktop that is only being
/// watched. Read as a WebSocket client reads it: frame by frame off the socket.
#[test]
fn the_signalling_socket_is_pinged_while_idle() {
    let x = XServer::xvfb("640x480");
    let agent = Agent::start(&x.display, "x264enc", &[("VDI_WS_PING_SECONDS", "1")]);
    let mut tcp = open_socket(&agent, &page_token(&agent));
    // Frames: the config, the offer, candidates, then pings.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut opcodes = Vec::new();
    while Instant::now() < deadline && !opcodes.contains(&0x9) {
        opcodes.push(read_frame(&mut tcp).0);
    }
    assert!(opcodes.contains(&0x9), "a ping within 10 s of an idle socket: opcodes {opcodes:?}");
}

/// What a process holds: threads and open files.
fn held(pid: u32) -> (usize, usize) {
    let count = |dir: &str| std::fs::read_dir(format!("/proc/{pid}/{dir}")).map(|d| d.count()).unwrap_or(0);
    (count("task"), count("fd"))
}

/// Viewers that connect and vanish (a flaky network, a script) leave nothing behind: after
/// 300 sockets that got their offer (a stream, a data channel, an input thread with its own X
/// connection) and were dropped back to back, the agent is still up, its threads and the X
/// server's clients are back where they were, and its open files did not grow with the viewers.
/// (Before the agent serialised pipeline start and stop, this aborted it within 300.)
#[test]
fn three_hundred_viewers_that_drop_leave_nothing_behind() {
    let x = XServer::xvfb("640x480");
    let mut agent = Agent::start(&x.display, "x264enc", &[]);
    let token = page_token(&agent);
    let (agent_pid, x_pid) = (agent.proc.child.id(), x.pid());
    let cycle = |agent: &Agent| {
        let mut tcp = open_socket(agent, &token);
        while !String::from_utf8_lossy(&read_frame(&mut tcp).1).contains(r#""offer""#) {}
    };
    // What GStreamer and the runtime keep once they have run a stream.
    for _ in 0..5 {
        cycle(&agent);
    }
    // Waits until the agent has let go of the last viewer (or 20 s): its threads, its files and
    // the X server's files (one socket per X client).
    let settle = |threads: usize, files: usize, x_files: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (now, x_now) = (held(agent_pid), held(x_pid).1);
            if (now.0 <= threads && now.1 <= files && x_now <= x_files) || Instant::now() > deadline {
                return (now, x_now);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // The baseline once the warm-up viewers are gone: the same figures five readings in a row.
    let steady = || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let (mut last, mut same) = ((held(agent_pid), held(x_pid).1), 0);
        while same < 5 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            let now = (held(agent_pid), held(x_pid).1);
            same = if now == last { same + 1 } else { 0 };
            last = now;
        }
        last
    };
    let (before, x_before) = steady();
    for _ in 0..300 {
        cycle(&agent);
    }
    let (after, x_after) = settle(before.0, before.1 + 60, x_before);
    assert!(agent.proc.child.try_wait().expect("wait").is_none(), "the agent died:\n{}", agent.log());
    // webrtcbin 1.22 keeps about one in a hundred ICE agents it was stopped with mid-negotiation
    // (a few sockets each); one per viewer would be hundreds.
    assert!(
        after.0 <= before.0 && x_after <= x_before && after.1 <= before.1 + 60,
        "agent threads {} -> {}, agent files {} -> {}, X server files {x_before} -> {x_after}",
        before.0,
        after.0,
        before.1,
        after.1,
    );
    cycle(&agent);
    assert!(agent.log().matches("viewer session ended").count() >= 305, "{}", agent.log());
    let _ = agent.proc.terminate(Duration::from_secs(10));
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// `vdi-encoder-cost` measures what the display shows: each encoder writes far more a frame for
/// the painter's scrolling noise than for a still screen, every chain reports the display's size
/// and encodes no more frames than were captured, and what cannot be measured is named with a failing exit.
#[test]
fn encoder_cost_measures_each_encoder_on_what_the_display_shows() {
    let x = XServer::xvfb("640x360");
    let measure = || -> Vec<serde_json::Value> {
        let out = run(Command::new(bin("vdi-encoder-cost")).args([
            "--display",
            &x.display,
            "--encoders",
            "x264enc,vp8enc",
            "--seconds",
            "1.5",
            "--warmup",
            "0.5",
            "--json",
        ]));
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "vdi-encoder-cost failed: {stderr}");
        let rows: Vec<serde_json::Value> =
            stdout.lines().map(|l| serde_json::from_str(l).expect("one JSON object a line")).collect();
        let chains: Vec<_> = rows.iter().map(|r| r["chain"].as_str().unwrap_or_default()).collect();
        assert_eq!(chains, ["capture+convert", "x264enc", "vp8enc"], "{stdout}");
        for r in &rows {
            assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(640), Some(360)), "{r}");
            let (captured, encoded) = (r["captured"].as_u64().unwrap_or(0), r["encoded"].as_u64().unwrap_or(0));
            // A frame or two in flight when the span starts come out inside it.
            assert!(encoded > 0 && encoded <= captured + 2, "frames encoded of those captured: {r}");
        }
        rows
    };
    let still = measure();
    let mut painter =
        Logged::spawn(Command::new(env!("CARGO_BIN_EXE_vdi-test-painter")).arg("--motion").env("DISPLAY", &x.display));
    let moving = measure();
    painter.terminate(Duration::from_secs(2));
    for (s, m) in still.iter().zip(&moving).skip(1) {
        let kb = |r: &serde_json::Value| r["kb_per_frame"].as_f64().unwrap_or(0.0);
        assert!(kb(m) > 5.0 * kb(s), "scrolling noise costs more a frame than a still screen: {s} against {m}");
    }

    let out = run(Command::new(bin("vdi-encoder-cost")).args(["--display", &x.display, "--encoders", "h265enc"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("h265enc"), "{:?}", text(&out));
    let out = run(Command::new(bin("vdi-encoder-cost")).args(["--display", ":4242", "--encoders", "x264enc"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains(":4242"), "{:?}", text(&out));
}
