//! Adaptive bitrate from the viewer's feedback. A controller of our own, in the spirit of Google
//! Congestion Control, on the signals read every second (`stats`, `trains`):
//! - what arrived, where the browser answers transport-wide congestion control (TWCC): more
//!   than a tenth sent but not received, or arrivals drifting later by over 2 ms, is a queue, and
//!   the estimate goes to 90 % of what arrived (so does loss above 10 %), also half a second
//!   after a decision (`Controller::check`); while arrivals keep
//!   pace it climbs 20 % a second near the last congestion, elsewhere 20 % then 40 % (see
//!   `Delay`). (`rtpgccbwe` was not used: it paces every packet at its estimate, a frame of
//!   latency at 1080p.)
//! - the path's capacity, from how fast each frame's packets cross it (`trains`): trains at
//!   1.5 times the last congestion's rate say the path widened, so that congestion is forgotten
//!   without sending into it first, once the trains have read that congestion's own rate (a
//!   shaper's burst allowance lets whole frames through at line rate right after a cut); with
//!   none remembered, a clear interval jumps to 85 % of the capacity (a widened 20 Mbit/s path:
//!   6 → 12 Mbit/s in one decision); no climb passes 85 % of them faster than 8 %, nor the
//!   trains themselves (libvpx's, whose output comes in bursts, not 80 % of them:
//!   `Controller::bursty`); a cut landing over 90 % of the held interval's trains is cut again
//!   (see `update`). Where two jumps on the trains in a row run into congestion with the trains
//!   claiming over twice what arrived, they are set aside for a minute;
//! - what was lost (see `loss`) and the round-trip time, for browsers without TWCC and as the
//!   second signal:
//!   - loss above 10 %: decrease multiplicatively by half the loss, at most by 30 %
//!     (`estimate *= 1 - min(loss, 0.6)/2`); where the viewer answers TWCC, only when its latest
//!     window agrees (lost over 10 % or shows a queue), since a report can describe the past;
//!   - loss of 2 to 10 % with the RTT more than 1.5× plus 20 ms above the lowest seen (a queue is
//!     building and overflowing): `estimate *= 0.85`, at most twice per episode. The RTT alone is
//!     no signal: behind TURN, webrtcbin's RTT from receiver reports was seen to stay at 30–90 ms for
//!     seconds on an idle path (measured in the netns test), which starved the stream;
//!   - both decreases start from what the encoder really sent in the interval when that is lower
//!     (an encoder below its target overshoots the path by the difference), as GCC does, unless it
//!     sent under half the estimate (a still desktop says nothing about the path);
//!   - loss under 2 % and no queue: from 85 % of the last congestion (of what was really sent when
//!     it showed, the path's measured limit rather than the estimate that overshot it) by 8 %
//!     (GCC's rate) until a clean second has carried more than that (the path grew: the congestion
//!     is forgotten); elsewhere by 10 % after one clean second and 5 % more for each further one in
//!     a row, at most 25 %, so a widened path is found in seconds (5 → 10 Mbit/s in about 5 s); a
//!     second of 2–10 % loss pauses that ramp, a cut restarts it, and the careful seconds count
//!     towards it;
//!   - otherwise hold; and hold for the interval after any decrease, whose reports still describe
//!     (and whose retransmissions still repair) what was sent before it, unless its
//!     transport-wide feedback, from a window that offered the path the estimate, still shows a
//!     queue that the cut fell short of (`short_cut`).
//!
//! The encoder target follows the estimate within `[min, max]`. Below `min` the stream keeps its
//! quality per frame and sends fewer of them: first half the frame rate, then (below `min / 2`)
//! also half the width and height; the target then follows the estimate down to `min / 8`. Each
//! step back up needs the estimate 15 % above the step's threshold, so the picture does not flap
//! between sizes (every change restarts the encoder on a keyframe).

/// Network feedback for one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feedback {
    /// Fraction of packets lost in the interval, 0 to 1.
    pub loss: f64,
    /// Round-trip time in milliseconds, when known.
    pub rtt_ms: Option<f64>,
    /// What the encoder sent in the interval, kbit/s, when known.
    pub sent_kbps: Option<f64>,
    /// The viewer's transport-wide feedback (sent against received, the delay gradient), when
    /// its browser answered the TWCC extension.
    pub twcc: Option<crate::adapt::stats::Twcc>,
    /// The path's capacity read from how each frame's packets arrived (`trains`), kbit/s, when
    /// enough frames were read.
    pub capacity_kbps: Option<f64>,
}

/// How much the picture is reduced to fit a narrow path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Quality {
    /// Full frame rate and size.
    Full,
    /// Half the frame rate.
    HalfRate,
    /// Half the frame rate and half the width and height.
    HalfRateHalfSize,
}

impl Quality {
    /// Frames per second at this level for a configured `fps`.
    pub fn fps(self, fps: u32) -> u32 {
        match self {
            Self::Full => fps,
            Self::HalfRate | Self::HalfRateHalfSize => (fps / 2).max(1),
        }
    }

    /// Whether width and height are halved.
    pub fn half_size(self) -> bool {
        self == Self::HalfRateHalfSize
    }

    /// Short name for metrics and the viewer's overlay.
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::HalfRate => "half-rate",
            Self::HalfRateHalfSize => "half-rate-half-size",
        }
    }
}

/// What the controller decided for the next interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// What the path is estimated to carry, kbit/s.
    pub estimate_kbps: u32,
    /// What the encoder is asked for, kbit/s.
    pub target_kbps: u32,
    /// How the picture is reduced.
    pub quality: Quality,
}

/// The controller's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    min: f64,
    max: f64,
    estimate: f64,
    base_rtt_ms: Option<f64>,
    quality: Quality,
    clean_streak: u32,
    queue_cuts: u32,
    last_congestion: f64,
    just_decreased: bool,
    /// Intervals left during which the frames' trains are not believed.
    distrust: u32,
    /// Jumps on the trains in a row that the path answered with congestion, the trains
    /// claiming far more than it carried.
    misled: u32,
    /// Intervals left in which a congestion answers the last jump on the trains.
    jumped: u32,
    /// The latest trains reading at most [`WIDER`] times the remembered congestion, since
    /// congestion was first remembered: a wide reading is a widening only while this one still
    /// reads the congestion now remembered (a deeper narrowing since needs a reading of its own).
    congestion_trains: Option<f64>,
    /// The trains believed at the last decision (what a cut between decisions compares with).
    last_capacity: Option<f64>,
    /// Whether the last decision forgot a congestion or jumped on the trains' word.
    acted_on_trains: bool,
    /// The share of the trains' capacity the climb may reach (see [`Controller::bursty`]).
    path_share: f64,
}

/// Trains showing this many times the last congestion's rate mean the path widened.
const WIDER: f64 = 1.5;
/// Trains claiming this many times what a congested path carried are not of its bottleneck (the
/// first window after a narrowing, partly from before it, read 1.4 times).
const MISLEADING: f64 = 2.0;
/// A cut's landing above this share of the trains of the interval after it fell short.
const SHORT_OF_TRAINS: f64 = 0.9;
/// How far below the trains' capacity a jump lands.
const JUMP: f64 = 0.85;
/// The share of the trains' capacity a bursty encoder's climb reaches (see
/// [`Controller::bursty`]).
pub const BURSTY_SHARE: f64 = 0.8;
/// How long misleading trains are not believed: a minute of decisions.
const DISTRUST: u32 = 60;
/// A window that sent under this share of the estimate cannot show that a cut fell short.
const OFFERED: f64 = 0.75;
/// A congestion this many decisions after a jump on the trains answers it.
const ANSWERED: u32 = 2;

