//! The desktop as people use it, end to end with real components: the X server (Xorg with the
//! dummy driver where the screen must change size, Xvfb elsewhere), PulseAudio, the agent, X
//! clients (xdpyinfo, xsetroot, xclip, xev) and headless Chromium driving the embedded page.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use vdi_e2e::{
    Pulse, XEvents, XServer,
    agent::{Agent, drive, drive_live, node, steps},
    run, text,
};

#[test]
fn the_screen_follows_the_browser_window_within_bounds() {
    screen_follows_the_window("h264");
}

/// Resizing renegotiates the stream in VP8 as it does in H.264 (what Firefox offline gets).
#[test]
fn the_screen_follows_the_browser_window_in_vp8_too() {
    screen_follows_the_window("vp8");
}

fn screen_follows_the_window(codecs: &str) {
    let x = XServer::xorg_dummy();
    let agent = Agent::start(&x.display, "x264enc", &[("SELKIES_ENABLE_RESIZE", "true"), ("VDI_CODECS", codecs)]);
    let mut opts = agent.drive_opts(&x.display);
    opts["viewport"] = serde_json::json!({ "width": 1000, "height": 700 });
    // The first size comes from the page load; then two window changes, the last out of bounds.
    opts["resize"] = serde_json::json!([[1000, 700], [1280, 800], [3001, 1801, "2560x1600"]]);
    opts["timeoutMs"] = serde_json::json!(30000);
    let (ok, out) = drive(opts);
    eprintln!("{out}");
    assert!(ok, "{out}\n{}", agent.log());
    let resized = steps(&out, "resized");
    let screens: Vec<_> = resized.iter().map(|s| (s["video"].as_str(), s["screen"].as_str())).collect();
    assert_eq!(
        screens,
        [
            (Some("1000x700"), Some("1000x700")),
            (Some("1280x800"), Some("1280x800")),
            (Some("2560x1600"), Some("2560x1600"))
        ],
        "the X screen (read by xdpyinfo) and the video follow the window: {out}"
    );
    assert_eq!(x.size(), "2560x1600");
    // Each size got a mode of its own; those of the sizes left behind are deleted again.
    assert_eq!(agent_modes(&x.display), ["2560x1600_vdi"], "RandR modes the agent left in the server");
}

/// The names of the RandR modes the agent created (`WxH_vdi`) that the X server still has.
fn agent_modes(display: &str) -> Vec<String> {
    use x11rb::{connection::Connection, protocol::randr::ConnectionExt as _};
    let (conn, screen) = x11rb::connect(Some(display)).expect("connect");
    let root = conn.setup().roots[screen].root;
    let res = conn.randr_get_screen_resources_current(root).expect("request").reply().expect("reply");
    let mut names = res.names.as_slice();
    let mut out = Vec::new();
    for m in &res.modes {
        let (name, rest) = names.split_at(usize::from(m.name_len));
        names = rest;
        let name = String::from_utf8_lossy(name).into_owned();
        if name.ends_with("_vdi") {
            out.push(name);
        }
    }
    out
}

#[test]
fn the_cursor_is_drawn_by_the_browser_and_not_captured() {
    let x = XServer::xvfb("800x600");
    let agent = Agent::start(&x.display, "x264enc", &[]);
    let mut opts = agent.drive_opts(&x.display);
    opts["cursor"] = serde_json::json!(true);
    let mut window = None;
    let (ok, out) = drive_with_handshake(opts, |step| {
        if step == "cursor-ready" {
            window = Some(text_cursor_window(&x.display));
        }
    });
    drop(window);
    eprintln!("{out}");
    assert!(ok, "{out}\n{}", agent.log());
    let cursor = &steps(&out, "cursor")[0];
    assert!(cursor["after"].as_str().is_some_and(|c| c.starts_with("url(\"data:image/png;base64,")), "{out}");
    let frame = &steps(&out, "frame-around-pointer")[0];
    let brightest = frame["brightest"].as_u64().unwrap_or(255);
    assert!(brightest < 60, "the frames around the pointer are the black desktop, no pointer drawn in: {out}");
    let m = run(Command::new("curl").args(["-s", &format!("http://{}/metrics", agent.metrics)]));
    assert!(!text(&m).0.contains("vdi_agent_cursor_changes_total 0\n"), "{}", text(&m).0);
}

