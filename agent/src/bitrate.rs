//! Adaptive bitrate from the viewer's RTCP feedback. A controller of our own, in the spirit of
//! Google Congestion Control's loss-based half with a delay guard: every second it reads the
//! fraction of packets lost and the round-trip time from webrtcbin's stats and moves the encoder
//! target within `[min, max]`:
//! - loss above 10 %: decrease multiplicatively by half the loss (`target *= 1 - loss/2`);
//! - RTT more than 1.5× plus 20 ms above the lowest seen (a queue is building): `target *= 0.85`;
//! - loss under 2 % and no queue: increase by 5 % (`target *= 1.05`);
//! - otherwise hold.

/// Network feedback for one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feedback {
    /// Fraction of packets lost in the interval, 0 to 1.
    pub loss: f64,
    /// Round-trip time in milliseconds, when known.
    pub rtt_ms: Option<f64>,
}

/// The controller's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    min: f64,
    max: f64,
    target: f64,
    base_rtt_ms: Option<f64>,
}

impl Controller {
    /// Starts at `start` kbit/s, bounded by `[min, max]`.
    pub fn new(min_kbps: u32, max_kbps: u32, start_kbps: u32) -> Self {
        let (min, max) = (f64::from(min_kbps.min(max_kbps)), f64::from(max_kbps.max(min_kbps)));
        Self { min, max, target: f64::from(start_kbps).clamp(min, max), base_rtt_ms: None }
    }

    /// The current target in kbit/s.
    pub fn target_kbps(&self) -> u32 {
        self.target.round() as u32
    }

    /// Applies one interval's feedback; returns the new target in kbit/s.
    pub fn update(&mut self, fb: Feedback) -> u32 {
        let loss = if fb.loss.is_finite() { fb.loss.clamp(0.0, 1.0) } else { 0.0 };
        let queueing = match (fb.rtt_ms.filter(|r| r.is_finite() && *r >= 0.0), self.base_rtt_ms) {
            (Some(rtt), Some(base)) => {
                self.base_rtt_ms = Some(base.min(rtt));
                rtt > base * 1.5 + 20.0
            }
            (Some(rtt), None) => {
                self.base_rtt_ms = Some(rtt);
                false
            }
            (None, _) => false,
        };
        if loss > 0.10 {
            self.target *= 1.0 - loss / 2.0;
        } else if queueing {
            self.target *= 0.85;
        } else if loss < 0.02 {
            self.target *= 1.05;
        }
        self.target = self.target.clamp(self.min, self.max);
        self.target_kbps()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn backs_off_on_loss_and_recovers() {
        let mut c = Controller::new(4000, 12000, 8000);
        let lossy = Feedback { loss: 0.2, rtt_ms: Some(30.0) };
        for _ in 0..3 {
            c.update(lossy);
        }
        assert!(c.target_kbps() < 6000, "{}", c.target_kbps());
        let clean = Feedback { loss: 0.0, rtt_ms: Some(30.0) };
        for _ in 0..30 {
            c.update(clean);
        }
        assert_eq!(c.target_kbps(), 12000);
    }

    #[test]
    fn a_growing_queue_lowers_the_target() {
        let mut c = Controller::new(4000, 12000, 10000);
        c.update(Feedback { loss: 0.0, rtt_ms: Some(20.0) });
        let before = c.target_kbps();
        c.update(Feedback { loss: 0.0, rtt_ms: Some(120.0) });
        assert!(c.target_kbps() < before);
    }

    proptest! {
        #[test]
        fn always_within_bounds(start in 0u32..50_000, steps in prop::collection::vec((0.0f64..1.0, prop::option::of(0.0f64..2000.0)), 0..50)) {
            let mut c = Controller::new(4000, 12000, start);
            for (loss, rtt) in steps {
                let t = c.update(Feedback { loss, rtt_ms: rtt });
                prop_assert!((4000..=12000).contains(&t));
            }
        }
    }
}
