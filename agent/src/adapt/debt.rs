//! When libvpx's debt is written off: once the frames' trains show the path widened.
//!
//! libvpx's VP8 CBR counts every bit it sends over its setting as debt and repays it only from
//! frames under the setting. While a narrowed path holds the frame budget below what libvpx's
//! coarsest frames need (`skip`), that debt grows by seconds of the target, and nothing bounds
//! it. Once the path widens the setting rises, but libvpx keeps sending its coarsest frames until
//! the debt is repaid: in `scripts/bench-network` what arrived lagged the target by 0.5–3.7 s,
//! and that lag alone kept VP8 from 10 Mbit/s within 5 s of the widening in 1 to 3 runs of 10.
//!
//! The debt is what keeps libvpx at its coarsest frames on the narrowed path, and so the frame
//! rate up there: bounding it cost a quarter to a third of the frames (docs/bitrate-history.md).
//! So it is kept while the path is narrow and written off once the path is known to be wider.
//! "Known" is the point. Written off when the controller merely remembered no congestion
//! (`Controller::open`), which a climb on the still-narrow path can also reach, libvpx sent its
//! full frames into the narrow link and 5 runs of 10 had a gap over 500 ms. The trains are
//! the path's own word: on the 6 Mbit/s link they read 5.6–6.5 Mbit/s once the stream fills it,
//! widened to 20 they read over 19 within the first second. (Right after a cut they can read a
//! shaper's burst at line rate; the controller sorts that out, see
//! `Controller::acted_on_trains`.) So the write-off waits for both: the controller acting on the
//! trains' word (forgetting its congestion or jumping to them), and trains at [`WIDER`] times
//! the latest read while frames were being skipped.

use std::time::{Duration, Instant};

/// Trains this many times those of the narrow spell show a widened path. Twice the narrowed
/// link's highest readings (6.5 Mbit/s) is still well under the widened one's (19).
pub const WIDER: f64 = 2.0;

/// Frames skipped this recently, in at least [`NARROW`] intervals whose trains were read, mean
/// libvpx ran up debt.
pub const RECENT: Duration = Duration::from_secs(3);

/// Intervals with frames skipped (and trains read) that make a narrow spell: a session's start
/// skips for a second or two, with no debt worth a write-off.
pub const NARROW: u32 = 3;

/// At most one write-off in this long: the encoder needs a second or two to show the effect.
pub const EVERY: Duration = Duration::from_secs(5);

/// What the write-off decision remembers.
#[derive(Debug, Default)]
pub struct WriteOff {
    /// The trains of the latest interval with frames skipped, unless that reading was itself a
    /// widening (it is what the next readings are compared with).
    narrow: Option<f64>,
    /// Intervals with frames skipped and trains read, each within [`RECENT`] of the one before.
    skipping: u32,
    skipped_at: Option<Instant>,
    last: Option<Instant>,
}

