// Drives Debian's Firefox ESR (headless, WebDriver BiDi through puppeteer-core; no browser
// download) against a vdi-agent page for the end-to-end tests, as a Firefox user would: offline
// it has no OpenH264 plugin, so it decodes VP8, VP9 and AV1 only.
// Usage: node firefox.mjs '{"url":..., "user":..., "password":..., "display":..., ...}'
// With "latency": {"ms": N, "screenWidth": W, "cpuPid": P} it reads the painter's clock from every
// frame for N ms (after 3 s to settle) and reports glass-to-glass percentiles, frame rates, the
// cores process P (the agent) and Firefox's processes used meanwhile, and how busy the machine
// was (the latency bench, scripts/bench-firefox); with "metricsUrl" and "metricsFile" it saves
// the agent's /metrics at the end of the span, before the viewer leaves.
// Prints one JSON line per step on stdout; exits non-zero with the reason on failure.
import puppeteer from 'puppeteer-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { startClockProbe, takeClockReadings } from './clock.mjs';

const opt = JSON.parse(process.argv[2]);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vdi-firefox-'));
const viewport = opt.viewport || { width: 1280, height: 720 };

const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath: opt.firefox || '/usr/bin/firefox-esr',
  headless: true,
  protocol: 'webDriverBiDi',
  userDataDir: profile,
  defaultViewport: viewport,
  // Web Audio needs an output to run: the test's PulseAudio (its null sink), when there is one.
  env: { ...process.env, ...(opt.pulse ? { PULSE_SERVER: opt.pulse } : {}) },
  protocolTimeout: 30000,
  extraPrefsFirefox: {
    // Loopback ICE for a desktop on this machine, with real addresses in the candidates.
    'media.peerconnection.ice.loopback': true,
    'media.peerconnection.ice.obfuscate_host_addresses': false,
    // Sound without a click, as a viewer who clicked the page would have.
    'media.autoplay.default': 0,
    'media.autoplay.block-webaudio': false,
    // Offline: nothing to download (OpenH264 included).
    'media.gmp-manager.updateEnabled': false,
    'app.update.enabled': false,
  },
});
const page = (await browser.pages())[0] || await browser.newPage();
const consoleLines = [];
page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));

async function until(label, fn, ms = opt.timeoutMs || 20000) {
  const end = Date.now() + ms;
  let v;
  while (Date.now() < end) { v = await fn(); if (v) return v; await sleep(100); }
  throw new Error(`${label}: not within the deadline (last: ${JSON.stringify(v)}); console: ${consoleLines.slice(-10).join(' | ')}`);
}

async function waitForVideo(label) {
  const v = await until(`${label}: video`, async () => {
    const v = await page.evaluate(() => {
      const el = document.querySelector('video');
      return el ? { ready: el.readyState, w: el.videoWidth, h: el.videoHeight, t: el.currentTime, paused: el.paused } : null;
    });
    if (!(v && v.ready >= 2 && v.w > 0 && !v.paused && v.t > 0)) return null;
    await sleep(300);
    const t2 = await page.evaluate(() => document.querySelector('video').currentTime);
    return t2 > v.t ? v : null;
  });
  say({ step: label, playing: true, width: v.w, height: v.h });
  return v;
}

// The overlay is the page's own account of the stream (encoder, codec, fps).
async function overlay() {
  const open = await page.evaluate(() => !document.getElementById('stats').hidden && document.getElementById('stats').textContent.length > 0);
  if (!open) await page.click('#stats-btn');
  return until('the statistics overlay', () => page.evaluate(() => {
    const t = document.getElementById('stats').textContent;
    return /fps\s+\d/.test(t) ? t : null;
  }));
}

// The desktop's sound through Web Audio (Firefox's stats carry no audio energy): the RMS of the
// played stream over half a second.
const level = () => page.evaluate(async () => {
  const v = document.querySelector('video');
  if (!window.__vdiLevel) {
    const ctx = new AudioContext();
    await Promise.race([ctx.resume(), new Promise((_, no) => setTimeout(() => no(new Error(`Web Audio does not run (${ctx.state})`)), 5000))]);
    const an = ctx.createAnalyser();
    an.fftSize = 2048;
    ctx.createMediaStreamSource(v.srcObject).connect(an);
    window.__vdiLevel = { an, buf: new Float32Array(an.fftSize) };
  }
  const { an, buf } = window.__vdiLevel;
  let peak = 0;
  for (let i = 0; i < 10; i++) {
    an.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const x of buf) sum += x * x;
    peak = Math.max(peak, Math.sqrt(sum / buf.length));
    await new Promise((r) => setTimeout(r, 50));
  }
  return peak;
});

// The latency mode counts decoded frames from the peer connection's stats (Firefox's
// getVideoPlaybackQuality counts no WebRTC frames): keep a hand on the page's connection.
if (opt.latency) {
  await page.evaluateOnNewDocument(() => {
    const Native = window.RTCPeerConnection;
    window.RTCPeerConnection = class extends Native {
      constructor(...args) { super(...args); window.__vdiPc = this; }
    };
  });
}

