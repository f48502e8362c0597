//! Test painter: paints the wall clock into the X display for glass-to-glass measurements, and
//! with `--motion` a band of scrolling noise that no encoder can compress below any bitrate
//! limit (so the stream always uses all the bitrate it is given).
//!
//! Top-left corner, cells of `CELL` pixels: row 0 holds the low 32 bits of the Unix time in
//! milliseconds (white = 1, most significant bit first), row 1 its complement, so a reader can
//! tell a clean frame from a torn or blurred one. Each paint goes to a pixmap first and then to
//! the window in one copy, so a grab never sees half a clock. Usage:
//! `vdi-test-painter [--motion]` with `DISPLAY` set; runs until killed.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use x11rb::{
    connection::{Connection, RequestConnection},
    protocol::xproto::{ConnectionExt, CreateGCAux, CreateWindowAux, EventMask, ImageFormat, Rectangle, WindowClass},
};

/// Clock cell size in pixels (the probe in `browser/drive.mjs` reads the same layout).
const CELL: u16 = 24;
/// Clock paints per second.
const RATE_HZ: u64 = 250;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let motion = std::env::args().any(|a| a == "--motion");
    let (conn, screen_num) = x11rb::connect(None)?;
    let screen = &conn.setup().roots[screen_num];
    let (w, h, depth, root) = (screen.width_in_pixels, screen.height_in_pixels, screen.root_depth, screen.root);
    let (white, black) = (screen.white_pixel, screen.black_pixel);

    let win = conn.generate_id()?;
    conn.create_window(
        depth,
        win,
        root,
        0,
        0,
        w,
        h,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new().override_redirect(1).background_pixel(0x0080_8080).event_mask(EventMask::EXPOSURE),
    )?;
    conn.map_window(win)?;
    let gc = conn.generate_id()?;
    conn.create_gc(gc, win, &CreateGCAux::new().foreground(white).graphics_exposures(0))?;

    let clock_w = 32 * CELL;
    let clock = conn.generate_id()?;
    conn.create_pixmap(depth, clock, win, clock_w, 2 * CELL)?;

    // Noise twice the screen wide: scrolling copies a window of it, all on the X server's side.
    let band_h = (h / 3).max(1);
    let band_y = h - band_h;
    let noise = conn.generate_id()?;
    if motion {
        conn.create_pixmap(depth, noise, win, 2 * w, band_h)?;
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let max_rows = (conn.maximum_request_bytes() / (2 * usize::from(w) * 4)).saturating_sub(1).max(1);
        let mut y = 0;
        while y < band_h {
            let rows = (band_h - y).min(max_rows as u16);
            let data: Vec<u8> = (0..usize::from(2 * w) * usize::from(rows) * 4)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            conn.put_image(ImageFormat::Z_PIXMAP, noise, gc, 2 * w, rows, 0, y as i16, 0, depth, &data)?;
            y += rows;
        }
    }
    conn.flush()?;

    let period = Duration::from_micros(1_000_000 / RATE_HZ);
    let start = Instant::now();
    let mut tick: u64 = 0;
    loop {
        if motion && tick.is_multiple_of(4) {
            // A large, irregular step defeats the encoder's motion search.
            let offset = ((tick / 4) * 97 % u64::from(w)) as i16;
            conn.copy_area(noise, win, gc, offset, 0, 0, band_y as i16, w, band_h)?;
        }
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u32).unwrap_or(0);
        let (mut ones, mut zeros) = (Vec::new(), Vec::new());
        for bit in 0..32u16 {
            let set = ms >> (31 - bit) & 1 == 1;
            let top = Rectangle { x: (bit * CELL) as i16, y: 0, width: CELL, height: CELL };
            let bottom = Rectangle { y: CELL as i16, ..top };
            if set {
                ones.push(top);
                zeros.push(bottom);
            } else {
                zeros.push(top);
                ones.push(bottom);
            }
        }
        conn.change_gc(gc, &x11rb::protocol::xproto::ChangeGCAux::new().foreground(white))?;
        conn.poly_fill_rectangle(clock, gc, &ones)?;
        conn.change_gc(gc, &x11rb::protocol::xproto::ChangeGCAux::new().foreground(black))?;
        conn.poly_fill_rectangle(clock, gc, &zeros)?;
        conn.copy_area(clock, win, gc, 0, 0, 0, 0, clock_w, 2 * CELL)?;
        // Round trip: the paint is on the screen before the next clock value is read.
        conn.get_input_focus()?.reply()?;
        tick += 1;
        let next = start + period * tick as u32;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}
