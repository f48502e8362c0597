//! Resizes the X screen to the browser's video area with RandR 1.2: pick the output in use, find
//! a mode of the wanted size or create one, grow the screen, switch the CRTC, shrink the screen.
//! Xorg with the dummy or a real driver allows it; Debian 12's Xvfb fixes the screen at its start
//! size, which shows as an error here and a scaled picture in the browser.

use x11rb::{
    connection::Connection,
    protocol::{randr, xproto},
    rust_connection::RustConnection,
};

/// The smallest screen the agent sets.
pub const MIN: (u32, u32) = (320, 240);

/// Why the screen could not be resized.
#[derive(Debug, thiserror::Error)]
pub enum ResizeError {
    /// No connected output drives a CRTC.
    #[error("the X server has no active RandR output")]
    NoOutput,
    /// The X server refused a RandR request.
    #[error("the X server cannot change its screen size ({0})")]
    Refused(String),
}

fn refused<E: std::fmt::Display>(e: E) -> ResizeError {
    ResizeError::Refused(e.to_string())
}

/// The size the agent sets for a request: within `[MIN, max]`, both even (H.264 wants even
/// 4:2:0 dimensions).
pub fn clamp(w: u32, h: u32, max: (u32, u32)) -> (u16, u16) {
    let even = |v: u32, lo: u32, hi: u32| -> u16 { u16::try_from(v.clamp(lo, hi.max(lo)) & !1).unwrap_or(0xfffe) };
    (even(w, MIN.0, max.0.min(8192)), even(h, MIN.1, max.1.min(8192)))
}

/// Sets the screen of `root` to `w`x`h` and returns the size the screen has afterwards.
pub fn apply(conn: &RustConnection, root: xproto::Window, w: u16, h: u16) -> Result<(u16, u16), ResizeError> {
    let res = randr::get_screen_resources_current(conn, root).map_err(refused)?.reply().map_err(refused)?;
    let mut active = None;
    for &output in &res.outputs {
        let info =
            randr::get_output_info(conn, output, res.config_timestamp).map_err(refused)?.reply().map_err(refused)?;
        if info.connection == randr::Connection::CONNECTED && info.crtc != 0 {
            active = Some((output, info));
            break;
        }
    }
    let (output, info) = active.ok_or(ResizeError::NoOutput)?;
    let crtc =
        randr::get_crtc_info(conn, info.crtc, res.config_timestamp).map_err(refused)?.reply().map_err(refused)?;
    if (crtc.width, crtc.height) == (w, h) {
        return current(conn, root);
    }
    let existing = res.modes.iter().find(|m| m.width == w && m.height == h && info.modes.contains(&m.id)).map(|m| m.id);
    let mode = match existing {
        Some(id) => id,
        None => {
            let name = format!("{w}x{h}_vdi");
            let reply = randr::create_mode(conn, root, mode_info(w, h, &name), name.as_bytes())
                .map_err(refused)?
                .reply()
                .map_err(refused)?;
            randr::add_output_mode(conn, output, reply.mode).map_err(refused)?.check().map_err(refused)?;
            reply.mode
        }
    };
    let (cw, ch) = current(conn, root)?;
    // The screen must contain the CRTC at every step: grow first, switch, then shrink.
    set_screen(conn, root, w.max(cw), h.max(ch))?;
    let set = randr::set_crtc_config(
        conn,
        info.crtc,
        x11rb::CURRENT_TIME,
        res.config_timestamp,
        0,
        0,
        mode,
        crtc.rotation,
        &[output],
    )
    .map_err(refused)?
    .reply()
    .map_err(refused)?;
    if set.status != randr::SetConfig::SUCCESS {
        return Err(ResizeError::Refused(format!("{:?}", set.status)));
    }
    set_screen(conn, root, w, h)?;
    forget_old_modes(conn, output, &res, mode);
    current(conn, root)
}

