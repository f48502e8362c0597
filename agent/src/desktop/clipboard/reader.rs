//! Reads the desktop's CLIPBOARD as UTF-8 each time its owner changes, never holding more than
//! the limit. The size of a plain transfer is asked before its bytes are; an INCR transfer (how
//! owners hand over anything larger than one request: xclip, GTK and Qt above a few hundred KiB)
//! is counted piece by piece and, once past the limit, its pieces are dropped unread until the
//! owner finishes. (x11-clipboard's reader keeps the whole selection before anyone can look at
//! its size: a 1 GiB copy in the desktop grew the agent by 1 GiB.)
//!
//! Each owner is asked to write into a property of its own, taken in turn from a few: an owner
//! that lost the selection mid-INCR keeps writing pieces where it was told to, and in a shared
//! property its next piece could replace the new owner's answer (a 64 MiB copy followed by a
//! short one was then refused as a second huge copy). Pieces on a property that is no longer
//! current are deleted unread, so that owner finishes too.

use x11_clipboard::Context;
use x11rb::{
    connection::Connection,
    protocol::{
        Event, xfixes,
        xproto::{self, ConnectionExt as _},
    },
};

use super::{ClipboardError, Copied};

fn x<E: std::fmt::Display>(e: E) -> ClipboardError {
    ClipboardError(e.to_string())
}

/// The properties owners are asked to write into, in turn.
const PROPERTIES: [&str; 4] = ["VDI_CLIPBOARD_0", "VDI_CLIPBOARD_1", "VDI_CLIPBOARD_2", "VDI_CLIPBOARD_3"];

/// Where the transfer of the current owner's text stands.
enum Transfer {
    Idle,
    /// The owner was asked for UTF-8 text; its answer has not come.
    Asked,
    /// An INCR transfer within the limit so far: what has arrived.
    Incr(Vec<u8>),
    /// An INCR transfer past the limit: its pieces are deleted unread so the owner can finish.
    Discarding,
}

