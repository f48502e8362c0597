//! Encoder choice: an encoder is used only when its element exists *and* it opens an encode
//! session (a short probe encodes a few frames). `nvh264enc` falls back to `vah264enc`, then to
//! `x264enc`, with a warning that says why; when none works the agent exits non-zero.

use std::time::Duration;

use gst::prelude::*;

use crate::settings::EncoderChoice;

/// Keyframes only when a viewer needs one (`keyframe_interval` 0): the first frame of every
/// viewer's stream and each picture-loss indication (PLI) get one at once, so periodic ones only
/// cost bitrate. At 1080p with motion a keyframe every 30 frames took 6.1 Mbit/s and on demand
/// 2.7, with 1.3 ms lower receive latency and a lower p95 (README, latency section).
pub const ON_DEMAND: u32 = 0;

/// The GOP property's value for `interval` frames between keyframes (0: only on demand).
fn gop(encoder: Encoder, interval: u32) -> i64 {
    match (encoder, interval) {
        // x264's own "infinite" (X264_KEYINT_MAX_INFINITE).
        (Encoder::X264, 0) => 1 << 30,
        (Encoder::Nvh264, 0) => -1,
        // vah264enc's largest; 0 would mean its automatic choice.
        (Encoder::Vah264, 0) => 1024,
        (Encoder::Vah264, n) => i64::from(n.min(1024)),
        (_, n) => i64::from(n),
    }
}

/// An encoder the agent can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoder {
    /// NVIDIA NVENC.
    Nvh264,
    /// VA-API.
    Vah264,
    /// Software x264.
    X264,
}

impl Encoder {
    /// The GStreamer element name.
    pub fn element(self) -> &'static str {
        match self {
            Self::Nvh264 => "nvh264enc",
            Self::Vah264 => "vah264enc",
            Self::X264 => "x264enc",
        }
    }

    /// The encoder and its caps as a pipeline fragment, tuned for latency: no B-frames, a
    /// keyframe every `keyframe_interval` frames (0: only on demand, see [`ON_DEMAND`]),
    /// constant bitrate, and (x264) one frame of VBV buffer.
    pub fn fragment(self, bitrate_kbps: u32, fps: u32, keyframe_interval: u32) -> String {
        let gop = gop(self, keyframe_interval);
        match self {
            Self::Nvh264 => format!(
                "nvh264enc name=enc preset=low-latency-hq rc-mode=cbr bitrate={bitrate_kbps} gop-size={gop} bframes=0 zerolatency=true ! video/x-h264,profile=constrained-baseline,stream-format=byte-stream"
            ),
            Self::Vah264 => format!(
                "vah264enc name=enc rate-control=cbr bitrate={bitrate_kbps} key-int-max={gop} b-frames=0 ! video/x-h264,profile=constrained-baseline,stream-format=byte-stream"
            ),
            Self::X264 => {
                let vbv_ms = (1000 / fps.max(1)).max(1);
                format!(
                    "x264enc name=enc speed-preset=ultrafast tune=zerolatency sliced-threads=true bitrate={bitrate_kbps} key-int-max={gop} bframes=0 vbv-buf-capacity={vbv_ms} ! video/x-h264,profile=constrained-baseline,stream-format=byte-stream"
                )
            }
        }
    }

    /// The order in which encoders are tried for a requested choice.
    pub fn chain(choice: EncoderChoice) -> &'static [Encoder] {
        match choice {
            EncoderChoice::Nvh264enc | EncoderChoice::Auto => &[Self::Nvh264, Self::Vah264, Self::X264],
            EncoderChoice::Vah264enc => &[Self::Vah264, Self::X264],
            EncoderChoice::X264enc => &[Self::X264],
        }
    }
}

/// The result of the probe.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The encoder that works.
    pub encoder: Encoder,
    /// Why each encoder before it was passed over.
    pub skipped: Vec<(Encoder, String)>,
}

/// No encoder works.
#[derive(Debug, thiserror::Error)]
#[error("no video encoder works: {}", .0.iter().map(|(e, why)| format!("{}: {why}", e.element())).collect::<Vec<_>>().join("; "))]
pub struct NoEncoder(pub Vec<(Encoder, String)>);

/// Tries the encoders of `choice` in order; the first that encodes frames wins.
pub fn choose(choice: EncoderChoice) -> Result<Chosen, NoEncoder> {
    let mut skipped = Vec::new();
    for &enc in Encoder::chain(choice) {
        match probe(enc) {
            Ok(()) => return Ok(Chosen { encoder: enc, skipped }),
            Err(why) => skipped.push((enc, why)),
        }
    }
    Err(NoEncoder(skipped))
}

/// Encodes a few frames with `enc`; `Err` says why it cannot be used.
pub fn probe(enc: Encoder) -> Result<(), String> {
    if gst::ElementFactory::find(enc.element()).is_none() {
        return Err(format!("the GStreamer element {} is not installed", enc.element()));
    }
    let desc = format!(
        "videotestsrc num-buffers=5 ! video/x-raw,format=BGRx,width=320,height=240,framerate=30/1 ! {} ! {} ! fakesink",
        crate::pipeline::CONVERT,
        enc.fragment(1000, 30, ON_DEMAND)
    );
    let pipeline = gst::parse::launch(&desc).map_err(|e| format!("cannot build the probe pipeline: {e}"))?;
    let result = run_to_eos(&pipeline, Duration::from_secs(10));
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Plays `pipeline` until end of stream, an error, or `timeout`.
pub fn run_to_eos(pipeline: &gst::Element, timeout: Duration) -> Result<(), String> {
    pipeline.set_state(gst::State::Playing).map_err(|e| format!("cannot start: {e}"))?;
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err("timed out".into());
        }
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(left.as_millis() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) else {
            return Err("timed out".into());
        };
        match msg.view() {
            gst::MessageView::Eos(_) => return Ok(()),
            gst::MessageView::Error(e) => {
                let debug = e.debug().map(|d| format!(" ({d})")).unwrap_or_default();
                return Err(format!("{}{debug}", e.error()));
            }
            _ => {}
        }
    }
}
