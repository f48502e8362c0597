"use strict";
// The vdi web client (served as a file: the page's CSP allows no inline script).
const PAGE_TOKEN = document.querySelector('meta[name="vdi-token"]').content;
// Signalling protocol v1 over /ws and the data channel protocol v1 over the channel "input"
// (both in the README): the agent offers, we answer, ICE trickles both ways; input, size,
// clipboard and cursor travel on the ordered data channel as small JSON messages.
const V = 1;
const video = document.getElementById("video");
const kbd = document.getElementById("kbd");
const statusEl = document.getElementById("status");
const statsEl = document.getElementById("stats");
const clipEl = document.getElementById("clip");
const clipText = document.getElementById("clip-text");
let pc = null, ws = null, input = null, encoder = "?", retry = 0, hello = null, target = null;
const pressedKeys = new Set();
const cursors = new Map();
let clipIn = [];
let noticeTimer = 0;

function status(text) { statusEl.textContent = text; statusEl.style.display = text ? "block" : "none"; }
function notice(text) { status(text); clearTimeout(noticeTimer); noticeTimer = setTimeout(() => { if (statusEl.textContent === text) status(""); }, 6000); }
function send(obj) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(Object.assign({ v: V }, obj))); }
function sendInput(obj) { if (input && input.readyState === "open") input.send(JSON.stringify(obj)); }

// One connection = one WebSocket and the peer connection it negotiates. A connection that stops
// delivering frames (network outage, ICE failure) is dropped and a fresh one made, without a page
// reload: handlers of an older connection do nothing once a newer one exists.
let gen = 0, lastFrameAt = 0, downSince = 0, playing = false;
const OPEN_TIMEOUT_MS = 800; // a WebSocket not open by then is retried at once (its SYN was lost)
const STALL_MS = 2000; // no new frame for this long while visible: the connection is dead
const FIRST_FRAME_MS = 10000; // a new connection's first frame may take longer (TURN, a busy agent)
function decodableCodecs() {
  const caps = window.RTCRtpReceiver && RTCRtpReceiver.getCapabilities ? RTCRtpReceiver.getCapabilities("video") : null;
  const names = caps ? caps.codecs.map((c) => c.mimeType.split("/")[1].toUpperCase()) : ["H264"];
  return [...new Set(names)].filter((n) => !["RTX", "RED", "ULPFEC", "FLEXFEC-03"].includes(n));
}
function connect() {
  const my = ++gen;
  const params = new URLSearchParams(location.search);
  // The token binds the socket to this page as the agent served it: a page on another site
  // cannot read it, so it cannot open the desktop with the browser's cached credentials.
  const sock = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws?token=" +
    encodeURIComponent(PAGE_TOKEN));
  ws = sock;
  let timedOut = false;
  const openTimer = setTimeout(() => { if (sock.readyState === 0) { timedOut = true; sock.close(); } }, OPEN_TIMEOUT_MS);
  // First, what this browser decodes: the agent picks the codec before it offers (Firefox without
  // its OpenH264 plugin has no H.264).
  sock.onopen = () => { clearTimeout(openTimer); sock.send(JSON.stringify({ v: 1, type: "hello", codecs: decodableCodecs() })); };
  sock.onmessage = async (e) => {
    if (my !== gen) return;
    const m = JSON.parse(e.data);
    if (m.type === "config") {
      encoder = `${m.encoder}${m.codec ? ` (${m.codec})` : ""}`;
      lastFrameAt = performance.now(); downSince = 0; playing = false;
      pc = new RTCPeerConnection({ iceServers: m.iceServers, iceTransportPolicy: params.get("relay") ? "relay" : "all" });
      pc.ontrack = (ev) => {
        if (!video.srcObject) video.srcObject = ev.streams[0] || new MediaStream();
        if (!video.srcObject.getTracks().includes(ev.track)) video.srcObject.addTrack(ev.track);
        video.play().catch(() => {});
      };
      pc.onicecandidate = (ev) => { if (ev.candidate) send({ type: "ice", candidate: ev.candidate.candidate, sdpMLineIndex: ev.candidate.sdpMLineIndex || 0 }); };
      pc.ondatachannel = (ev) => { if (ev.channel.label === "input") openChannel(ev.channel); };
      pc.onconnectionstatechange = () => { if (pc && pc.connectionState === "connected") { status(""); retry = 0; } };
    } else if (m.type === "offer") {
      await pc.setRemoteDescription({ type: "offer", sdp: m.sdp });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      for (const r of pc.getReceivers()) { try { r.playoutDelayHint = 0; r.jitterBufferTarget = 0; } catch (_) {} }
      send({ type: "answer", sdp: answer.sdp });
    } else if (m.type === "ice") {
      try { await pc.addIceCandidate({ candidate: m.candidate, sdpMLineIndex: m.sdpMLineIndex }); } catch (err) { console.warn(err); }
    } else if (m.type === "bye") {
      status(m.reason);
      retry = -1;
    }
  };
  sock.onclose = () => {
    clearTimeout(openTimer);
    if (my !== gen) return;
    dropConnection();
    if (retry < 0) return; // told to stop (another viewer took over)
    status("reconnecting…");
    // A timed-out open means the network is down, not the agent busy: try again at once.
    setTimeout(connect, timedOut ? 0 : Math.min(1000, 250 * ++retry));
  };
}
function dropConnection() {
  if (pc) { pc.close(); pc = null; }
  video.srcObject = null;
  releaseAll();
  input = null;
}
// Watchdog: frames stopped (or ICE says the path is gone) while the page is visible: start over
// on a fresh connection. The agent ends the old session when the new one takes over.
function frameSeen() { lastFrameAt = performance.now(); playing = true; if ("requestVideoFrameCallback" in video) video.requestVideoFrameCallback(frameSeen); }
if ("requestVideoFrameCallback" in video) video.requestVideoFrameCallback(frameSeen);
else video.addEventListener("timeupdate", () => { lastFrameAt = performance.now(); playing = true; });
setInterval(() => {
  if (!pc || document.hidden || retry < 0) return;
  const now = performance.now(), ice = pc.connectionState;
  downSince = ice === "disconnected" || ice === "failed" ? downSince || now : 0;
  if (now - lastFrameAt > (playing ? STALL_MS : FIRST_FRAME_MS) || (downSince && now - downSince > 1000)) {
    console.info(`connection lost (ice ${ice}, last frame ${Math.round(now - lastFrameAt)} ms ago): reconnecting`);
    status("reconnecting…");
    const old = ws;
    gen++;
    dropConnection();
    if (old) old.close();
    retry = 0;
    connect();
  }
}, 250);

