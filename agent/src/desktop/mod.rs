//! What the desktop tells the viewer outside the video: the cursor shape and copied text, from
//! watchers that live as long as the agent, forwarded to whichever viewer's data channel is
//! open. Each cursor image goes to a viewer once; after that its serial is enough.
//!
//! Its parts: [`input`] (the viewer's keys and pointer through XTest), [`resize`] (RandR: the
//! screen follows the browser window), [`cursor`] (XFixes cursor images), [`clipboard`] (the X
//! selections both ways), [`audio`] (PulseAudio to Opus).

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, Weak},
};

pub mod audio;
pub mod clipboard;
pub mod cursor;
pub mod input;
pub mod resize;

use self::clipboard::{Clipboard, Copied, Direction};
use crate::{
    link::protocol::{self, ToViewer},
    metrics::Metrics,
};

/// What the desktop allows, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    /// Resize the screen to the browser.
    pub resize: bool,
    /// Largest screen the browser may ask for.
    pub max_size: (u32, u32),
    /// Clipboard directions.
    pub clipboard: Direction,
    /// Largest clipboard text in bytes.
    pub clip_max: usize,
    /// Sound is streamed.
    pub audio: bool,
}

struct Viewer {
    id: u64,
    channel: gst_webrtc::WebRTCDataChannel,
    cursors_sent: HashSet<u32>,
}

/// The desktop side shared by all viewer sessions.
pub struct Desktop {
    /// What is allowed.
    pub features: Features,
    viewer: Mutex<Option<Viewer>>,
    cursor: Mutex<Option<cursor::Shape>>,
    clipboard: Option<Arc<Clipboard>>,
    /// The agent's metrics.
    pub metrics: Arc<Metrics>,
}

impl Desktop {
    /// Starts following the cursor and (where allowed) the clipboard of `display`. Either may be
    /// unavailable; the stream works without them and the log says why.
    pub fn start(display: &str, features: Features, metrics: Arc<Metrics>) -> Arc<Self> {
        let clipboard = if features.clipboard == Direction::Off {
            None
        } else {
            Clipboard::connect().map_err(|e| tracing::warn!(error = %e, "no clipboard sharing")).ok()
        };
        let me = Arc::new(Self { features, viewer: Mutex::new(None), cursor: Mutex::new(None), clipboard, metrics });
        let weak = Arc::downgrade(&me);
        if let Err(e) = cursor::follow(display, move |shape| with(&weak, |d| d.cursor_changed(shape))) {
            tracing::warn!(error = %e, "the cursor is not followed; the browser shows its default cursor");
        }
        if let Some(clip) = &me.clipboard
            && features.clipboard.outbound()
        {
            let weak = Arc::downgrade(&me);
            clip.follow(features.clip_max, move |c| with(&weak, |d| d.copied(c)));
        }
        me
    }

    /// A viewer's data channel opened: it gets what this desktop allows and the cursor now.
    pub fn attach(&self, id: u64, channel: gst_webrtc::WebRTCDataChannel) {
        let f = self.features;
        let hello = ToViewer::Hello {
            v: 1,
            resize: f.resize,
            clipboard: if self.clipboard.is_some() { f.clipboard.name() } else { "none" },
            clip_max: f.clip_max,
            audio: f.audio,
        };
        send_text(&channel, &hello.json());
        if let Ok(mut v) = self.viewer.lock() {
            *v = Some(Viewer { id, channel, cursors_sent: HashSet::new() });
        }
        let current = self.cursor.lock().ok().and_then(|c| c.clone());
        if let Some(shape) = current {
            self.send_cursor(&shape);
        }
    }

    /// The viewer's channel closed.
    pub fn detach(&self, id: u64) {
        if let Ok(mut v) = self.viewer.lock()
            && v.as_ref().is_some_and(|v| v.id == id)
        {
            *v = None;
        }
    }

    /// Sends a message to the viewer, if one is attached.
    pub fn send(&self, msg: &ToViewer) {
        if let Ok(v) = self.viewer.lock()
            && let Some(v) = v.as_ref()
        {
            send_text(&v.channel, &msg.json());
        }
    }

    fn cursor_changed(&self, shape: cursor::Shape) {
        self.metrics.cursor_changes.inc();
        // Stored first: a viewer attaching meanwhile reads this shape, not the one before.
        if let Ok(mut c) = self.cursor.lock() {
            *c = Some(shape.clone());
        }
        self.send_cursor(&shape);
    }

    fn send_cursor(&self, shape: &cursor::Shape) {
        if let Ok(mut v) = self.viewer.lock()
            && let Some(v) = v.as_mut()
        {
            let first = v.cursors_sent.insert(shape.serial);
            let msg = ToViewer::Cursor {
                serial: shape.serial,
                x: shape.x,
                y: shape.y,
                png: first.then(|| shape.png.clone()),
            };
            send_text(&v.channel, &msg.json());
        }
    }

    fn copied(&self, copied: Copied) {
        match copied {
            Copied::Text(text) => {
                self.metrics.clipboard.get_or_create(&crate::metrics::label("direction", "out")).inc();
                let pieces = protocol::chunks(&text, protocol::CLIPBOARD_CHUNK);
                let last = pieces.len().saturating_sub(1);
                for (i, piece) in pieces.into_iter().enumerate() {
                    self.send(&ToViewer::Clipboard { s: piece.to_owned(), more: i < last });
                }
            }
            Copied::TooLarge(size) => {
                self.metrics.clipboard.get_or_create(&crate::metrics::label("direction", "refused")).inc();
                self.send(&ToViewer::Notice { msg: too_large("copied in the desktop", size, self.features.clip_max) });
            }
        }
    }

    /// Text the viewer pasted: becomes the desktop's CLIPBOARD when allowed. The error is the
    /// message for the person.
    pub fn paste(&self, text: String) -> Result<(), String> {
        let clip = match &self.clipboard {
            Some(c) if self.features.clipboard.inbound() => c,
            _ => return Err("pasting into this desktop is turned off".into()),
        };
        clip.set(text).map_err(|e| e.to_string())?;
        self.metrics.clipboard.get_or_create(&crate::metrics::label("direction", "in")).inc();
        Ok(())
    }
}

/// The message for clipboard text over the bound.
pub fn too_large(what: &str, size: usize, limit: usize) -> String {
    format!("the text {what} was not transferred: it is {} and the clipboard limit is {}", human(size), human(limit))
}

fn human(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
    } else if bytes >= 1 << 10 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} bytes")
    }
}

fn with(weak: &Weak<Desktop>, f: impl FnOnce(&Desktop)) {
    if let Some(d) = weak.upgrade() {
        f(&d);
    }
}

fn send_text(channel: &gst_webrtc::WebRTCDataChannel, text: &str) {
    if let Err(e) = channel.send_string_full(Some(text)) {
        tracing::debug!(error = %e, "data channel message not sent");
    }
}
