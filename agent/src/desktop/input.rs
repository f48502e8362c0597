//! Input from the browser injected into the X server with XTest, and the screen size set with
//! RandR. Every key and button pressed through here is remembered and released when asked, when
//! the page loses focus, and when the viewer goes, so nothing stays stuck. Keysyms missing from
//! the server's keymap (a layout other than the server's, composed text) are bound to a spare
//! keycode for the moment they are typed. The server's own auto-repeat is off while the agent
//! runs: repeats come from the browser, not from a timer racing the network.

use std::collections::BTreeSet;

use x11rb::{
    connection::Connection,
    protocol::{xproto, xtest},
    rust_connection::RustConnection,
};

use crate::{desktop::resize, link::protocol::FromViewer};

/// Why input could not be injected.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The display could not be opened.
    #[error("cannot open display {0}: {1}")]
    Connect(String, String),
    /// The X server refused a request.
    #[error("X request failed: {0}")]
    X(String),
    /// A keysym that acts on the X server rather than typing (see [`denied`]).
    #[error("keysym {0:#x} acts on the X server and is not sent")]
    Denied(u32),
}

/// Keysyms a viewer may not send: their XKB actions act on the X server itself rather than type.
/// `Terminate_Server` (0xfed5) stops it for every client; the virtual screen keys and the XF86
/// server actions (0x1008fe01.. `Switch_VT_n`, `Ungrab`, `ClearGrab`, `Next_VMode`, `LogGrabInfo`)
/// switch terminals, break other clients' grabs and write to the server's log; the AccessX
/// toggles (0xfe70..) and pointer keys (0xfee0..) change how the keyboard behaves for everyone.
/// AltGr (`ISO_Level3_Shift`, 0xfe03), the other ISO keys and dead keys (0xfe50..) stay allowed.
pub fn denied(keysym: u32) -> bool {
    matches!(keysym, 0xfe70..=0xfe7f | 0xfed0..=0xfeff | 0x1008_fe00..=0x1008_feff)
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
    keymap: Vec<(u32, u8, usize)>,
    per_keycode: u8,
    /// Keycodes with no keysym, lent to keysyms the keymap lacks (round robin).
    spare: Vec<u8>,
    next_spare: usize,
    /// Spare keycodes this injector bound; unbound again when it goes.
    bound: BTreeSet<u8>,
    shift_codes: BTreeSet<u8>,
    repeat_was_on: bool,
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
        let mut spare = Vec::new();
        for (i, syms) in map.keysyms.chunks(per).enumerate() {
            let code = min.saturating_add(u8::try_from(i).unwrap_or(u8::MAX));
            if syms.iter().all(|s| *s == 0) {
                spare.push(code);
            }
            for (col, s) in syms.iter().enumerate().filter(|(_, s)| **s != 0) {
                keymap.push((*s, code, col));
            }
        }
        let shift_codes = keymap.iter().filter(|(s, _, _)| *s == 0xffe1 || *s == 0xffe2).map(|(_, c, _)| *c).collect();
        let control = xproto::get_keyboard_control(&conn).map_err(xerr)?.reply().map_err(xerr)?;
        let repeat_was_on = control.global_auto_repeat == xproto::AutoRepeatMode::ON;
        let off = xproto::ChangeKeyboardControlAux::new().auto_repeat_mode(xproto::AutoRepeatMode::OFF);
        xproto::change_keyboard_control(&conn, &off).map_err(xerr)?;
        conn.flush().map_err(xerr)?;
        Ok(Self {
            conn,
            root,
            width,
            height,
            keymap,
            per_keycode: map.keysyms_per_keycode.max(1),
            shift_codes,
            spare,
            next_spare: 0,
            bound: BTreeSet::new(),
            repeat_was_on,
            keys_down: BTreeSet::new(),
            buttons_down: BTreeSet::new(),
        })
    }

    /// Screen size in pixels.
    pub fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// Whether the server's auto-repeat was on before this injector turned it off.
    pub fn auto_repeat_was_on(&self) -> bool {
        self.repeat_was_on
    }

    /// Turns the server's auto-repeat on or off.
    pub fn set_auto_repeat(&self, on: bool) -> Result<(), InputError> {
        let mode = if on { xproto::AutoRepeatMode::ON } else { xproto::AutoRepeatMode::OFF };
        let aux = xproto::ChangeKeyboardControlAux::new().auto_repeat_mode(mode);
        xproto::change_keyboard_control(&self.conn, &aux).map_err(xerr)?.check().map_err(xerr)
    }

    /// The keycode for a keysym at keymap column `want` (0 unshifted, 1 shifted; `None`: any).
    /// A keysym the keymap lacks there (another layout: AZERTY digits, AltGr symbols, ö) is
    /// bound to a spare keycode in every column, so it types itself whatever the modifiers.
    fn keycode(&mut self, keysym: u32, want: Option<usize>) -> Result<Option<u8>, InputError> {
        let mut found: Vec<&(u32, u8, usize)> =
            self.keymap.iter().filter(|(s, _, col)| *s == keysym && want.is_none_or(|w| w == *col)).collect();
        found.sort_by_key(|(_, _, col)| *col);
        if let Some((_, code, _)) = found.first() {
            return Ok(Some(*code));
        }
        let free: Vec<u8> = self.spare.iter().copied().filter(|c| !self.keys_down.contains(c)).collect();
        if free.is_empty() {
            return Ok(None);
        }
        let code = free[self.next_spare % free.len()];
        self.next_spare = self.next_spare.wrapping_add(1);
        let syms = vec![keysym; usize::from(self.per_keycode)];
        xproto::change_keyboard_mapping(&self.conn, 1, code, self.per_keycode, &syms)
            .map_err(xerr)?
            .check()
            .map_err(xerr)?;
        self.keymap.retain(|(_, c, _)| *c != code);
        self.keymap.extend((0..syms.len()).map(|col| (keysym, code, col)));
        self.bound.insert(code);
        Ok(Some(code))
    }

    fn key(&mut self, keysym: u32, down: bool, want: Option<usize>) -> Result<(), InputError> {
        if denied(keysym) {
            // Never bound to a keycode, so the X server's XKB actions for it cannot run.
            return Err(InputError::Denied(keysym));
        }
        let Some(code) = self.keycode(keysym, want)? else {
            tracing::debug!(keysym, "no keycode for keysym and no spare keycode");
            return Ok(());
        };
        if down && self.keys_down.contains(&code) {
            // The browser's repeat. With the server's auto-repeat off, X drops a press of a key
            // that is down, so each repeat is a release and a press.
            self.fake(xproto::KEY_RELEASE_EVENT, code, 0, 0)?;
        }
        self.fake(if down { xproto::KEY_PRESS_EVENT } else { xproto::KEY_RELEASE_EVENT }, code, 0, 0)?;
        if down {
            self.keys_down.insert(code);
        } else {
            self.keys_down.remove(&code);
        }
        Ok(())
    }

    fn fake(&self, kind: u8, detail: u8, x: i16, y: i16) -> Result<(), InputError> {
        xtest::fake_input(&self.conn, kind, detail, x11rb::CURRENT_TIME, self.root, x, y, 0).map_err(xerr)?;
        Ok(())
    }

    /// Injects one event; a size request answers with the screen size it got.
    pub fn apply(&mut self, ev: &FromViewer, max_size: (u32, u32)) -> Result<Option<(u16, u16)>, InputError> {
        let mut resized = None;
        match ev {
            FromViewer::Move { x, y } => {
                // The X server confines the pointer to the screen, whatever its size is now.
                let cx = i16::try_from((*x).clamp(0, i32::from(i16::MAX))).unwrap_or(0);
                let cy = i16::try_from((*y).clamp(0, i32::from(i16::MAX))).unwrap_or(0);
                self.fake(xproto::MOTION_NOTIFY_EVENT, 0, cx, cy)?;
            }
            FromViewer::RelativeMove { dx, dy } => {
                let c = |v: i32| i16::try_from(v.clamp(-4096, 4096)).unwrap_or(0);
                // detail 1: the coordinates are relative to the pointer.
                self.fake(xproto::MOTION_NOTIFY_EVENT, 1, c(*dx), c(*dy))?;
            }
            FromViewer::Button { b, d } if (1..=9).contains(b) => {
                self.fake(if *d { xproto::BUTTON_PRESS_EVENT } else { xproto::BUTTON_RELEASE_EVENT }, *b, 0, 0)?;
                if *d {
                    self.buttons_down.insert(*b);
                } else {
                    self.buttons_down.remove(b);
                }
            }
            FromViewer::Wheel { dx, dy } => {
                let steps = [(*dy, 5u8, 4u8), (*dx, 7, 6)];
                for (n, pos, neg) in steps {
                    let button = if n > 0 { pos } else { neg };
                    for _ in 0..n.unsigned_abs().min(20) {
                        self.fake(xproto::BUTTON_PRESS_EVENT, button, 0, 0)?;
                        self.fake(xproto::BUTTON_RELEASE_EVENT, button, 0, 0)?;
                    }
                }
            }
            FromViewer::Key { k, d, .. } => {
                // Characters must come from the column the Shift state selects; function and
                // modifier keys (0xfe00..0xffff) from wherever they are.
                let character = *k < 0xfe00 || *k >= 0x0100_0000;
                let shifted = self.keys_down.iter().any(|c| self.shift_codes.contains(c));
                self.key(*k, *d, character.then_some(usize::from(shifted)))?;
            }
            FromViewer::Text { s } => {
                // Typed as-is, whatever modifiers are down, so each character binds unshifted.
                for ch in s.chars().take(4096) {
                    let sym = keysym_of(ch);
                    self.key(sym, true, Some(0))?;
                    self.key(sym, false, Some(0))?;
                }
            }
            FromViewer::ReleaseAll => self.release_all()?,
            FromViewer::Size { w, h } => {
                let (w, h) = resize::clamp(*w, *h, max_size);
                let got = match resize::apply(&self.conn, self.root, w, h) {
                    Ok(got) => got,
                    Err(e) => {
                        tracing::warn!(error = %e, width = w, height = h, "screen not resized; the browser scales the picture");
                        (self.width, self.height)
                    }
                };
                (self.width, self.height) = got;
                resized = Some(got);
            }
            FromViewer::Button { .. } | FromViewer::Clipboard { .. } | FromViewer::Phase { .. } => {}
        }
        self.conn.flush().map_err(xerr)?;
        Ok(resized)
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
        // Give the spare keycodes back, so the next viewer's injector finds them spare.
        let none = vec![0u32; usize::from(self.per_keycode)];
        for code in std::mem::take(&mut self.bound) {
            let _ = xproto::change_keyboard_mapping(&self.conn, 1, code, self.per_keycode, &none);
        }
        let _ = self.conn.flush();
    }
}

