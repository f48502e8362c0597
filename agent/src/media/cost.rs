//! What an encoder costs on this machine: the agent's own capture, `vdiconvert` and encoder
//! settings (the same strings as a viewer's pipeline) run on a live display into a sink, with no
//! viewer and no network, and the process's CPU time is read around a measured span.
//!
//! A viewer's stream costs more than this (RTP, SRTP, the pacer), but little: the encoder is
//! what decides whether a node keeps up with 60 frames a second, and how many cores a session
//! without a GPU should request. `vdi-encoder-cost` prints it; `scripts/bench-encoders` runs it on
//! the test painter's scenes.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use gst::prelude::*;

use crate::media::{
    encoder::{self, Encoder},
    pipeline,
};

/// Linux reports a process's CPU time in clock ticks of `USER_HZ`, 100 a second on every
/// architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// One measured span of one chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Cost {
    /// The encoder, or `None` for the capture and conversion alone.
    pub encoder: Option<Encoder>,
    /// The captured picture's size.
    pub width: u32,
    /// The captured picture's height.
    pub height: u32,
    /// Length of the measured span.
    pub seconds: f64,
    /// Frames the capture delivered in the span (at most the asked rate).
    pub captured: u64,
    /// Frames that came out of the encoder (out of the conversion, without one) in the span; the
    /// rest were dropped by the capture's queue because the encoder was still busy. The frames in
    /// flight when the span starts count here, so this may pass `captured` by one or two.
    pub encoded: u64,
    /// Bytes the encoder wrote.
    pub bytes: u64,
    /// CPU time of the whole process (every thread: capture, conversion, encoder).
    pub cpu_seconds: f64,
}

impl Cost {
    /// Frames encoded per second.
    pub fn fps(&self) -> f64 {
        self.encoded as f64 / self.seconds
    }

    /// Frames captured per second.
    pub fn fps_captured(&self) -> f64 {
        self.captured as f64 / self.seconds
    }

    /// Cores the chain kept busy.
    pub fn cores(&self) -> f64 {
        self.cpu_seconds / self.seconds
    }

    /// CPU milliseconds per encoded frame; `None` when no frame was encoded.
    pub fn cpu_ms_per_frame(&self) -> Option<f64> {
        (self.encoded > 0).then(|| self.cpu_seconds * 1000.0 / self.encoded as f64)
    }

    /// Cores it would take to encode every frame at `fps`, at this cost per frame.
    pub fn cores_at(&self, fps: u32) -> Option<f64> {
        self.cpu_ms_per_frame().map(|ms| ms * f64::from(fps) / 1000.0)
    }

    /// Kilobytes per encoded frame; `None` when no frame was encoded.
    pub fn kb_per_frame(&self) -> Option<f64> {
        (self.encoded > 0).then(|| self.bytes as f64 / 1000.0 / self.encoded as f64)
    }

    /// The chain's name: the encoder's element, or `capture+convert`.
    pub fn name(&self) -> &'static str {
        chain_name(self.encoder)
    }
}

/// A chain's name in reports and errors: its encoder's element, or `capture+convert`.
fn chain_name(encoder: Option<Encoder>) -> &'static str {
    encoder.map_or("capture+convert", Encoder::element)
}

/// Why a chain could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    /// The pipeline did not build (an element is missing).
    #[error("{chain}: the pipeline does not build: {why}")]
    Build {
        /// The chain's name.
        chain: &'static str,
        /// GStreamer's reason.
        why: String,
    },
    /// The pipeline stopped with an error (the display does not open, the encoder fails).
    #[error("{chain}: {why}")]
    Failed {
        /// The chain's name.
        chain: &'static str,
        /// GStreamer's reason.
        why: String,
    },
    /// The capture delivered no frame in the measured span.
    #[error("{chain}: no frame came from display {display} in {seconds:.1} s")]
    NoFrames {
        /// The chain's name.
        chain: &'static str,
        /// The display.
        display: String,
        /// The span waited.
        seconds: f64,
    },
    /// This process's CPU time cannot be read.
    #[error("cannot read this process's CPU time from /proc/self/stat: {0}")]
    Cpu(String),
}

