//! `vdipacer`: spreads the video's RTP packets over time at a rate a little above the encoder's
//! target, so a frame far larger than the target allows (a keyframe) does not reach the path in
//! one burst. (Not to be confused with capture pacing, `adapt::pacing`, which moves when frames
//! are captured.)
//!
//! Why: libvpx does not hold its keyframes to `max-intra-bitrate` in real-time mode. In the netns
//! scenario (6 Mbit/s, a 50 ms queue of 37.5 kB) VP8 keyframes of the scrolling-noise desktop
//! were 20–220 kB at targets of 4–12 Mbit/s, sent within a millisecond: the queue overflowed,
//! most of the keyframe was lost, the picture froze until the next one, and the retransmissions
//! asked for filled the queue again. libwebrtc sends every packet through a pacer for the same
//! reason. Sent at [`FACTOR`] times the target, a 145 kB keyframe over a 6 Mbit/s link with the
//! target at 5 Mbit/s leaves 29 kB queued instead of 135 kB. For libvpx, whose keyframes come
//! each second while loss lasts, the rate is also no faster than the path as the frames' trains
//! read it (see `rate`).
//!
//! A frame that fits the target goes out at once: the bucket holds [`DEPTH`] of sending, more
//! than a frame's share at any frame rate above 25. No packet waits longer than [`MAX_DELAY`]:
//! beyond that the debt is forgiven, since a picture held back longer is worse than some loss.
//!
//! The element sleeps in its streaming thread, so a `queue` sits before it: the encoder goes on
//! while packets wait. Events and queries pass through (a viewer's keyframe request reaches the
//! encoder as before).

use std::time::{Duration, Instant};

use gst::glib;

use crate::adapt::bucket::TokenBucket;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;

/// The element's factory name.
pub const ELEMENT: &str = "vdipacer";
/// Packets go out at this many times the encoder's target.
pub const FACTOR: f64 = 1.5;
/// What can go out at once: this long at the pacing rate.
pub const DEPTH: Duration = Duration::from_millis(40);
/// The longest a packet waits.
pub const MAX_DELAY: Duration = Duration::from_millis(200);

/// The pacer's account: bytes that may go now, refilled at the pacing rate.
#[derive(Debug)]
pub struct Bucket {
    tokens: TokenBucket,
    /// Bytes that went before the pacing rate allowed (see [`Bucket::wait`]), since last taken.
    early: u64,
}

/// Bytes a second for a target of `target_kbps` on a path whose frames' trains last read
/// `path_kbps` (given for bursty encoders only, see `Encoder::bursty`): [`FACTOR`] times the
/// target, but no faster than the path where it reads between the two. Sent faster than the
/// narrowest link, a keyframe only moves into that link's queue: on the degraded-link bench's
/// 6 Mbit/s link (a 50 ms queue, 37.5 kB), VP8 at 4.5 Mbit/s was paced at 6.7 with the trains at
/// 5.6, and a forced keyframe's spread lost 63 packets in half a second (batch 15C, run 5).
/// Never under the target, which the encoder is held to: the pacer must keep up with it.
fn rate(target_kbps: u32, path_kbps: Option<f64>) -> f64 {
    let target = f64::from(target_kbps);
    let paced = path_kbps.filter(|p| p.is_finite()).map_or(target * FACTOR, |p| (target * FACTOR).min(p.max(target)));
    paced * 1000.0 / 8.0
}

impl Bucket {
    /// Paces for an encoder target of `target_kbps`.
    pub fn new(target_kbps: u32) -> Self {
        Self { tokens: TokenBucket::new(rate(target_kbps, None), DEPTH, MAX_DELAY), early: 0 }
    }

    /// The encoder's new target, and for a bursty encoder the path's capacity as the frames'
    /// trains last read it, from `now`.
    pub fn set_target(&mut self, target_kbps: u32, path_kbps: Option<f64>, now: Instant) {
        self.tokens.set_rate(rate(target_kbps, path_kbps), now);
    }

