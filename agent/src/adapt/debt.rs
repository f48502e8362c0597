//! When libvpx's debt is written off.
//!
//! libvpx's VP8 CBR counts every bit it sends over its setting as debt and repays it only from
//! frames under the setting. While a narrowed path holds the frame budget below what libvpx's
//! coarsest frames need (`skip`), that debt grows by seconds of the target, and nothing bounds
//! it. Once the path widens, the setting rises but libvpx keeps sending its coarsest frames until
//! the debt is repaid: in `scripts/bench-network` what arrived lagged the target by 0.5 to 2.5 s
//! after the link widened, and that lag alone kept VP8 from 10 Mbit/s within 5 s in 2 or 3 runs
//! of 10.
//!
//! Bounding the debt while the path is narrow cost a quarter to a third of the frames there
//! (docs/bitrate-history.md); the debt is what keeps libvpx at its coarsest frames, and so the
//! frame rate up. So it is kept while the path is narrow and written off once the path has
//! carried more than at its last congestion (`Controller::open`): then an encoder sending well
//! under its setting, with no frame skipped, is repaying debt, not short of pictures to code.

use std::time::{Duration, Instant};

/// Sent under this share of the previous setting, with nothing skipped, is repaying debt.
const SHORT: f64 = 0.75;

/// At most one write-off in this long: the encoder needs a second or two to show the effect.
pub const EVERY: Duration = Duration::from_secs(5);

/// Frames skipped this recently, in at least [`NARROW`] intervals while the path was not open,
/// mean libvpx ran up debt (see the module's doc).
pub const RECENT: Duration = Duration::from_secs(3);

/// Intervals with frames skipped, while congestion was remembered, that make a narrow path: a
/// session's start skips for a second or two, and a write-off then sent libvpx's full frames
/// into a link that narrowed just after (a 577 ms gap in `scripts/bench-network`).
pub const NARROW: u32 = 3;

/// What the write-off decision remembers.
#[derive(Debug, Default)]
pub struct WriteOff {
    last: Option<Instant>,
    skipped_at: Option<Instant>,
    /// Intervals with frames skipped since the path was last open.
    skipping: u32,
    open: bool,
}

impl WriteOff {
    /// Whether to write off the encoder's debt at `now`, given the interval's decision: the path
    /// is `open` (see `Controller::open`), `skipped` frames were skipped, and the encoder sent
    /// `sent_kbps` against a `previous_kbps` setting. Due when the path has just opened after a
    /// narrow spell (frames skipped in [`NARROW`] intervals, the last within [`RECENT`]: the debt
    /// is certain, and the sooner it goes the sooner the climb sees what the path carries), or
    /// when the path is open and the encoder, skipping
    /// nothing, sent under [`SHORT`] of its setting; at most once in [`EVERY`]. Counts as done
    /// when it says so.
    pub fn due(&mut self, open: bool, skipped: u64, sent_kbps: Option<f64>, previous_kbps: f64, now: Instant) -> bool {
        let opened = open && !std::mem::replace(&mut self.open, open);
        if skipped > 0 {
            self.skipped_at = Some(now);
            self.skipping += u32::from(!open);
        }
        let indebted = opened
            && self.skipping >= NARROW
            && self.skipped_at.is_some_and(|t| now.saturating_duration_since(t) <= RECENT);
        if open {
            self.skipping = 0;
        }
        let short = open && skipped == 0 && sent_kbps.is_some_and(|s| s.is_finite() && s < SHORT * previous_kbps);
        let rested = self.last.is_none_or(|t| now.saturating_duration_since(t) >= EVERY);
        let due = (indebted || short) && rested;
        if due {
            self.last = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_that_opens_after_skipped_frames_writes_off_at_once() {
        let t0 = Instant::now();
        let mut w = WriteOff::default();
        let s = Duration::from_secs;
        for n in 0..4 {
            assert!(!w.due(false, 12, Some(5000.0), 3000.0, t0 + s(n)), "narrow: the debt keeps the frame rate up");
        }
        assert!(!w.due(false, 0, Some(3000.0), 3000.0, t0 + s(4)));
        assert!(w.due(true, 0, Some(5000.0), 6000.0, t0 + s(5)), "opened 2 s after a skip");
        // A session's start skips for an interval or two: no narrow spell, nothing written off.
        let mut w = WriteOff::default();
        w.due(false, 22, Some(7700.0), 3400.0, t0);
        w.due(false, 5, Some(7700.0), 5900.0, t0 + s(1));
        assert!(!w.due(true, 0, Some(8000.0), 8600.0, t0 + s(2)));
        // Opened long after the last skipped frame: no debt is known, nothing is written off.
        let mut w = WriteOff::default();
        for n in 0..4 {
            w.due(false, 5, Some(5000.0), 5000.0, t0 + s(n));
        }
        w.due(false, 0, Some(5000.0), 5000.0, t0 + s(4));
        assert!(!w.due(true, 0, Some(5000.0), 6000.0, t0 + s(3) + RECENT + s(1)));
    }

    #[test]
    fn an_open_path_with_nothing_skipped_and_the_encoder_short_writes_off() {
        let t0 = Instant::now();
        let mut w = WriteOff::default();
        assert!(!w.due(false, 0, Some(5000.0), 10_000.0, t0), "congestion remembered: the path may still be narrow");
        assert!(!w.due(true, 0, Some(9000.0), 10_000.0, t0), "opened with no frame skipped: no debt known");
        assert!(!w.due(true, 3, Some(5000.0), 10_000.0, t0), "frames skipped: the frame budget decided what was sent");
        assert!(!w.due(true, 0, Some(8000.0), 10_000.0, t0), "80 % of the setting is no debt");
        assert!(!w.due(true, 0, None, 10_000.0, t0), "nothing measured");
        assert!(w.due(true, 0, Some(5000.0), 10_000.0, t0));
        assert!(!w.due(true, 0, Some(5000.0), 12_000.0, t0 + Duration::from_secs(2)), "not again so soon");
        assert!(w.due(true, 0, Some(5000.0), 12_000.0, t0 + EVERY));
    }
}