/// The suffix of the modes the agent creates; no driver or EDID names a mode like it.
const MODE_SUFFIX: &[u8] = b"_vdi";

/// Deletes the modes the agent created for earlier sizes, so that a viewer resizing its window a
/// thousand times leaves one mode in the server (and in every `xrandr` listing), not a thousand.
/// `keep` is the mode in use. A failure only leaves a mode behind, so it is logged, not returned.
fn forget_old_modes(
    conn: &RustConnection,
    output: randr::Output,
    res: &randr::GetScreenResourcesCurrentReply,
    keep: randr::Mode,
) {
    let mut names = res.names.as_slice();
    for m in &res.modes {
        let (name, rest) = names.split_at(usize::from(m.name_len).min(names.len()));
        names = rest;
        if m.id == keep || !name.ends_with(MODE_SUFFIX) {
            continue;
        }
        let deleted = randr::delete_output_mode(conn, output, m.id)
            .map_err(refused)
            .and_then(|c| c.check().map_err(refused))
            .and_then(|()| randr::destroy_mode(conn, m.id).map_err(refused))
            .and_then(|c| c.check().map_err(refused));
        if let Err(e) = deleted {
            tracing::debug!(error = %e, mode = %String::from_utf8_lossy(name), "an earlier mode was not deleted");
        }
    }
}

fn set_screen(conn: &RustConnection, root: xproto::Window, w: u16, h: u16) -> Result<(), ResizeError> {
    // 96 dpi, what desktops assume when the monitor says nothing.
    let mm = |px: u16| (u32::from(px) * 254).div_ceil(960);
    randr::set_screen_size(conn, root, w, h, mm(w), mm(h)).map_err(refused)?.check().map_err(refused)
}

/// The root window's size now.
pub fn current(conn: &RustConnection, root: xproto::Window) -> Result<(u16, u16), ResizeError> {
    let g = xproto::get_geometry(conn, root).map_err(refused)?.reply().map_err(refused)?;
    conn.flush().map_err(refused)?;
    Ok((g.width, g.height))
}

/// A 60 Hz mode with reduced blanking; the timings only matter to real monitors.
fn mode_info(w: u16, h: u16, name: &str) -> randr::ModeInfo {
    let htotal = w.saturating_add(160);
    let vtotal = h.saturating_add(30);
    randr::ModeInfo {
        id: 0,
        width: w,
        height: h,
        dot_clock: u32::from(htotal) * u32::from(vtotal) * 60,
        hsync_start: w.saturating_add(48),
        hsync_end: w.saturating_add(80),
        htotal,
        hskew: 0,
        vsync_start: h.saturating_add(3),
        vsync_end: h.saturating_add(8),
        vtotal,
        name_len: u16::try_from(name.len()).unwrap_or(0),
        mode_flags: randr::ModeFlag::HSYNC_POSITIVE | randr::ModeFlag::VSYNC_NEGATIVE,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn clamps_to_bounds_and_even_sizes() {
        assert_eq!(clamp(1000, 700, (2560, 1600)), (1000, 700));
        assert_eq!(clamp(1001, 701, (2560, 1600)), (1000, 700));
        assert_eq!(clamp(5000, 3000, (2560, 1600)), (2560, 1600));
        assert_eq!(clamp(10, 0, (2560, 1600)), (320, 240));
    }

    proptest! {
        #[test]
        fn every_request_lands_in_bounds(w in any::<u32>(), h in any::<u32>(), mw in 0u32..10_000, mh in 0u32..10_000) {
            let (cw, ch) = clamp(w, h, (mw, mh));
            prop_assert!(cw % 2 == 0 && ch % 2 == 0);
            prop_assert!(u32::from(cw) >= MIN.0 && u32::from(ch) >= MIN.1);
            prop_assert!(u32::from(cw) <= mw.clamp(MIN.0, 8192) && u32::from(ch) <= mh.clamp(MIN.1, 8192));
        }
    }
}