// Capture pacing (message "phase"; the agent's pacing.rs says why): each frame waits between its
// arrival and the next display refresh, and that wait is a sawtooth of the capture's phase. Sweep
// the phase in eighths of a frame, keep the eighth with the shortest mean wait among those that
// lose almost no frames (when any eighth does), then follow drift: frames missing their
// refresh (a wait a refresh longer, or a frame replaced by the next before it was shown:
// `presentedFrames` jumping by two) move it a sixteenth earlier, a growing wait a sixteenth
// later. With frames drawn on arrival (no playout delay) a lock at the very edge lost a tenth of
// the frames at 1080p with motion.
// `?pacing=0` turns it off.
const PACE_STEPS = 8, PACE_WINDOW = 24, PACE_SKIP = 5;
const PACE_MISSED = 0.02;
const pacing = { on: new URLSearchParams(location.search).get("pacing") !== "0", state: "off", waits: [], skip: 0,
  sweep: [], best: Infinity, hold: 0, moved: 0, refresh: 1000 / 60, missed: 0, missLimit: Infinity, presented: -1 };
(function measureRefresh() {
  const t = [];
  const tick = (now) => { t.push(now); if (t.length < 31) requestAnimationFrame(tick); else {
    const d = t.slice(1).map((v, i) => v - t[i]).sort((a, b) => a - b);
    if (d[15] > 2 && d[15] < 100) pacing.refresh = d[15];
  } };
  requestAnimationFrame(tick);
})();
function pacingReset() { Object.assign(pacing, { state: pacing.on ? "sweep" : "off", waits: [], skip: PACE_SKIP, sweep: [], best: Infinity, hold: 0, moved: 0, missed: 0, missLimit: Infinity }); }
function pace(f) {
  if (f > 0) sendInput({ t: "phase", f });
  pacing.moved = (pacing.moved + f) % 1; pacing.skip = PACE_SKIP; pacing.waits = [];
}
function pacingWindow(w) {
  w.sort((a, b) => a - b);
  const mean = w.reduce((a, b) => a + b, 0) / w.length, median = w[w.length >> 1];
  // A frame that missed its refresh waits a whole one longer than the typical frame; early arrivals
  // only wait as much longer as they were early.
  const late = w.filter((x) => x > median + pacing.refresh / 2).length / w.length;
  const missed = pacing.missed / (w.length + pacing.missed);
  pacing.missed = 0;
  if (pacing.state === "sweep") {
    pacing.sweep.push({ mean, missed });
    if (pacing.sweep.length < PACE_STEPS) return pace(1 / PACE_STEPS);
    // A browser that smooths playback (no zero playout delay) skips about a third of the frames
    // whatever the phase, and in 24 frames that count is noise: frames never shown only count
    // when some phase loses almost none.
    const fewest = Math.min(...pacing.sweep.map((s) => s.missed));
    pacing.missLimit = fewest <= PACE_MISSED ? PACE_MISSED : Infinity;
    const score = (s) => s.missed <= pacing.missLimit ? s.mean : Infinity;
    const scores = pacing.sweep.map(score);
    const i = scores.indexOf(Math.min(...scores));
    pacing.state = "locked"; pacing.hold = 2;
    return pace(((i + 1) % PACE_STEPS) / PACE_STEPS); // the sweep ended at 7/8: go to i/8
  }
  if (pacing.state !== "locked") return;
  if (pacing.hold > 0) { pacing.hold--; pacing.best = Math.min(pacing.best, median); return; }
  // When the path's own jitter spans a refresh the phase cannot help, and each move costs the
  // agent an extra capture: a congested link got bursts on top of its queue. Hold still.
  if (w[Math.floor(w.length * 0.9)] - w[Math.floor(w.length / 10)] > pacing.refresh) return;
  if (late > 0.1 || missed > pacing.missLimit) { pacing.best = Infinity; pacing.hold = 4; return pace(1 - 1 / (2 * PACE_STEPS)); }
  if (median > pacing.best + pacing.refresh / 8) { pacing.best = Infinity; pacing.hold = 4; return pace(1 / (2 * PACE_STEPS)); }
  pacing.best = Math.min(pacing.best, median);
}
function pacingFrame(_, md) {
  // Frames handed to the compositor since the last callback: more than one means one was never shown.
  const handed = pacing.presented < 0 ? 1 : md.presentedFrames - pacing.presented;
  pacing.presented = md.presentedFrames;
  if (pacing.state !== "off" && md.receiveTime > 0 && md.expectedDisplayTime > 0 && input && input.readyState === "open") {
    if (pacing.skip > 0) pacing.skip--;
    else {
      pacing.missed += Math.max(0, handed - 1);
      if (pacing.waits.push(md.expectedDisplayTime - md.receiveTime) >= PACE_WINDOW) pacingWindow(pacing.waits.splice(0));
    }
  }
  video.requestVideoFrameCallback(pacingFrame);
}
if ("requestVideoFrameCallback" in video) video.requestVideoFrameCallback(pacingFrame);

