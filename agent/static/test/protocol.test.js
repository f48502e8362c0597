import assert from "node:assert/strict";
import { test } from "node:test";

import { FIRST_FRAME_MS, STALL_MS, decodableCodecs, helloMessage, retryDelay, socketUrl, stalled } from "../js/protocol.js";

test("the hello lists each codec once, without retransmission and FEC formats", () => {
  // Chromium's list: several H.264 profiles, each with its RTX entry, then RED and ULPFEC.
  const caps = { codecs: ["video/VP8", "video/rtx", "video/H264", "video/H264", "video/VP9", "video/red", "video/ulpfec", "video/AV1", "video/flexfec-03"].map((mimeType) => ({ mimeType })) };
  assert.deepEqual(decodableCodecs(caps), ["VP8", "H264", "VP9", "AV1"]);
  assert.deepEqual(helloMessage(["VP8"]), { v: 1, type: "hello", codecs: ["VP8"] });
});

test("Firefox without OpenH264 says so: no H.264 in its hello", () => {
  const caps = { codecs: ["video/VP8", "video/VP9", "video/AV1", "video/ulpfec", "video/red", "video/rtx"].map((mimeType) => ({ mimeType })) };
  assert.deepEqual(decodableCodecs(caps), ["VP8", "VP9", "AV1"]);
});

test("a browser without getCapabilities is taken to decode H.264", () => {
  assert.deepEqual(decodableCodecs(null), ["H264"]);
});

test("the socket follows the page's scheme and carries the token escaped", () => {
  assert.equal(socketUrl({ protocol: "https:", host: "eve.example.com" }, "a+b/c="), "wss://eve.example.com/ws?token=a%2Bb%2Fc%3D");
  assert.equal(socketUrl({ protocol: "http:", host: "127.0.0.1:8080" }, "t"), "ws://127.0.0.1:8080/ws?token=t");
});

test("reconnecting is immediate after a lost open, then backs off to a second", () => {
  assert.equal(retryDelay(1, true), 0);
  assert.deepEqual([1, 2, 3, 4, 9].map((n) => retryDelay(n, false)), [250, 500, 750, 1000, 1000]);
});

test("a connection is dead when frames stop or ICE stays down", () => {
  const now = 100000;
  assert.equal(stalled({ now, lastFrameAt: now - 100, playing: true, downSince: 0 }), false);
  assert.equal(stalled({ now, lastFrameAt: now - STALL_MS - 1, playing: true, downSince: 0 }), true);
  // A new connection waits longer for its first frame (TURN, a busy agent).
  assert.equal(stalled({ now, lastFrameAt: now - STALL_MS - 1, playing: false, downSince: 0 }), false);
  assert.equal(stalled({ now, lastFrameAt: now - FIRST_FRAME_MS - 1, playing: false, downSince: 0 }), true);
  assert.equal(stalled({ now, lastFrameAt: now, playing: true, downSince: now - 500 }), false);
  assert.equal(stalled({ now, lastFrameAt: now, playing: true, downSince: now - 1500 }), true);
});