const UP_MARGIN: f64 = 1.15;

/// What the transport-wide feedback says of one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delay {
    /// More than a tenth of what was sent did not arrive in the interval, or arrivals drift
    /// later by over 2 ms per packet group: a queue is filling.
    Queue,
    /// Arrivals kept pace (within 5 %) with no drift worth a millisecond, while sending at least
    /// half the estimate (a still desktop says nothing about the path).
    Clear,
    /// Neither: hold the ramp to its loss-based pace.
    Unsure,
}

impl Delay {
    fn of(t: &crate::adapt::stats::Twcc, estimate: f64) -> Self {
        let behind = (t.sent_kbps - t.recv_kbps) / t.sent_kbps.max(1.0);
        if behind > 0.10 || t.delay_gradient_ms > 2.0 {
            Self::Queue
        } else if behind < 0.05 && t.delay_gradient_ms < 1.0 && t.sent_kbps >= estimate / 2.0 {
            Self::Clear
        } else {
            Self::Unsure
        }
    }
}

/// Loss above this share cuts the estimate; below it, loss only pauses the climb.
pub const CUT_LOSS: f64 = 0.10;

impl Controller {
    /// Starts at `start` kbit/s, bounded by `[min, max]`.
    pub fn new(min_kbps: u32, max_kbps: u32, start_kbps: u32) -> Self {
        let (min, max) = (f64::from(min_kbps.min(max_kbps).max(8)), f64::from(max_kbps.max(min_kbps).max(8)));
        Self {
            min,
            max,
            estimate: f64::from(start_kbps).clamp(min, max),
            base_rtt_ms: None,
            quality: Quality::Full,
            clean_streak: 0,
            queue_cuts: 0,
            last_congestion: 0.0,
            just_decreased: false,
            distrust: 0,
            misled: 0,
            jumped: 0,
            congestion_trains: None,
            last_capacity: None,
            acted_on_trains: false,
            path_share: 1.0,
        }
    }

    /// The same, for an encoder whose output comes in bursts the path's queue must absorb
    /// (libvpx: no VBV, keyframes several frames' worth, one a second while loss lasts): the
    /// climb stops at [`BURSTY_SHARE`] of the trains' capacity rather than at the capacity.
    pub fn bursty(mut self) -> Self {
        self.path_share = BURSTY_SHARE;
        self
    }

    /// The current decision.
    pub fn decision(&self) -> Decision {
        let target = if self.quality == Quality::Full { self.estimate.max(self.min) } else { self.estimate };
        Decision {
            estimate_kbps: self.estimate.round() as u32,
            target_kbps: target.round() as u32,
            quality: self.quality,
        }
    }

    /// Whether the target is the most the session allows (see `EncoderFit`).
    pub fn at_ceiling(&self) -> bool {
        self.decision().target_kbps >= self.max.round() as u32
    }

    /// Whether no congestion is remembered: none showed yet, or a clean interval since has
    /// carried more than when the last one showed (the path widened). Not in the interval after
    /// a cut.
    pub fn open(&self) -> bool {
        self.last_congestion == 0.0 && !self.just_decreased
    }

    /// Applies one interval's feedback.
    pub fn update(&mut self, fb: Feedback) -> Decision {
        let loss = if fb.loss.is_finite() { fb.loss.clamp(0.0, 1.0) } else { 0.0 };
        let rtt_queue = match (fb.rtt_ms.filter(|r| r.is_finite() && *r >= 0.0), self.base_rtt_ms) {
            (Some(rtt), Some(base)) => {
                self.base_rtt_ms = Some(base.min(rtt));
                rtt > base * 1.5 + 20.0 && loss >= 0.02
            }
            (Some(rtt), None) => {
                self.base_rtt_ms = Some(rtt);
                false
            }
            (None, _) => false,
        };
        let delay = fb.twcc.map(|t| Delay::of(&t, self.estimate));
        // Where the viewer reports arrivals, a queue shows there before any packet is lost: more
        // sent than arrived. Without that feedback the round-trip time with loss stands in.
        let queueing = delay.map_or(rtt_queue, |d| d == Delay::Queue);
        let clean = loss < 0.02 && !queueing;
        // Receiver reports count a packet lost only once NACK has given up on it, and each covers
        // the time since the viewer's previous one: a report can describe a queue that was cut a
        // second ago, or a link that has since widened. Where the viewer's transport-wide feedback
        // shows its latest window lost little and grew no queue, a severe report is that past, and
        // cutting on it again took the widened link's climb back from 4.9 to 3.7 Mbit/s
        // (scripts/bench-network: in most runs of both codecs).
        let severe = loss > CUT_LOSS && fb.twcc.is_none_or(|t| queueing || t.loss.is_nan() || t.loss > CUT_LOSS);
        let carried = fb.twcc.map(|t| t.recv_kbps).or(fb.sent_kbps);
        let capacity = self.believed(fb.capacity_kbps, queueing || severe, carried);
        // The path carried more than when it last congested, cleanly, or the frames' trains
        // cross it at well over that rate: its limit moved up, and the climb need not be careful
        // about it any more. (Not in the interval after a cut, which still describes what was
        // sent before it.) The trains say so where the stream itself cannot: x264 near a
        // remembered congestion fills 60–75 % of its setting, and what arrived passed that
        // congestion 4–5 s after the path widened (docs/bitrate-history.md).
        //
        // But only trains that have read the congestion's rate since it first showed: right
        // after a narrowing the sender leaves room (frames skipped, a cut target) and a shaper's
        // burst allowance (HTB's 32 kB in the test) lets whole frames through at line rate. Those
        // trains read 19-20 Mbit/s on the 6 Mbit/s link for 2-3 s, and believing them jumped the
        // target back to 12 Mbit/s into it in every VP8 run of batch S (loss up to 100 %, half
        // the frame rate); the distrust that the second such congestion brought then hid the
        // real widening 15 s later (batch T, docs/bitrate-history.md).
        self.last_capacity = capacity;
        self.acted_on_trains = false;
        if let Some(c) = capacity.filter(|c| self.last_congestion > 0.0 && *c <= WIDER * self.last_congestion) {
            self.congestion_trains = Some(c);
        }
        let read_congestion = self.congestion_trains.is_some_and(|n| n <= WIDER * self.last_congestion);
        let wider = capacity.is_some_and(|c| read_congestion && c > WIDER * self.last_congestion);
        if clean && !self.just_decreased && (wider || carried.is_some_and(|s| s > self.last_congestion)) {
            self.acted_on_trains = wider && self.last_congestion > 0.0;
            self.last_congestion = 0.0;
        }
        let near_congestion = self.last_congestion > 0.0 && self.estimate >= 0.85 * self.last_congestion;
        // A second of moderate loss pauses the ramp rather than restarting it (under load one
        // such second restarted a climb and took it past 10 s in scripts/bench-network); seconds
        // near or above the last congestion go at 8 % but count, so once the path has carried
        // more than then, the climb goes on at the ramp's pace (restarting there took a widened
        // link 9–11 s to pass 10 Mbit/s). Cuts restart the ramp (see `held`).
        self.clean_streak = match clean {
            true => self.clean_streak + 1,
            false if severe => 0,
            false => self.clean_streak,
        };
        self.queue_cuts = if queueing { self.queue_cuts } else { 0 };
        let mut basis = fb
            .sent_kbps
            .filter(|s| s.is_finite() && *s >= self.estimate / 2.0)
            .map_or(self.estimate, |s| s.min(self.estimate));
        // Where the viewer reports what arrived, a cut goes to a little under that: what the path
        // carried, loss included (GCC's decrease). Cutting by the loss as well counted it twice
        // and took a 6 Mbit/s link to half the frame rate.
        let arrived = fb.twcc.filter(|_| queueing || severe).map(|t| t.recv_kbps.max(self.min / 8.0));
        if let Some(recv) = arrived {
            basis = basis.min(recv);
        }
        let held = std::mem::take(&mut self.just_decreased);
        let before = self.estimate;
        let fell_short = fb.twcc.zip(arrived).is_some_and(|(t, recv)| self.short_cut(t.sent_kbps, recv));
        if held && !(delay == Some(Delay::Queue) && fell_short) {
            self.clean_streak = 0;
            // A cut between decisions reads a window partly from before a narrowing and can land
            // above the path (6059 kbit/s on the 6 Mbit/s link, which stayed so for 4.8 s until
            // a probe's cut: scripts/bench-network). The trains of the held interval cross the
            // narrowed path: a landing over 90 % of them is cut again, to 85 %.
            if let Some(c) = capacity.filter(|c| self.estimate > SHORT_OF_TRAINS * c) {
                self.cut(c, JUMP);
            }
        } else if arrived.is_some() {
            self.cut(basis, 0.9);
        } else if severe {
            self.cut(basis, 1.0 - loss.min(0.6) / 2.0);
        } else if queueing && self.queue_cuts < 2 {
            self.queue_cuts += 1;
            self.cut(basis, 0.85);
        } else if clean && delay == Some(Delay::Clear) {
            // Arrivals keep pace with sending and no queue grows: the climb can be bold, because
            // the first queue shows here a second before it would overflow. Near the last
            // congestion it stays at the ramp's first step.
            let step = if near_congestion { 0.2 } else { (0.2 * f64::from(self.clean_streak + 1)).min(0.4) };
            self.estimate *= 1.0 + step;
            // With no congestion remembered, the trains say how far the climb can go at once:
            // a widened path is met in one decision instead of three or four (6 → 12 Mbit/s).
            // (Bounded by the maximum first: at the ceiling there is nothing to jump to.)
            let jump = capacity.map(|c| (c * JUMP).min(self.max));
            if let Some(jump) = jump.filter(|j| self.last_congestion == 0.0 && *j > self.estimate) {
                self.estimate = jump;
                self.jumped = ANSWERED;
                self.acted_on_trains = true;
            }
        } else if clean && !near_congestion {
            self.estimate *= 1.0 + (0.05 * f64::from(self.clean_streak + 1)).min(0.25);
        } else if clean {
            self.estimate *= 1.08;
        }
        // Nor does a climb go past what the trains say the path carries: up to 85 % of it at
        // once, beyond that at GCC's 8 %, and never past the trains themselves. Bold steps past
        // the trains were VP8's gaps on the narrowed link: 4.9 → 6.9 → 9.6 Mbit/s with trains at
        // 5.6 (scripts/bench-network, a 1143 ms gap). And 8 % steps past them were H.264's: the
        // climb after each cut went on to 7.1–7.2 Mbit/s with the trains at 5.9–6.7, overflowed
        // the 6 Mbit/s link every 5–6 s (40 % of a window lost) and each time left the longest
        // gap of the narrowed spell, 509 and 582 ms in two runs of ten (batch 13E). A path that
        // widens shows in the trains first, and they lift this bound with it. (Trains are
        // frames sent at once, which the pacer allows only to frames within the target: they
        // read the path, never the sender's own pace.)
        if let Some(c) = capacity
            && self.estimate > before
        {
            let mark = c * JUMP.min(self.path_share);
            self.estimate = if before < mark { self.estimate.min(mark) } else { self.estimate.min(before * 1.08) };
            self.estimate = self.estimate.min((c * self.path_share).max(before));
        }
        self.estimate = self.estimate.clamp(self.min / 8.0, self.max);
        self.quality = self.next_quality();
        self.decision()
    }

