//! A viewer who comes back soon resumes at the rate its path last carried, not at the configured
//! start.
//!
//! The page reconnects when no frame has come for 2 s. On a path that has just narrowed that is a
//! symptom of the path, and a new stream that starts blind at `VDI_VIDEO_BITRATE` repeats it:
//! measured in the netns scenario (VP8, 20 → 6 Mbit/s with 1 % loss), the new stream started at
//! 8 Mbit/s, froze again, and the page reconnected every 2.5 s for the whole 15 s the link was
//! narrow (0.2–0.7 frames a second, two runs of ten). So the agent remembers the last target it
//! set and, for a viewer who comes back within [`WITHIN`], starts at that when it is lower.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long the last path is remembered after the viewer's last stats poll.
pub const WITHIN: Duration = Duration::from_secs(30);

/// The last target set for a viewer, and when.
#[derive(Debug, Default)]
pub struct LastPath(Mutex<Option<(Instant, u32)>>);

impl LastPath {
    /// The controller set `target_kbps` at `now`.
    pub fn remember(&self, target_kbps: u32, now: Instant) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some((now, target_kbps));
        }
    }

    /// Where a viewer starting at `now` starts: the configured `start_kbps`, or the last target
    /// when that is lower and recent.
    pub fn start(&self, start_kbps: u32, now: Instant) -> u32 {
        match self.0.lock().ok().and_then(|l| *l) {
            Some((at, target)) if now.saturating_duration_since(at) < WITHIN => start_kbps.min(target),
            _ => start_kbps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_back_soon_starts_where_the_path_was() {
        let (t0, last) = (Instant::now(), LastPath::default());
        assert_eq!(last.start(8000, t0), 8000, "nobody before");
        last.remember(4500, t0);
        assert_eq!(last.start(8000, t0 + Duration::from_secs(3)), 4500, "a reconnect");
        assert_eq!(last.start(8000, t0 + WITHIN), 8000, "long gone: the path may have changed");
        last.remember(12_000, t0);
        assert_eq!(last.start(8000, t0 + Duration::from_secs(1)), 8000, "never above the configured start");
    }
}
