//! How many of the frames the capture's caps promise reach the encoder. x264 (and the hardware
//! H.264 encoders) size each frame as their setting over the caps' frame rate, so when a busy
//! machine captures fewer frames they send that much less than asked: on the 2-core test machine
//! of 2026-12-02 the capture gave x264 32–43 frames a second of 60, and a 12 Mbit/s target
//! (14.1 asked, with x264's own undershoot allowed for) sent 7–8.8 Mbit/s, so the widened link's
//! viewer never received 10 (6 runs of 10, docs/bitrate-history.md). The setting of such an
//! encoder is raised by the share of the promised frames that were given to it. Frames the frame
//! budget skipped count as given: skipping them is how the target is held, not a shortfall.

use std::time::{Duration, Instant};

/// The least share compensated: a setting is raised at most twice over. A capture giving fewer
/// than half its frames is starved for other reasons, and doubling the frames' size would only
/// make each one slower to send.
pub const LEAST_SHARE: f64 = 0.5;
/// Intervals shorter than this give too few frames to read a share from (about 15 at 60 fps).
pub const SHORTEST: Duration = Duration::from_millis(250);

/// The smoothed share of the caps' frame rate that reaches the encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct Cadence {
    /// Frames given by the previous reading, when, and the frame rate the caps promised then.
    last: Option<(Instant, u64, u32)>,
    share: f64,
}

impl Default for Cadence {
    fn default() -> Self {
        Self { last: None, share: 1.0 }
    }
}

impl Cadence {
    /// `given` frames have reached the encoder in all (encoded or skipped) by `now`, while the
    /// caps promised `fps`: the share of them since the previous reading, smoothed over two
    /// readings. A change of the promised rate (a picture-quality step) starts over at 1, because
    /// the interval around it mixes the two rates.
    pub fn update(&mut self, given: u64, fps: u32, now: Instant) -> f64 {
        match self.last {
            Some((then, before, promised)) if promised == fps && fps > 0 => {
                let secs = now.saturating_duration_since(then);
                if secs < SHORTEST {
                    return self.share;
                }
                let rate = given.saturating_sub(before) as f64 / secs.as_secs_f64();
                let share = (rate / f64::from(fps)).clamp(LEAST_SHARE, 1.0);
                self.share = (0.5 * self.share + 0.5 * share).clamp(LEAST_SHARE, 1.0);
            }
            _ => self.share = 1.0,
        }
        self.last = Some((now, given, fps));
        self.share
    }
}

/// The setting for an encoder that sizes frames by the caps' rate, given `share` of that rate
/// reaches it: raised so that the frames it does get carry `setting_kbps`.
pub fn compensate(setting_kbps: u32, share: f64) -> u32 {
    let share = if share.is_finite() { share.clamp(LEAST_SHARE, 1.0) } else { 1.0 };
    (f64::from(setting_kbps) / share).round().min(f64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds of readings at `fps` promised, `given` frames a second.
    fn run(c: &mut Cadence, start: Instant, from: u64, seconds: u64, per_second: u64, fps: u32) -> (u64, f64) {
        let shares = (1..=seconds).map(|s| c.update(from + s * per_second, fps, start + Duration::from_secs(s)));
        (from + seconds * per_second, shares.last().unwrap_or(f64::NAN))
    }

    #[test]
    fn a_capture_that_keeps_up_changes_nothing() {
        let (mut c, t0) = (Cadence::default(), Instant::now());
        assert_eq!(c.update(0, 60, t0), 1.0);
        let (_, share) = run(&mut c, t0, 0, 5, 60, 60);
        assert_eq!(share, 1.0);
        assert_eq!(compensate(12_000, share), 12_000);
    }

    /// The machine of 2026-12-02: 38 frames a second of 60 reached x264, asked 14.1 Mbit/s.
    #[test]
    fn a_capture_short_of_its_rate_raises_the_setting_by_the_share() {
        let (mut c, t0) = (Cadence::default(), Instant::now());
        c.update(0, 60, t0);
        let (_, share) = run(&mut c, t0, 0, 6, 38, 60);
        assert!((share - 38.0 / 60.0).abs() < 0.01, "{share}");
        let setting = compensate(14_118, share);
        // What x264 then sends: the setting over 60 frames, 38 of them.
        let sent = f64::from(setting) * 38.0 / 60.0;
        assert!((sent - 14_118.0).abs() < 150.0, "{setting} sends {sent}");
    }

    #[test]
    fn a_starved_capture_raises_at_most_twice_over() {
        let (mut c, t0) = (Cadence::default(), Instant::now());
        c.update(0, 60, t0);
        let (_, share) = run(&mut c, t0, 0, 6, 5, 60);
        assert!((LEAST_SHARE..0.51).contains(&share), "{share}");
        assert_eq!(compensate(6_000, 0.1), 12_000);
        assert_eq!(compensate(6_000, f64::NAN), 6_000);
        assert_eq!(compensate(6_000, 0.0), 12_000);
    }

    /// A quality step halves the promised rate: the second it happened in is neither rate.
    #[test]
    fn a_new_frame_rate_starts_over() {
        let (mut c, t0) = (Cadence::default(), Instant::now());
        c.update(0, 60, t0);
        let (total, share) = run(&mut c, t0, 0, 3, 40, 60);
        assert!(share < 0.75);
        // The step to 30 fps: a second of 35 frames read against 30 would be over 1 anyway, but
        // read against 60 it would be a shortfall.
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(c.update(total + 35, 30, t1 + Duration::from_secs(1)), 1.0);
        let (_, share) = run(&mut c, t1 + Duration::from_secs(1), total + 35, 3, 30, 30);
        assert_eq!(share, 1.0);
    }

    #[test]
    fn readings_closer_than_a_quarter_second_say_nothing() {
        let (mut c, t0) = (Cadence::default(), Instant::now());
        c.update(0, 60, t0);
        // 2 frames in 100 ms would read as a fifth of the rate.
        assert_eq!(c.update(2, 60, t0 + Duration::from_millis(100)), 1.0);
        assert!((c.update(30, 60, t0 + Duration::from_millis(500)) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn one_slow_second_moves_the_setting_half_way() {
        let (mut c, t0) = (Cadence::default(), Instant::now());
        c.update(0, 60, t0);
        let share = c.update(30, 60, t0 + Duration::from_secs(1));
        assert!((share - 0.75).abs() < 1e-9, "{share}");
    }
}
