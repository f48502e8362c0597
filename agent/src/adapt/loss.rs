//! The loss the bitrate controller sees in one poll interval (a second).
//!
//! Two readings of the viewer's loss, each wrong in its own way:
//! - a receiver report's *fraction lost* covers the time since the viewer's previous report, and
//!   Chromium sends a report with every NACK: on a path with 1 % random loss many reports are
//!   sent just after a loss and cover a few hundred milliseconds, so they read 2–3 % (6/256 three
//!   seconds running was seen in the netns test), which paused the controller's climb for seconds
//!   after a link widened;
//! - the growth of the report's *cumulative* count over the poll interval, against the packets
//!   sent in it, does not depend on when reports are sent, but counts only what NACK did not
//!   repair: on a link at its limit it read 1–2 % while the queue overflowed, and the climb went
//!   on into a retransmission storm (p95 glass to glass 210 ms in the netns test).
//!
//! So a mild loss (up to 10 %, which only pauses the climb) must show in both readings, and a
//! severe one (which cuts the rate) in either. With NACK the viewer recovers most lost packets
//! while a congested path fills with retransmissions, so the share of packets sent again counts
//! as loss too. Without a cumulative count the fraction is used alone.

/// The sender's counters and the viewer's latest report, read at one poll.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counts {
    /// Packets of the main video stream sent so far.
    pub sent: u64,
    /// Packets sent again (the retransmission stream) so far.
    pub resent: u64,
    /// The viewer's cumulative count of lost packets, from its latest receiver report.
    pub lost: Option<i64>,
    /// The latest receiver report's fraction lost, 0 to 1.
    pub fraction: Option<f64>,
}

/// Turns successive [`Counts`] into the loss of each interval between them.
#[derive(Debug, Default, Clone)]
pub struct LossMeter {
    last: Option<Counts>,
}

impl LossMeter {
    /// The loss since the previous call, 0 to 1; `None` until the viewer has sent a report.
    pub fn update(&mut self, now: Counts) -> Option<f64> {
        let prev = self.last.replace(now);
        let fraction = now.fraction.filter(|f| f.is_finite()).map(|f| f.clamp(0.0, 1.0));
        // A new stream (fewer packets than before) starts its counts again.
        let Some(prev) = prev.filter(|p| p.sent <= now.sent) else { return fraction };
        let sent = now.sent - prev.sent;
        if sent == 0 {
            return fraction;
        }
        let share = |n: u64| (n as f64 / sent as f64).min(1.0);
        let resent = share(now.resent.saturating_sub(prev.resent));
        let counted = match (now.lost, prev.lost) {
            // Duplicates can make the count go down: that is no loss.
            (Some(n), Some(p)) => Some(share(n.saturating_sub(p).max(0) as u64)),
            _ => None,
        };
        // A count that has not moved while packets were sent is the report already read at the
        // previous poll (or a new one that saw no loss): its fraction covers time before that
        // poll and was counted then. Read again, one severe report cut the rate twice: one
        // second after a link widened, 5.0 → 3.6 Mbit/s on a report from before the widening,
        // which delayed the climb past 10 Mbit/s by 2 s (scripts/bench-network's agent log).
        let fraction = fraction.filter(|_| !(now.lost.is_some() && now.lost == prev.lost));
        let reported = match (counted, fraction) {
            (Some(c), Some(f)) if c.max(f) > crate::adapt::bitrate::CUT_LOSS => Some(c.max(f)),
            (Some(c), Some(f)) => Some(c.min(f)),
            (c, f) => c.or(f),
        };
        reported.map(|r| r.max(resent)).or(now.lost.map(|_| resent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn counts(sent: u64, resent: u64, lost: Option<i64>, fraction: Option<f64>) -> Counts {
        Counts { sent, resent, lost, fraction }
    }

    #[test]
    fn mild_loss_must_show_in_both_readings_severe_loss_in_either() {
        let mut m = LossMeter::default();
        assert_eq!(m.update(counts(0, 0, None, None)), None, "no report yet");
        assert_eq!(m.update(counts(500, 5, Some(4), Some(6.0 / 256.0))), Some(6.0 / 256.0), "no count before");
        // A report sent after a loss reads 6/256; 5 of 500 were lost over the interval.
        assert_eq!(m.update(counts(1000, 5, Some(9), Some(6.0 / 256.0))), Some(0.01));
        // The count grew by 3 %, the last report read 1/256.
        assert_eq!(m.update(counts(1500, 5, Some(24), Some(1.0 / 256.0))), Some(1.0 / 256.0));
        // NACK repaired nearly all, but the last report saw a fifth lost: cut.
        assert_eq!(m.update(counts(2000, 5, Some(25), Some(0.2))), Some(0.2));
        // The count grew by 12 %, whatever the last report read.
        assert_eq!(m.update(counts(2500, 5, Some(85), Some(0.0))), Some(0.12));
        // Retransmissions filling a congested path count even when the viewer recovered it all.
        assert_eq!(m.update(counts(3000, 105, Some(85), Some(0.0))), Some(0.2));
    }

    #[test]
    fn a_report_read_before_does_not_count_again() {
        let mut m = LossMeter::default();
        m.update(counts(1000, 10, Some(50), Some(0.01)));
        // A fifth lost: cut.
        assert_eq!(m.update(counts(1500, 10, Some(150), Some(0.2))), Some(0.2));
        // No report since: its count has not moved, and only the retransmissions count.
        assert_eq!(m.update(counts(2000, 15, Some(150), Some(0.2))), Some(0.01));
        // A new report with a new loss counts again.
        assert_eq!(m.update(counts(2500, 15, Some(210), Some(0.15))), Some(0.15));
    }

    #[test]
    fn without_a_cumulative_count_the_fraction_is_used() {
        let mut m = LossMeter::default();
        assert_eq!(m.update(counts(0, 0, None, Some(0.05))), Some(0.05));
        assert_eq!(m.update(counts(100, 1, None, Some(0.2))), Some(0.2));
        assert_eq!(m.update(counts(200, 30, None, Some(0.2))), Some(0.29), "the larger of the two");
    }

    #[test]
    fn a_new_stream_or_an_idle_interval_reads_the_report_alone() {
        let mut m = LossMeter::default();
        m.update(counts(1000, 0, Some(50), Some(0.01)));
        assert_eq!(m.update(counts(1000, 0, Some(50), Some(0.01))), Some(0.01), "nothing sent");
        assert_eq!(m.update(counts(10, 0, Some(0), Some(0.0))), Some(0.0), "counters restarted");
        assert_eq!(m.update(counts(110, 0, Some(-3), Some(0.0))), Some(0.0), "duplicates");
    }

    proptest! {
        #[test]
        fn always_a_share_of_what_was_sent(
            steps in prop::collection::vec(
                (0u64..100_000, 0u64..100_000, prop::option::of(-1000i64..100_000), prop::option::of(-1.0f64..2.0)),
                1..30,
            ),
        ) {
            let mut m = LossMeter::default();
            for (sent, resent, lost, fraction) in steps {
                if let Some(l) = m.update(counts(sent, resent, lost, fraction)) {
                    prop_assert!((0.0..=1.0).contains(&l), "{l}");
                }
            }
        }
    }
}
