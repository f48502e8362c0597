// The rehearsal's viewer: Debian's Chromium (headless) opens a session's page with its password,
// waits for the first decoded frame, saves the picture as the browser shows it, checks the desktop
// panel is in it, opens a terminal with the keyboard and types a line.
// Usage: node rehearse.mjs '{"url":..., "password":..., "screenshot": PATH, "line": TEXT}'
// Prints one JSON line per step; exits non-zero with the reason on failure.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const opt = JSON.parse(process.argv[2]);
const say = (obj) => process.stdout.write(JSON.stringify({ ...obj, at: Date.now() }) + '\n');
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdi-rehearse-'));
const ctx = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium', headless: false, ignoreDefaultArgs: true,
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--mute-audio',
    '--autoplay-policy=no-user-gesture-required', '--disable-features=WebRtcHideLocalIpsWithMdns',
    '--disable-dev-shm-usage', `--user-data-dir=${userDataDir}`, '--remote-debugging-pipe', 'about:blank'],
  viewport: { width: 1280, height: 720 },
  httpCredentials: { username: opt.user || 'user', password: opt.password },
});
const page = ctx.pages()[0] || await ctx.newPage();
const logs = [];
page.on('console', (m) => logs.push(m.text()));

// The decoded picture: the <video> element's current frame drawn into a canvas, as pixels.
const frame = () => page.evaluate(() => {
  const v = document.querySelector('video');
  if (!v || v.readyState < 2 || !v.videoWidth) return null;
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  // Mean brightness of the top 24 rows (where XFCE's panel sits) and of the screen's middle.
  const band = (y0, y1) => {
    const d = g.getImageData(0, y0, c.width, y1 - y0).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) sum += (d[i] + d[i + 1] + d[i + 2]) / 3;
    return sum / (d.length / 4);
  };
  const mid = Math.floor(c.height / 2);
  return { w: c.width, h: c.height, top: band(0, 24), middle: band(mid - 12, mid + 12), png: c.toDataURL('image/png') };
});

try {
  const started = Date.now();
  // The Pod may still be starting: try again until its agent answers.
  let res = null;
  while (!res) {
    try {
      res = await page.goto(opt.url);
    } catch (e) {
      if (Date.now() - started > (opt.timeoutMs || 30000)) throw e;
      await page.waitForTimeout(100);
    }
  }
  if (res.status() !== 200) throw new Error(`page answered ${res.status()}`);
  say({ step: 'page', ms: Date.now() - started });
  let f = null;
  while (Date.now() - started < (opt.timeoutMs || 30000)) {
    f = await frame();
    if (f) break;
    await page.waitForTimeout(50);
  }
  if (!f) throw new Error(`no picture; console: ${logs.slice(-8).join(' | ')}`);
  say({ step: 'first-frame', ms: Date.now() - started, width: f.w, height: f.h });
  // The panel is drawn once the session is up; give it a few seconds after the first frame.
  const until = Date.now() + 15000;
  while (Date.now() < until && !(Math.abs(f.top - f.middle) > 20)) {
    await page.waitForTimeout(250);
    f = await frame();
  }
  if (opt.screenshot) fs.writeFileSync(opt.screenshot, Buffer.from(f.png.split(',')[1], 'base64'));
  say({ step: 'panel', top: Math.round(f.top), middle: Math.round(f.middle), seen: Math.abs(f.top - f.middle) > 20 });
  if (opt.line) {
    const video = page.locator('video');
    await video.click({ position: { x: 640, y: 400 } });
    await page.keyboard.press('Control+Alt+KeyT');
    await page.waitForTimeout(opt.terminalWaitMs || 3000);
    await page.keyboard.type(opt.line, { delay: 40 });
    await page.keyboard.press('Enter');
    say({ step: 'typed' });
  }
  await page.waitForTimeout(500);
  await ctx.close();
  process.exit(0);
} catch (e) {
  process.stderr.write(`rehearse.mjs: ${e.message}\n`);
  await ctx.close().catch(() => {});
  process.exit(1);
}
