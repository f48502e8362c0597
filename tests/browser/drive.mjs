// Drives Debian's Chromium (headless, no browser download) against a vdi-agent page for the
// end-to-end tests. Usage: node drive.mjs '{"url":..., "user":..., "password":..., ...}'
// Prints one JSON line per step on stdout; exits non-zero with the reason on failure.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { startClockProbe } from './clock.mjs';

const opt = JSON.parse(process.argv[2]);
const deadline = (ms) => Date.now() + ms;
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const args = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns,MediaRouter,DialMediaRouteProvider,OptimizationHints,Translate,HttpsUpgrades',
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-dev-shm-usage',
  '--mute-audio', '--no-default-browser-check', '--disable-default-apps', '--disable-extensions',
  '--password-store=basic', '--use-mock-keychain'];
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdi-chromium-'));
const ctx = await chromium.launchPersistentContext(userDataDir, {
  executablePath: opt.chromium || '/usr/bin/chromium', headless: false,
  args: [...args, `--user-data-dir=${userDataDir}`, '--remote-debugging-pipe', 'about:blank'],
  ignoreDefaultArgs: true,
  viewport: opt.viewport || { width: 1280, height: 720 },
  deviceScaleFactor: 1,
  httpCredentials: opt.user ? { username: opt.user, password: opt.password } : undefined,
});
// What the page's connection does, seen from outside the page's code (as the g2g harness sees
// it): the peer connection it made last and that connection's data channel. The tests read these
// and the client's read-only hook (`window.vdiClient.state()`), never the page's own variables.
await ctx.addInitScript(() => {
  const Native = window.RTCPeerConnection;
  const seen = { pc: null, channel: null };
  Object.defineProperty(window, '__vdiSeen', { value: seen });
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      seen.pc = this;
      this.addEventListener('datachannel', (e) => {
        seen.channel = e.channel;
      });
    }
  };
});
const page = ctx.pages()[0] || await ctx.newPage();
const consoleLines = [];
page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));

async function waitForVideo(label) {
  const until = deadline(opt.timeoutMs || 20000);
  while (Date.now() < until) {
    const v = await page.evaluate(() => {
      const el = document.querySelector('video');
      return el ? { ready: el.readyState, w: el.videoWidth, h: el.videoHeight, t: el.currentTime, paused: el.paused } : null;
    });
    if (v && v.ready >= 2 && v.w > 0 && !v.paused && v.t > 0) {
      // Frames keep coming: currentTime advances.
      await page.waitForTimeout(300);
      const t2 = await page.evaluate(() => document.querySelector('video').currentTime);
      if (t2 > v.t) { say({ step: label, playing: true, width: v.w, height: v.h }); return v; }
    }
    await page.waitForTimeout(100);
  }
  throw new Error(`${label}: no video within the deadline; console: ${consoleLines.slice(-10).join(' | ')}`);
}

// The test may hold a step until it has looked at the X server: it writes a line to our stdin.
const goLines = [];
let goWaiter = null;
if (opt.handshake) {
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d) => { for (const _ of d.split('\n').slice(1)) { if (goWaiter) { goWaiter(); goWaiter = null; } else goLines.push(1); } });
}
const go = () => opt.handshake ? (goLines.length ? Promise.resolve(goLines.shift()) : new Promise((r) => { goWaiter = r; })) : Promise.resolve();
const x = (cmd, args, input) => execFileSync(cmd, args, { env: { ...process.env, DISPLAY: opt.display }, input, timeout: 10000 }).toString();
const screenSize = () => (x('xdpyinfo', []).match(/dimensions:\s+(\d+x\d+)/) || [])[1];
async function until(label, fn, ms) {
  const end = deadline(ms || opt.timeoutMs || 20000);
  let v;
  while (Date.now() < end) { v = await fn(); if (v) return v; await page.waitForTimeout(50); }
  throw new Error(`${label}: not within the deadline (last: ${JSON.stringify(v)}); console: ${consoleLines.slice(-10).join(' | ')}`);
}
const videoSize = () => page.evaluate(() => { const v = document.querySelector('video'); return `${v.videoWidth}x${v.videoHeight}`; });

