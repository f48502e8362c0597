//! Which of a viewer's retransmission requests (NACK) are answered.
//!
//! webrtcbin resends every packet a viewer asks for that is still in its history (500 packets).
//! When a link narrows under the stream, the queue overflows, the viewer asks for everything it
//! lost, and the answers join the same full queue: measured in the netns scenario (20 → 6 Mbit/s
//! with 1 % loss), Chromium asked for 7,400 VP8 packets again in the two seconds after narrowing
//! and 5,000 were resent (1,300 for H.264), four to eight times what the narrowed link carries
//! in that time. The viewer then reported all packets lost, and the controller cut to a tenth of
//! the link. As libwebrtc's sender does, a request is answered only
//! - if the packet was not resent within the last round trip: the viewer asks again each round
//!   trip while the first answer is still queued, and a second answer only adds to the queue;
//! - within a budget: retransmissions get [`SHARE`] of the encoder's target, with up to
//!   [`BURST`] of it saved up, so a burst of losses on a clean path is still repaired at once.
//!
//! A request that is refused leaves the viewer's picture broken until the next keyframe, and
//! Chromium hardly asks for one in VP8 (0–2 PLIs in 15 s of a lossy link, against 10–12 in
//! H.264): it waited for the agent's own, one a second while loss lasts, and the longest gaps on
//! the narrowed link were 1–2 s. So a refusal asks the encoder for a keyframe at once, at most
//! one per [`REPAIR_EVERY`]: one keyframe repairs every packet refused before it.

use std::time::{Duration, Instant};

use crate::adapt::bucket::TokenBucket;

/// The share of the target bitrate that retransmissions may use.
pub const SHARE: f64 = 0.15;
/// How much of the budget can be saved up: this long at [`SHARE`] of the target.
pub const BURST: Duration = Duration::from_millis(500);
/// What one retransmission costs: a full packet (the payloader's MTU).
pub const PACKET_BYTES: f64 = crate::media::encoder::MTU as f64;
/// The round trip assumed until the viewer's reports give one, and the least one used.
const DEFAULT_RTT: Duration = Duration::from_millis(100);
const MIN_RTT: Duration = Duration::from_millis(10);
/// Packets whose last resend is remembered (sequence numbers modulo this).
const REMEMBERED: usize = 1024;
/// The least time between two keyframes asked for because requests were refused.
pub const REPAIR_EVERY: Duration = Duration::from_millis(300);

fn rate(target_kbps: u32) -> f64 {
    f64::from(target_kbps) * 1000.0 / 8.0 * SHARE
}

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Handed to the retransmitter (which resends it if the packet is still in its history).
    Resend,
    /// The packet was resent less than a round trip ago.
    Repeat,
    /// Retransmissions have used their share of the bitrate.
    OverBudget,
}

impl Verdict {
    /// The metrics label.
    pub fn name(self) -> &'static str {
        match self {
            Self::Resend => "resent",
            Self::Repeat => "repeat",
            Self::OverBudget => "over_budget",
        }
    }
}

/// The budget and recent resends of one viewer's video stream.
#[derive(Debug)]
pub struct Retransmissions {
    /// Bytes that may be resent, earned at the share of the target.
    budget: TokenBucket,
    rtt: Duration,
    /// When each recent sequence number was last resent, by its slot.
    resent: Box<[Option<(u16, Instant)>; REMEMBERED]>,
    /// When a keyframe was last asked for to repair refused requests.
    repaired: Option<Instant>,
}

impl Retransmissions {
    /// For a stream whose encoder's target is `target_kbps`; the budget starts full.
    pub fn new(target_kbps: u32) -> Self {
        Self {
            budget: TokenBucket::new(rate(target_kbps), BURST, Duration::ZERO).holding_at_least(PACKET_BYTES),
            rtt: DEFAULT_RTT,
            resent: Box::new([None; REMEMBERED]),
            repaired: None,
        }
    }

    /// The controller's new target and the viewer's round-trip time, when known, at `now`.
    pub fn follow(&mut self, target_kbps: u32, rtt: Option<Duration>, now: Instant) {
        self.budget.set_rate(rate(target_kbps), now);
        if let Some(rtt) = rtt {
            self.rtt = rtt.max(MIN_RTT);
        }
    }

    /// A request was refused at `now`: whether to ask the encoder for a keyframe, which repairs
    /// the picture the lost packet broke (no more often than [`REPAIR_EVERY`]).
    pub fn repair(&mut self, now: Instant) -> bool {
        if self.repaired.is_some_and(|at| now.saturating_duration_since(at) < REPAIR_EVERY) {
            return false;
        }
        self.repaired = Some(now);
        true
    }