fn x_clipboard(display: &str) -> String {
    let out = run(Command::new("xclip").args(["-selection", "clipboard", "-o"]).env("DISPLAY", display));
    text(&out).0
}

#[test]
fn clipboard_text_goes_both_ways_within_the_limit() {
    let x = XServer::xvfb("800x600");
    let agent = Agent::start(&x.display, "x264enc", &[("VDI_CLIPBOARD_MAX_BYTES", "65536")]);
    let mut opts = agent.drive_opts(&x.display);
    let big = "x".repeat(65_537);
    opts["clipboard"] = serde_json::json!({
        "copy": "copied in the desktop: grüße, 東京, ✓",
        "paste": ["pasted in the page: ½ café €", big],
    });
    let (ok, out) = drive(opts);
    eprintln!("{out}");
    assert!(ok, "{out}\n{}", agent.log());
    assert_eq!(steps(&out, "clipboard-mode")[0]["mode"], "both", "{out}");
    assert_eq!(steps(&out, "desktop-to-page")[0]["arrived"], true, "{out}");
    let pasted = steps(&out, "pasted");
    assert_eq!(pasted[0]["notice"], "", "{out}");
    assert!(
        pasted[1]["notice"].as_str().is_some_and(|n| n.contains("not sent") && n.contains("limit")),
        "an over-size paste is refused with a message: {out}"
    );
    assert_eq!(x_clipboard(&x.display), "pasted in the page: ½ café €", "the desktop's CLIPBOARD, read by xclip");
}

#[test]
fn clipboard_false_blocks_both_ways() {
    let x = XServer::xvfb("800x600");
    let agent = Agent::start(&x.display, "x264enc", &[("SELKIES_ENABLE_CLIPBOARD", "false")]);
    let mut opts = agent.drive_opts(&x.display);
    opts["clipboard"] = serde_json::json!({ "copy": "secret in the desktop", "expectCopy": false, "paste": ["secret from outside"], "viaPanel": true });
    let (ok, out) = drive(opts);
    eprintln!("{out}");
    assert!(ok, "{out}\n{}", agent.log());
    assert_eq!(steps(&out, "clipboard-mode")[0]["mode"], "none", "{out}");
    assert_eq!(steps(&out, "desktop-to-page")[0]["arrived"], false, "{out}");
    assert!(steps(&out, "pasted")[0]["notice"].as_str().is_some_and(|n| n.contains("turned off")), "{out}");
    assert_eq!(x_clipboard(&x.display), "secret in the desktop", "the paste did not reach the desktop");
}

#[test]
fn desktop_sound_reaches_the_browser_as_opus() {
    let x = XServer::xvfb("640x480");
    let pulse = Pulse::start();
    let agent = Agent::start(&x.display, "x264enc", &[("PULSE_SERVER", &pulse.server)]);
    assert!(agent.log().contains("desktop sound streams as Opus"), "{}", agent.log());
    let mut opts = agent.drive_opts(&x.display);
    opts["audio"] = serde_json::json!(true);
    opts["pulse"] = serde_json::json!(pulse.server);
    let (ok, out) = drive(opts);
    eprintln!("{out}");
    assert!(ok, "{out}\n{}", agent.log());
    let audio = &steps(&out, "audio")[0];
    assert_eq!(audio["codec"], "audio/opus", "{out}");
    let (silence, tone) = (audio["silence"].as_f64().unwrap_or(1.0), audio["tone"].as_f64().unwrap_or(0.0));
    assert!(silence < 1e-4, "silence stays near zero: {out}");
    assert!(tone > 0.01 && tone > 100.0 * silence.max(1e-6), "the tone raises the level: {out}");
}