// Each window size: the X screen follows (read by an X client), then frames of that size play.
async function resizeSteps() {
  for (const [w, h, want] of opt.resize) {
    const t0 = Date.now();
    await page.setViewportSize({ width: w, height: h });
    const expect = want || `${w}x${h}`;
    await until(`video ${expect}`, async () => (await videoSize()) === expect, 20000);
    say({ step: 'resized', window: `${w}x${h}`, video: expect, screen: screenSize(), ms: Date.now() - t0 });
  }
}

// An X client shows a text cursor under the pointer; the video's CSS cursor becomes that image. The
// pointer sits over a black desktop: frames around it must stay black (no pointer captured).
async function cursorSteps() {
  const box = await page.locator('video').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const before = await until('first cursor', () => page.evaluate(() => document.querySelector('video').style.cursor), 10000);
  say({ step: 'cursor-ready' });
  await go(); // the test maps a window with a text cursor under the pointer
  const after = await until('cursor change', async () => {
    const c = await page.evaluate(() => document.querySelector('video').style.cursor);
    return c !== before && c.startsWith('url("data:image/png;base64,') ? c : null;
  }, 10000);
  say({ step: 'cursor', before: before.slice(0, 40), after: after.slice(0, 40) });
  await page.mouse.move(box.x + box.width / 2 + 5, box.y + box.height / 2 + 5);
  await page.waitForTimeout(500);
  const brightest = await page.evaluate(() => {
    const v = document.querySelector('video');
    const c = document.createElement('canvas');
    c.width = v.videoWidth; c.height = v.videoHeight;
    const g = c.getContext('2d');
    g.drawImage(v, 0, 0);
    const px = g.getImageData(Math.floor(v.videoWidth / 2) - 20, Math.floor(v.videoHeight / 2) - 20, 60, 60).data;
    let max = 0;
    for (let i = 0; i < px.length; i += 4) max = Math.max(max, px[i], px[i + 1], px[i + 2]);
    return max;
  });
  say({ step: 'frame-around-pointer', brightest });
}

// Copy in the desktop (xclip) -> the page; paste in the page (a real Ctrl+V) -> the desktop.
async function clipboardSteps() {
  const c = opt.clipboard;
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(opt.url).origin });
  // What the desktop allows, from the client's read-only hook.
  const hello = await until('hello', () => page.evaluate(() => { const d = window.vdiClient.state().desktop; return d ? d.clipboard : null; }), 10000);
  say({ step: 'clipboard-mode', mode: hello });
  if (c.copy) {
    // xclip stays in the background to serve the selection: give it no pipe to hold open.
    execFileSync('xclip', ['-selection', 'clipboard', '-i'], { env: { ...process.env, DISPLAY: opt.display }, input: c.copy, stdio: ['pipe', 'ignore', 'ignore'], timeout: 10000 });
    const got = await until('copied text in the page', () => page.evaluate((want) => document.getElementById('clip-text').value === want, c.copy), c.expectCopy === false ? 3000 : 10000).catch(() => false);
    say({ step: 'desktop-to-page', arrived: !!got });
  }
  for (const text of c.paste || []) {
    await page.evaluate(() => { document.getElementById('status').textContent = ''; });
    await page.evaluate((t) => navigator.clipboard.writeText(t), text);
    await page.locator('video').click();
    await page.keyboard.press('Control+V');
    await page.waitForTimeout(200);
    let notice = await page.evaluate(() => document.getElementById('status').textContent);
    if (c.viaPanel) {
      // The clipboard box: the way to paste when the browser gives the page no clipboard.
      await page.click('#clip-btn');
      await page.fill('#clip-text', text);
      await page.click('#clip-send');
      notice = await page.evaluate(() => document.getElementById('status').textContent);
    }
    say({ step: 'pasted', bytes: Buffer.byteLength(text), notice });
  }
}

