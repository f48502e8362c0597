//! One viewer's data channel: input, size requests and "release everything" go to a thread that
//! owns an X connection (XTest and RandR); clipboard pieces are reassembled and handed to the
//! desktop's clipboard; the desktop's messages come back through the same channel. When the
//! channel closes, every key and button pressed through it is released.

use std::sync::{Arc, Mutex, mpsc};

use crate::{
    desktop::{self, Desktop},
    input::Injector,
    protocol::{Assembled, Assembler, FromViewer, ToViewer},
};

/// Wires `channel` for viewer `id` on `display`; `capture` is the viewer's capture element, which
/// `phase` messages move.
pub fn attach(
    channel: &gst_webrtc::WebRTCDataChannel,
    id: u64,
    display: &str,
    desktop: Arc<Desktop>,
    capture: gst::glib::WeakRef<gst::Element>,
) {
    let (tx, rx) = mpsc::channel::<FromViewer>();
    let display = display.to_owned();
    let max_size = desktop.features.max_size;
    let replies = desktop.clone();
    let spawned = std::thread::Builder::new().name(format!("input-{id}")).spawn(move || {
        let mut injector = match Injector::connect(&display) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "input disabled");
                return;
            }
        };
        while let Ok(ev) = rx.recv() {
            match injector.apply(&ev, max_size) {
                Ok(Some((w, h))) => {
                    let note = match ev {
                        FromViewer::Size { w: rw, h: rh } if (u32::from(w), u32::from(h)) != (rw, rh) => {
                            Some(format!("asked for {rw}x{rh}; the screen is {w}x{h}"))
                        }
                        _ => None,
                    };
                    tracing::info!(width = w, height = h, "screen size set for the viewer");
                    replies.send(&ToViewer::Size { w: u32::from(w), h: u32::from(h), note });
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "input event failed"),
            }
        }
        if let Err(e) = injector.release_all() {
            tracing::warn!(error = %e, "releasing keys failed");
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "input disabled: no thread");
        return;
    }

    let opened = desktop.clone();
    channel.connect_on_open(move |ch| opened.attach(id, ch.clone()));

    let sender = Arc::new(Mutex::new(Some(tx)));
    let on_msg = sender.clone();
    let assembler = Mutex::new(Assembler::default());
    let resize = desktop.features.resize;
    let on_msg_desktop = desktop.clone();
    channel.connect_on_message_string(move |_, msg| {
        let Some(msg) = msg else { return };
        let ev = match serde_json::from_str::<FromViewer>(msg) {
            Ok(ev) => ev,
            Err(e) => {
                tracing::debug!(error = %e, "bad data channel message");
                return;
            }
        };
        match ev {
            FromViewer::Clipboard { s, more } => {
                let limit = on_msg_desktop.features.clip_max;
                let done = match assembler.lock() {
                    Ok(mut a) => a.push(&s, more, limit),
                    Err(_) => return,
                };
                let refused = match done {
                    Assembled::Pending => None,
                    Assembled::Done(text) => on_msg_desktop.paste(text).err(),
                    Assembled::TooLarge(size) => Some(desktop::too_large("pasted", size, limit)),
                };
                if let Some(msg) = refused {
                    tracing::info!(reason = %msg, "paste refused");
                    on_msg_desktop.send(&ToViewer::Notice { msg });
                }
            }
            FromViewer::Size { .. } if !resize => {}
            FromViewer::Phase { f } => {
                if let Some(delay) = capture.upgrade().and_then(|c| crate::pacing::delay_capture(&c, f)) {
                    on_msg_desktop.metrics.capture_phase_moves.inc();
                    tracing::debug!(delay_us = delay.useconds(), "capture phase moved for the viewer");
                }
            }
            ev => {
                if let Some(tx) = on_msg.lock().ok().and_then(|g| g.clone()) {
                    let _ = tx.send(ev);
                }
            }
        }
    });
    channel.connect_on_close(move |_| {
        desktop.detach(id);
        if let Ok(mut g) = sender.lock() {
            g.take();
        }
    });
}