    /// How long a packet of `bytes` waits before it goes, at `now`, when it has waited `age`
    /// already (since its frame was captured): what the bucket asks, but never past
    /// [`MAX_DELAY`] of age. A packet the bound lets go sooner than the rate would, or whose
    /// debt the bucket cannot hold, goes early: that is what reaches the path faster than paced.
    pub fn wait(&mut self, bytes: usize, now: Instant, age: Duration) -> Duration {
        self.tokens.refill(now);
        let unbounded = self.tokens.tokens() - bytes as f64;
        self.tokens.spend(bytes as f64);
        let owed = Duration::from_secs_f64((-self.tokens.tokens()).max(0.0) / self.tokens.rate());
        let wait = owed.min(MAX_DELAY.saturating_sub(age));
        if wait < owed || unbounded < self.tokens.tokens() {
            self.early += bytes as u64;
        }
        wait
    }

    /// Bytes sent early since the last call.
    pub fn take_early(&mut self) -> u64 {
        std::mem::take(&mut self.early)
    }
}

glib::wrapper! {
    /// RTP packet pacer.
    pub struct VdiPacer(ObjectSubclass<imp::VdiPacer>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

impl VdiPacer {
    /// Paces for the encoder's new target, no faster than `path_kbps` where that lies between
    /// the target and [`FACTOR`] times it.
    pub fn set_target(&self, target_kbps: u32, path_kbps: Option<f64>) {
        if let Ok(mut b) = self.imp().bucket.lock() {
            b.set_target(target_kbps, path_kbps, Instant::now());
        }
    }

    /// Bytes the pacer let go before the pacing rate allowed, since the last call: a backlog
    /// older than [`MAX_DELAY`].
    pub fn take_early(&self) -> u64 {
        self.imp().bucket.lock().map_or(0, |mut b| b.take_early())
    }
}

/// Makes `vdipacer` available to `gst::parse::launch` in this process (idempotent).
pub fn register() -> Result<(), glib::BoolError> {
    gst::Element::register(None, ELEMENT, gst::Rank::NONE, VdiPacer::static_type())
}

mod imp {
    use std::sync::{LazyLock, Mutex};

    use super::*;

    pub struct VdiPacer {
        pub(super) bucket: Mutex<Bucket>,
    }

    impl Default for VdiPacer {
        fn default() -> Self {
            // The pipeline's first target follows at once; until then a generous one.
            Self { bucket: Mutex::new(Bucket::new(100_000)) }
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for VdiPacer {
        const NAME: &'static str = "VdiPacer";
        type Type = super::VdiPacer;
        type ParentType = gst_base::BaseTransform;
    }

    impl ObjectImpl for VdiPacer {}
    impl GstObjectImpl for VdiPacer {}

    impl ElementImpl for VdiPacer {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "vdi RTP pacer",
                    "Filter/Network/RTP",
                    "Spreads RTP packets at a rate above the encoder's target",
                    "vdi",
                )
            });
            Some(&META)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let caps = gst::Caps::new_empty_simple("application/x-rtp");
                [gst::PadDirection::Src, gst::PadDirection::Sink]
                    .into_iter()
                    .map(|d| {
                        let name = if d == gst::PadDirection::Src { "src" } else { "sink" };
                        gst::PadTemplate::new(name, d, gst::PadPresence::Always, &caps)
                            .expect("static caps make a valid template")
                    })
                    .collect()
            });
            TEMPLATES.as_ref()
        }
    }

    impl BaseTransformImpl for VdiPacer {
        const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
        // Same caps on both sides: passthrough, so no buffer is ever copied to be made writable.
        const PASSTHROUGH_ON_SAME_CAPS: bool = true;
        const TRANSFORM_IP_ON_PASSTHROUGH: bool = true;

        /// Buffer lists arrive here one buffer at a time (BaseTransform has no list function), so
        /// a frame's packets are spread, not just the frames.
        fn transform_ip_passthrough(&self, buf: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
            let age = match (self.obj().current_running_time(), buf.pts()) {
                (Some(now), Some(pts)) => now.saturating_sub(pts).into(),
                _ => Duration::ZERO,
            };
            let wait = self.bucket.lock().map_or(Duration::ZERO, |mut b| b.wait(buf.size(), Instant::now(), age));
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            Ok(gst::FlowSuccess::Ok)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Sends packets (size, ready after t0) through `b` one after the other, as the element's
    /// thread does; returns when each left, after t0.
    fn send(b: &mut Bucket, t0: Instant, packets: &[(usize, Duration)]) -> Vec<Duration> {
        let mut now = t0;
        packets
            .iter()
            .map(|&(bytes, ready)| {
                now = now.max(t0 + ready);
                now += b.wait(bytes, now, now - (t0 + ready));
                now - t0
            })
            .collect()
    }

    #[test]
    fn a_frame_within_the_target_goes_at_once() {
        // 6 Mbit/s at 60 fps: 12.5 kB frames, 11 packets each, every 16.7 ms.
        let packets: Vec<(usize, Duration)> =
            (0..120u64).flat_map(|f| std::iter::repeat_n((1136, Duration::from_micros(f * 16_667)), 11)).collect();
        let t0 = Instant::now();
        let left = send(&mut Bucket::new(6000), t0, &packets);
        assert!(left.iter().zip(&packets).all(|(l, p)| *l == p.1), "no packet waited");
    }

    #[test]
    fn a_large_keyframe_is_spread_at_the_pacing_rate() {
        // Paced at 7.5 Mbit/s (937.5 kB/s), 37.5 kB at once: a 145 kB keyframe of 121 packets.
        let t0 = Instant::now();
        let left = send(&mut Bucket::new(5000), t0, &[(1200, Duration::ZERO); 121]);
        assert_eq!(left[30], Duration::ZERO, "what the bucket holds goes at once");
        let mut b = Bucket::new(5000);
        send(&mut b, t0, &[(1200, Duration::ZERO); 121]);
        assert_eq!(b.take_early(), 0, "a keyframe within the bound is all paced");
        assert!(left[31] > Duration::ZERO);
        // (145.2 - 37.5) kB at 937.5 kB/s: 115 ms.
        let last = left[120].as_secs_f64() * 1000.0;
        assert!((114.0..116.0).contains(&last), "{last} ms");
        // The frame after it waits for it, then the bucket refills.
        let more = send(&mut Bucket::new(5000), t0, &[(1200, Duration::ZERO); 122]);
        assert!(more[121] > more[120]);
    }

    /// Batch 15C's narrowed link: a VP8 target of 5 Mbit/s, the trains reading 5.6. The 145 kB
    /// keyframe goes at 5.6 Mbit/s (700 kB/s, 28 kB at once) rather than 7.5, so the 6 Mbit/s
    /// link's queue stays near empty instead of taking 40 kB; where the trains read more than
    /// 1.5 times the target, or less than the target, or nothing, the rate is as before.
    #[test]
    fn a_large_keyframe_goes_no_faster_than_the_path() {
        let t0 = Instant::now();
        let mut b = Bucket::new(5000);
        b.set_target(5000, Some(5600.0), t0);
        let left = send(&mut b, t0, &[(1200, Duration::ZERO); 121]);
        // (145.2 - 28) kB at 700 kB/s: 167 ms.
        let last = left[120].as_secs_f64() * 1000.0;
        assert!((166.0..169.0).contains(&last), "{last} ms");
        for path in [Some(20_000.0), None] {
            let mut b = Bucket::new(5000);
            b.set_target(5000, path, t0);
            let last = send(&mut b, t0, &[(1200, Duration::ZERO); 121])[120].as_secs_f64() * 1000.0;
            assert!((114.0..116.0).contains(&last), "{path:?}: {last} ms");
        }
        // Under the target the path is not believed: the encoder is held to the target.
        assert_eq!(rate(5000, Some(3000.0)), 5000.0 * 1000.0 / 8.0);
    }

    #[test]
    fn no_packet_waits_longer_than_the_bound() {
        // A stream at four times the pacing rate for a second: the backlog would grow without end.
        let t0 = Instant::now();
        let mut b = Bucket::new(1000); // 187.5 kB/s paced
        let packets: Vec<(usize, Duration)> = (0..625u64).map(|i| (1200, Duration::from_micros(i * 1600))).collect();
        let left = send(&mut b, t0, &packets);
        let worst = left.iter().zip(&packets).map(|(l, p)| *l - p.1).max().unwrap_or_default();
        assert!(worst <= MAX_DELAY, "{worst:?}");
        assert!(worst >= MAX_DELAY - 2 * MS, "it did hold packets back: {worst:?}");
        // What the bound let through: once the backlog is 200 ms old, every packet goes as it
        // comes, so all of the second's 750 kB but the first quarter second's paced share.
        let early = b.take_early();
        assert!((600_000..720_000).contains(&early), "{early} bytes early");
        assert_eq!(b.take_early(), 0);
        // A higher target pays what is owed within a couple of milliseconds.
        b.set_target(100_000, None, t0 + Duration::from_millis(1300));
        assert_eq!(b.wait(1200, t0 + Duration::from_millis(1302), Duration::ZERO), Duration::ZERO);
    }
}
