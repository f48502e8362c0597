// Drives Debian's Chromium (headless, no browser download) against a vdi-agent page for the
// end-to-end tests. Usage: node drive.mjs '{"url":..., "user":..., "password":..., ...}'
// Prints one JSON line per step on stdout; exits non-zero with the reason on failure.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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
  viewport: { width: 1280, height: 720 },
  httpCredentials: opt.user ? { username: opt.user, password: opt.password } : undefined,
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
    await page.click('#stats-btn');
    const until = deadline(opt.timeoutMs || 20000);
    let txt = '';
    while (Date.now() < until) {
      txt = await page.evaluate(() => document.getElementById('stats').textContent);
      if (/route/.test(txt) && /fps\s+\d/.test(txt)) break;
      await page.waitForTimeout(100);
    }
    say({ step: 'stats', text: txt });
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
  if (opt.holdMs) await page.waitForTimeout(opt.holdMs);
  await ctx.close();
  process.exit(0);
} catch (e) {
  say({ step: 'error', message: String(e && e.message || e) });
  await ctx.close().catch(() => {});
  process.exit(1);
}
