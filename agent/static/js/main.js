// The vdi web client: wires the page to the connection, the desktop's data channel, input,
// clipboard, sound, pacing and the statistics overlay. Each concern's logic lives in its own
// module (unit-tested under Node); this one only touches the page.

import * as clipboard from "./clipboard.js";
import { Connection } from "./connection.js";
import { Pressed, composing, keysym, pasteChord, shortcut } from "./keys.js";
import { render, readStats } from "./overlay.js";
import { Pacer, refreshFrom } from "./pacing.js";
import { remotePoint, wheelSteps, xButton } from "./pointer.js";

const $ = (id) => document.getElementById(id);
const video = $("video"), kbd = $("kbd"), statusEl = $("status"), statsEl = $("stats"), clipEl = $("clip"), clipText = $("clip-text");
const params = new URLSearchParams(location.search);

let input = null; // the data channel "input" of the current connection
let hello = null; // the agent's hello on that channel: what this desktop allows
let target = null; // the agent's last word on the path (message "stats")
let noticeTimer = 0;

function status(text) {
  statusEl.textContent = text;
  statusEl.style.display = text ? "block" : "none";
}
function notice(text) {
  status(text);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    if (statusEl.textContent === text) status("");
  }, 6000);
}
function sendInput(obj) {
  if (input && input.readyState === "open") input.send(JSON.stringify(obj));
}
const live = () => !!input && input.readyState === "open";

const pacer = new Pacer((f) => sendInput({ t: "phase", f }), { on: params.get("pacing") !== "0" });
const pressed = new Pressed();
let incoming = new clipboard.Incoming();
const cursors = new Map();

const connection = new Connection({
  video,
  token: document.querySelector('meta[name="vdi-token"]').content,
  relay: !!params.get("relay"),
  on: {
    status,
    channel: openChannel,
    dropped: () => {
      releaseAll();
      input = null;
    },
  },
});

// Frames: the watchdog's heartbeat and pacing's measurements.
function frameSeen(_, md) {
  connection.frameSeen();
  if (md) pacer.frame(md, live());
  video.requestVideoFrameCallback(frameSeen);
}
if ("requestVideoFrameCallback" in video) video.requestVideoFrameCallback(frameSeen);
else video.addEventListener("timeupdate", () => connection.frameSeen());
(function measureRefresh(t = []) {
  requestAnimationFrame(function tick(now) {
    t.push(now);
    if (t.length < 31) return requestAnimationFrame(tick);
    pacer.refresh = refreshFrom(t) || pacer.refresh;
  });
})();

// The data channel: what the desktop says back.
function openChannel(ch) {
  input = ch;
  hello = null;
  lastSize = "";
  incoming = new clipboard.Incoming();
  ch.onclose = () => pressed.clear();
  ch.onopen = () => {
    sendSize();
    pacer.reset();
  };
  ch.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.t === "hello") {
      hello = m;
      sendSize();
    } else if (m.t === "cursor") setCursor(m);
    else if (m.t === "clip") {
      const text = incoming.push(m);
      if (text !== null) receivedClipboard(text);
    } else if (m.t === "size") {
      if (m.note) console.info(m.note);
    } else if (m.t === "notice") notice(m.msg);
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
  if (key === lastSize && live()) return;
  lastSize = key;
  performance.mark("vdi-size-sent"); // User Timing: benchmarks read when a size was asked for
  sendInput({ t: "size", w, h });
}
window.addEventListener("resize", () => {
  clearTimeout(sizeTimer);
  sizeTimer = setTimeout(() => {
    lastSize = "";
    sendSize();
  }, 250);
});

// Pointer.
const locked = () => document.pointerLockElement === video;
const pointAt = (e) => remotePoint(video.getBoundingClientRect(), video.videoWidth, video.videoHeight, e.clientX, e.clientY);
video.addEventListener("mousemove", (e) => {
  if (locked()) {
    if (e.movementX || e.movementY) sendInput({ t: "rm", dx: e.movementX, dy: e.movementY });
    return;
  }
  const p = pointAt(e);
  if (p) sendInput({ t: "m", x: p.x, y: p.y });
});
video.addEventListener("mousedown", (e) => {
  kbd.focus({ preventScroll: true });
  unmuteOnce();
  if (!locked()) {
    const p = pointAt(e);
    if (p) sendInput({ t: "m", x: p.x, y: p.y });
  }
  sendInput({ t: "b", b: xButton(e.button), d: true });
  e.preventDefault();
});
// Released anywhere on the page (a drag may end over the toolbar): the desktop sees the release.
window.addEventListener("mouseup", (e) => {
  sendInput({ t: "b", b: xButton(e.button), d: false });
  if (e.target === video) e.preventDefault();
});
video.addEventListener("contextmenu", (e) => e.preventDefault());
video.addEventListener("wheel", (e) => {
  sendInput({ t: "w", ...wheelSteps(e) });
  e.preventDefault();
}, { passive: false });
function togglePointerLock() {
  if (locked()) document.exitPointerLock();
  else video.requestPointerLock();
}
$("lock-btn").onclick = togglePointerLock;

