//! Capture pacing: the viewer asks to move the capture's phase so frames reach its page just
//! before the compositor takes one, instead of waiting up to a whole refresh for it.
//!
//! Why: capture and the viewer's display both tick at about 60 Hz but are not locked, so a frame
//! waits between 0 and 16.7 ms for the next refresh, depending on a phase nobody chose. The page
//! measures the wait (`expectedDisplayTime − receiveTime` of each frame), sweeps the phase, and
//! keeps it where the wait is shortest (protocol message `phase`; the controller is in the web
//! client). On this machine that took 720p glass-to-glass p50 from 25–33 ms, depending on the
//! run's luck, to about 24 ms (README, latency section).
//!
//! How: `ximagesrc` captures at `base_time + k × interval`. Moving its base time back by
//! `interval − d` delays the following captures by `d` and keeps its timestamps increasing (a
//! forward move would make it capture at once with an older timestamp). Its timestamps are then
//! ahead of the pipeline's running time by how far it was moved; `restamp` takes that back out,
//! so RTP timestamps and audio/video sync stay true.

use gst::prelude::*;

/// Name of the capture element in the pipeline.
pub const CAPTURE: &str = "capture";

/// Delays the capture schedule of `capture` by `fraction` of its frame interval (taken modulo
/// one interval). Returns the delay applied.
pub fn delay_capture(capture: &gst::Element, fraction: f64) -> Option<gst::ClockTime> {
    let interval = frame_interval(capture)?;
    let delay = delay_within(interval.nseconds(), fraction)?;
    let base = capture.base_time()?;
    let moved = base.checked_sub(interval - gst::ClockTime::from_nseconds(delay))?;
    capture.set_base_time(moved);
    Some(gst::ClockTime::from_nseconds(delay))
}

/// `fraction` (any number the viewer sent) of `interval_ns`, modulo one interval; `None` when
/// there is nothing to move.
fn delay_within(interval_ns: u64, fraction: f64) -> Option<u64> {
    if !fraction.is_finite() {
        return None;
    }
    let delay = (interval_ns as f64 * fraction.rem_euclid(1.0)) as u64;
    // Below 50 µs the sleep's own precision is larger than the move.
    (delay >= 50_000 && delay < interval_ns).then_some(delay)
}

/// The capture's negotiated frame interval.
fn frame_interval(capture: &gst::Element) -> Option<gst::ClockTime> {
    let caps = capture.static_pad("src")?.current_caps()?;
    let rate = caps.structure(0)?.get::<gst::Fraction>("framerate").ok()?;
    let (n, d) = (u64::try_from(rate.numer()).ok()?, u64::try_from(rate.denom()).ok()?);
    (n > 0).then(|| gst::ClockTime::from_nseconds(1_000_000_000 * d / n))
}

/// Keeps the capture's timestamps on the pipeline's running time however far `delay_capture`
/// moved its base time.
pub fn restamp(pipeline: &gst::Pipeline) {
    let Some(capture) = pipeline.by_name(CAPTURE) else { return };
    let Some(pad) = capture.static_pad("src") else { return };
    let weak = pipeline.downgrade();
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let (Some(pipeline), Some(capture)) = (weak.upgrade(), pad.parent_element()) else {
            return gst::PadProbeReturn::Ok;
        };
        let (Some(ours), Some(its)) = (pipeline.base_time(), capture.base_time()) else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(ahead) = ours.checked_sub(its).filter(|a| !a.is_zero()) else { return gst::PadProbeReturn::Ok };
        if let Some(buffer) = info.buffer_mut() {
            let buffer = buffer.make_mut();
            if let Some(pts) = buffer.pts() {
                buffer.set_pts(pts.checked_sub(ahead).unwrap_or(gst::ClockTime::ZERO));
            }
        }
        gst::PadProbeReturn::Ok
    });
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever the viewer sends, the move stays within one frame interval.
        #[test]
        fn any_fraction_moves_less_than_a_frame(f in proptest::num::f64::ANY, fps in 1u64..240) {
            let interval = 1_000_000_000 / fps;
            if let Some(d) = delay_within(interval, f) {
                prop_assert!((50_000..interval).contains(&d));
            }
        }
    }

    #[test]
    fn fractions_wrap_around_one_frame() {
        assert_eq!(delay_within(10_000_000, 0.25), Some(2_500_000));
        assert_eq!(delay_within(10_000_000, 1.25), Some(2_500_000));
        assert_eq!(delay_within(10_000_000, -0.75), Some(2_500_000));
        assert_eq!(delay_within(10_000_000, 0.0), None);
        assert_eq!(delay_within(10_000_000, f64::NAN), None);
    }

    /// A live source at 100 fps (an `ximagesrc` stand-in with the same scheduling: `videotestsrc
    /// is-live` also waits for `base_time + k × interval`), moved by 0.3 of a frame: frames land
    /// 3 ms later in the interval, and timestamps stay on the pipeline's running time,
    /// increasing. (The agent end-to-end test moves the real `ximagesrc`.)
    #[test]
    fn a_delay_moves_the_phase_and_keeps_timestamps_true() {
        crate::init_gstreamer().expect("GStreamer initialises");
        let pipeline = gst::parse::launch(&format!(
            "videotestsrc name={CAPTURE} is-live=true ! video/x-raw,width=64,height=48,framerate=100/1 \
             ! appsink name=sink sync=false max-buffers=1000"
        ))
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
        restamp(&pipeline);
        let capture = pipeline.by_name(CAPTURE).expect("capture");
        let sink = pipeline.by_name("sink").and_then(|s| s.downcast::<gst_app::AppSink>().ok()).expect("sink");
        // Wall-clock phase (pipeline running time mod 10 ms) of each buffer when it comes out.
        let seen: Arc<Mutex<Vec<(gst::ClockTime, gst::ClockTime)>>> = Arc::default();
        pipeline.set_state(gst::State::Playing).expect("plays");
        let clock = pipeline.clock().expect("clock");
        let base = pipeline.base_time().expect("base time");
        let pull = |n: usize| {
            for _ in 0..n {
                let sample = sink.pull_sample().expect("sample");
                let now = clock.time() - base;
                let pts = sample.buffer().and_then(|b| b.pts()).expect("pts");
                seen.lock().expect("lock").push((pts, now));
            }
        };
        pull(20);
        let applied = delay_capture(&capture, 0.3).expect("moved");
        assert!(applied.nseconds().abs_diff(3_000_000) < 1_000, "{applied}");
        pull(30);
        pipeline.set_state(gst::State::Null).expect("stops");
        let seen = seen.lock().expect("lock");
        let pts: Vec<u64> = seen.iter().map(|(p, _)| p.nseconds()).collect();
        assert!(pts.windows(2).all(|w| w[1] > w[0]), "timestamps increase: {pts:?}");
        // No timestamp is ahead of when its buffer came out (unrestamped, they would be 7 ms
        // ahead after the move).
        for (p, now) in seen.iter() {
            assert!(p <= now, "pts {p} came out at {now}");
        }
        let phase = |v: u64| (v % 10_000_000) as i64;
        let before = phase(pts[0]);
        let after = phase(*pts.last().expect("frames"));
        let moved = (after - before).rem_euclid(10_000_000);
        assert!((2_500_000..3_500_000).contains(&moved), "phase moved by {moved} ns");
    }
}