try {
  if (opt.user) await page.authenticate({ username: opt.user, password: opt.password });
  const res = await page.goto(opt.url);
  say({ step: 'page', status: res ? res.status() : 0, browser: await browser.version() });
  if (!res || res.status() !== 200) throw new Error(`page answered ${res ? res.status() : 'nothing'}`);
  say({ step: 'codecs', decodes: await page.evaluate(() => RTCRtpReceiver.getCapabilities('video').codecs.map((c) => c.mimeType)) });
  const v = await waitForVideo('first');
  say({ step: 'overlay', text: await overlay() });
  // The client's read-only hook: what it negotiated, and that a page script cannot change it.
  say({ step: 'client', ...await page.evaluate(() => {
    const s = window.vdiClient.state();
    try { window.vdiClient.state = null; } catch { /* frozen */ }
    return { codec: s.codec, channel: s.channel, frozen: typeof window.vdiClient.state === 'function' && Object.isFrozen(s) };
  }) });
  if (opt.click) {
    // Remote pixels to page coordinates the way the client maps them (contain-fit).
    const box = await (await page.$('video')).boundingBox();
    const scale = Math.min(box.width / v.w, box.height / v.h);
    const ox = box.x + (box.width - v.w * scale) / 2, oy = box.y + (box.height - v.h * scale) / 2;
    await page.mouse.click(ox + opt.click[0] * scale, oy + opt.click[1] * scale);
    say({ step: 'clicked' });
  }
  if (opt.type) {
    await page.keyboard.type(opt.type, { delay: 30 });
    say({ step: 'typed' });
  }
  if (opt.paste) {
    // The clipboard box: how a viewer pastes when the browser gives the page no clipboard.
    await page.click('#clip-btn');
    await page.click('#clip-text', { clickCount: 3 });
    await page.type('#clip-text', opt.paste);
    await page.click('#clip-send');
    say({ step: 'pasted', notice: await page.evaluate(() => document.getElementById('status').textContent) });
  }
  if (opt.pulse) {
    await page.click('#mute-btn'); // sound on
    const quiet = await level();
    const tone = spawn('gst-launch-1.0', ['-q', 'audiotestsrc', 'wave=sine', 'freq=440', 'volume=0.5', 'num-buffers=400', '!', 'pulsesink', `server=${opt.pulse}`]);
    await sleep(1500);
    const loud = await level();
    tone.kill();
    say({ step: 'audio', quiet, loud });
  }
  if (opt.latency) {
    await startClockProbe(page, opt.latency.screenWidth);
    const decoded = () => page.evaluate(async () => {
      let n = 0;
      if (window.__vdiPc) (await window.__vdiPc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') n = r.framesDecoded || 0; });
      return n;
    });
    // A process's parent and its user and system time in clock ticks (100 a second on Linux);
    // null once it is gone.
    const stat = (pid) => {
      try {
        const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
        return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
      } catch { return null; }
    };
    const ticks = () => stat(opt.latency.cpuPid)?.ticks ?? null;
    // Firefox's own cores: its first process and every process under it (content, GPU, sockets).
    const tree = () => {
      const stats = new Map();
      for (const d of fs.readdirSync('/proc')) {
        const s = /^\d+$/.test(d) && stat(d);
        if (s) stats.set(Number(d), s);
      }
      const mine = new Map(), todo = [browser.process().pid];
      while (todo.length) {
        const pid = todo.pop();
        if (!stats.has(pid) || mine.has(pid)) continue;
        mine.set(pid, stats.get(pid).ticks);
        for (const [child, s] of stats) if (s.ppid === pid) todo.push(child);
      }
      return mine;
    };
    // The whole machine's busy time (every state but idle and iowait), in ticks summed over cores.
    const busy = () => {
      const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
      return f.slice(0, 8).reduce((a, b) => a + b, 0) - f[3] - f[4];
    };
    await sleep(3000);
    await takeClockReadings(page);
    const [d0, c0, t0, b0, m0] = [await decoded(), ticks(), Date.now(), tree(), busy()];
    await sleep(opt.latency.ms);
    const r = await takeClockReadings(page);
    const [d1, c1, t1, b1, m1] = [await decoded(), ticks(), Date.now(), tree(), busy()];
    // The agent's counters while this viewer still watches (once it leaves, the controller
    // reacts to the silence and its gauges stop describing the run).
    if (opt.latency.metricsUrl) {
      try { fs.writeFileSync(opt.latency.metricsFile, await (await fetch(opt.latency.metricsUrl)).text()); } catch (e) { say({ step: 'metrics', error: String(e) }); }
    }
    let browserTicks = 0;
    for (const [pid, t] of b1) browserTicks += t - (b0.get(pid) || 0);
    const secs = (t1 - t0) / 1000;
    const sorted = r.g2g.slice().sort((a, b) => a - b);
    const at = (p) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : null;
    say({ step: 'latency', p50: at(0.5), p95: at(0.95), read: sorted.length, unreadable: r.unreadable,
      fpsShown: r.frames.length / (opt.latency.ms / 1000), fpsDecoded: (d1 - d0) / (opt.latency.ms / 1000),
      cores: c0 === null || c1 === null ? null : (c1 - c0) / 100 / secs,
      browserCores: browserTicks / 100 / secs, machineBusy: (m1 - m0) / 100 / secs });
  }
  if (opt.reconnect) {
    await page.reload();
    await waitForVideo('again');
  }
  await browser.close();
  process.exit(0);
} catch (e) {
  say({ step: 'error', message: String(e && e.message || e) });
  await browser.close().catch(() => {});
  process.exit(1);
}