// Keys.
let pendingPaste = null;
function key(e, down) {
  if (composing(e)) return;
  if (down && shortcut(e) === "pointer-lock") {
    togglePointerLock();
    e.preventDefault();
    return;
  }
  const k = pressed.resolve(e, down);
  if (k === null) return;
  // Ctrl+V / Shift+Insert: let the browser paste first, so the desktop pastes the new text.
  if (down && pasteChord(e) && clipboard.refusal("", hello) === null) {
    pendingPaste = { k, c: e.code };
    setTimeout(flushPasteKey, 150);
    return;
  }
  e.preventDefault();
  sendInput({ t: "k", k, d: down, c: e.code });
}
function flushPasteKey() {
  if (pendingPaste) {
    sendInput({ t: "k", k: pendingPaste.k, d: true, c: pendingPaste.c });
    pendingPaste = null;
  }
}
kbd.addEventListener("keydown", (e) => key(e, true));
kbd.addEventListener("keyup", (e) => {
  if (pendingPaste && keysym(e) === pendingPaste.k) flushPasteKey();
  key(e, false);
});
kbd.addEventListener("compositionend", (e) => {
  if (e.data) sendInput({ t: "text", s: e.data });
  kbd.value = "";
});
kbd.addEventListener("input", (e) => {
  if (!e.isComposing && e.inputType === "insertText" && e.data) sendInput({ t: "text", s: e.data });
  if (!e.isComposing) kbd.value = "";
});
video.addEventListener("click", () => kbd.focus({ preventScroll: true }));
function releaseAll() {
  pressed.clear();
  pendingPaste = null;
  sendInput({ t: "ra" });
}
window.addEventListener("blur", releaseAll);
document.addEventListener("visibilitychange", () => {
  if (document.hidden) releaseAll();
});
window.addEventListener("pagehide", releaseAll);

// Clipboard: the desktop's copies go to the browser's clipboard where the page may write it,
// and always to the clipboard box; pastes here go to the desktop, within the size limit.
async function receivedClipboard(text) {
  clipText.value = text;
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    clipEl.style.display = "block";
  }
}
function sendClipboard(text) {
  const why = input ? clipboard.refusal(text, hello) : "pasting into this desktop is turned off";
  if (why) {
    notice(why);
    return false;
  }
  for (const piece of clipboard.pieces(text)) sendInput(piece);
  return true;
}
document.addEventListener("paste", (e) => {
  if (e.target === clipText) return;
  const text = e.clipboardData ? e.clipboardData.getData("text/plain") : "";
  e.preventDefault();
  // A refused paste must not paste the desktop's old clipboard instead.
  if (text && !sendClipboard(text)) {
    pendingPaste = null;
    return;
  }
  flushPasteKey();
});
$("clip-send").onclick = () => {
  if (sendClipboard(clipText.value)) notice("sent to the desktop's clipboard");
  kbd.focus();
};
$("clip-btn").onclick = () => {
  clipEl.style.display = clipEl.style.display === "block" ? "none" : "block";
};

// Sound: the page starts muted (browsers allow muted autoplay only); the first click or key in
// the desktop turns the sound on unless the person muted it with the button.
const muteBtn = $("mute-btn");
let userMuted = false;
function setMuted(m) {
  video.muted = m;
  muteBtn.textContent = m ? "sound off" : "sound on";
  if (!m) video.play().catch(() => {});
}
function unmuteOnce() {
  if (!userMuted && video.muted && hello && hello.audio) setMuted(false);
}
kbd.addEventListener("keydown", unmuteOnce);
muteBtn.onclick = () => {
  userMuted = !video.muted;
  setMuted(!video.muted);
};

// Fullscreen and the statistics overlay.
$("fs-btn").onclick = () => {
  document.documentElement.requestFullscreen().catch(() => {});
  kbd.focus();
};
$("stats-btn").onclick = () => {
  statsEl.style.display = statsEl.style.display === "block" ? "none" : "block";
};
window.addEventListener("keydown", (e) => {
  if (shortcut(e) === "stats") $("stats-btn").click();
});
let lastReading = null;
setInterval(async () => {
  const pc = connection.pc;
  if (!pc || statsEl.style.display !== "block") return;
  const read = readStats(await pc.getStats(), lastReading);
  if (!read) return;
  lastReading = read.last;
  statsEl.textContent = render(read.values, {
    encoder: connection.encoder,
    width: video.videoWidth,
    height: video.videoHeight,
    target,
    muted: video.muted,
    pacing: pacer.describe(),
  });
}, 1000);

// A read-only view for tests and embedders: what the client negotiated and how it paces, never
// a handle to change it.
Object.defineProperty(window, "vdiClient", {
  value: Object.freeze({
    state: () => Object.freeze({
      encoder: connection.encoder,
      codec: connection.codec,
      connected: !!connection.pc && connection.pc.connectionState === "connected",
      channel: live(),
      desktop: hello ? Object.freeze({ ...hello }) : null,
      pacing: pacer.state,
      // The agent's last word on the path (target, estimate and capacity in kbit/s, loss, rtt,
      // picture).
      path: target ? Object.freeze({ ...target }) : null,
      // Connections made since the page loaded (a reconnect makes a new one).
      connection: connection.gen,
    }),
  }),
});

connection.start();
