// Glass to glass in any browser: the clock tests/painter.rs paints (row 0: 32 bits of Unix ms,
// row 1 its complement, CELL-pixel cells) read back from every presented frame; a frame whose
// cells are not clean black/white pairs (torn, blurred) is counted as unreadable, not guessed.
// Shared by drive.mjs (Chromium, Playwright) and firefox.mjs (Firefox, puppeteer): both pass a
// function and its argument to page.evaluate the same way.

// Runs in the page: from now on window.__vdi collects presentation times and latencies.
function clockProbe(screenWidth) {
  const CELL = 24, W = 32 * CELL, H = 2 * CELL, v = document.querySelector('video');
  const c = document.createElement('canvas'); c.width = W; c.height = H;
  const g = c.getContext('2d', { willReadFrequently: true });
  window.__vdi = { frames: [], g2g: [], unreadable: 0 };
  const onFrame = () => {
    const now = Date.now();
    window.__vdi.frames.push(now);
    const s = v.videoWidth / screenWidth;
    if (s > 0) {
      g.drawImage(v, 0, 0, W * s, H * s, 0, 0, W, H);
      const px = g.getImageData(0, 0, W, H).data;
      const lum = (x, y) => { const i = (y * W + x) * 4; return (px[i] + px[i + 1] + px[i + 2]) / 3; };
      let ms = 0, ok = true;
      for (let bit = 0; bit < 32 && ok; bit++) {
        const x = bit * CELL + CELL / 2, top = lum(x, CELL / 2), bottom = lum(x, CELL + CELL / 2);
        if (top > 176 && bottom < 80) ms = ms * 2 + 1;
        else if (top < 80 && bottom > 176) ms = ms * 2;
        else ok = false;
      }
      const lat = (now % 2 ** 32 - ms + 2 ** 32) % 2 ** 32;
      if (ok && lat < 60000) window.__vdi.g2g.push(lat); else window.__vdi.unreadable++;
    }
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
}

/// Starts the probe in `page` for a display `screenWidth` pixels wide.
export const startClockProbe = (page, screenWidth) => page.evaluate(clockProbe, screenWidth);

/// What the probe collected since the last call, and a fresh start.
export const takeClockReadings = (page) => page.evaluate(() => {
  const d = window.__vdi;
  window.__vdi = { ...d, frames: [], g2g: [], unreadable: 0 };
  return { frames: d.frames, g2g: d.g2g, unreadable: d.unreadable };
});