// The data channel: what the desktop says back.
function openChannel(ch) {
  input = ch;
  hello = null; lastSize = ""; clipIn = [];
  ch.onclose = () => { pressedKeys.clear(); keyOf.clear(); };
  ch.onopen = () => { sendSize(); pacingReset(); };
  ch.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.t === "hello") { hello = m; sendSize(); }
    else if (m.t === "cursor") setCursor(m);
    else if (m.t === "clip") { clipIn.push(m.s); if (!m.more) { receivedClipboard(clipIn.join("")); clipIn = []; } }
    else if (m.t === "size") { if (m.note) console.info(m.note); }
    else if (m.t === "notice") notice(m.msg);
    else if (m.t === "stats") target = m;
  };
}

// The cursor is the desktop's, drawn here: each image arrives once, then only its serial.
function setCursor(m) {
  if (m.png) cursors.set(m.serial, `url(data:image/png;base64,${m.png}) ${m.x} ${m.y}, default`);
  const css = cursors.get(m.serial);
  if (css) video.style.cursor = css;
}

// Resize: the video area in device pixels, when the channel opens and when the window changes.
let sizeTimer = 0, lastSize = "";
function sendSize() {
  if (!hello || !hello.resize) return;
  const r = video.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
  const w = Math.round(r.width * dpr), h = Math.round(r.height * dpr), key = `${w}x${h}`;
  if (key === lastSize && input && input.readyState === "open") return;
  lastSize = key;
  performance.mark("vdi-size-sent"); // User Timing: benchmarks read when a size was asked for
  sendInput({ t: "size", w, h });
}
window.addEventListener("resize", () => { clearTimeout(sizeTimer); sizeTimer = setTimeout(() => { lastSize = ""; sendSize(); }, 250); });