    /// Whether to resend packet `seq`, asked for at `now`.
    pub fn request(&mut self, seq: u16, now: Instant) -> Verdict {
        let slot = usize::from(seq) % REMEMBERED;
        if let Some((s, at)) = self.resent[slot]
            && s == seq
            && now.saturating_duration_since(at) < self.rtt
        {
            return Verdict::Repeat;
        }
        self.budget.refill(now);
        if self.budget.tokens() < PACKET_BYTES {
            return Verdict::OverBudget;
        }
        self.budget.spend(PACKET_BYTES);
        self.resent[slot] = Some((seq, now));
        Verdict::Resend
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_packet_is_resent_once_per_round_trip() {
        let t0 = Instant::now();
        let mut r = Retransmissions::new(6000);
        r.follow(6000, Some(40 * MS), t0);
        assert_eq!(r.request(7, t0), Verdict::Resend);
        assert_eq!(r.request(7, t0 + 39 * MS), Verdict::Repeat, "still on its way");
        assert_eq!(r.request(8, t0 + 39 * MS), Verdict::Resend, "another packet");
        assert_eq!(r.request(7, t0 + 41 * MS), Verdict::Resend, "the resend was lost too");
        // Sequence numbers that share a slot do not mistake each other for repeats.
        assert_eq!(r.request(7 + REMEMBERED as u16, t0 + 42 * MS), Verdict::Resend);
    }

    #[test]
    fn retransmissions_get_a_share_of_the_target() {
        let t0 = Instant::now();
        // 6 Mbit/s: 15 % is 112.5 kB/s, 93 packets a second, 46 saved up.
        let mut r = Retransmissions::new(6000);
        let resent = |r: &mut Retransmissions, from: u16, n: u16, at: Instant| {
            (from..from + n).filter(|&s| r.request(s, at) == Verdict::Resend).count()
        };
        assert_eq!(resent(&mut r, 0, 1000, t0), 46, "a burst of losses: the saved-up budget");
        assert_eq!(resent(&mut r, 1000, 1000, t0 + Duration::from_secs(1)), 46, "no more than the burst");
        // Spread over a second: what was saved up, then the rate itself (93 a second).
        let spread = (0..1000u16)
            .filter(|&i| r.request(2000 + i, t0 + Duration::from_secs(2) + u32::from(i) * MS) == Verdict::Resend)
            .count();
        assert!((138..=141).contains(&spread), "{spread}");
        // A lower target, a smaller budget at once.
        r.follow(600, None, t0 + Duration::from_secs(3));
        assert_eq!(resent(&mut r, 4000, 1000, t0 + Duration::from_secs(5)), 4);
    }

    #[test]
    fn refused_requests_ask_for_a_keyframe_now_and_then() {
        let t0 = Instant::now();
        let mut r = Retransmissions::new(6000);
        let asked = (0..200u64).filter(|&i| r.repair(t0 + Duration::from_millis(5 * i))).count();
        assert_eq!(asked, 4, "refusals over one second: a keyframe each {REPAIR_EVERY:?}");
        assert!(r.repair(t0 + Duration::from_secs(5)), "a refusal later: at once");
    }

    #[test]
    fn a_tiny_target_still_resends_a_packet_now_and_then() {
        let t0 = Instant::now();
        let mut r = Retransmissions::new(50);
        assert_eq!(r.request(1, t0), Verdict::OverBudget, "3 kB budget, less than a packet");
        assert_eq!(r.request(2, t0 + Duration::from_secs(2)), Verdict::Resend);
    }

    proptest! {
        /// Over any window the bytes resent stay within the budget: what was saved up plus the
        /// rate over the window (the largest target seen bounds the rate).
        #[test]
        fn never_more_than_the_budget(
            steps in prop::collection::vec((0u32..50, any::<u16>(), prop::option::of(100u32..20_000)), 1..400),
        ) {
            let t0 = Instant::now();
            let mut r = Retransmissions::new(20_000);
            let (mut now, mut bytes, mut top) = (t0, 0.0, 20_000u32);
            for (gap_ms, seq, target) in steps {
                now += gap_ms * MS;
                if let Some(t) = target {
                    top = top.max(t);
                    r.follow(t, None, now);
                }
                if r.request(seq, now) == Verdict::Resend {
                    bytes += PACKET_BYTES;
                }
            }
            let allowed = rate(top) * (BURST + now.duration_since(t0)).as_secs_f64() + PACKET_BYTES;
            prop_assert!(bytes <= allowed, "{bytes} > {allowed}");
        }
    }
}
