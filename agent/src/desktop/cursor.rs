//! The remote cursor, drawn by the browser: XFixes tells us when the cursor shape changes, we
//! read its image (premultiplied ARGB), turn it into a PNG with its hotspot, and the browser
//! sets it as the CSS cursor of the video. Capture runs without the pointer, so pointer motion
//! feels instant whatever the video latency.

use base64::Engine;
use x11rb::{
    connection::Connection,
    protocol::{Event, xfixes},
    rust_connection::RustConnection,
};

/// One cursor shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// XFixes serial: the same serial is the same image.
    pub serial: u32,
    /// Hotspot X.
    pub x: u16,
    /// Hotspot Y.
    pub y: u16,
    /// PNG, base64.
    pub png: String,
}

/// Why the cursor cannot be followed.
#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    /// The display could not be opened.
    #[error("cannot open display {0}: {1}")]
    Connect(String, String),
    /// The X server refused a request (no XFixes?).
    #[error("XFixes: {0}")]
    X(String),
}

fn xerr<E: std::fmt::Display>(e: E) -> CursorError {
    CursorError::X(e.to_string())
}

/// Follows the cursor of `display` on a thread of its own for the agent's lifetime, calling
/// `changed` with every new shape (the current one first).
pub fn follow(display: &str, changed: impl Fn(Shape) + Send + 'static) -> Result<(), CursorError> {
    let (conn, screen) =
        x11rb::connect(Some(display)).map_err(|e| CursorError::Connect(display.into(), e.to_string()))?;
    let root = conn.setup().roots[screen].root;
    xfixes::query_version(&conn, 4, 0).map_err(xerr)?.reply().map_err(xerr)?;
    xfixes::select_cursor_input(&conn, root, xfixes::CursorNotifyMask::DISPLAY_CURSOR).map_err(xerr)?;
    conn.flush().map_err(xerr)?;
    let first = read(&conn)?;
    std::thread::Builder::new()
        .name("cursor".into())
        .spawn(move || {
            let mut last = first.serial;
            changed(first);
            loop {
                match conn.wait_for_event() {
                    Ok(Event::XfixesCursorNotify(ev)) if ev.cursor_serial != last => match read(&conn) {
                        Ok(shape) => {
                            last = shape.serial;
                            changed(shape);
                        }
                        Err(e) => tracing::debug!(error = %e, "cursor image unreadable"),
                    },
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the X connection for the cursor closed; the cursor stays as it is");
                        return;
                    }
                }
            }
        })
        .map_err(xerr)?;
    Ok(())
}

fn read(conn: &RustConnection) -> Result<Shape, CursorError> {
    let img = xfixes::get_cursor_image(conn).map_err(xerr)?.reply().map_err(xerr)?;
    let png = png_of(img.width, img.height, &img.cursor_image).map_err(xerr)?;
    Ok(Shape {
        serial: img.cursor_serial,
        x: img.xhot,
        y: img.yhot,
        png: base64::engine::general_purpose::STANDARD.encode(png),
    })
}

/// A PNG of an XFixes cursor image (premultiplied ARGB, one `u32` per pixel).
pub fn png_of(width: u16, height: u16, argb: &[u32]) -> Result<Vec<u8>, png::EncodingError> {
    let rgba: Vec<u8> = argb
        .iter()
        .take(usize::from(width) * usize::from(height))
        .flat_map(|p| {
            let a = (p >> 24) & 0xff;
            let un = |c: u32| (c * 255 + a / 2).checked_div(a).map_or(0, |v| v.min(255) as u8);
            [un((p >> 16) & 0xff), un((p >> 8) & 0xff), un(p & 0xff), a as u8]
        })
        .collect();
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, u32::from(width.max(1)), u32::from(height.max(1)));
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    let mut data = rgba;
    data.resize(usize::from(width.max(1)) * usize::from(height.max(1)) * 4, 0);
    writer.write_image_data(&data)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn premultiplied_argb_becomes_straight_rgba_png() {
        // Opaque red, half-transparent white (premultiplied 0x80), fully transparent.
        let png = png_of(3, 1, &[0xffff_0000, 0x8080_8080, 0]).expect("png");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().expect("header");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("frame");
        assert_eq!((info.width, info.height), (3, 1));
        assert_eq!(&buf[..12], &[255, 0, 0, 255, 255, 255, 255, 128, 0, 0, 0, 0]);
    }
}
