// Clipboard: the desktop's copies arrive in pieces; pastes go to the desktop in pieces of at most
// 2,048 characters (the data channel's messages stay small), within the agent's size limit.

export const PIECE_CHARS = 2048;

// Whether this page may send text to the desktop, and if not, what to tell the person.
export function refusal(text, hello) {
  if (!hello || hello.clipboard === "none" || hello.clipboard === "out") return "pasting into this desktop is turned off";
  const size = new TextEncoder().encode(text).length;
  if (size > hello.clipMax) {
    const mib = (n) => (n / 1048576).toFixed(1);
    return `the pasted text was not sent: it is ${mib(size)} MiB and the clipboard limit is ${mib(hello.clipMax)} MiB`;
  }
  return null;
}

// The messages that carry `text` (at least one, so an empty paste clears the desktop's clipboard).
// Pieces split between characters, never inside a surrogate pair.
export function pieces(text, step = PIECE_CHARS) {
  const chars = Array.from(text);
  const out = [];
  for (let i = 0; i < chars.length || i === 0; i += step) {
    out.push({ t: "clip", s: chars.slice(i, i + step).join(""), more: i + step < chars.length });
  }
  return out;
}

// Joins the desktop's pieces back into one copy.
export class Incoming {
  constructor() {
    this.parts = [];
  }

  // The whole text once its last piece arrived, else null.
  push(message) {
    this.parts.push(message.s);
    if (message.more) return null;
    const text = this.parts.join("");
    this.parts = [];
    return text;
  }
}
