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
    let x = XServer::xorg_dummy();
    let agent = Agent::start(&x.display, "x264enc", &[("SELKIES_ENABLE_RESIZE", "true")]);
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