// Pointer: page coordinates scaled to the remote screen (the video keeps its aspect ratio).
function remotePoint(e) {
  const r = video.getBoundingClientRect(), vw = video.videoWidth, vh = video.videoHeight;
  if (!vw || !vh) return null;
  const scale = Math.min(r.width / vw, r.height / vh);
  const ox = r.left + (r.width - vw * scale) / 2, oy = r.top + (r.height - vh * scale) / 2;
  return { x: Math.round((e.clientX - ox) / scale), y: Math.round((e.clientY - oy) / scale) };
}
const locked = () => document.pointerLockElement === video;
const BUTTONS = { 0: 1, 1: 2, 2: 3, 3: 8, 4: 9 };
video.addEventListener("mousemove", (e) => {
  if (locked()) { if (e.movementX || e.movementY) sendInput({ t: "rm", dx: e.movementX, dy: e.movementY }); return; }
  const p = remotePoint(e); if (p) sendInput({ t: "m", x: p.x, y: p.y });
});
video.addEventListener("mousedown", (e) => {
  kbd.focus({ preventScroll: true }); unmuteOnce();
  if (!locked()) { const p = remotePoint(e); if (p) sendInput({ t: "m", x: p.x, y: p.y }); }
  sendInput({ t: "b", b: BUTTONS[e.button] || 1, d: true }); e.preventDefault();
});
// Released anywhere on the page (a drag may end over the toolbar): the desktop sees the release.
window.addEventListener("mouseup", (e) => { sendInput({ t: "b", b: BUTTONS[e.button] || 1, d: false }); if (e.target === video) e.preventDefault(); });
video.addEventListener("contextmenu", (e) => e.preventDefault());
video.addEventListener("wheel", (e) => { sendInput({ t: "w", dx: Math.sign(e.deltaX), dy: Math.sign(e.deltaY) }); e.preventDefault(); }, { passive: false });
function togglePointerLock() { if (locked()) document.exitPointerLock(); else video.requestPointerLock(); }
document.getElementById("lock-btn").onclick = togglePointerLock;

// Keys: the keysym the browser resolved with the user's layout, plus the physical code. Repeats
// are the browser's (a press while pressed). Dead keys and IME compose in the hidden text box
// and arrive as text.
const NAMED = { Backspace: 0xff08, Tab: 0xff09, Enter: 0xff0d, Escape: 0xff1b, Delete: 0xffff, Home: 0xff50, End: 0xff57,
  PageUp: 0xff55, PageDown: 0xff56, ArrowLeft: 0xff51, ArrowUp: 0xff52, ArrowRight: 0xff53, ArrowDown: 0xff54, Insert: 0xff63,
  ShiftLeft: 0xffe1, ShiftRight: 0xffe2, ControlLeft: 0xffe3, ControlRight: 0xffe4, AltLeft: 0xffe9, AltRight: 0xfe03,
  MetaLeft: 0xffeb, MetaRight: 0xffec, CapsLock: 0xffe5, ContextMenu: 0xff67, NumLock: 0xff7f, ScrollLock: 0xff14,
  Pause: 0xff13, PrintScreen: 0xff61 };
