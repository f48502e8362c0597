//! One viewer's data channel: input, size requests and "release everything" go to a thread that
//! owns an X connection (XTest and RandR); clipboard pieces are reassembled and handed to the
//! desktop's clipboard; the desktop's messages come back through the same channel. When the
//! channel closes, every key and button pressed through it is released.
//!
//! A viewer cannot flood the X server: events wait in a bounded queue and pass a rate limit
//! (a text message costs one event per character); what does not fit is dropped and counted.
//! A dropped release would leave a key down, so dropping one releases everything instead.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::Instant,
};

use crate::{
    desktop::input::{Injector, InputError},
    desktop::{self, Desktop},
    link::protocol::{Assembled, Assembler, FromViewer, ToViewer},
    metrics::Metrics,
};

/// Events that may wait for the X server. A text message holds at most 64 KiB (the data
/// channel's message size), so the queue holds at most 16 MiB however fast a viewer sends.
const QUEUE: usize = 256;
/// Sustained events per second a viewer may send: far above a person typing and a 1000 Hz mouse
/// (browsers send pointer moves once per frame), far below what takes an X server's time.
const RATE: f64 = 2000.0;
/// Events a viewer may send at once above the rate (a paste typed as text, a fling of the wheel).
const BURST: f64 = 4000.0;