/// The X keysym of a character: Latin-1 keysyms are their code point, the rest of Unicode is
/// `0x0100_0000 + code point`; newline and tab are the Return and Tab keys.
pub fn keysym_of(ch: char) -> u32 {
    let cp = u32::from(ch);
    match ch {
        '\n' | '\r' => 0xff0d,
        '\t' => 0xff09,
        _ if (0x20..0x7f).contains(&cp) || (0xa0..0x100).contains(&cp) => cp,
        _ => 0x0100_0000 + cp,
    }
}

#[cfg(test)]
mod tests {
    use super::{denied, keysym_of};

    #[test]
    fn keysyms_of_characters() {
        assert_eq!(keysym_of('a'), 0x61);
        assert_eq!(keysym_of('ö'), 0xf6);
        assert_eq!(keysym_of('€'), 0x0100_20ac);
        assert_eq!(keysym_of('\n'), 0xff0d);
    }

    #[test]
    fn server_actions_are_denied_and_typing_keys_are_not() {
        // Terminate_Server, Switch_VT_1, Ungrab, ClearGrab, Next_VMode, MouseKeys_Enable, Pointer_Button1.
        for k in [0xfed5, 0x1008_fe01, 0x1008_fe20, 0x1008_fe21, 0x1008_fe22, 0xfe76, 0xfee9] {
            assert!(denied(k), "{k:#x}");
        }
        // a, ö, Return, BackSpace, Control_L, ISO_Level3_Shift (AltGr), dead_acute, €, XF86AudioMute.
        for k in [0x61, 0xf6, 0xff0d, 0xff08, 0xffe3, 0xfe03, 0xfe51, 0x0100_20ac, 0x1008_ff12] {
            assert!(!denied(k), "{k:#x}");
        }
        // No character typed as text maps to a denied keysym.
        for ch in ['\u{fed5}', '\u{8fe01}', 'a', '\n'] {
            assert!(!denied(keysym_of(ch)), "{ch:?}");
        }
    }
}