impl WriteOff {
    /// Whether to write off the encoder's debt at `now`, given one interval: the controller
    /// `acted` on the trains' word (`Controller::acted_on_trains`), the frames' trains read
    /// `capacity_kbps`, and `skipped` frames were skipped. Due when a narrow spell (frames
    /// skipped in [`NARROW`] intervals, the last within [`RECENT`]) is followed by trains at
    /// [`WIDER`] times its latest reading that the controller acted on; at most once in
    /// [`EVERY`]. Counts as done when it says so.
    pub fn due(&mut self, acted: bool, capacity_kbps: Option<f64>, skipped: u64, now: Instant) -> bool {
        let capacity = capacity_kbps.filter(|c| c.is_finite() && *c > 0.0);
        if self.skipped_at.is_none_or(|t| now.saturating_duration_since(t) > RECENT) {
            self.narrow = None;
            self.skipping = 0;
        }
        let wider = capacity.zip(self.narrow).is_some_and(|(c, n)| c > WIDER * n);
        let rested = self.last.is_none_or(|t| now.saturating_duration_since(t) >= EVERY);
        let due = wider && acted && self.skipping >= NARROW && rested;
        if due {
            self.last = Some(now);
            self.narrow = None;
            self.skipping = 0;
            self.skipped_at = None;
        } else if skipped > 0 {
            self.skipped_at = Some(now);
            // A widening the controller has not followed yet is not the narrow spell's reading:
            // the spell is still owed its write-off once the target rises.
            if let Some(c) = capacity.filter(|_| !wider) {
                self.narrow = Some(c);
                self.skipping += 1;
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    /// A narrowed path as `scripts/bench-network` sees it: skipped frames every second, the
    /// trains at 5.6–6.5 Mbit/s; the controller holds a congestion.
    fn narrow_spell(w: &mut WriteOff, t0: Instant, seconds: u64) {
        for n in 0..seconds {
            let reading = [5600.0, 6500.0, 5900.0][n as usize % 3];
            assert!(!w.due(false, Some(reading), 12, t0 + S(n)), "narrow: the debt keeps the frame rate up");
        }
    }

    #[test]
    fn a_widened_path_writes_off_once_the_controller_follows_it() {
        let t0 = Instant::now();
        let mut w = WriteOff::default();
        // The first window after the narrowing was sent before it: its trains read 18.8.
        assert!(!w.due(false, Some(18_800.0), 20, t0));
        narrow_spell(&mut w, t0 + S(1), 10);
        // Widened: the trains see it first, while the controller still holds (loss reported).
        assert!(!w.due(false, Some(19_500.0), 12, t0 + S(11)), "the controller has not acted yet");
        assert!(w.due(true, Some(20_400.0), 16, t0 + S(12)), "wider, acted on, 1 s after the last skip");
        assert!(!w.due(true, Some(19_000.0), 0, t0 + S(13)), "once");
    }

    #[test]
    fn the_narrow_path_writes_nothing_off() {
        let t0 = Instant::now();
        let mut w = WriteOff::default();
        narrow_spell(&mut w, t0, 10);
        // The controller jumps to the trains on the narrow path (85 % of 6.4 Mbit/s): they still
        // read the narrow link.
        for n in 10..20 {
            assert!(!w.due(true, Some(6400.0), 3, t0 + S(n)));
        }
        // Bursts at line rate that the controller does not act on (right after a cut).
        for n in 20..25 {
            assert!(!w.due(false, Some(19_000.0), 12, t0 + S(n)));
        }
    }

    #[test]
    fn no_narrow_spell_no_write_off() {
        let t0 = Instant::now();
        // A session's start skips for two intervals; the trains then read the whole path.
        let mut w = WriteOff::default();
        w.due(false, Some(6000.0), 22, t0);
        w.due(false, Some(6000.0), 5, t0 + S(1));
        assert!(!w.due(true, Some(19_000.0), 0, t0 + S(2)), "two intervals are no narrow spell");
        // Widened long after the last skipped frame: no debt is known.
        let mut w = WriteOff::default();
        narrow_spell(&mut w, t0, 5);
        assert!(!w.due(true, Some(19_000.0), 0, t0 + S(4) + RECENT + S(1)));
        // No trains read (a viewer without transport-wide feedback): nothing to go by.
        let mut w = WriteOff::default();
        for n in 0..10 {
            w.due(false, None, 12, t0 + S(n));
        }
        assert!(!w.due(true, None, 0, t0 + S(10)));
    }

    #[test]
    fn at_most_once_in_a_while() {
        let t0 = Instant::now();
        let mut w = WriteOff::default();
        narrow_spell(&mut w, t0, 5);
        assert!(w.due(true, Some(19_000.0), 0, t0 + S(5)));
        // Narrowed and widened again at once: not within EVERY.
        narrow_spell(&mut w, t0 + S(6), 3);
        assert!(!w.due(true, Some(19_000.0), 0, t0 + S(9)));
        narrow_spell(&mut w, t0 + S(10), 3);
        assert!(w.due(true, Some(19_000.0), 0, t0 + S(13)));
    }

    proptest! {
        /// Whatever the readings, a write-off needs the controller to act on trains over twice a
        /// reading of a skipped interval, and two are never closer than `EVERY`.
        #[test]
        fn write_offs_need_a_widening_and_are_spaced(
            steps in proptest::collection::vec((any::<bool>(), proptest::option::of(-1.0e6f64..1.0e6), 0u64..30, 100u64..3000), 1..200),
        ) {
            let t0 = Instant::now();
            let mut w = WriteOff::default();
            let (mut now, mut last, mut skipped_readings) = (t0, None::<Instant>, Vec::new());
            for (acted, capacity, skipped, ms) in steps {
                now += Duration::from_millis(ms);
                if w.due(acted, capacity, skipped, now) {
                    prop_assert!(acted);
                    let c = capacity.expect("a reading");
                    prop_assert!(skipped_readings.iter().any(|n: &f64| c > WIDER * n));
                    prop_assert!(last.is_none_or(|t| now - t >= EVERY));
                    last = Some(now);
                } else if skipped > 0 && let Some(c) = capacity.filter(|c| *c > 0.0) {
                    skipped_readings.push(c);
                }
            }
        }
    }
}