function keysym(e) {
  if (NAMED[e.code] && (e.key.length !== 1)) return NAMED[e.code];
  if (NAMED[e.key]) return NAMED[e.key];
  if (/^F\d{1,2}$/.test(e.key)) return 0xffbd + parseInt(e.key.slice(1), 10);
  if (e.key.length === 1 || [...e.key].length === 1) { const c = e.key.codePointAt(0); return (c >= 0x20 && c < 0x7f) || (c >= 0xa0 && c < 0x100) ? c : 0x01000000 + c; }
  return null;
}
let pendingPaste = null;
const keyOf = new Map(); // physical key -> keysym sent at its press, so its release matches
function key(e, down) {
  if (e.isComposing || e.key === "Dead" || e.key === "Process" || e.key === "Unidentified") return;
  if (down && e.ctrlKey && e.altKey && e.code === "KeyL") { togglePointerLock(); e.preventDefault(); return; }
  let k = keysym(e);
  if (!down && keyOf.has(e.code)) { k = keyOf.get(e.code); keyOf.delete(e.code); }
  if (k === null) return;
  if (down) keyOf.set(e.code, k);
  // Ctrl+V / Shift+Insert: let the browser paste first, so the desktop pastes the new text.
  if (down && ((e.ctrlKey && e.key.toLowerCase() === "v") || (e.shiftKey && e.code === "Insert")) && hello && hello.clipboard !== "none" && hello.clipboard !== "out") {
    pressedKeys.add(k);
    pendingPaste = { k, c: e.code };
    setTimeout(flushPasteKey, 150);
    return;
  }
  e.preventDefault();
  if (down) pressedKeys.add(k); else pressedKeys.delete(k);
  sendInput({ t: "k", k, d: down, c: e.code });
}
function flushPasteKey() { if (pendingPaste) { sendInput({ t: "k", k: pendingPaste.k, d: true, c: pendingPaste.c }); pendingPaste = null; } }
kbd.addEventListener("keydown", (e) => key(e, true));
kbd.addEventListener("keyup", (e) => { if (pendingPaste && keysym(e) === pendingPaste.k) flushPasteKey(); key(e, false); });
kbd.addEventListener("compositionend", (e) => { if (e.data) sendInput({ t: "text", s: e.data }); kbd.value = ""; });
kbd.addEventListener("input", (e) => { if (!e.isComposing && e.inputType === "insertText" && e.data) sendInput({ t: "text", s: e.data }); if (!e.isComposing) kbd.value = ""; });
video.addEventListener("click", () => kbd.focus({ preventScroll: true }));
function releaseAll() { pressedKeys.clear(); keyOf.clear(); pendingPaste = null; sendInput({ t: "ra" }); }
window.addEventListener("blur", releaseAll);
document.addEventListener("visibilitychange", () => { if (document.hidden) releaseAll(); });
window.addEventListener("pagehide", releaseAll);

// Clipboard: the desktop's copies go to the browser's clipboard where the page may write it,
// and always to the clipboard box; pastes here go to the desktop, within the size limit.
async function receivedClipboard(text) {
  clipText.value = text;
  try { await navigator.clipboard.writeText(text); } catch (_) { clipEl.style.display = "block"; }
}
function sendClipboard(text) {
  if (!hello || !input || hello.clipboard === "none" || hello.clipboard === "out") { notice("pasting into this desktop is turned off"); return false; }
  const size = new TextEncoder().encode(text).length;
  if (size > hello.clipMax) { notice(`the pasted text was not sent: it is ${(size / 1048576).toFixed(1)} MiB and the clipboard limit is ${(hello.clipMax / 1048576).toFixed(1)} MiB`); return false; }
  const chars = Array.from(text), step = 2048;
  for (let i = 0; i < chars.length || i === 0; i += step) {
    sendInput({ t: "clip", s: chars.slice(i, i + step).join(""), more: i + step < chars.length });
  }
  return true;
}
document.addEventListener("paste", (e) => {
  if (e.target === clipText) return;
  const text = e.clipboardData ? e.clipboardData.getData("text/plain") : "";
  e.preventDefault();
  // A refused paste must not paste the desktop's old clipboard instead.
  if (text && !sendClipboard(text)) { if (pendingPaste) pressedKeys.delete(pendingPaste.k); pendingPaste = null; return; }
  flushPasteKey();
});
document.getElementById("clip-send").onclick = () => { if (sendClipboard(clipText.value)) notice("sent to the desktop's clipboard"); kbd.focus(); };
document.getElementById("clip-btn").onclick = () => { clipEl.style.display = clipEl.style.display === "block" ? "none" : "block"; };