    /// Between two seconds' decisions: a queue that the viewer's transport-wide feedback shows
    /// is cut at once, as [`Controller::update`] would cut it, rather than up to a second later
    /// at the next decision. The window that feedback covers is shorter than a second, so the
    /// decision after a narrowing sometimes read a window from before it and the cut came two
    /// seconds late (scripts/bench-network: 1 or 2 runs in 10 at 2.0–2.1 s, the rest at 1.0).
    /// Only cuts: the climb and the loss (read from receiver reports a second apart) keep their
    /// one-second pace. The next decision is held, as after any cut.
    ///
    /// The first cut after a narrowing reads a window partly from before it, so what arrived
    /// overstates the path and the cut lands above it (12 → 6.5 Mbit/s on the 6 Mbit/s link);
    /// the decision after it is held. So a queue still growing after a cut is cut again when
    /// the cut fell short (see `short_cut`): a queue that grows after a cut says so, and one
    /// that drains shows no queue.
    pub fn check(&mut self, twcc: Option<crate::adapt::stats::Twcc>) -> Option<Decision> {
        let t = twcc.filter(|t| Delay::of(t, self.estimate) == Delay::Queue)?;
        let recv = t.recv_kbps.max(self.min / 8.0);
        if self.just_decreased && !self.short_cut(t.sent_kbps, recv) {
            return None;
        }
        if self.jumped > 0 {
            self.answer_jump(self.last_capacity, Some(recv));
        }
        self.cut(self.estimate.min(recv), 0.9);
        self.estimate = self.estimate.clamp(self.min / 8.0, self.max);
        self.quality = self.next_quality();
        Some(self.decision())
    }

    /// The trains' capacity, unless they are not believed. Where two jumps on the trains in a
    /// row ran into congestion, with the trains claiming far more than the path carried, they
    /// describe something else than its bottleneck (a shaper that lets bursts through, say):
    /// believing them would jump into the same congestion again and again, so they are set aside
    /// for a while. Once is a narrowing: the window that first shows it was mostly sent before it
    /// (18.8 Mbit/s of trains beside 5.6 arrived). Only a congestion that answers a jump counts:
    /// counting any, a sender that had collapsed to 1 Mbit/s after a narrowing (trains at the
    /// link's 5.6) set the trains aside for the minute in which the link widened again
    /// (docs/bitrate-history.md, batch U).
    fn believed(&mut self, capacity: Option<f64>, congested: bool, carried: Option<f64>) -> Option<f64> {
        self.distrust = self.distrust.saturating_sub(1);
        if congested {
            self.answer_jump(capacity, carried);
        } else if self.jumped > 0 {
            self.jumped -= 1;
            // The path took the jump: whatever misled before, the trains read it now.
            if self.jumped == 0 {
                self.misled = 0;
            }
        }
        capacity.filter(|c| c.is_finite() && *c > 0.0 && self.distrust == 0)
    }

    /// A congestion that carried `carried` while the trains read `capacity`: if it answers a
    /// jump on the trains (see [`Controller::believed`]) and they claimed over twice what was
    /// carried, they misled once more; trains that agree with what was carried clear the count.
    fn answer_jump(&mut self, capacity: Option<f64>, carried: Option<f64>) {
        let answers_a_jump = std::mem::take(&mut self.jumped) > 0;
        self.misled = match capacity.zip(carried).map(|(c, r)| c > MISLEADING * r) {
            Some(true) if answers_a_jump => self.misled + 1,
            Some(false) => 0,
            _ => self.misled,
        };
        if self.misled >= 2 {
            self.distrust = DISTRUST;
            self.misled = 0;
        }
    }

