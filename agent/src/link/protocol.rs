//! The data channel protocol (channel `input`, ordered, JSON text messages, version 1 — the
//! README documents it). The browser sends input, its size, clipboard text and "release
//! everything"; the agent sends what the desktop changed: the cursor image, clipboard text, the
//! screen size it settled on, and notices for the person in front of the page.

use serde::{Deserialize, Serialize};

/// Largest piece of clipboard text in one message, in bytes of UTF-8. Data channel messages
/// above 64 KiB are not portable between SCTP stacks; JSON escaping can grow text sixfold.
pub const CLIPBOARD_CHUNK: usize = 8 * 1024;

/// A message from the browser.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "t")]
pub enum FromViewer {
    /// Pointer motion to absolute screen coordinates.
    #[serde(rename = "m")]
    Move {
        /// X in screen pixels.
        x: i32,
        /// Y in screen pixels.
        y: i32,
    },
    /// Relative pointer motion (pointer lock).
    #[serde(rename = "rm")]
    RelativeMove {
        /// Pixels right.
        dx: i32,
        /// Pixels down.
        dy: i32,
    },
    /// A pointer button.
    #[serde(rename = "b")]
    Button {
        /// Button number (1 left, 2 middle, 3 right, 8 back, 9 forward).
        b: u8,
        /// Pressed (true) or released.
        d: bool,
    },
    /// Wheel steps.
    #[serde(rename = "w")]
    Wheel {
        /// Horizontal steps (positive: right).
        #[serde(default)]
        dx: i32,
        /// Vertical steps (positive: down).
        #[serde(default)]
        dy: i32,
    },
    /// A key: the X keysym the browser resolved with the user's layout, and the physical key.
    #[serde(rename = "k")]
    Key {
        /// X keysym.
        k: u32,
        /// Pressed (true) or released. A press while already pressed is the browser's repeat.
        d: bool,
        /// `KeyboardEvent.code` (physical position), for diagnostics.
        #[serde(default)]
        c: Option<String>,
    },
    /// Composed text (dead keys, IME, text typed without key events).
    #[serde(rename = "text")]
    Text {
        /// The text.
        s: String,
    },
    /// Release every key and button the agent pressed (page lost focus or was hidden).
    #[serde(rename = "ra")]
    ReleaseAll,
    /// The browser's video area, in device pixels (resize mode).
    #[serde(rename = "size")]
    Size {
        /// Width.
        w: u32,
        /// Height.
        h: u32,
    },
    /// A piece of clipboard text pasted in the browser; `more` until the last piece.
    #[serde(rename = "clip")]
    Clipboard {
        /// The piece.
        s: String,
        /// More pieces follow.
        #[serde(default)]
        more: bool,
    },
    /// Delay the capture schedule by this fraction of a frame interval (modulo one), so frames
    /// arrive just before the page's display refresh (see `pacing`).
    #[serde(rename = "phase")]
    Phase {
        /// Fraction of a frame interval.
        f: f64,
    },
}

