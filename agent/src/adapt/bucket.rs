//! The token bucket the frame budget (`skip`), the retransmission budget (`retransmit`) and the
//! packet pacer (`media::pacer`) each keep: bytes earned at a rate, saved up to a cap, spent by
//! the caller, and (for the frame budget and the pacer) owed down to a floor.

use std::time::{Duration, Instant};

/// Bytes earned at a rate.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Bytes a second.
    rate: f64,
    /// Bytes in hand; below zero, owed.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Option<Instant>,
    /// The cap: this long at the rate, and never under `least` bytes.
    saved: Duration,
    least: f64,
    /// The floor: this long at the rate, owed.
    owed: Duration,
}

impl TokenBucket {
    /// A full bucket earning `rate` bytes a second, holding `saved` of it and owing `owed` at most.
    pub fn new(rate: f64, saved: Duration, owed: Duration) -> Self {
        let rate = rate.max(1.0);
        Self { rate, tokens: rate * saved.as_secs_f64(), at: None, saved, least: 0.0, owed }
    }

    /// The same, whose cap is never under `bytes` (so a slow rate still pays for one item now
    /// and then).
    pub fn holding_at_least(mut self, bytes: f64) -> Self {
        self.least = bytes;
        self
    }

    fn cap(&self) -> f64 {
        (self.rate * self.saved.as_secs_f64()).max(self.least)
    }

    fn floor(&self) -> f64 {
        -self.rate * self.owed.as_secs_f64()
    }

    /// Earns what the time since the last call is worth.
    pub fn refill(&mut self, now: Instant) {
        if let Some(then) = self.at {
            let earned = now.saturating_duration_since(then).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + earned).min(self.cap());
        }
        self.at = Some(now);
    }

    /// From `now` on, earns `rate` bytes a second (what was earned before at the old one).
    pub fn set_rate(&mut self, rate: f64, now: Instant) {
        self.refill(now);
        self.rate = rate.max(1.0);
        self.tokens = self.tokens.clamp(self.floor(), self.cap());
    }

    /// Takes `bytes` (owing them, down to the floor).
    pub fn spend(&mut self, bytes: f64) {
        self.tokens = (self.tokens - bytes).max(self.floor());
    }

    /// Bytes in hand (negative: owed), as of the last refill.
    pub fn tokens(&self) -> f64 {
        self.tokens
    }

    /// Bytes a second.
    pub fn rate(&self) -> f64 {
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn earns_at_its_rate_up_to_the_cap_and_owes_down_to_the_floor() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000.0, 500 * MS, 1000 * MS);
        assert_eq!(b.tokens(), 500.0, "starts full");
        b.refill(t0);
        b.spend(2000.0);
        assert_eq!(b.tokens(), -1000.0, "owes at most a second");
        b.refill(t0 + 250 * MS);
        assert_eq!(b.tokens(), -750.0);
        b.refill(t0 + 10_000 * MS);
        assert_eq!(b.tokens(), 500.0, "saves at most half a second");
        b.set_rate(100.0, t0 + 10_000 * MS);
        assert_eq!(b.tokens(), 50.0, "a lower rate, a smaller cap at once");
        let tiny = TokenBucket::new(10.0, 500 * MS, Duration::ZERO).holding_at_least(1200.0);
        assert_eq!(tiny.cap(), 1200.0);
    }
}
