//! Input from the browser (data channel `input`, JSON) injected into the X server with XTest.
//! Every key and button pressed through here is remembered and released when the viewer goes,
//! so nothing stays stuck.
//!
//! Messages (version 1): `{"t":"m","x":X,"y":Y}` pointer to X,Y in screen pixels;
//! `{"t":"b","b":N,"d":true|false}` button N (1 left, 2 middle, 3 right) down/up;
//! `{"t":"w","dx":DX,"dy":DY}` wheel steps; `{"t":"k","k":KEYSYM,"d":true|false}` key by X keysym.

use std::collections::BTreeSet;

use serde::Deserialize;
use x11rb::{
    connection::Connection,
    protocol::{xproto, xtest},
    rust_connection::RustConnection,
};

/// One input event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "t")]
pub enum Event {
    /// Pointer motion to absolute screen coordinates.
    #[serde(rename = "m")]
    Move {
        /// X in screen pixels.
        x: i32,
        /// Y in screen pixels.
        y: i32,
    },
    /// A pointer button.
    #[serde(rename = "b")]
    Button {
        /// Button number.
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
    /// A key by keysym.
    #[serde(rename = "k")]
    Key {
        /// X keysym.
        k: u32,
        /// Pressed (true) or released.
        d: bool,
    },
}

/// Why input could not be injected.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The display could not be opened.
    #[error("cannot open display {0}: {1}")]
    Connect(String, String),
    /// The X server refused a request.
    #[error("X request failed: {0}")]
    X(String),
}

fn xerr<E: std::fmt::Display>(e: E) -> InputError {
    InputError::X(e.to_string())
}

/// An XTest connection to the display, tracking what it pressed.
pub struct Injector {
    conn: RustConnection,
    root: xproto::Window,
    width: u16,
    height: u16,
    keymap: Vec<(u32, u8)>,
    keys_down: BTreeSet<u8>,
    buttons_down: BTreeSet<u8>,
}

impl Injector {
    /// Connects to `display` and reads its keyboard mapping.
    pub fn connect(display: &str) -> Result<Self, InputError> {
        let (conn, screen) =
            x11rb::connect(Some(display)).map_err(|e| InputError::Connect(display.into(), e.to_string()))?;
        let s = &conn.setup().roots[screen];
        let (root, width, height) = (s.root, s.width_in_pixels, s.height_in_pixels);
        let (min, max) = (conn.setup().min_keycode, conn.setup().max_keycode);
        let map = xproto::get_keyboard_mapping(&conn, min, max - min + 1).map_err(xerr)?.reply().map_err(xerr)?;
        let per = usize::from(map.keysyms_per_keycode.max(1));
        let mut keymap = Vec::new();
        for (i, syms) in map.keysyms.chunks(per).enumerate() {
            let code = min + u8::try_from(i).unwrap_or(0);
            for s in syms.iter().filter(|s| **s != 0) {
                keymap.push((*s, code));
            }
        }
        Ok(Self { conn, root, width, height, keymap, keys_down: BTreeSet::new(), buttons_down: BTreeSet::new() })
    }

    /// Screen size in pixels.
    pub fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    fn keycode(&self, keysym: u32) -> Option<u8> {
        // The first keycode listing the keysym: the unshifted position where it has one.
        self.keymap.iter().find(|(s, _)| *s == keysym).map(|(_, c)| *c)
    }

    fn fake(&self, kind: u8, detail: u8, x: i16, y: i16) -> Result<(), InputError> {
        xtest::fake_input(&self.conn, kind, detail, x11rb::CURRENT_TIME, self.root, x, y, 0).map_err(xerr)?;
        Ok(())
    }

    /// Injects one event.
    pub fn apply(&mut self, ev: &Event) -> Result<(), InputError> {
        match *ev {
            Event::Move { x, y } => {
                let cx = x.clamp(0, i32::from(self.width) - 1) as i16;
                let cy = y.clamp(0, i32::from(self.height) - 1) as i16;
                self.fake(xproto::MOTION_NOTIFY_EVENT, 0, cx, cy)?;
            }
            Event::Button { b, d } if (1..=9).contains(&b) => {
                self.fake(if d { xproto::BUTTON_PRESS_EVENT } else { xproto::BUTTON_RELEASE_EVENT }, b, 0, 0)?;
                if d {
                    self.buttons_down.insert(b);
                } else {
                    self.buttons_down.remove(&b);
                }
            }
            Event::Button { .. } => {}
            Event::Wheel { dx, dy } => {
                let steps = [(dy, 5u8, 4u8), (dx, 7, 6)];
                for (n, pos, neg) in steps {
                    let button = if n > 0 { pos } else { neg };
                    for _ in 0..n.unsigned_abs().min(20) {
                        self.fake(xproto::BUTTON_PRESS_EVENT, button, 0, 0)?;
                        self.fake(xproto::BUTTON_RELEASE_EVENT, button, 0, 0)?;
                    }
                }
            }
            Event::Key { k, d } => {
                let Some(code) = self.keycode(k) else {
                    tracing::debug!(keysym = k, "no keycode for keysym");
                    return Ok(());
                };
                self.fake(if d { xproto::KEY_PRESS_EVENT } else { xproto::KEY_RELEASE_EVENT }, code, 0, 0)?;
                if d {
                    self.keys_down.insert(code);
                } else {
                    self.keys_down.remove(&code);
                }
            }
        }
        self.conn.flush().map_err(xerr)?;
        Ok(())
    }

    /// Releases every key and button this injector pressed.
    pub fn release_all(&mut self) -> Result<(), InputError> {
        for code in std::mem::take(&mut self.keys_down) {
            self.fake(xproto::KEY_RELEASE_EVENT, code, 0, 0)?;
        }
        for b in std::mem::take(&mut self.buttons_down) {
            self.fake(xproto::BUTTON_RELEASE_EVENT, b, 0, 0)?;
        }
        self.conn.flush().map_err(xerr)?;
        Ok(())
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        let _ = self.release_all();
    }
}