/// A token bucket: `rate` tokens a second, at most `burst` saved.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        Self { rate, burst, tokens: burst, last: now }
    }

    /// Takes `n` tokens if there are that many.
    pub fn take(&mut self, n: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

/// What an event costs against the rate limit.
fn cost(ev: &FromViewer) -> f64 {
    match ev {
        FromViewer::Text { s } => s.chars().count().max(1) as f64,
        FromViewer::Wheel { dx, dy } => f64::from(dx.unsigned_abs().min(20) + dy.unsigned_abs().min(20)).max(1.0),
        _ => 1.0,
    }
}

/// Whether dropping `ev` could leave a key or button down.
fn releases(ev: &FromViewer) -> bool {
    matches!(ev, FromViewer::Key { d: false, .. } | FromViewer::Button { d: false, .. } | FromViewer::ReleaseAll)
}

/// The viewer's side of the input queue: admits, drops and counts.
struct Inbox {
    tx: mpsc::SyncSender<FromViewer>,
    bucket: Bucket,
    /// Set when a release was dropped; the input thread then releases everything.
    release_all: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    dropped_logged: bool,
}

impl Inbox {
    fn offer(&mut self, ev: FromViewer) {
        let release = releases(&ev);
        let reason = if !self.bucket.take(cost(&ev), Instant::now()) {
            "rate"
        } else {
            match self.tx.try_send(ev) {
                Ok(()) => return,
                Err(mpsc::TrySendError::Full(_)) => "queue",
                // The input thread is gone (no X connection): nothing to count.
                Err(mpsc::TrySendError::Disconnected(_)) => return,
            }
        };
        if release {
            self.release_all.store(true, Ordering::Release);
        }
        self.metrics.input_dropped(reason);
        if !std::mem::replace(&mut self.dropped_logged, true) {
            tracing::warn!(reason, "viewer input dropped: it is sent faster than the desktop takes it");
        }
    }
}

/// Wires `channel` for viewer `id` on `display`; `capture` is the viewer's capture element, which
/// `phase` messages move.
pub fn attach(
    channel: &gst_webrtc::WebRTCDataChannel,
    id: u64,
    display: &str,
    desktop: Arc<Desktop>,
    capture: gst::glib::WeakRef<gst::Element>,
) {
    let (tx, rx) = mpsc::sync_channel::<FromViewer>(QUEUE);
    let release_all = Arc::new(AtomicBool::new(false));
    let display = display.to_owned();
    let max_size = desktop.features.max_size;
    let replies = desktop.clone();
    let released = release_all.clone();
    let spawned = std::thread::Builder::new().name(format!("input-{id}")).spawn(move || {
        let mut injector = match Injector::connect(&display) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "input disabled");
                return;
            }
        };
        let mut denied_logged = false;
        while let Ok(ev) = rx.recv() {
            if released.swap(false, Ordering::AcqRel)
                && let Err(e) = injector.release_all()
            {
                tracing::warn!(error = %e, "releasing keys failed");
            }
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
                Err(InputError::Denied(keysym)) => {
                    replies.metrics.input_dropped("keysym");
                    if !std::mem::replace(&mut denied_logged, true) {
                        tracing::warn!(keysym = format_args!("{keysym:#x}"), "key refused: it acts on the X server");
                    }
                }
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

    let inbox = Inbox {
        tx,
        bucket: Bucket::new(RATE, BURST, Instant::now()),
        release_all,
        metrics: desktop.metrics.clone(),
        dropped_logged: false,
    };
    let sender = Arc::new(Mutex::new(Some(inbox)));
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
                if let Some(delay) = capture.upgrade().and_then(|c| crate::adapt::pacing::delay_capture(&c, f)) {
                    on_msg_desktop.metrics.capture_phase_moves.inc();
                    tracing::debug!(delay_us = delay.useconds(), "capture phase moved for the viewer");
                }
            }
            ev => {
                if let Ok(mut guard) = on_msg.lock()
                    && let Some(inbox) = guard.as_mut()
                {
                    inbox.offer(ev);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(100.0, 10.0, t0);
        assert_eq!((0..20).filter(|_| b.take(1.0, t0)).count(), 10, "the burst");
        assert!(!b.take(1.0, t0));
        assert!(b.take(5.0, t0 + Duration::from_millis(50)), "5 tokens come back in 50 ms");
        assert!(!b.take(20.0, t0 + Duration::from_secs(10)), "never more than the burst at once");
    }

    #[test]
    fn text_costs_its_characters_and_releases_are_known() {
        assert_eq!(cost(&FromViewer::Text { s: "héllo".into() }), 5.0);
        assert_eq!(cost(&FromViewer::Move { x: 1, y: 1 }), 1.0);
        assert!(releases(&FromViewer::Key { k: 0x61, d: false, c: None }));
        assert!(releases(&FromViewer::ReleaseAll));
        assert!(!releases(&FromViewer::Key { k: 0x61, d: true, c: None }));
    }

    fn inbox(rate: f64, burst: f64) -> (Inbox, mpsc::Receiver<FromViewer>, Arc<AtomicBool>, Arc<Metrics>) {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let metrics = Arc::new(Metrics::new());
        let release_all = Arc::new(AtomicBool::new(false));
        let bucket = Bucket::new(rate, burst, Instant::now());
        let inbox =
            Inbox { tx, bucket, release_all: release_all.clone(), metrics: metrics.clone(), dropped_logged: false };
        (inbox, rx, release_all, metrics)
    }

    #[test]
    fn a_flood_of_text_is_held_to_the_rate() {
        let (mut inbox, rx, _, metrics) = inbox(RATE, BURST);
        for _ in 0..10_000 {
            inbox.offer(FromViewer::Text { s: "x".repeat(1000) });
        }
        // The burst is 4 texts of 1000 characters; a fifth only if the loop took half a second.
        let admitted = rx.try_iter().count();
        assert!((4..=5).contains(&admitted), "{admitted}");
        let text = metrics.encode();
        let dropped = format!(r#"vdi_agent_input_dropped_total{{reason="rate"}} {}"#, 10_000 - admitted);
        assert!(text.contains(&dropped), "{text}");
    }

    #[test]
    fn a_full_queue_drops_and_a_dropped_release_releases_everything() {
        let (mut inbox, rx, release_all, metrics) = inbox(1e9, 1e9);
        // Nobody takes from the queue: a stalled X server.
        for i in 0..QUEUE + 10 {
            inbox.offer(FromViewer::Move { x: i32::try_from(i).unwrap_or(0), y: 0 });
        }
        assert!(!release_all.load(Ordering::Acquire));
        inbox.offer(FromViewer::Key { k: 0x61, d: false, c: None });
        assert_eq!(rx.try_iter().count(), QUEUE);
        assert!(release_all.load(Ordering::Acquire), "the dropped key release becomes release-all");
        assert!(metrics.encode().contains(r#"vdi_agent_input_dropped_total{reason="queue"} 11"#));
    }
}