    /// Whether the last decision acted on the trains' word: forgot a congestion because they
    /// read a widened path, or jumped to them. What `adapt::debt` waits for.
    pub fn acted_on_trains(&self) -> bool {
        self.acted_on_trains
    }

    /// Congestion showed while `basis` kbit/s was carried: that is remembered as the path's
    /// limit, the estimate goes to `factor` of it, and the next interval is held.
    fn cut(&mut self, basis: f64, factor: f64) {
        if self.last_congestion == 0.0 {
            self.congestion_trains = None;
        }
        self.last_congestion = basis;
        self.estimate = basis * factor;
        self.just_decreased = true;
    }

    /// Whether the last cut fell short of the path, read from a window of transport-wide
    /// feedback that still shows a queue: what arrived is under the estimate itself (by 5 %; a
    /// cut leaves it at 90 % of what arrived). The interval after a cut is otherwise held, but a
    /// cut that read a window from before a narrowing lands above the path (12 → 6.4–6.8 Mbit/s
    /// on the 6 Mbit/s link), and holding it took the target under the link only after 2–3.5 s
    /// (scripts/bench-network). Only a queue counts: the receiver reports' loss after a cut
    /// still describes what was sent before it, and what arrives after a cut is less because
    /// less was sent; cutting again on those cascaded a probe's cut from 7.8 to 2.9 Mbit/s.
    ///
    /// And only a window that offered the path the estimate (at least [`OFFERED`] of it): one
    /// that sent less says nothing of whether the estimate fits. Right after a narrowing met a
    /// burst, the frame budget skipped most frames, and the window after the cut sent 2.8 Mbit/s
    /// of which 1.7 arrived (the overflow's last losses): cutting on that took the 6 Mbit/s link
    /// to 1.5 Mbit/s at half the size, a resize and a 578 ms gap (scripts/bench-network, VP8).
    fn short_cut(&self, sent_kbps: f64, recv_kbps: f64) -> bool {
        sent_kbps >= OFFERED * self.estimate && recv_kbps < self.estimate * 0.95
    }

    fn next_quality(&self) -> Quality {
        let (e, min) = (self.estimate, self.min);
        match self.quality {
            _ if e < min / 2.0 => Quality::HalfRateHalfSize,
            Quality::HalfRateHalfSize if e < min / 2.0 * UP_MARGIN => Quality::HalfRateHalfSize,
            _ if e < min => Quality::HalfRate,
            Quality::HalfRate if e < min * UP_MARGIN => Quality::HalfRate,
            _ => Quality::Full,
        }
    }
}

/// What to ask an encoder for so that it sends the target. The encoder's ratio of sent to asked
/// is measured while it is busy (sending at least half its setting; a still desktop says nothing
/// about the encoder):
/// - above 1 the setting is lowered by it: libvpx on a busy desktop sent a quarter more than asked
///   (8.9 Mbit/s for 7.2), which on a narrow link is loss the controller cannot cut away;
/// - below 1 (x264 sends about 85 % of its setting) the setting is raised, by at most
///   `1 / MOST_RAISE`, only where the viewer is owed the whole target: at the session's maximum
///   (at 85 % a 12 Mbit/s ceiling delivered barely 10), and once the path has carried more than
///   at its last congestion (`Controller::open`: a widened path, where the climb is bold and
///   what arrived lagged the target by 0.5–2.1 s, up to two decisions, without the raise). Near
///   a remembered congestion a raise let a scene's bursts exceed a narrowed link and stall the
///   picture (docs/bitrate-history.md); the next congestion takes the raise away.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderFit {
    /// Sent per asked, smoothed, at least 1: applied everywhere.
    overshoot: f64,
    /// Sent per asked, smoothed, between `MOST_RAISE` and 1: applied where the viewer is owed the
    /// target. Kept apart from `overshoot` so that elsewhere a burst is met exactly as without it.
    undershoot: f64,
    setting: Option<f64>,
}

/// The lowest sent-to-asked ratio compensated where the viewer is owed the target: x264's usual
/// undershoot.
pub const MOST_RAISE: f64 = 0.85;

impl Default for EncoderFit {
    fn default() -> Self {
        Self { overshoot: 1.0, undershoot: 1.0, setting: None }
    }
}

