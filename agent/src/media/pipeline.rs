//! The GStreamer graph of one viewer: X capture → NV12 or I420 (`vdiconvert`) → the viewer's
//! encoder → RTP (`Encoder::payloader`, MTU 1200) → a queue and the packet pacer → webrtcbin
//! (max-bundle, latency 0).

use std::sync::Mutex;

use gst::prelude::*;

use crate::media::encoder::Encoder;

/// Name of the webrtcbin element in the pipeline.
pub const WEBRTC: &str = "webrtc";
/// Name of the capsfilter that sets the capture's frame rate.
pub const RATE: &str = "rate";
/// BGRx from the capture into what `encoder` reads natively (NV12, or I420 for libvpx).
pub fn convert(encoder: Encoder) -> String {
    format!("vdiconvert ! video/x-raw,format={}", encoder.raw_format())
}

/// Name of the video payloader (where the playout-delay extension goes).
pub const PAY: &str = "pay";
/// Name of the packet pacer between the payloader and webrtcbin.
pub const PACER: &str = "pacer";
/// Name of the capsfilter after `videoscale` (passthrough unless the picture is reduced).
pub const SCALE: &str = "scale";

/// The pipeline description for one viewer; with `audio` (PulseAudio server, Opus bit/s) the
/// desktop's sound goes in the same peer connection. The pointer is not captured: the browser
/// draws it (see `cursor`).
pub fn description(
    display: &str,
    encoder: Encoder,
    bitrate_kbps: u32,
    fps: u32,
    keyframe_interval: u32,
    audio: Option<(&str, u32)>,
) -> String {
    let audio = audio
        .map(|(server, bps)| format!(" {}", crate::desktop::audio::fragment(server, bps, WEBRTC)))
        .unwrap_or_default();
    format!(
        "{} \
         ! {} \
         ! videoscale ! capsfilter name={SCALE} caps=video/x-raw \
         ! {} \
         ! {} \
         ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! {} name={PACER} \
         ! webrtcbin name={WEBRTC} bundle-policy=max-bundle latency=0{audio}",
        capture(display, fps),
        convert(encoder),
        encoder.fragment(bitrate_kbps, fps, keyframe_interval),
        encoder.payloader(PAY),
        crate::media::pacer::ELEMENT,
    )
}

/// The capture: `display`'s frames at `fps`, then a queue of one that drops the older frame when
/// the encoder is still busy, so a slow encoder shows the newest picture late rather than every
/// picture later and later.
pub fn capture(display: &str, fps: u32) -> String {
    format!(
        "ximagesrc name={} display-name={display} use-damage=false show-pointer=false \
         ! capsfilter name={RATE} caps=video/x-raw,framerate={fps}/1 \
         ! queue leaky=downstream max-size-buffers=1 max-size-bytes=0 max-size-time=0",
        crate::adapt::pacing::CAPTURE,
    )
}

/// Puts every track of webrtcbin in one media stream, so the browser plays sound and picture in
/// sync (webrtcbin 1.22 has an `msid` pad property; older ones ignore this).
pub fn same_stream(webrtc: &gst::Element) {
    for pad in webrtc.sink_pads() {
        if pad.find_property("msid").is_some() {
            pad.set_property("msid", "vdi-desktop");
        }
    }
}

/// Applies a reduced (or full) picture to a running pipeline: the capture renegotiates its frame
/// rate, `videoscale` its output size, and the encoder restarts on a keyframe at the new caps.
/// Also called when the capture's size changes (a resize) so a halved picture stays half of it.
pub fn apply_quality(pipeline: &gst::Pipeline, quality: crate::adapt::bitrate::Quality, fps: u32) {
    if let Some(rate) = pipeline.by_name(RATE) {
        let caps = gst::Caps::builder("video/x-raw")
            .field("framerate", gst::Fraction::new(quality.fps(fps) as i32, 1))
            .build();
        if rate.property::<gst::Caps>("caps") != caps {
            rate.set_property("caps", &caps);
        }
    }
    let Some(scale) = pipeline.by_name(SCALE) else { return };
    let mut caps = gst::Caps::builder("video/x-raw");
    if quality.half_size() {
        let captured =
            pipeline.by_name(RATE).and_then(|r| r.static_pad("src")).and_then(|p| p.current_caps()).and_then(|c| {
                let s = c.structure(0)?;
                Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?))
            });
        if let Some((w, h)) = captured {
            // Even sizes: 4:2:0 needs them, and encoders round odd ones differently.
            caps = caps.field("width", ((w / 2) & !1).max(2)).field("height", ((h / 2) & !1).max(2));
        }
    }
    let caps = caps.build();
    if scale.property::<gst::Caps>("caps") != caps {
        scale.set_property("caps", &caps);
    }
}

/// The same encode chain from a test source into an appsink, for tests and the probe.
pub fn test_description(encoder: Encoder, width: u32, height: u32, fps: u32, frames: u32) -> String {
    format!(
        "videotestsrc num-buffers={frames} is-live=false \
         ! video/x-raw,format=BGRx,width={width},height={height},framerate={fps}/1 \
         ! {} ! {} ! h264parse ! appsink name=sink sync=false",
        convert(encoder),
        encoder.fragment(2000, fps, crate::media::encoder::ON_DEMAND)
    )
}

/// Held while a pipeline starts or stops, so no two do at once. `ximagesrc` (Xlib with XShm)
/// corrupted the heap when one viewer's pipeline stopped while the next one's started: 300
/// signalling sockets opened and dropped back to back aborted the agent (`malloc(): unaligned
/// tcache chunk detected`) every time, with or without data channel, probes or UPnP, and never
/// with `videotestsrc` in its place or with 300 ms between the sockets (Xlib's XInitThreads did
/// not help). With this lock, 1,800 ran clean. Starting takes milliseconds, so a viewer waits for nothing it would notice.
pub static LIFECYCLE: Mutex<()> = Mutex::new(());

/// Counts encoded frames, keyframes and bytes at the payloader's input, the viewer's keyframe
/// requests at its output, and frames the leaky queue drops. A viewer's PLI or FIR reaches the
/// payloader from webrtcbin as a `GstForceKeyUnit` event on its way to the encoder; the agent's
/// own keyframes on a lossy path are asked of the encoder directly and are not counted as
/// requests. (webrtcbin 1.22's `pli-count` stat stays at 0.)
pub fn count_frames(pipeline: &gst::Pipeline, metrics: &std::sync::Arc<crate::metrics::Metrics>) {
    let elements: Vec<gst::Element> = pipeline.iterate_elements().into_iter().flatten().collect();
    for e in elements {
        let factory = e.factory().map(|f| f.name().to_string()).unwrap_or_default();
        if e.name() == PAY {
            if let Some(pad) = e.static_pad("src") {
                let m = metrics.clone();
                pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
                    if let Some(gst::PadProbeData::Event(ev)) = &info.data
                        && ev.structure().is_some_and(|s| s.name() == "GstForceKeyUnit")
                    {
                        m.keyframe_requests.inc();
                    }
                    gst::PadProbeReturn::Ok
                });
            }
            if let Some(pad) = e.static_pad("sink") {
                let m = metrics.clone();
                pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                    if let Some(buf) = info.buffer() {
                        m.frames.inc();
                        m.bytes.inc_by(buf.size() as u64);
                        if !buf.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                            m.keyframes.inc();
                        }
                    }
                    gst::PadProbeReturn::Ok
                });
            }
        } else if factory == "queue" {
            let m = metrics.clone();
            e.connect("overrun", false, move |_| {
                m.frames_dropped.inc();
                None
            });
        }
    }
}