// Sound: the page starts muted (browsers allow muted autoplay only); the first click or key in
// the desktop turns the sound on unless the person muted it with the button.
const muteBtn = document.getElementById("mute-btn");
let userMuted = false;
function setMuted(m) { video.muted = m; muteBtn.textContent = m ? "sound off" : "sound on"; if (!m) video.play().catch(() => {}); }
function unmuteOnce() { if (!userMuted && video.muted && hello && hello.audio) setMuted(false); }
kbd.addEventListener("keydown", unmuteOnce);
muteBtn.onclick = () => { userMuted = !video.muted; setMuted(!video.muted); };

// Fullscreen and the statistics overlay.
document.getElementById("fs-btn").onclick = () => { document.documentElement.requestFullscreen().catch(() => {}); kbd.focus(); };
document.getElementById("stats-btn").onclick = () => { statsEl.style.display = statsEl.style.display === "block" ? "none" : "block"; };
window.addEventListener("keydown", (e) => { if (e.ctrlKey && e.altKey && e.code === "KeyS") document.getElementById("stats-btn").click(); });
let last = null;
setInterval(async () => {
  if (!pc || statsEl.style.display !== "block") return;
  const stats = await pc.getStats();
  let inbound = null, pair = null, audio = null;
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") inbound = s;
    if (s.type === "inbound-rtp" && s.kind === "audio") audio = s;
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
  });
  const local = pair ? stats.get(pair.localCandidateId) : null;
  const route = local ? `${local.candidateType} ${local.protocol}` : "-";
  if (!inbound) return;
  const now = inbound.timestamp;
  const kbps = last ? (8 * (inbound.bytesReceived - last.bytes) / (now - last.t)).toFixed(0) : "-";
  const fps = last ? (1000 * (inbound.framesDecoded - last.frames) / (now - last.t)).toFixed(0) : "-";
  last = { t: now, bytes: inbound.bytesReceived, frames: inbound.framesDecoded };
  const rtt = pair && pair.currentRoundTripTime !== undefined ? (pair.currentRoundTripTime * 1000).toFixed(1) : "-";
  const jb = inbound.jitterBufferEmittedCount ? (1000 * inbound.jitterBufferDelay / inbound.jitterBufferEmittedCount).toFixed(1) : "0";
  const decode = inbound.framesDecoded ? (1000 * inbound.totalDecodeTime / inbound.framesDecoded).toFixed(1) : "0";
  const est = rtt === "-" ? "-" : (parseFloat(rtt) / 2 + parseFloat(jb) + parseFloat(decode) + 1000 / Math.max(1, parseFloat(fps) || 60)).toFixed(0);
  const tgt = target ? `${target.target} kbit/s (path ≈ ${target.estimate} kbit/s, loss ${(100 * target.loss).toFixed(1)} %, picture ${target.quality})` : "-";
  const sound = audio ? `opus ${video.muted ? "muted" : "on"}` : "none";
  statsEl.textContent = `encoder   ${encoder}\nsize      ${video.videoWidth}x${video.videoHeight}\nfps       ${fps}\nbitrate   ${kbps} kbit/s\ntarget    ${tgt}\nrtt       ${rtt} ms\njitterbuf ${jb} ms\ndecode    ${decode} ms\nlatency ≈ ${est} ms\nroute     ${route}\nsound     ${sound}\npacing    ${pacing.state}${pacing.state === "off" ? "" : ` (capture +${(pacing.moved * 100).toFixed(0)} % of a frame)`}`;
}, 1000);

connect();