/// What to measure: the display, the rate asked of the capture and the encoder's target.
#[derive(Debug, Clone)]
pub struct Run {
    /// The X display (`:0`).
    pub display: String,
    /// Frames a second asked of the capture.
    pub fps: u32,
    /// The encoder's target, kbit/s.
    pub bitrate_kbps: u32,
    /// Played before the span, unmeasured: the encoder starts, its first keyframe goes.
    pub warmup: Duration,
    /// The measured span.
    pub span: Duration,
}

/// Runs `encoder`'s chain (`None`: capture and conversion to I420 only) on `run.display` and
/// measures it.
pub fn measure(encoder: Option<Encoder>, run: &Run) -> Result<Cost, CostError> {
    let chain = chain_name(encoder);
    let tail = match encoder {
        // Keyframes on demand, as a viewer's stream has them: only the first in the warm-up.
        Some(enc) => {
            format!("{} ! {}", pipeline::convert(enc), enc.fragment(run.bitrate_kbps, run.fps, encoder::ON_DEMAND))
        }
        None => format!("{} ! video/x-raw,format=I420", crate::media::convert::ELEMENT),
    };
    let desc =
        format!("{} ! {tail} ! fakesink name=out sync=false async=false", pipeline::capture(&run.display, run.fps));
    let pipe = gst::parse::launch(&desc)
        .map_err(|e| CostError::Build { chain, why: e.to_string() })?
        .downcast::<gst::Pipeline>()
        .map_err(|_| CostError::Build { chain, why: "not a pipeline".into() })?;
    let counts =
        Counts::attach(&pipe).ok_or_else(|| CostError::Build { chain, why: "no capture or sink pad".into() })?;
    let result = play_and_measure(&pipe, &counts, encoder, run);
    let _ = pipe.set_state(gst::State::Null);
    result
}

fn play_and_measure(
    pipe: &gst::Pipeline,
    counts: &Counts,
    encoder: Option<Encoder>,
    run: &Run,
) -> Result<Cost, CostError> {
    let chain = chain_name(encoder);
    let bus = pipe.bus().ok_or_else(|| CostError::Failed { chain, why: "the pipeline has no bus".into() })?;
    if let Err(e) = pipe.set_state(gst::State::Playing) {
        // The element that refused says why on the bus (ximagesrc: the display does not open).
        let why =
            next_error(&bus, Duration::from_millis(200), &run.display).unwrap_or_else(|| format!("cannot start: {e}"));
        return Err(CostError::Failed { chain, why });
    }
    wait_for_errors(&bus, run.warmup, chain, &run.display)?;
    let (before, cpu_before, start) = (counts.read(), cpu_seconds()?, Instant::now());
    wait_for_errors(&bus, run.span, chain, &run.display)?;
    let (after, cpu_after, seconds) = (counts.read(), cpu_seconds()?, start.elapsed().as_secs_f64());
    let captured = after.captured - before.captured;
    if captured == 0 {
        return Err(CostError::NoFrames { chain, display: run.display.clone(), seconds });
    }
    let (width, height) = captured_size(pipe).unwrap_or_default();
    Ok(Cost {
        encoder,
        width,
        height,
        seconds,
        captured,
        encoded: after.encoded - before.encoded,
        bytes: after.bytes - before.bytes,
        cpu_seconds: cpu_after - cpu_before,
    })
}

/// Waits `span`, failing at the first error the pipeline posts or at the end of the capture.
fn wait_for_errors(bus: &gst::Bus, span: Duration, chain: &'static str, display: &str) -> Result<(), CostError> {
    match next_error(bus, span, display) {
        None => Ok(()),
        Some(why) => Err(CostError::Failed { chain, why }),
    }
}