// Tone, then silence: the audio track's energy rises while PulseAudio plays the tone.
async function audioSteps() {
  const energy = () => page.evaluate(async () => {
    const s = await window.__vdiSeen.pc.getStats();
    let e = null;
    s.forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'audio') e = { energy: r.totalAudioEnergy || 0, codec: r.codecId ? s.get(r.codecId).mimeType : '', raw: { samples: r.totalSamplesReceived, level: r.audioLevel, packets: r.packetsReceived, concealed: r.concealedSamples } }; });
    return e;
  });
  const first = await until('audio track', energy, 10000);
  await page.click('#mute-btn'); // sound on (the page starts muted: autoplay rules)
  await page.waitForTimeout(1500);
  const quiet0 = await energy();
  await page.waitForTimeout(1500);
  const quiet1 = await energy();
  const tone = spawn('gst-launch-1.0', ['-q', 'audiotestsrc', 'wave=sine', 'freq=440', 'volume=0.5', 'num-buffers=300', '!', 'pulsesink', `server=${opt.pulse}`]);
  await page.waitForTimeout(2500);
  const loud = await energy();
  tone.kill();
  say({ step: 'audio', codec: first.codec.toLowerCase(), stats: loud.raw, silence: quiet1.energy - quiet0.energy, tone: loud.energy - quiet1.energy });
}

// A modifier held, then the page loses focus: nothing stays pressed. A German-layout key (ö on
// the Semicolon key) and composed text (€) arrive as those characters.
async function keySteps() {
  await page.locator('video').click();
  await page.keyboard.down('Shift');
  await page.keyboard.down('Control');
  say({ step: 'held' });
  await go();
  // Headless Chromium keeps every page focused (focus emulation), so the window's blur is
  // dispatched the way the browser would on Alt+Tab.
  await page.evaluate(() => window.dispatchEvent(new Event('blur')));
  say({ step: 'blurred' });
  await go();
  await page.keyboard.up('Control');
  await page.keyboard.up('Shift');
  await page.locator('video').click();
  const cdp = await ctx.newCDPSession(page);
  for (const type of ['keyDown', 'keyUp']) {
    await cdp.send('Input.dispatchKeyEvent', { type, key: 'ö', code: 'Semicolon', text: type === 'keyDown' ? 'ö' : undefined, windowsVirtualKeyCode: 186 });
  }
  await page.keyboard.insertText('€');
  // A held key: the browser repeats it (repeat: true keydowns), each reaches the desktop.
  for (let i = 0; i < 3; i++) await page.keyboard.down('KeyA');
  await page.keyboard.up('KeyA');
  say({ step: 'typed-non-us' });
  // The browser stays open until the test has seen the keys at the X server: closing it at once
  // could drop input still queued in the data channel on a busy machine.
  await go();
}

// Benchmarks: (1) from the size request leaving the page to the first decoded frame of that size
// (the video element's resize event); (2) from a pointer event to the next rendered frame, which
// is when a CSS cursor has moved (no network in the path).
async function benchSteps() {
  const sizes = [[1600, 900], [1280, 720]]; // the page opens at 1280x720
  const resize = [];
  for (let i = 0; i < opt.bench.resizes; i++) {
    const [w, h] = sizes[i % 2];
    await page.evaluate(() => { window.__vdiResized = null; document.querySelector('video').addEventListener('resize', () => { window.__vdiResized = performance.now(); }, { once: true }); });
    await page.setViewportSize({ width: w, height: h });
    await until(`video ${w}x${h}`, async () => (await videoSize()) === `${w}x${h}`, 20000);
    await until('resize event', () => page.evaluate(() => window.__vdiResized), 5000);
    resize.push(await page.evaluate(() => window.__vdiResized - performance.getEntriesByName('vdi-size-sent').at(-1).startTime));
  }
  say({ step: 'bench-resize', ms: resize });
  await page.evaluate(() => {
    window.__vdiPointer = [];
    document.querySelector('video').addEventListener('mousemove', (e) => { const t = e.timeStamp; requestAnimationFrame((now) => window.__vdiPointer.push(now - t)); });
  });
  const box = await page.locator('video').boundingBox();
  for (let i = 0; i < opt.bench.moves; i++) {
    await page.mouse.move(box.x + 50 + (i * 7) % (box.width - 100), box.y + 50 + (i * 5) % (box.height - 100));
    await page.waitForTimeout(20);
  }
  await page.waitForTimeout(200);
  say({ step: 'bench-pointer', ms: await page.evaluate(() => window.__vdiPointer) });
}

