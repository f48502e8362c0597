import assert from "node:assert/strict";
import { test } from "node:test";

import { Incoming, pieces, refusal } from "../js/clipboard.js";

test("a paste goes in pieces that join back to the same text", () => {
  const text = "ä😀b".repeat(3000);
  const msgs = pieces(text, 2048);
  assert.equal(msgs.length, 5);
  assert.ok(msgs.slice(0, -1).every((m) => m.more) && !msgs.at(-1).more);
  const incoming = new Incoming();
  const joined = msgs.map((m) => incoming.push(m));
  assert.deepEqual(joined.slice(0, -1), [null, null, null, null]);
  assert.equal(joined.at(-1), text);
});

test("pieces never split a character made of two UTF-16 units", () => {
  for (const m of pieces("😀".repeat(5), 2)) assert.ok(!/[\ud800-\udbff]$/.test(m.s), m.s);
});

test("an empty paste is one message, so the desktop's clipboard empties", () => {
  assert.deepEqual(pieces(""), [{ t: "clip", s: "", more: false }]);
});

test("a paste the desktop would refuse is refused here with the reason", () => {
  const hello = { clipboard: "both", clipMax: 1048576 };
  assert.equal(refusal("hi", hello), null);
  assert.match(refusal("x".repeat(2 * 1048576), hello), /2\.0 MiB and the clipboard limit is 1\.0 MiB/);
  assert.equal(refusal("hi", { ...hello, clipboard: "out" }), "pasting into this desktop is turned off");
  assert.equal(refusal("hi", { ...hello, clipboard: "none" }), "pasting into this desktop is turned off");
  assert.equal(refusal("hi", null), "pasting into this desktop is turned off");
  // The limit counts bytes, not characters.
  assert.notEqual(refusal("é".repeat(600000), hello), null);
});