/// A message to the browser.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "t")]
pub enum ToViewer {
    /// Sent when the channel opens: what this desktop allows.
    #[serde(rename = "hello")]
    Hello {
        /// Protocol version.
        v: u32,
        /// The agent resizes the screen to the browser.
        resize: bool,
        /// Clipboard directions: `both`, `in`, `out` or `none`.
        clipboard: &'static str,
        /// Largest clipboard text in bytes.
        #[serde(rename = "clipMax")]
        clip_max: usize,
        /// Desktop sound is in the stream.
        audio: bool,
    },
    /// The cursor shape. `png` is absent when the browser has had this serial already.
    #[serde(rename = "cursor")]
    Cursor {
        /// XFixes cursor serial.
        serial: u32,
        /// Hotspot X.
        x: u16,
        /// Hotspot Y.
        y: u16,
        /// PNG image, base64.
        #[serde(skip_serializing_if = "Option::is_none")]
        png: Option<String>,
    },
    /// A piece of clipboard text copied in the desktop; `more` until the last piece.
    #[serde(rename = "clip")]
    Clipboard {
        /// The piece.
        s: String,
        /// More pieces follow.
        more: bool,
    },
    /// The screen size after a size request.
    #[serde(rename = "size")]
    Size {
        /// Width.
        w: u32,
        /// Height.
        h: u32,
        /// Why it differs from the request, if it does.
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Once a second while streaming: the adaptation's state.
    #[serde(rename = "stats")]
    Stats {
        /// Encoder bitrate target, kbit/s.
        target: u32,
        /// What the path is estimated to carry, kbit/s.
        estimate: u32,
        /// How the picture is reduced: `full`, `half-rate`, `half-rate-half-size`.
        quality: &'static str,
        /// Fraction of packets lost, from the viewer's reports.
        loss: f64,
        /// Round-trip time in ms, if known.
        #[serde(skip_serializing_if = "Option::is_none")]
        rtt: Option<f64>,
        /// The path's capacity read from how the frames' packets arrived, kbit/s, once read
        /// (a still desktop's frames are too small to read it).
        #[serde(skip_serializing_if = "Option::is_none")]
        capacity: Option<u32>,
    },
    /// Something the person should read (for example a refused paste).
    #[serde(rename = "notice")]
    Notice {
        /// The message.
        msg: String,
    },
}

impl ToViewer {
    /// The JSON text.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Splits text into pieces of at most `max` bytes at character boundaries (at least one piece).
pub fn chunks(text: &str, max: usize) -> Vec<&str> {
    let max = max.max(4);
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    out.push(rest);
    out
}

/// Reassembles clipboard pieces, refusing text over the limit without keeping it.
#[derive(Debug, Default)]
pub struct Assembler {
    buf: String,
    seen: usize,
}

/// What a piece completed.
#[derive(Debug, PartialEq, Eq)]
pub enum Assembled {
    /// More pieces to come.
    Pending,
    /// The whole text.
    Done(String),
    /// The text went over the limit and was dropped; its size in bytes.
    TooLarge(usize),
}

impl Assembler {
    /// Adds a piece.
    pub fn push(&mut self, piece: &str, more: bool, limit: usize) -> Assembled {
        self.seen += piece.len();
        if self.seen > limit {
            self.buf = String::new();
        } else {
            self.buf.push_str(piece);
        }
        if more {
            return Assembled::Pending;
        }
        let seen = std::mem::take(&mut self.seen);
        if seen > limit {
            return Assembled::TooLarge(seen);
        }
        Assembled::Done(std::mem::take(&mut self.buf))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_every_message_kind() {
        let cases = [
            (r#"{"t":"m","x":1,"y":2}"#, FromViewer::Move { x: 1, y: 2 }),
            (r#"{"t":"rm","dx":-3,"dy":4}"#, FromViewer::RelativeMove { dx: -3, dy: 4 }),
            (
                r#"{"t":"k","k":246,"d":true,"c":"Semicolon"}"#,
                FromViewer::Key { k: 246, d: true, c: Some("Semicolon".into()) },
            ),
            (r#"{"t":"text","s":"é"}"#, FromViewer::Text { s: "é".into() }),
            (r#"{"t":"ra"}"#, FromViewer::ReleaseAll),
            (r#"{"t":"size","w":1000,"h":700}"#, FromViewer::Size { w: 1000, h: 700 }),
            (r#"{"t":"clip","s":"x","more":true}"#, FromViewer::Clipboard { s: "x".into(), more: true }),
            (r#"{"t":"phase","f":0.125}"#, FromViewer::Phase { f: 0.125 }),
        ];
        for (json, want) in cases {
            assert_eq!(serde_json::from_str::<FromViewer>(json).expect(json), want);
        }
        assert!(serde_json::from_str::<FromViewer>(r#"{"t":"size","w":-1,"h":2}"#).is_err());
        assert!(serde_json::from_str::<FromViewer>(r#"{"t":"phase","f":"x"}"#).is_err());
    }

    #[test]
    fn assembler_refuses_over_the_limit_and_recovers() {
        let mut a = Assembler::default();
        assert_eq!(a.push("ab", true, 3), Assembled::Pending);
        assert_eq!(a.push("cd", false, 3), Assembled::TooLarge(4));
        assert_eq!(a.push("xyz", false, 3), Assembled::Done("xyz".into()));
    }

    proptest! {
        #[test]
        fn chunks_rejoin_to_the_text_and_respect_the_size(text in "\\PC{0,200}", max in 4usize..40) {
            let pieces = chunks(&text, max);
            prop_assert_eq!(pieces.concat(), text.clone());
            prop_assert!(pieces.iter().all(|p| p.len() <= max));
            let mut a = Assembler::default();
            let n = pieces.len();
            let mut last = Assembled::Pending;
            for (i, p) in pieces.iter().enumerate() {
                last = a.push(p, i + 1 < n, 1 << 20);
            }
            prop_assert_eq!(last, Assembled::Done(text));
        }
    }
}