/// The first error (or end of stream) posted within `span`, said with the element that posted it;
/// the capture's errors name the display.
fn next_error(bus: &gst::Bus, span: Duration, display: &str) -> Option<String> {
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(span.as_nanos() as u64),
        &[gst::MessageType::Error, gst::MessageType::Eos],
    )?;
    let gst::MessageView::Error(e) = msg.view() else {
        return Some("the capture ended".into());
    };
    let debug = e.debug().map(|d| format!(" ({d})")).unwrap_or_default();
    let from_capture = msg.src().is_some_and(|s| s.name() == crate::adapt::pacing::CAPTURE);
    let place = if from_capture { format!("display {display}: ") } else { String::new() };
    Some(format!("{place}{}{debug}", e.error()))
}

/// Frames at the capture's output, and frames and bytes at the sink's input.
struct Counts {
    captured: Arc<AtomicU64>,
    encoded: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

#[derive(Clone, Copy)]
struct Snapshot {
    captured: u64,
    encoded: u64,
    bytes: u64,
}

impl Counts {
    fn attach(pipe: &gst::Pipeline) -> Option<Self> {
        let counts = Self { captured: Arc::default(), encoded: Arc::default(), bytes: Arc::default() };
        let rate = pipe.by_name(pipeline::RATE)?.static_pad("src")?;
        let captured = counts.captured.clone();
        rate.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            captured.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
        let sink = pipe.by_name("out")?.static_pad("sink")?;
        let (encoded, bytes) = (counts.encoded.clone(), counts.bytes.clone());
        sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(buf)) = &info.data {
                encoded.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(buf.size() as u64, Ordering::Relaxed);
            }
            gst::PadProbeReturn::Ok
        });
        Some(counts)
    }

    fn read(&self) -> Snapshot {
        Snapshot {
            captured: self.captured.load(Ordering::Relaxed),
            encoded: self.encoded.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// The size of the frames the capture delivers.
fn captured_size(pipe: &gst::Pipeline) -> Option<(u32, u32)> {
    let caps = pipe.by_name(pipeline::RATE)?.static_pad("src")?.current_caps()?;
    let s = caps.structure(0)?;
    Some((u32::try_from(s.get::<i32>("width").ok()?).ok()?, u32::try_from(s.get::<i32>("height").ok()?).ok()?))
}

/// This process's CPU time so far, every thread's, in seconds.
fn cpu_seconds() -> Result<f64, CostError> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| CostError::Cpu(e.to_string()))?;
    parse_cpu_seconds(&stat).ok_or_else(|| CostError::Cpu("unexpected format".into()))
}

/// User plus system time from a `/proc/PID/stat` line. The command name (field 2) may hold spaces
/// and parentheses, so the fields are counted from its last `)`.
fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (vdi (x) agent) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_cpu_seconds(stat), Some(3.25));
        assert_eq!(parse_cpu_seconds("4242 (short) S 1"), None);
        assert!(cpu_seconds().is_ok_and(|s| s >= 0.0));
    }

    #[test]
    fn figures_per_frame_follow_the_counts_and_say_nothing_without_frames() {
        let cost = Cost {
            encoder: Some(Encoder::Vp8),
            width: 1920,
            height: 1080,
            seconds: 10.0,
            captured: 600,
            encoded: 250,
            bytes: 5_000_000,
            cpu_seconds: 10.0,
        };
        assert_eq!(cost.fps(), 25.0);
        assert_eq!(cost.fps_captured(), 60.0);
        assert_eq!(cost.cores(), 1.0);
        assert_eq!(cost.cpu_ms_per_frame(), Some(40.0));
        assert_eq!(cost.cores_at(60), Some(2.4));
        assert_eq!(cost.kb_per_frame(), Some(20.0));
        assert_eq!(cost.name(), "vp8enc");
        let idle = Cost { encoded: 0, encoder: None, ..cost };
        assert_eq!((idle.cpu_ms_per_frame(), idle.kb_per_frame(), idle.name()), (None, None, "capture+convert"));
    }
}
