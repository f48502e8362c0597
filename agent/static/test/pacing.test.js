import assert from "node:assert/strict";
import { test } from "node:test";

import { MISSED, Pacer, SKIP, STEPS, WINDOW, refreshFrom } from "../js/pacing.js";

const REFRESH = 1000 / 60;

// A viewer whose wait before the next refresh depends on the capture's phase as `waitAt(phase)`
// (phase in frames, 0..1), with `missedAt(phase)` of the frames never shown. Feeds `frames`
// decoded frames' metadata to the pacer, moving the phase as it asks.
function simulate(pacer, { frames, waitAt, missedAt = () => 0 }) {
  let phase = 0, presented = 0, t = 0, owed = 0;
  pacer.move = (f) => {
    phase = (phase + f) % 1;
  };
  for (let n = 0; n < frames; n++) {
    owed += missedAt(phase);
    presented += 1 + Math.floor(owed);
    owed -= Math.floor(owed);
    t += REFRESH;
    pacer.frame({ receiveTime: t, expectedDisplayTime: t + waitAt(phase), presentedFrames: presented }, true);
  }
  return phase;
}

// Each sweep step takes SKIP + WINDOW frames.
const SWEEP_FRAMES = STEPS * (SKIP + WINDOW);

test("the sweep locks on the phase with the shortest wait", () => {
  const pacer = new Pacer(() => {}, { refresh: REFRESH });
  pacer.reset();
  // The wait is a sawtooth: shortest just after the capture moves by 5/8 of a frame.
  const waitAt = (p) => ((((5 / 8 - p) % 1) + 1) % 1) * REFRESH + 1;
  const phase = simulate(pacer, { frames: SWEEP_FRAMES + SKIP, waitAt });
  assert.equal(pacer.state, "locked");
  assert.equal(phase, 5 / 8);
  assert.match(pacer.describe(), /^locked \(capture \+63 % of a frame\)$/);
});

test("a phase that loses frames is passed over when another loses none", () => {
  const pacer = new Pacer(() => {}, { refresh: REFRESH });
  pacer.reset();
  // Shortest wait at 2/8, but there a tenth of the frames are never shown; 3/8 loses none.
  const waitAt = (p) => 1 + Math.abs(p - 2 / 8) * 10;
  const missedAt = (p) => (p === 2 / 8 ? 0.1 : 0);
  const phase = simulate(pacer, { frames: SWEEP_FRAMES + SKIP, waitAt, missedAt });
  assert.equal(pacer.missLimit, MISSED);
  assert.ok([1 / 8, 3 / 8].includes(phase), `locked at ${phase}`);
});

test("a browser that skips frames at every phase still gets the shortest wait", () => {
  const pacer = new Pacer(() => {}, { refresh: REFRESH });
  pacer.reset();
  const waitAt = (p) => 1 + Math.abs(p - 6 / 8) * 10;
  const phase = simulate(pacer, { frames: SWEEP_FRAMES + SKIP, waitAt, missedAt: () => 0.33 });
  assert.equal(pacer.missLimit, Infinity);
  assert.equal(phase, 6 / 8);
});

test("once locked, frames that start missing their refresh move the capture earlier", () => {
  const moves = [];
  const pacer = new Pacer((f) => moves.push(f), { refresh: REFRESH });
  pacer.reset();
  simulate(pacer, { frames: SWEEP_FRAMES + 3 * (SKIP + WINDOW), waitAt: (p) => 2 + p });
  assert.equal(pacer.state, "locked");
  const before = moves.length;
  pacer.move = (f) => moves.push(f);
  // Now one frame in six arrives just after its refresh and waits for the next one.
  for (let n = 0, t = 1e6; n < 4 * (SKIP + WINDOW); n++) {
    t += REFRESH;
    const wait = n % 6 === 0 ? REFRESH - 1 : 1;
    pacer.frame({ receiveTime: t, expectedDisplayTime: t + wait, presentedFrames: 1e6 + n }, true);
  }
  assert.ok(moves.length > before, "no move after frames went late");
  assert.equal(moves.at(-1), 1 - 1 / (2 * STEPS));
});

test("when the path's own jitter spans a refresh, the phase stays where it is", () => {
  const moves = [];
  const pacer = new Pacer((f) => moves.push(f), { refresh: REFRESH });
  pacer.reset();
  simulate(pacer, { frames: SWEEP_FRAMES + 3 * (SKIP + WINDOW), waitAt: (p) => 2 + p });
  const before = moves.length;
  pacer.move = (f) => moves.push(f);
  for (let n = 0, t = 1e6; n < 4 * (SKIP + WINDOW); n++) {
    t += REFRESH;
    pacer.frame({ receiveTime: t, expectedDisplayTime: t + (n % 2 ? 1 : 2 * REFRESH), presentedFrames: 1e6 + n }, true);
  }
  assert.equal(moves.length, before);
});

test("switched off, it never asks the agent to move", () => {
  const moves = [];
  const pacer = new Pacer((f) => moves.push(f), { on: false, refresh: REFRESH });
  pacer.reset();
  simulate(pacer, { frames: 2 * SWEEP_FRAMES, waitAt: (p) => 1 + p * 10 });
  assert.equal(pacer.state, "off");
  assert.deepEqual(moves, []);
  assert.equal(pacer.describe(), "off");
});

test("the refresh interval is the median gap between animation frames", () => {
  const t = Array.from({ length: 31 }, (_, i) => i * 6.944);
  t[10] += 40; // one long frame (a busy tab) does not move the median
  assert.ok(Math.abs(refreshFrom(t) - 6.944) < 0.01);
  assert.equal(refreshFrom(Array.from({ length: 31 }, () => 0)), null);
});
