import assert from "node:assert/strict";
import { test } from "node:test";

import { readStats, render } from "../js/overlay.js";

function report(t, bytes, frames) {
  return new Map([
    ["v", { type: "inbound-rtp", kind: "video", timestamp: t, bytesReceived: bytes, framesDecoded: frames, jitterBufferDelay: 0.02 * frames, jitterBufferEmittedCount: frames, totalDecodeTime: 0.003 * frames }],
    ["a", { type: "inbound-rtp", kind: "audio", timestamp: t }],
    ["p", { type: "candidate-pair", nominated: true, state: "succeeded", currentRoundTripTime: 0.004, localCandidateId: "l" }],
    ["l", { type: "local-candidate", candidateType: "relay", protocol: "udp" }],
  ]);
}

test("the overlay reads rates between two readings and names the route", () => {
  const first = readStats(report(1000, 0, 0), null);
  assert.equal(first.values.fps, null);
  const second = readStats(report(2000, 750000, 60), first.last);
  assert.equal(second.values.kbps, 6000);
  assert.equal(second.values.fps, 60);
  assert.equal(second.values.route, "relay udp");
  const text = render(second.values, { encoder: "vp8enc (VP8)", width: 1280, height: 720, target: { target: 8000, estimate: 9000, loss: 0.012, quality: "full" }, muted: true, pacing: "locked (capture +25 % of a frame)" });
  for (const line of ["encoder   vp8enc (VP8)", "size      1280x720", "fps       60", "bitrate   6000 kbit/s", "rtt       4.0 ms", "jitterbuf 20.0 ms", "decode    3.0 ms", "route     relay udp", "sound     opus muted", "loss 1.2 %", "pacing    locked"]) {
    assert.ok(text.includes(line), `${line} in\n${text}`);
  }
  // Half the round trip, the jitter buffer, decoding and one frame at 60 fps.
  assert.match(text, /latency ≈ 42 ms/);
  assert.ok(!text.includes("frames cross"), "no capacity read yet");
  const read = render(second.values, { encoder: "x264enc (H.264)", width: 1280, height: 720, target: { target: 8000, estimate: 9000, capacity: 19800, loss: 0, quality: "full" }, muted: false, pacing: "off" });
  assert.ok(read.includes("path ≈ 9000 kbit/s, frames cross at 19800, loss 0.0 %"), read);
});

test("without a video stream there is nothing to show", () => {
  assert.equal(readStats(new Map(), null), null);
});