/// The driver with a handshake: `at(step)` runs at each step line, and the steps that wait for
/// the test get their line back.
fn drive_with_handshake(opts: serde_json::Value, mut at: impl FnMut(&str)) -> (bool, String) {
    drive_live(Command::new(node()), opts, |step, _| {
        at(step);
        ["held", "blurred", "cursor-ready", "typed-non-us"].contains(&step).then(String::new)
    })
}

/// An X client mapping a window over the whole screen with the text (xterm) cursor from the
/// cursor font, as an editor would; the window lives as long as the connection.
fn text_cursor_window(display: &str) -> x11rb::rust_connection::RustConnection {
    use x11rb::{
        connection::Connection as _,
        protocol::xproto::{ConnectionExt as _, CreateWindowAux, WindowClass},
    };
    let (conn, screen) = x11rb::connect(Some(display)).expect("X connection");
    let s = conn.setup().roots[screen].clone();
    let font = conn.generate_id().expect("id");
    conn.open_font(font, b"cursor").expect("font");
    let cursor = conn.generate_id().expect("id");
    const XC_XTERM: u16 = 152;
    conn.create_glyph_cursor(cursor, font, font, XC_XTERM, XC_XTERM + 1, 0, 0, 0, 0xffff, 0xffff, 0xffff)
        .expect("cursor");
    let win = conn.generate_id().expect("id");
    let aux = CreateWindowAux::new().background_pixel(s.black_pixel).cursor(cursor);
    conn.create_window(
        0,
        win,
        s.root,
        0,
        0,
        s.width_in_pixels,
        s.height_in_pixels,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &aux,
    )
    .expect("window");
    conn.map_window(win).expect("map");
    conn.flush().expect("flush");
    conn
}

/// Keycodes the X server has down now (an X client asking QueryKeymap).
fn keys_down(display: &str) -> usize {
    use x11rb::protocol::xproto::ConnectionExt as _;
    let (conn, _) = x11rb::connect(Some(display)).expect("X connection");
    let map = conn.query_keymap().expect("query").reply().expect("reply");
    map.keys.iter().map(|b| b.count_ones() as usize).sum()
}