/// Follows the CLIPBOARD on `ctx`'s connection until the connection fails.
pub(super) fn follow(ctx: &Context, limit: usize, copied: &dyn Fn(Copied)) -> Result<(), ClipboardError> {
    let conn = &ctx.connection;
    let atoms = &ctx.atoms;
    let window = ctx.window;
    let properties = PROPERTIES
        .iter()
        .map(|name| Ok(conn.intern_atom(false, name.as_bytes()).map_err(x)?.reply().map_err(x)?.atom))
        .collect::<Result<Vec<u32>, ClipboardError>>()?;
    let mut turn = 0;
    let mut property = properties[0];
    let root = conn.setup().roots.get(ctx.screen).ok_or_else(|| x("no such screen"))?.root;
    xfixes::query_version(conn, 5, 0).map_err(x)?.reply().map_err(x)?;
    let mask = xfixes::SelectionEventMask::SET_SELECTION_OWNER
        | xfixes::SelectionEventMask::SELECTION_CLIENT_CLOSE
        | xfixes::SelectionEventMask::SELECTION_WINDOW_DESTROY;
    xfixes::select_selection_input(conn, root, atoms.clipboard, mask).map_err(x)?.check().map_err(x)?;
    let text = |bytes: Vec<u8>| {
        if !bytes.is_empty() {
            copied(Copied::Text(String::from_utf8_lossy(&bytes).into_owned()));
        }
    };
    let mut state = Transfer::Idle;
    loop {
        match conn.wait_for_event().map_err(x)? {
            Event::XfixesSelectionNotify(ev) if ev.selection == atoms.clipboard => {
                if ev.owner == x11rb::NONE {
                    continue;
                }
                // A new owner: whatever the last one was sending is abandoned, and the new one
                // writes elsewhere.
                turn = (turn + 1) % properties.len();
                property = properties[turn];
                conn.delete_property(window, property).map_err(x)?;
                conn.convert_selection(window, atoms.clipboard, atoms.utf8_string, property, ev.timestamp)
                    .map_err(x)?;
                conn.flush().map_err(x)?;
                state = Transfer::Asked;
            }
            Event::SelectionNotify(ev)
                if ev.selection == atoms.clipboard && ev.property != property && ev.property != x11rb::NONE =>
            {
                // An answer for an abandoned request: let its owner go.
                delete(conn, window, ev.property)?;
            }
            Event::SelectionNotify(ev) if ev.selection == atoms.clipboard && matches!(state, Transfer::Asked) => {
                state = Transfer::Idle;
                if ev.property == x11rb::NONE {
                    continue; // the owner has no text
                }
                let (kind, size) = peek(conn, window, property)?;
                if kind == atoms.incr {
                    let announced = conn
                        .get_property(false, window, property, xproto::AtomEnum::ANY, 0, 1)
                        .map_err(x)?
                        .reply()
                        .map_err(x)?
                        .value32()
                        .and_then(|mut v| v.next())
                        .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
                    // Deleting the property is the owner's cue to send the first piece.
                    delete(conn, window, property)?;
                    state = if announced > limit {
                        copied(Copied::TooLarge(announced));
                        Transfer::Discarding
                    } else {
                        Transfer::Incr(Vec::new())
                    };
                } else if size > limit {
                    delete(conn, window, property)?;
                    copied(Copied::TooLarge(size));
                } else {
                    text(take(conn, window, property, size)?);
                }
            }
            Event::PropertyNotify(ev)
                if ev.window == window
                    && ev.atom != property
                    && properties.contains(&ev.atom)
                    && ev.state == xproto::Property::NEW_VALUE =>
            {
                // A piece from an owner that lost the selection mid-transfer: dropped unread.
                delete(conn, window, ev.atom)?;
            }
            Event::PropertyNotify(ev)
                if ev.window == window && ev.atom == property && ev.state == xproto::Property::NEW_VALUE =>
            {
                let (_, size) = match state {
                    Transfer::Incr(_) | Transfer::Discarding => peek(conn, window, property)?,
                    Transfer::Idle | Transfer::Asked => continue,
                };
                state = match std::mem::replace(&mut state, Transfer::Idle) {
                    // An empty piece ends the transfer.
                    Transfer::Incr(buf) if size == 0 => {
                        delete(conn, window, property)?;
                        text(buf);
                        Transfer::Idle
                    }
                    Transfer::Incr(buf) if buf.len().saturating_add(size) > limit => {
                        delete(conn, window, property)?;
                        copied(Copied::TooLarge(buf.len().saturating_add(size)));
                        Transfer::Discarding
                    }
                    Transfer::Incr(mut buf) => {
                        buf.extend(take(conn, window, property, size)?);
                        Transfer::Incr(buf)
                    }
                    Transfer::Discarding => {
                        delete(conn, window, property)?;
                        if size == 0 { Transfer::Idle } else { Transfer::Discarding }
                    }
                    other => other,
                };
            }
            _ => {}
        }
    }
}

/// The type and size in bytes of `property`, without its bytes.
fn peek(conn: &impl Connection, window: u32, property: u32) -> Result<(u32, usize), ClipboardError> {
    let r = conn.get_property(false, window, property, xproto::AtomEnum::ANY, 0, 0).map_err(x)?.reply().map_err(x)?;
    Ok((r.type_, usize::try_from(r.bytes_after).unwrap_or(usize::MAX)))
}

/// Reads and deletes `property` (`size` bytes, from [`peek`]).
fn take(conn: &impl Connection, window: u32, property: u32, size: usize) -> Result<Vec<u8>, ClipboardError> {
    let words = u32::try_from(size.div_ceil(4)).unwrap_or(u32::MAX);
    let r =
        conn.get_property(true, window, property, xproto::AtomEnum::ANY, 0, words).map_err(x)?.reply().map_err(x)?;
    Ok(r.value)
}

fn delete(conn: &impl Connection, window: u32, property: u32) -> Result<(), ClipboardError> {
    conn.delete_property(window, property).map_err(x)?;
    conn.flush().map_err(x)
}
