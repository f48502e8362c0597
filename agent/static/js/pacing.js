// Capture pacing (message "phase"; the agent's adapt/pacing.rs says why): each frame waits between
// its arrival and the next display refresh, and that wait is a sawtooth of the capture's phase.
// Sweep the phase in eighths of a frame, keep the eighth with the shortest mean wait among those
// that lose almost no frames (when any eighth does), then follow drift: frames missing their
// refresh (a wait a refresh longer, or a frame replaced by the next before it was shown:
// `presentedFrames` jumping by two) move it a sixteenth earlier, a growing wait a sixteenth
// later. With frames drawn on arrival (no playout delay) a lock at the very edge lost a tenth of
// the frames at 1080p with motion.

export const STEPS = 8;
export const WINDOW = 24; // frames per measurement
export const SKIP = 5; // frames ignored after each move (captured before the agent moved)
export const MISSED = 0.02; // a phase that loses at most this share of frames keeps them all

// The display's refresh interval from 31 animation-frame timestamps (their median gap), or null
// when they say nothing plausible.
export function refreshFrom(timestamps) {
  const d = timestamps.slice(1).map((v, i) => v - timestamps[i]).sort((a, b) => a - b);
  const median = d[d.length >> 1];
  return median > 2 && median < 100 ? median : null;
}

export class Pacer {
  // `move(f)` asks the agent to capture `f` of a frame later (0 < f < 1).
  constructor(move, { on = true, refresh = 1000 / 60 } = {}) {
    this.move = move;
    this.on = on;
    this.refresh = refresh;
    this.presented = -1;
    this.reset();
    this.state = "off"; // until the viewer's data channel opens
  }

  // A new viewer's stream: measure from scratch.
  reset() {
    Object.assign(this, {
      state: this.on ? "sweep" : "off",
      waits: [],
      skip: SKIP,
      sweep: [],
      best: Infinity,
      hold: 0,
      moved: 0,
      missed: 0,
      missLimit: Infinity,
    });
  }

  // One decoded frame's `requestVideoFrameCallback` metadata; `live` says the channel is open.
  frame(md, live) {
    // Frames handed to the compositor since the last callback: more than one means one was never shown.
    const handed = this.presented < 0 ? 1 : md.presentedFrames - this.presented;
    this.presented = md.presentedFrames;
    if (this.state === "off" || !(md.receiveTime > 0 && md.expectedDisplayTime > 0) || !live) return;
    if (this.skip > 0) {
      this.skip--;
      return;
    }
    this.missed += Math.max(0, handed - 1);
    if (this.waits.push(md.expectedDisplayTime - md.receiveTime) >= WINDOW) this.window(this.waits.splice(0));
  }

  pace(f) {
    if (f > 0) this.move(f);
    this.moved = (this.moved + f) % 1;
    this.skip = SKIP;
    this.waits = [];
  }

  window(w) {
    w.sort((a, b) => a - b);
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const median = w[w.length >> 1];
    // A frame that missed its refresh waits a whole one longer than the typical frame; early
    // arrivals only wait as much longer as they were early.
    const late = w.filter((x) => x > median + this.refresh / 2).length / w.length;
    const missed = this.missed / (w.length + this.missed);
    this.missed = 0;
    if (this.state === "sweep") {
      this.sweep.push({ mean, missed });
      if (this.sweep.length < STEPS) return this.pace(1 / STEPS);
      // A browser that smooths playback (no zero playout delay) skips about a third of the
      // frames whatever the phase, and in 24 frames that count is noise: frames never shown only
      // count when some phase loses almost none.
      const fewest = Math.min(...this.sweep.map((s) => s.missed));
      this.missLimit = fewest <= MISSED ? MISSED : Infinity;
      const scores = this.sweep.map((s) => (s.missed <= this.missLimit ? s.mean : Infinity));
      const i = scores.indexOf(Math.min(...scores));
      this.state = "locked";
      this.hold = 2;
      return this.pace(((i + 1) % STEPS) / STEPS); // the sweep ended at 7/8: go to i/8
    }
    if (this.state !== "locked") return;
    if (this.hold > 0) {
      this.hold--;
      this.best = Math.min(this.best, median);
      return;
    }
    // When the path's own jitter spans a refresh the phase cannot help, and each move costs the
    // agent an extra capture: a congested link got bursts on top of its queue. Hold still.
    if (w[Math.floor(w.length * 0.9)] - w[Math.floor(w.length / 10)] > this.refresh) return;
    if (late > 0.1 || missed > this.missLimit) {
      this.best = Infinity;
      this.hold = 4;
      return this.pace(1 - 1 / (2 * STEPS));
    }
    if (median > this.best + this.refresh / 8) {
      this.best = Infinity;
      this.hold = 4;
      return this.pace(1 / (2 * STEPS));
    }
    this.best = Math.min(this.best, median);
  }

  // For the overlay: "locked (capture +38 % of a frame)".
  describe() {
    return this.state === "off" ? "off" : `${this.state} (capture +${(this.moved * 100).toFixed(0)} % of a frame)`;
  }
}
