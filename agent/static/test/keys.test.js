import assert from "node:assert/strict";
import { test } from "node:test";

import { Pressed, composing, keysym, pasteChord, shortcut } from "../js/keys.js";

const ev = (key, code, mods = {}) => ({ key, code, ...mods });

test("printable keys are their Latin-1 keysyms, others Unicode keysyms", () => {
  assert.equal(keysym(ev("a", "KeyA")), 0x61);
  assert.equal(keysym(ev("A", "KeyA")), 0x41);
  assert.equal(keysym(ev("é", "Digit2")), 0xe9);
  assert.equal(keysym(ev("€", "KeyE")), 0x010020ac);
  // Beyond the basic plane: one character, two UTF-16 units.
  assert.equal(keysym(ev("😀", "KeyX")), 0x0101f600);
});

test("named and function keys map to X's symbols", () => {
  assert.equal(keysym(ev("Enter", "Enter")), 0xff0d);
  assert.equal(keysym(ev("Shift", "ShiftRight")), 0xffe2);
  assert.equal(keysym(ev("AltGraph", "AltRight")), 0xfe03);
  assert.equal(keysym(ev("F1", "F1")), 0xffbe);
  assert.equal(keysym(ev("F12", "F12")), 0xffc9);
  // A layout that puts a character on a named key's position types the character.
  assert.equal(keysym(ev("/", "Insert")), 0x2f);
  assert.equal(keysym(ev("MediaPlayPause", "MediaPlayPause")), null);
});

test("a release sends the keysym of its press, even after the layout changed", () => {
  const p = new Pressed();
  assert.equal(p.resolve(ev("a", "KeyA"), true), 0x61);
  // Shift went down in between: the browser now says "A", but X must release what was pressed.
  assert.equal(p.resolve(ev("A", "KeyA"), false), 0x61);
  assert.equal(p.resolve(ev("A", "KeyA"), false), 0x41);
});

test("composition, paste chords and the page's own shortcuts are recognised", () => {
  assert.ok(composing(ev("Dead", "Quote")));
  assert.ok(composing({ ...ev("a", "KeyA"), isComposing: true }));
  assert.ok(!composing(ev("a", "KeyA")));
  assert.ok(pasteChord(ev("V", "KeyV", { ctrlKey: true })));
  assert.ok(pasteChord(ev("Insert", "Insert", { shiftKey: true })));
  assert.ok(!pasteChord(ev("v", "KeyV")));
  assert.equal(shortcut(ev("l", "KeyL", { ctrlKey: true, altKey: true })), "pointer-lock");
  assert.equal(shortcut(ev("s", "KeyS", { ctrlKey: true, altKey: true })), "stats");
  assert.equal(shortcut(ev("t", "KeyT", { ctrlKey: true, altKey: true })), null);
  assert.equal(shortcut(ev("l", "KeyL", { ctrlKey: true })), null);
});
