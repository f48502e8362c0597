// Keys: the keysym the browser resolved with the user's layout, plus the physical code. Repeats
// are the browser's (a press while pressed). Dead keys and IME compose in a hidden text box and
// arrive as text.

const NAMED = {
  Backspace: 0xff08, Tab: 0xff09, Enter: 0xff0d, Escape: 0xff1b, Delete: 0xffff, Home: 0xff50, End: 0xff57,
  PageUp: 0xff55, PageDown: 0xff56, ArrowLeft: 0xff51, ArrowUp: 0xff52, ArrowRight: 0xff53, ArrowDown: 0xff54, Insert: 0xff63,
  ShiftLeft: 0xffe1, ShiftRight: 0xffe2, ControlLeft: 0xffe3, ControlRight: 0xffe4, AltLeft: 0xffe9, AltRight: 0xfe03,
  MetaLeft: 0xffeb, MetaRight: 0xffec, CapsLock: 0xffe5, ContextMenu: 0xff67, NumLock: 0xff7f, ScrollLock: 0xff14,
  Pause: 0xff13, PrintScreen: 0xff61,
};

// The X keysym of a KeyboardEvent ({key, code}), or null for keys X has no symbol for.
export function keysym(e) {
  if (NAMED[e.code] && e.key.length !== 1) return NAMED[e.code];
  if (NAMED[e.key]) return NAMED[e.key];
  if (/^F\d{1,2}$/.test(e.key)) return 0xffbd + parseInt(e.key.slice(1), 10);
  if ([...e.key].length === 1) {
    const c = e.key.codePointAt(0);
    // Latin-1 keysyms are their code points; everything else is Unicode's keysym range.
    return (c >= 0x20 && c < 0x7f) || (c >= 0xa0 && c < 0x100) ? c : 0x01000000 + c;
  }
  return null;
}

// Events that only compose text (the text itself arrives through the text box).
export function composing(e) {
  return e.isComposing || e.key === "Dead" || e.key === "Process" || e.key === "Unidentified";
}

// Ctrl+V or Shift+Insert: the browser should paste first, so the desktop pastes the new text.
export function pasteChord(e) {
  return (e.ctrlKey && e.key.toLowerCase() === "v") || (e.shiftKey && e.code === "Insert");
}

// The page's own shortcuts (Ctrl+Alt+...), never sent to the desktop.
export function shortcut(e) {
  if (!(e.ctrlKey && e.altKey)) return null;
  return { KeyL: "pointer-lock", KeyS: "stats" }[e.code] || null;
}

// Which keys are down, so a release sends the keysym of its press (the layout or a modifier may
// have changed in between) and everything is released when the page loses focus.
export class Pressed {
  constructor() {
    this.byCode = new Map();
  }

  // The keysym to send for this event, or null to send nothing.
  resolve(e, down) {
    let k = keysym(e);
    if (!down && this.byCode.has(e.code)) {
      k = this.byCode.get(e.code);
      this.byCode.delete(e.code);
    }
    if (k !== null && down) this.byCode.set(e.code, k);
    return k;
  }

  clear() {
    this.byCode.clear();
  }
}
