import assert from "node:assert/strict";
import { test } from "node:test";

import { remotePoint, wheelSteps, xButton } from "../js/pointer.js";

test("a click lands on the remote pixel under it, letterboxed either way", () => {
  // A 1280x720 desktop in a 1000x1000 box at (10, 20): bars above and below.
  const box = { left: 10, top: 20, width: 1000, height: 1000 };
  assert.deepEqual(remotePoint(box, 1280, 720, 10, 20 + (1000 - 562.5) / 2), { x: 0, y: 0 });
  assert.deepEqual(remotePoint(box, 1280, 720, 510, 520), { x: 640, y: 360 });
  // A 720x1280 desktop in a 1000x500 box: bars left and right.
  const wide = { left: 0, top: 0, width: 1000, height: 500 };
  assert.deepEqual(remotePoint(wide, 720, 1280, 500, 250), { x: 360, y: 640 });
});

test("before the first frame there is no remote point", () => {
  assert.equal(remotePoint({ left: 0, top: 0, width: 10, height: 10 }, 0, 0, 5, 5), null);
});

test("buttons and wheel map to X's", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 7].map(xButton), [1, 2, 3, 8, 9, 1]);
  assert.deepEqual(wheelSteps({ deltaX: 0, deltaY: 120 }), { dx: 0, dy: 1 });
  assert.deepEqual(wheelSteps({ deltaX: -3, deltaY: 0 }), { dx: -1, dy: 0 });
});