// What a hostile client sends on the data channel, bypassing the page's own checks: each item is
// {send: message, times: n} (sent n times as fast as the channel takes them) or {waitMs: n}.
async function rawSteps() {
  await until('input channel', () => page.evaluate(() => window.__vdiSeen.channel && window.__vdiSeen.channel.readyState === 'open'), 10000);
  for (const item of opt.raw) {
    if (item.waitMs) { await page.waitForTimeout(item.waitMs); continue; }
    const sent = await page.evaluate(async ({ msg, times }) => {
      const input = window.__vdiSeen.channel;
      const text = JSON.stringify(msg);
      for (let i = 0; i < times; i++) {
        // Past 8 MiB queued the channel would throw: wait for it to drain as a real flood would.
        while (input.bufferedAmount > 8 << 20) await new Promise((r) => setTimeout(r, 5));
        input.send(text);
      }
      while (input.bufferedAmount > 0) await new Promise((r) => setTimeout(r, 5));
      return times;
    }, { msg: item.send, times: item.times || 1 });
    say({ step: 'raw', t: item.send.t, sent });
  }
  say({ step: 'raw-sent' });
  await go();
}

// Network runs: every 500 ms one sample (frames presented, clock latencies, what the browser
// received and decoded, the agent's own figures from the data channel) until the test says stop.
async function networkSteps() {
  await startClockProbe(page, opt.network.screenWidth);
  say({ step: 'network-ready' });
  const end = deadline(opt.network.maxMs || 120000);
  while (!goLines.length && Date.now() < end) {
    await page.waitForTimeout(500);
    const s = await page.evaluate(async () => {
      const d = window.__vdi, v = document.querySelector('video'), client = window.vdiClient.state();
      const out = { frames: d.frames, g2g: d.g2g, unreadable: d.unreadable };
      window.__vdi = { ...d, frames: [], g2g: [], unreadable: 0 };
      let inb = null;
      const pc = window.__vdiSeen.pc;
      if (pc) (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') inb = r; });
      // How the picture is repaired: keyframes asked for (PLI), packets asked for again (NACK),
      // keyframes decoded; cumulative, as the browser counts them.
      const repair = inb ? { pli: inb.pliCount, nack: inb.nackCount, keyframes: inb.keyFramesDecoded,
        received: inb.framesReceived, dropped: inb.framesDropped, lost: inb.packetsLost,
        freezes: inb.freezeCount, frozen_s: inb.totalFreezesDuration } : {};
      return { ...out, ...repair, decoded: inb ? inb.framesDecoded : null, bytes: inb ? inb.bytesReceived : null,
        size: `${v.videoWidth}x${v.videoHeight}`, agent: client.path, connection: client.connection, codec: client.codec };
    });
    say({ step: 'sample', at: Date.now(), ...s });
  }
}

// The ICE route the page uses: the selected pair's local candidate (type and protocol).
const route = () => page.evaluate(async () => {
  const pc = window.__vdiSeen.pc;
  if (!pc) return null;
  const s = await pc.getStats();
  let pair = null;
  s.forEach((r) => { if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pair = r; });
  const local = pair ? s.get(pair.localCandidateId) : null;
  return local ? { type: local.candidateType, protocol: local.protocol, relayProtocol: local.relayProtocol || null } : null;
});

// Connections one after another (a page load each), each must play and report its route.
async function repeatSteps() {
  say({ step: 'connection', n: 1, playing: true, route: await until('route', route, 10000) });
  for (let n = 2; n <= opt.repeat; n++) {
    try {
      await page.reload();
      await waitForVideo('again');
      say({ step: 'connection', n, playing: true, route: await until('route', route, 10000) });
    } catch (e) {
      say({ step: 'connection', n, playing: false, error: String(e.message || e) });
    }
  }
}

// Opens the statistics overlay and returns its text once `done` accepts it (or at the deadline).
async function overlayUntil(done) {
  await page.click('#stats-btn');
  const until = deadline(opt.timeoutMs || 20000);
  let txt = '';
  while (Date.now() < until) {
    txt = await page.evaluate(() => document.getElementById('stats').textContent);
    if (done(txt)) break;
    await page.waitForTimeout(100);
  }
  return txt;
}

try {
  const res = await page.goto(opt.url);
  say({ step: 'page', status: res ? res.status() : 0 });
  if (!res || res.status() !== 200) throw new Error(`page answered ${res ? res.status() : 'nothing'}`);
  const v = await waitForVideo('first');
  if (opt.click) {
    // Map remote pixels to page coordinates the way the client does (contain-fit).
    const box = await page.locator('video').boundingBox();
    const scale = Math.min(box.width / v.w, box.height / v.h);
    const ox = box.x + (box.width - v.w * scale) / 2, oy = box.y + (box.height - v.h * scale) / 2;
    await page.mouse.move(ox + opt.click[0] * scale, oy + opt.click[1] * scale);
    await page.mouse.down();
    await page.mouse.up();
    say({ step: 'clicked' });
  }
  if (opt.type) {
    await page.keyboard.type(opt.type, { delay: 30 });
    say({ step: 'typed' });
  }
  if (opt.stats) {
    // The statistics overlay fills in once per second while open.
    say({ step: 'stats', text: await overlayUntil((txt) => /route/.test(txt) && /fps\s+\d/.test(txt)) });
  }
  if (opt.sdp) {
    // What was negotiated for video, and how long the jitter buffer held each frame over 2 s.
    say({ step: 'sdp', ...await page.evaluate(async () => {
      const pc = window.__vdiSeen.pc;
      const video = async () => { let v = null; (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') v = r; }); return v; };
      const a = await video();
      await new Promise((r) => setTimeout(r, 2000));
      const b = await video();
      const frames = b.jitterBufferEmittedCount - a.jitterBufferEmittedCount;
      return { offer: pc.remoteDescription.sdp, answer: pc.localDescription.sdp,
        heldMs: frames > 0 ? 1000 * (b.jitterBufferDelay - a.jitterBufferDelay) / frames : null };
    }) });
  }
  if (opt.pacing) {
    // Capture pacing sweeps the phase (about 4 s at 60 fps) and locks; the overlay says so.
    say({ step: 'pacing', text: await overlayUntil((txt) => /pacing\s+locked/.test(txt)) });
    await waitForVideo('paced');
  }
  if (opt.takeover) {
    // A second viewer connects: it gets the desktop, the first one is told why it lost it.
    const second = await ctx.newPage();
    await second.goto(opt.url);
    const until = deadline(opt.timeoutMs || 20000);
    let told = '';
    while (Date.now() < until) {
      told = await page.evaluate(() => document.getElementById('status').textContent);
      if (/took over/.test(told)) break;
      await page.waitForTimeout(100);
    }
    say({ step: 'takeover', firstTold: told });
    const v2 = await second.evaluate(async () => {
      for (let i = 0; i < 200; i++) {
        const el = document.querySelector('video');
        if (el && el.readyState >= 2 && el.videoWidth > 0) return { w: el.videoWidth, h: el.videoHeight };
        await new Promise((r) => setTimeout(r, 100));
      }
      return null;
    });
    say({ step: 'second', playing: !!v2 });
    await second.close();
  }
  if (opt.reconnect) {
    // The viewer leaves and comes back: a new page load, a new session.
    await page.reload();
    await waitForVideo('again');
  }
  if (opt.resize) await resizeSteps();
  if (opt.cursor) await cursorSteps();
  if (opt.clipboard) await clipboardSteps();
  if (opt.audio) await audioSteps();
  if (opt.keys) await keySteps();
  if (opt.raw) await rawSteps();
  if (opt.bench) await benchSteps();
  if (opt.repeat) await repeatSteps();
  if (opt.network) await networkSteps();
  if (opt.holdMs) await page.waitForTimeout(opt.holdMs);
  await ctx.close();
  process.exit(0);
} catch (e) {
  say({ step: 'error', message: String(e && e.message || e) });
  await ctx.close().catch(() => {});
  process.exit(1);
}