impl EncoderFit {
    /// The setting for `target_kbps`, given what was sent under the previous setting (`None`
    /// when that interval says nothing of the encoder, e.g. frames were skipped and the frame
    /// budget decided what was sent); `owed` when the viewer is owed the whole target (see the
    /// type's doc).
    pub fn setting(&mut self, target_kbps: u32, sent_kbps: Option<f64>, owed: bool) -> u32 {
        if let (Some(sent), Some(previous)) = (sent_kbps, self.setting)
            && sent.is_finite()
            && sent >= previous / 2.0
        {
            let ratio = sent / previous;
            self.overshoot = (0.5 * self.overshoot + 0.5 * ratio).clamp(1.0, 2.0);
            self.undershoot = (0.5 * self.undershoot + 0.5 * ratio).clamp(MOST_RAISE, 1.0);
        }
        let factor = if owed && self.overshoot <= 1.0 { self.undershoot } else { self.overshoot };
        let setting = f64::from(target_kbps) / factor;
        self.setting = Some(setting);
        setting.round().max(1.0) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CLEAN: Feedback = reports(0.0, 30.0, None);

    /// An interval read from receiver reports only (a browser without TWCC).
    const fn reports(loss: f64, rtt_ms: f64, sent_kbps: Option<f64>) -> Feedback {
        Feedback { loss, rtt_ms: Some(rtt_ms), sent_kbps, twcc: None, capacity_kbps: None }
    }

    #[test]
    fn backs_off_on_loss_and_recovers() {
        let mut c = Controller::new(4000, 12000, 8000);
        let lossy = reports(0.2, 30.0, None);
        for _ in 0..5 {
            c.update(lossy); // cut, hold, cut, hold, cut
        }
        assert!(c.decision().target_kbps < 6000, "{:?}", c.decision());
        assert!(!c.at_ceiling());
        for _ in 0..30 {
            c.update(CLEAN);
        }
        assert_eq!(c.decision().target_kbps, 12000);
        assert!(c.at_ceiling());
    }

    #[test]
    fn climbs_past_ten_mbit_within_ten_seconds_even_from_half_size() {
        for start in [4000, 2000] {
            let mut c = Controller::new(4000, 12000, 4000);
            while c.decision().estimate_kbps > start {
                c.update(reports(0.12, 30.0, None));
            }
            c.update(CLEAN); // the interval after a cut is held
            // The encoder sends about 90 % of its target, a second behind.
            let seconds = (1..=20).find(|_| {
                let sent = f64::from(c.decision().target_kbps) * 0.9;
                c.update(Feedback { sent_kbps: Some(sent), ..CLEAN }).target_kbps > 10_000
            });
            assert!(seconds.is_some_and(|s| s <= 10), "from {start}: {seconds:?}");
        }
    }

    #[test]
    fn a_queue_cuts_from_what_was_really_sent() {
        let mut c = Controller::new(4000, 12000, 8000);
        c.update(reports(0.0, 1.0, Some(6000.0)));
        let d = c.update(reports(0.03, 60.0, Some(6000.0)));
        assert_eq!(d.estimate_kbps, 5100, "0.85 x the 6000 sent, not x the 8400 target");
        // A still desktop sends little: its rate is no measure of the path.
        let mut c = Controller::new(4000, 12000, 8000);
        c.update(reports(0.0, 1.0, Some(300.0)));
        let d = c.update(reports(0.03, 60.0, Some(300.0)));
        assert_eq!(d.estimate_kbps, 7480, "0.85 x 8800");
    }

    #[test]
    fn near_the_last_congestion_it_climbs_gently_until_the_path_carries_more() {
        let mut c = Controller::new(4000, 20000, 10000);
        c.update(reports(0.2, 30.0, None)); // 9000, congestion at 10000
        let steps: Vec<u32> = (0..4).map(|_| c.update(CLEAN).estimate_kbps).collect();
        assert_eq!(steps, [9000, 9720, 10498, 11337], "hold, then 8 % (also past 10000: nothing carried more yet)");
        let mut c2 = Controller::new(4000, 20000, 10000);
        c2.update(reports(0.2, 30.0, None));
        c2.update(Feedback { sent_kbps: Some(10_500.0), ..CLEAN }); // held: what was sent before the cut
        assert_eq!(c2.update(CLEAN).estimate_kbps, 9720, "still 8 % near the congestion");
        let carried = c.update(Feedback { sent_kbps: Some(10_500.0), ..CLEAN }).estimate_kbps;
        assert_eq!(carried, 14172, "10500 sent cleanly: the ramp, 5 clean seconds in, at 25 %");
        let mut c = Controller::new(4000, 12000, 10000);
        c.update(reports(0.8, 30.0, None)); // 7000 (30 % at most): far below
        let steps: Vec<u32> = (0..5).map(|_| c.update(CLEAN).estimate_kbps).collect();
        assert_eq!(steps, [7000, 7700, 8855, 9563, 10328], "hold, 10, 15 %, then 8 % from 85 % of 10000");
        // Congestion is measured by what was sent: 6000 of the 10000 asked for.
        let mut c = Controller::new(4000, 12000, 10000);
        c.update(reports(0.2, 30.0, Some(6000.0))); // 5400
        let steps: Vec<u32> = (0..3).map(|_| c.update(CLEAN).estimate_kbps).collect();
        assert_eq!(steps, [5400, 5832, 6299], "hold, then 8 % from 85 % of 6000");
    }

    #[test]
    fn a_queue_cuts_twice_then_holds_and_rtt_alone_cuts_nothing() {
        let mut c = Controller::new(4000, 12000, 8000);
        c.update(reports(0.0, 1.0, None));
        assert_eq!(c.update(reports(0.0, 90.0, None)).estimate_kbps, 10120, "10 % then 15 %");
        let mut c = Controller::new(4000, 12000, 10000);
        c.update(reports(0.0, 1.0, None));
        let high = reports(0.03, 90.0, None);
        let estimates: Vec<u32> = (0..5).map(|_| c.update(high).estimate_kbps).collect();
        assert_eq!(
            estimates,
            [9350, 9350, 7948, 7948, 7948],
            "10000 x 1.1 (clean), then two cuts, each followed by a hold"
        );
    }

    #[test]
    fn a_second_of_moderate_loss_pauses_the_ramp_without_restarting_it() {
        let mut c = Controller::new(4000, 12000, 4000);
        let steps: Vec<u32> = (0..3).map(|_| c.update(CLEAN).estimate_kbps).collect();
        assert_eq!(steps, [4400, 5060, 6072], "10, 15, 20 %");
        assert_eq!(c.update(reports(0.03, 30.0, None)).estimate_kbps, 6072);
        assert_eq!(c.update(CLEAN).estimate_kbps, 7590, "on at 25 %, not back to 10 %");
    }

    #[test]
    fn one_percent_random_loss_does_not_hold_the_rate_down() {
        let mut c = Controller::new(4000, 12000, 4000);
        for _ in 0..15 {
            c.update(reports(0.01, 30.0, None));
        }
        assert_eq!(c.decision().target_kbps, 12000);
    }

    #[test]
    fn a_growing_queue_lowers_the_target() {
        let mut c = Controller::new(4000, 12000, 10000);
        c.update(reports(0.0, 20.0, None));
        let before = c.decision().target_kbps;
        c.update(reports(0.03, 120.0, None));
        assert!(c.decision().target_kbps < before);
    }

    #[test]
    fn below_the_minimum_halves_the_rate_then_the_size_and_comes_back() {
        let mut c = Controller::new(4000, 12000, 4000);
        let lossy = reports(0.3, 30.0, None);
        let d = c.update(lossy);
        assert_eq!(d.quality, Quality::HalfRate, "{d:?}");
        assert!(d.target_kbps < 4000, "the encoder follows the estimate below the minimum: {d:?}");
        let mut seen = vec![d.quality];
        for _ in 0..40 {
            seen.push(c.update(lossy).quality);
        }
        assert_eq!(c.decision().quality, Quality::HalfRateHalfSize);
        assert_eq!(c.decision().estimate_kbps, 500, "floor is min/8");
        for _ in 0..30 {
            seen.push(c.update(CLEAN).quality);
        }
        assert_eq!(c.decision().quality, Quality::Full);
        seen.dedup();
        assert_eq!(
            seen,
            [Quality::HalfRate, Quality::HalfRateHalfSize, Quality::HalfRate, Quality::Full],
            "one step at a time"
        );
    }

    /// The viewer's transport-wide feedback for an interval: `sent` and `recv` kbit/s.
    fn twcc(sent: f64, recv: f64, gradient_ms: f64) -> Feedback {
        let t =
            crate::adapt::stats::Twcc { sent_kbps: sent, recv_kbps: recv, delay_gradient_ms: gradient_ms, loss: 0.0 };
        Feedback { loss: 0.0, rtt_ms: Some(30.0), sent_kbps: Some(sent), twcc: Some(t), capacity_kbps: None }
    }

    /// An interval in which an encoder sent `sent` of which all arrived, with frames' trains
    /// crossing the path at `capacity`.
    fn trains(sent: f64, capacity: f64) -> Feedback {
        Feedback { capacity_kbps: Some(capacity), ..twcc(sent, sent, 0.0) }
    }

    #[test]
    fn trains_find_a_widened_path_that_an_undershooting_encoder_never_fills() {
        // Congestion at 5500 on a narrowed link, then the encoder sends 70 % of its target.
        let run = |capacity: f64| {
            let mut c = Controller::new(1000, 12_000, 5500);
            c.update(twcc(6500.0, 5500.0, 4.0)); // cut to 4950, congestion at 5500
            c.update(trains(4000.0, 6300.0)); // held; the trains read the narrowed link
            (0..3)
                .map(|_| {
                    let target = f64::from(c.decision().target_kbps);
                    c.update(trains(target * 0.7, capacity)).target_kbps
                })
                .collect::<Vec<u32>>()
        };
        // Trains at the narrowed link's rate: up to 85 % of it, then GCC's 8 %.
        assert_eq!(run(6500.0), [5525, 5967, 6444]);
        // Trains at 20 Mbit/s: the path widened; the climb jumps to the most allowed at once.
        assert_eq!(run(20_000.0), [12_000, 12_000, 12_000]);
    }

    #[test]
    fn with_no_congestion_remembered_a_clear_interval_jumps_below_the_trains() {
        let mut c = Controller::new(1000, 20_000, 4000);
        assert_eq!(c.update(trains(3900.0, 10_000.0)).target_kbps, 8500, "85 % of the trains' 10 Mbit/s");
        assert_eq!(c.update(trains(8000.0, 10_000.0)).target_kbps, 9180, "then 8 % past the trains' mark");
        // Where arrivals do not keep pace, the trains move nothing.
        let mut c = Controller::new(1000, 20_000, 4000);
        let unsure = Feedback { capacity_kbps: Some(10_000.0), ..twcc(3900.0, 3600.0, 0.0) };
        assert!(c.update(unsure).target_kbps < 5000);
    }

    #[test]
    fn a_cut_that_landed_above_the_trains_of_the_held_interval_is_cut_again() {
        let mut c = Controller::new(1000, 12_000, 12_000);
        // Between decisions: a window partly from before the narrowing, 6732 arrived.
        c.check(twcc(10_400.0, 6732.0, 4.0).twcc);
        assert_eq!(c.decision().target_kbps, 6059);
        // The held interval's trains cross the 6 Mbit/s link at 6.3.
        assert_eq!(c.update(trains(5400.0, 6337.0)).target_kbps, 5386, "85 % of the trains");
        // A landing under 90 % of them is held as before.
        let mut c = Controller::new(1000, 12_000, 12_000);
        c.check(twcc(10_400.0, 5600.0, 4.0).twcc);
        assert_eq!(c.update(trains(5000.0, 6337.0)).target_kbps, 5040);
    }

    #[test]
    fn trains_that_claim_far_more_than_a_congested_path_carried_twice_are_set_aside() {
        // A shaper that lets bursts through: the trains read 50 Mbit/s on a 6 Mbit/s path
        // whenever the sender leaves it room, the path's own rate when it fills it.
        let mut c = Controller::new(1000, 12_000, 12_000);
        let queue = |recv: f64| Feedback { capacity_kbps: Some(50_000.0), ..twcc(recv * 1.3, recv, 4.0) };
        c.update(queue(5500.0)); // the first congestion: believed to be a narrowing
        // Twice: the sender fills the path (the trains read its rate), then leaves it room and
        // the trains claim 50; the jump runs into the same congestion.
        for _ in 0..2 {
            c.update(trains(4500.0, 6000.0)); // held
            let jumped = c.update(trains(4950.0, 50_000.0)).target_kbps;
            assert_eq!(jumped, 12_000, "the trains forgot the congestion and the climb jumped");
            c.update(queue(5500.0));
        }
        c.update(trains(4500.0, 6000.0)); // held
        let steps: Vec<u32> = (0..3).map(|_| c.update(trains(4950.0, 50_000.0)).target_kbps).collect();
        assert_eq!(steps, [5940, 7128, 8554], "set aside: the careful climb near the congestion");
    }

    /// Only a congestion that answers a jump on the trains counts against them: a sender that
    /// collapsed after a narrowing carries far less than the trains read, and setting them aside
    /// for that hid the widening that came later (batch U of scripts/bench-network).
    #[test]
    fn trains_are_believed_after_congestions_that_answer_no_jump() {
        // The session's start: the trains meet the wide path and the climb jumps to them.
        let mut c = Controller::new(1000, 12_000, 4000);
        assert_eq!(c.update(trains(3900.0, 20_000.0)).target_kbps, 12_000);
        // The link narrows at once: the jump's answer, with trains from before the narrowing.
        c.update(Feedback { capacity_kbps: Some(18_300.0), ..twcc(14_000.0, 5600.0, 4.0) });
        // The sender collapses (1 Mbit/s carried) while the trains read the link's 5.6.
        let collapsed = Feedback { loss: 0.9, capacity_kbps: Some(5600.0), ..twcc(1500.0, 1000.0, 4.0) };
        c.update(collapsed);
        c.update(collapsed);
        for sent in [1200.0, 1500.0, 2000.0, 2500.0] {
            c.update(trains(sent, 5600.0));
        }
        assert_eq!(c.update(trains(3000.0, 20_000.0)).target_kbps, 12_000, "the widening is met at once");
    }

    /// Right after a narrowing the sender leaves the path room, and a shaper's burst allowance
    /// lets whole frames through at line rate: trains at 19-20 Mbit/s on a 6 Mbit/s link for
    /// 2-3 s (every VP8 run of scripts/bench-network's batch S). They do not reopen the path;
    /// a wide reading once the trains have read the narrowed rate does.
    #[test]
    fn trains_at_a_shapers_burst_right_after_a_narrowing_do_not_reopen_the_path() {
        let mut c = Controller::new(1000, 12_000, 12_000);
        c.update(Feedback { capacity_kbps: Some(18_800.0), ..twcc(12_000.0, 5600.0, 4.0) }); // cut to 5040
        let burst: Vec<u32> =
            [3600.0, 4400.0, 4900.0].into_iter().map(|sent| c.update(trains(sent, 19_900.0)).target_kbps).collect();
        // Held, then the careful climb near the congestion (20 % a clear step), as without trains.
        assert_eq!(burst, [5040, 6048, 7258], "no jump on a burst");
        // The trains read the narrowed link (the sender fills it), and later a widened one.
        c.update(trains(4900.0, 5600.0));
        assert_eq!(c.update(trains(4900.0, 20_000.0)).target_kbps, 12_000, "the widening is met at once");
        // A congestion after an open path starts over: bursts right after it are not believed.
        c.update(Feedback { capacity_kbps: Some(19_000.0), ..twcc(12_000.0, 5600.0, 4.0) });
        c.update(trains(3600.0, 19_900.0)); // held
        assert_eq!(c.update(trains(4400.0, 19_900.0)).target_kbps, 6048);
    }

    /// A deeper narrowing (6 → 2 Mbit/s) remembers a lower congestion: the trains' reading of
    /// the 6 Mbit/s link no longer reads it, so bursts do not reopen the path until the trains
    /// have read the 2 Mbit/s one.
    #[test]
    fn a_deeper_narrowing_needs_the_trains_to_read_it_again() {
        let mut c = Controller::new(500, 12_000, 5000);
        c.update(twcc(6500.0, 5500.0, 4.0)); // congestion at 5500
        c.update(trains(4500.0, 6000.0)); // held; the trains read the 6 Mbit/s link
        c.update(Feedback { capacity_kbps: Some(6000.0), ..twcc(5000.0, 2000.0, 4.0) }); // 2 Mbit/s now
        c.update(trains(1700.0, 19_000.0)); // held
        let d = c.update(trains(1800.0, 19_000.0));
        assert!(d.target_kbps < 3000 && !c.acted_on_trains(), "a burst reopened the 2 Mbit/s path: {d:?}");
        c.update(trains(1800.0, 2100.0)); // the trains read the 2 Mbit/s link
        assert_eq!(c.update(trains(1800.0, 19_000.0)).target_kbps, 12_000, "then a widening is met at once");
        assert!(c.acted_on_trains());
        c.update(trains(12_000.0, 19_000.0));
        assert!(!c.acted_on_trains(), "at the ceiling nothing more is done on the trains' word");
    }

    /// A jump on the trains that the half-second check cuts is answered as much as one the next
    /// decision cuts: two such and the trains are set aside.
    #[test]
    fn jumps_answered_between_decisions_count_against_the_trains() {
        let mut c = Controller::new(1000, 12_000, 12_000);
        let queue = |recv: f64| twcc(recv * 1.3, recv, 4.0);
        c.update(queue(5500.0));
        for _ in 0..2 {
            c.update(trains(4500.0, 6000.0)); // held
            assert_eq!(c.update(trains(4950.0, 50_000.0)).target_kbps, 12_000);
            assert!(c.check(queue(5500.0).twcc).is_some(), "the check cuts the jump");
            c.update(trains(4500.0, 6000.0)); // held: the queue drained
            c.update(queue(5500.0)); // the probe after it congests: not a jump's answer
        }
        c.update(trains(4500.0, 6000.0)); // held
        let d = c.update(trains(4950.0, 50_000.0));
        assert!(d.target_kbps < 7000, "the trains were set aside: {d:?}");
    }

    #[test]
    fn a_queue_the_viewer_reports_cuts_to_what_arrived_before_any_loss() {
        let mut c = Controller::new(1000, 12000, 10_000);
        // The link narrowed to 6 Mbit/s: 10 sent, 6.5 arrived, nothing lost yet.
        let d = c.update(twcc(10_000.0, 6500.0, 4.0));
        assert_eq!(d.estimate_kbps, 5850, "90 % of what arrived: {d:?}");
        // The next interval still describes what was sent before the cut: hold.
        assert_eq!(c.update(twcc(9000.0, 6000.0, 3.0)).estimate_kbps, 5850);
        // Heavy loss with the feedback: the cut is from what arrived, not by the loss again.
        let mut c = Controller::new(4000, 12000, 12_000);
        let lossy = Feedback { loss: 0.4, ..twcc(12_000.0, 6000.0, 0.0) };
        assert_eq!(c.update(lossy).estimate_kbps, 5400);
    }

    /// A receiver report that still counts the loss of a queue already cut (or of a link since
    /// widened) does not cut again while the viewer's latest transport-wide window is clean;
    /// with a lossy window, or without that feedback, it cuts.
    #[test]
    fn a_severe_report_cuts_only_when_the_latest_window_agrees() {
        let mut c = Controller::new(4000, 12000, 5000);
        let stale = Feedback { loss: 0.15, ..twcc(5000.0, 5000.0, 0.0) };
        assert!(c.update(stale).estimate_kbps >= 5000, "the report is history: {:?}", c.decision());
        let mut c = Controller::new(4000, 12000, 5000);
        let lossy =
            Feedback { loss: 0.15, twcc: stale.twcc.map(|t| crate::adapt::stats::Twcc { loss: 0.2, ..t }), ..stale };
        assert!(c.update(lossy).estimate_kbps < 5000, "the window agrees: {:?}", c.decision());
        let mut c = Controller::new(4000, 12000, 5000);
        assert!(c.update(Feedback { twcc: None, ..stale }).estimate_kbps < 5000, "no feedback to ask");
    }

    #[test]
    fn a_queue_seen_between_decisions_is_cut_at_once_and_nothing_else_moves() {
        let mut c = Controller::new(1000, 12000, 10_000);
        let before = c.clone();
        // Arrivals keeping pace, a drift not yet a queue, a still desktop: no change, no hold.
        for fb in [twcc(10_000.0, 10_000.0, 0.2), twcc(10_000.0, 9500.0, 1.5), twcc(600.0, 600.0, 0.0)] {
            assert_eq!(c.check(fb.twcc), None);
        }
        assert_eq!(c.check(None), None, "no feedback");
        assert_eq!(c, before, "the climb is the one-second decision's");
        // The link narrowed: cut to 90 % of what arrived, as the decision would have.
        let mut decided = c.clone();
        let narrowed = twcc(10_000.0, 6500.0, 4.0);
        let d = c.check(narrowed.twcc).expect("a queue is cut");
        assert_eq!(d, decided.update(narrowed));
        assert_eq!(d.estimate_kbps, 5850);
        // Not twice for the same queue: the window still describes what was sent before the cut,
        // and the next decision holds.
        assert_eq!(c.check(twcc(9000.0, 6400.0, 3.0).twcc), None);
        assert_eq!(c.update(twcc(9000.0, 6400.0, 3.0)).estimate_kbps, 5850);
        // A cut that read a window from before the narrowing lands above the path: the queue
        // keeps growing and what arrives is well under the estimate, so it is cut again at once.
        let mut c = Controller::new(1000, 12000, 12_000);
        assert_eq!(c.check(twcc(12_000.0, 7200.0, 3.0).twcc).map(|d| d.estimate_kbps), Some(6480));
        assert_eq!(c.check(twcc(7000.0, 5500.0, 3.0).twcc).map(|d| d.estimate_kbps), Some(4950));
        // Draining after the cut: no queue, nothing more.
        assert_eq!(c.check(twcc(4900.0, 5500.0, -1.0).twcc), None);
    }

    #[test]
    fn a_cut_that_read_the_path_from_before_it_narrowed_is_not_held() {
        let mut c = Controller::new(1000, 12000, 12_000);
        // The window mixed 12 Mbit/s from before the narrowing with 6 after it.
        assert_eq!(c.update(twcc(12_000.0, 7200.0, 3.0)).estimate_kbps, 6480);
        // The next window still shows a queue, and 5.5 Mbit/s arrived: cut again, not held.
        let queue = Feedback { loss: 0.5, ..twcc(6500.0, 5500.0, 3.0) };
        assert_eq!(c.update(queue).estimate_kbps, 4950);
        // The same reading once more describes what was sent before that cut: held.
        assert_eq!(c.update(queue).estimate_kbps, 4950);
        // Heavy loss in the receiver reports but no queue in the window, and less arriving
        // because less was sent: held, not a cascade.
        let mut c = Controller::new(1000, 12000, 7800);
        assert_eq!(c.update(twcc(7800.0, 5200.0, 3.0)).estimate_kbps, 4680);
        let stale = Feedback { loss: 0.23, ..twcc(4000.0, 3900.0, -0.5) };
        assert_eq!(c.update(stale).estimate_kbps, 4680);
    }

    /// Batch 13F, run 1: cut to 4930 on the 6 Mbit/s link, the next interval held, then clean
    /// seconds with the trains at `readings` and the encoder sending 90 % of its target. The
    /// estimate after each, and the controller.
    fn climb_after_a_cut(mut c: Controller, readings: &[f64]) -> (Vec<u32>, Controller) {
        c.update(Feedback { capacity_kbps: Some(8689.0), ..twcc(16_823.0, 5477.0, 0.4) });
        assert_eq!(c.decision().estimate_kbps, 4929);
        c.update(trains(4263.0, 6283.0)); // held
        let climb = readings
            .iter()
            .map(|&capacity| {
                let sent = f64::from(c.decision().target_kbps) * 0.9;
                c.update(trains(sent, capacity)).estimate_kbps
            })
            .collect();
        (climb, c)
    }

    #[test]
    fn a_climb_near_the_trains_never_passes_them() {
        // H.264, trains at 5.9–6.7 Mbit/s: the climb went 5655, 6107, 6595, 7123 and overflowed.
        let (climb, mut c) =
            climb_after_a_cut(Controller::new(4000, 12_000, 12_000), &[6652.0, 6235.0, 6048.0, 5899.0, 6400.0]);
        assert_eq!(climb, [5654, 6107, 6107, 6107, 6400], "up to the trains, never past them");
        // Trains that read a widened path lift the bound at once.
        assert_eq!(c.update(trains(5800.0, 20_000.0)).estimate_kbps, 12_000);
    }

    #[test]
    fn a_bursty_encoders_climb_stops_short_of_the_trains() {
        // The same for libvpx: its keyframe each second while loss lasts, on a climb past 4.6
        // Mbit/s with the trains at 5.6, overflowed the 6 Mbit/s link's 37.5 kB queue and left
        // the narrowed spell's longest gap (batch 15A).
        let bursty = Controller::new(4000, 12_000, 12_000).bursty();
        let (climb, mut c) = climb_after_a_cut(bursty, &[6652.0, 6235.0, 6048.0, 5899.0, 7000.0]);
        assert_eq!(climb, [5322, 5322, 5322, 5322, 5600], "up to 80 % of the trains");
        // Trains that read a widened path lift the bound at once, as for any encoder.
        assert_eq!(c.update(trains(5800.0, 20_000.0)).estimate_kbps, 12_000);
    }

    #[test]
    fn a_window_that_sent_little_after_a_cut_does_not_cut_again() {
        // Batch 13A, run 8 (VP8): the narrowing met the climb's first second at 12 Mbit/s. A burst
        // overflowed the link and was cut between decisions to 90 % of what arrived.
        let mut c = Controller::new(4000, 12_000, 12_000);
        assert_eq!(c.check(twcc(21_270.0, 7215.0, 0.3).twcc).map(|d| d.estimate_kbps), Some(6494));
        // The frame budget then skipped most frames: the window sent 2.8 Mbit/s, of which 1.7
        // arrived (the overflow's last losses). That says nothing of the path: held.
        let starved = Feedback { loss: 0.145, capacity_kbps: Some(18_141.0), ..twcc(2843.0, 1707.0, 0.9) };
        let d = c.update(starved);
        assert_eq!((d.estimate_kbps, d.quality), (6494, Quality::Full), "no cascade to half the size");
        // Nor between decisions while the cut is held.
        let mut c = Controller::new(4000, 12_000, 12_000);
        c.check(twcc(21_270.0, 7215.0, 0.3).twcc);
        assert_eq!(c.check(twcc(2843.0, 1707.0, 0.9).twcc), None);
        // A window that offered the estimate and still queued: the cut fell short, cut again.
        let mut c = Controller::new(4000, 12_000, 12_000);
        c.check(twcc(21_270.0, 7215.0, 0.3).twcc);
        assert_eq!(c.check(twcc(6600.0, 5600.0, 0.5).twcc).map(|d| d.estimate_kbps), Some(5040));
    }

    #[test]
    fn arrivals_that_keep_pace_let_a_widened_path_be_climbed_boldly() {
        let seconds_to_pass = |with_twcc: bool| {
            let mut c = Controller::new(4000, 12000, 5000);
            // It congested at 6 Mbit/s before the link widened.
            c.update(reports(0.12, 30.0, Some(6000.0)));
            c.update(CLEAN);
            (1..=30)
                .find(|_| {
                    let sent = 0.85 * f64::from(c.decision().target_kbps);
                    let fb =
                        if with_twcc { twcc(sent, sent, 0.2) } else { Feedback { sent_kbps: Some(sent), ..CLEAN } };
                    c.update(fb).target_kbps >= 11_800
                })
                .unwrap_or(99)
        };
        let (bold, careful) = (seconds_to_pass(true), seconds_to_pass(false));
        assert!(bold <= 5, "with feedback: {bold} s");
        assert!(bold < careful, "with feedback {bold} s, loss alone {careful} s");
    }

    #[test]
    fn a_still_desktop_or_a_drifting_path_gets_no_bold_climb() {
        // Sending a tenth of the estimate says nothing of the path.
        let mut still = Controller::new(4000, 12000, 6000);
        let mut loss_only = still.clone();
        still.update(twcc(600.0, 600.0, 0.0));
        loss_only.update(Feedback { sent_kbps: Some(600.0), ..CLEAN });
        assert_eq!(still.decision(), loss_only.decision());
        // Arrivals drifting later by a millisecond and a half: not a queue yet, not clear either.
        let mut drifting = Controller::new(4000, 12000, 6000);
        let mut loss_only = drifting.clone();
        drifting.update(twcc(6000.0, 5900.0, 1.5));
        loss_only.update(Feedback { sent_kbps: Some(6000.0), ..CLEAN });
        assert_eq!(drifting.decision(), loss_only.decision());
    }

    #[test]
    fn the_path_is_open_until_it_congests_and_again_once_it_carries_more() {
        let mut c = Controller::new(4000, 20_000, 8000);
        assert!(c.open(), "no congestion yet");
        c.update(twcc(7800.0, 5200.0, 3.0)); // a queue: 5200 carried
        assert!(!c.open(), "the interval after a cut");
        c.update(twcc(4000.0, 4000.0, 0.0)); // held
        assert!(!c.open(), "5200 remembered");
        c.update(twcc(5000.0, 5000.0, 0.0));
        assert!(!c.open(), "5000 carried is not more than 5200");
        c.update(twcc(5600.0, 5600.0, 0.0));
        assert!(c.open(), "5600 carried cleanly: the path widened");
    }

    #[test]
    fn an_encoder_that_overshoots_is_asked_for_less_and_one_that_undershoots_only_where_owed() {
        let mut vpx = EncoderFit::default();
        let mut last = vpx.setting(5000, None, false);
        assert_eq!(last, 5000);
        // It sends a quarter more than it is asked for, whatever it is asked for.
        for _ in 0..8 {
            last = vpx.setting(5000, Some(1.25 * f64::from(last)), false);
        }
        assert!((3900..=4100).contains(&last), "{last}");
        // At the ceiling too: the maximum is the most the viewer gets.
        assert!(vpx.setting(12_000, Some(1.25 * f64::from(last)), true) < 10_000);
        // x264 sends 85 % of its setting: left alone near a remembered congestion (a raise there
        // overshoots a narrowed link), raised where owed (the ceiling, or a path that opened)
        // until what it sends is the target.
        let mut x264 = EncoderFit::default();
        let mut last = x264.setting(8000, None, false);
        for _ in 0..8 {
            last = x264.setting(8000, Some(0.85 * f64::from(last)), false);
        }
        assert_eq!(last, 8000);
        for _ in 0..8 {
            last = x264.setting(12_000, Some(0.85 * f64::from(last)), true);
        }
        let sent = 0.85 * f64::from(last);
        assert!((11_800.0..=12_010.0).contains(&sent), "{last} sends {sent}");
        // Not owed any more (a congestion), the raise goes at once.
        assert_eq!(x264.setting(9000, Some(sent), false), 9000);
        // An encoder far under its setting on a calm desktop is not raised without bound.
        let mut calm = EncoderFit::default();
        let mut last = calm.setting(12_000, None, true);
        for _ in 0..8 {
            last = calm.setting(12_000, Some(0.55 * f64::from(last)), true);
        }
        assert!(f64::from(last) <= 12_000.0 / MOST_RAISE + 1.0, "{last}");
        // A still desktop sends little: that says nothing about the encoder.
        let mut still = EncoderFit::default();
        still.setting(8000, None, true);
        assert_eq!(still.setting(8000, Some(300.0), true), 8000);
    }

    #[test]
    fn steps_up_only_with_margin() {
        let mut c = Controller::new(4000, 12000, 4000);
        c.update(reports(0.12, 30.0, None)); // 4000 * 0.94 = 3760
        assert_eq!(c.decision().quality, Quality::HalfRate);
        c.update(CLEAN); // held
        c.update(CLEAN); // 4061 (8 %: near the congestion at 4000)
        c.update(CLEAN); // 4386: above min but within the margin
        assert_eq!(c.decision().quality, Quality::HalfRate);
        c.update(CLEAN); // 4737
        assert_eq!(c.decision().quality, Quality::Full);
    }

    proptest! {
        #[test]
        fn always_within_bounds(start in 0u32..50_000, steps in prop::collection::vec((0.0f64..1.0, prop::option::of(0.0f64..2000.0), prop::option::of(0.0f64..20_000.0)), 0..50)) {
            let mut c = Controller::new(4000, 12000, start);
            for (loss, rtt, sent) in steps {
                let d = c.update(Feedback { loss, rtt_ms: rtt, sent_kbps: sent, twcc: None, capacity_kbps: None });
                prop_assert!((500..=12000).contains(&d.target_kbps));
                prop_assert!(d.quality == Quality::Full || d.target_kbps < 4000 * 115 / 100);
                prop_assert!(d.quality != Quality::Full || d.target_kbps >= 4000);
                prop_assert!(d.quality.fps(60) >= 30);
            }
        }
    }
}