/// Waits until `want` keys are down (or 10 s), and returns how many are.
fn wait_keys(display: &str, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = keys_down(display);
        if n == want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn keys_never_stick_and_other_layouts_type_their_characters() {
    let x = XServer::xvfb("800x600");
    let xev = XEvents::watch(&x.display, &["-event", "keyboard"]);
    let agent = Agent::start(&x.display, "x264enc", &[]);
    let mut opts = agent.drive_opts(&x.display);
    opts["keys"] = serde_json::json!(true);
    let (mut held, mut after_blur, mut typed) = (None, None, None);
    // The typed keys are looked for before the browser is let go (it waits for this step's answer).
    let arrived = |seen: &str| {
        seen.contains("odiaeresis") && seen.contains("\"€\"") && seen.matches("keysym 0x61, a").count() >= 6
    };
    let (ok, out) = drive_with_handshake(opts, |step| match step {
        "held" => held = Some(wait_keys(&x.display, 2)),
        "blurred" => after_blur = Some(wait_keys(&x.display, 0)),
        "typed-non-us" => {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !arrived(&xev.seen()) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            typed = Some(xev.seen());
        }
        _ => {}
    });
    assert!(ok, "{out}\n{}", agent.log());
    assert_eq!(held, Some(2), "Shift and Control are down at the X server while held: {out}");
    assert_eq!(after_blur, Some(0), "after the page lost focus no key is down: {out}");
    let seen = typed.unwrap_or_default();
    assert!(
        arrived(&seen),
        "ö (German layout key), € (composed text) and three presses of a held a (press, 2 repeats, release: 6 events) did not all arrive: {seen}"
    );
}

/// A viewer, or a script on its page, cannot hurt the X server through the input channel: keys
/// that act on the server (Terminate_Server, VT switching, breaking grabs, AccessX) are refused,
/// and a flood of two million typed characters is held to the input rate, so the person's next
/// key still arrives promptly and the X server stays up. (Before: Terminate_Server stopped Xvfb,
/// and the flood would have been typed for minutes.)
#[test]
fn hostile_input_cannot_stop_or_flood_the_x_server() {
    let mut x = XServer::xvfb("800x600");
    let xev = XEvents::watch(&x.display, &["-event", "keyboard"]);
    let agent = Agent::start(&x.display, "x264enc", &[]);
    let mut opts = agent.drive_opts(&x.display);
    let key = |k: u32, d: bool| serde_json::json!({ "send": { "t": "k", "k": k, "d": d } });
    // Terminate_Server, Switch_VT_1, Ungrab, ClearGrab, MouseKeys_Enable.
    let denied = [0xfed5, 0x1008_fe01, 0x1008_fe20, 0x1008_fe21, 0xfe76];
    let mut raw: Vec<serde_json::Value> = denied.iter().flat_map(|&k| [key(k, true), key(k, false)]).collect();
    raw.push(serde_json::json!({ "send": { "t": "text", "s": "x".repeat(1000) }, "times": 2000 }));
    // The burst comes back within two seconds at the input rate.
    raw.push(serde_json::json!({ "waitMs": 2500 }));
    raw.extend([key(0x5a, true), key(0x5a, false)]); // Z
    opts["raw"] = serde_json::json!(raw);
    let mut z_after = None;
    let (ok, out) = drive_live(Command::new(node()), opts, |step, _| {
        (step == "raw-sent").then(|| {
            let t0 = Instant::now();
            while !xev.seen().contains("keysym 0x5a, Z") && t0.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(50));
            }
            z_after = xev.seen().contains("keysym 0x5a, Z").then(|| t0.elapsed());
            String::new()
        })
    });
    assert!(ok, "{out}\n{}", agent.log());
    assert!(x.alive(), "the X server is still running");
    assert!(run(Command::new("xdpyinfo").args(["-display", &x.display])).status.success(), "and answers clients");
    let seen = xev.seen();
    for name in ["Terminate_Server", "XF86Switch_VT_1", "XF86Ungrab", "XF86ClearGrab", "MouseKeys_Enable"] {
        assert!(!seen.contains(name), "{name} reached the X server");
    }
    assert!(z_after.is_some_and(|t| t < Duration::from_secs(10)), "the key after the flood arrived late or never");
    let typed = seen.matches("keysym 0x78, x").count() / 2;
    assert!(typed < 100_000, "{typed} of the 2,000,000 flooded characters were typed");
    let m = text(&run(Command::new("curl").args(["-s", &format!("http://{}/metrics", agent.metrics)]))).0;
    assert!(m.contains(r#"vdi_agent_input_dropped_total{reason="keysym"} 10"#), "{m}");
    assert!(m.contains(r#"vdi_agent_input_dropped_total{reason="rate"}"#), "{m}");
}

/// The agent's peak memory (VmHWM) in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A huge copy in the desktop (64 MiB, which xclip hands over in INCR pieces) is refused by its
/// announced size without being read: the agent's peak memory does not grow by it, and the next
/// ordinary copy still goes out. (Before, the whole selection was read first.)
#[test]
fn a_huge_copy_in_the_desktop_is_refused_without_being_read() {
    let x = XServer::xvfb("640x480");
    let agent = Agent::start(&x.display, "x264enc", &[("VDI_CLIPBOARD_MAX_BYTES", "65536")]);
    let pid = agent.proc.child.id();
    let metric = |direction: &str| {
        let m = text(&run(Command::new("curl").args(["-s", &format!("http://{}/metrics", agent.metrics)]))).0;
        let needle = format!(r#"vdi_agent_clipboard_transfers_total{{direction="{direction}"}} "#);
        m.lines().find_map(|l| l.strip_prefix(needle.as_str())).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0)
    };
    let copy = |text: &[u8]| {
        use std::io::Write;
        let mut xclip = Command::new("xclip")
            .args(["-selection", "clipboard", "-i"])
            .env("DISPLAY", &x.display)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("xclip");
        xclip.stdin.take().expect("stdin").write_all(text).expect("write");
        // xclip forks to serve the selection and exits; the server child stays.
        xclip.wait().expect("xclip");
    };
    let wait_for = |direction: &str, want: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while metric(direction) < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        metric(direction)
    };
    let before = peak_kib(pid);
    copy(&vec![b'x'; 64 << 20]);
    assert_eq!(wait_for("refused", 1), 1, "{}", agent.log());
    let grown = peak_kib(pid).saturating_sub(before);
    assert!(grown < 16 << 10, "the agent's peak memory grew by {grown} KiB for a refused 64 MiB copy");
    copy(b"a small copy after the refusal");
    assert_eq!(wait_for("out", 1), 1, "the next copy goes out: {}", agent.log());
    assert_eq!(metric("refused"), 1, "only the huge copy was refused");
}

/// Firefox as a Debian user has it offline (ESR, no OpenH264 plugin: VP8, VP9 and AV1 only),
/// driven headless over WebDriver BiDi: it gets VP8 from an agent that prefers H.264, and the
/// picture plays at the display's size, a click and a key reach the X server, the clipboard box
/// pastes into the desktop, the desktop's sound plays, and a reload reconnects.
#[test]
fn firefox_without_h264_plays_the_desktop_in_vp8_with_every_feature() {
    let x = XServer::xvfb("1024x768");
    let pulse = Pulse::start();
    let xev = XEvents::watch(&x.display, &["-event", "keyboard", "-event", "button"]);
    let agent = Agent::start(&x.display, "x264enc", &[("PULSE_SERVER", &pulse.server)]);
    let mut opts = agent.drive_opts(&x.display);
    opts["click"] = serde_json::json!([300, 200]);
    opts["type"] = serde_json::json!("a");
    opts["paste"] = serde_json::json!("pasted from Firefox");
    opts["pulse"] = serde_json::json!(pulse.server);
    opts["reconnect"] = serde_json::json!(true);
    let out = run(Command::new(node()).arg(vdi_e2e::repo().join("tests/browser/firefox.mjs")).arg(opts.to_string()));
    let out = format!("{}{}", text(&out).0, text(&out).1);
    eprintln!("{out}");
    assert!(!steps(&out, "again").is_empty(), "Firefox played, then again after a reload: {out}\n{}", agent.log());
    let client = &steps(&out, "client")[0];
    assert_eq!(
        (client["codec"].as_str(), client["frozen"].as_bool()),
        (Some("VP8"), Some(true)),
        "the client's hook: {out}"
    );
    let decodes = steps(&out, "codecs")[0]["decodes"].to_string();
    assert!(!decodes.contains("H264"), "this Firefox decodes no H.264 (else the test proves nothing): {decodes}");
    assert!(out.contains(r#""step":"first","playing":true,"width":1024,"height":768"#), "the display's size: {out}");
    assert!(out.contains(r#"encoder   vp8enc (VP8)"#), "the overlay names VP8: {out}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(xev.seen().contains("ButtonPress") && xev.seen().contains("keysym 0x61, a")) {
        assert!(Instant::now() < deadline, "the click and the key did not reach the X server: {}", xev.seen());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(x_clipboard(&x.display), "pasted from Firefox");
    let audio = &steps(&out, "audio")[0];
    let (quiet, loud) = (audio["quiet"].as_f64().unwrap_or(1.0), audio["loud"].as_f64().unwrap_or(0.0));
    assert!(loud > 0.01 && loud > 10.0 * quiet, "the tone is heard in Firefox: {out}");
    let m = text(&run(Command::new("curl").args(["-s", &format!("http://{}/metrics", agent.metrics)]))).0;
    assert!(m.contains(r#"vdi_agent_viewer_codecs_total{codec="VP8",encoder="vp8enc"} 2"#), "{m}");
}
