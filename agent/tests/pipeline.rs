//! The encode chain with a real GStreamer: frames from `videotestsrc` come out of the chosen
//! encoder as H.264 at the configured size and rate, and the encoder probe falls back from
//! `nvh264enc` to `x264enc` on a machine without NVENC, saying why.

use gst::prelude::*;
use gst_app::AppSink;
use vdi_agent::{
    media::{
        encoder::{self, Encoder, ON_DEMAND},
        pipeline,
    },
    settings::EncoderChoice,
};

fn init() {
    vdi_agent::init_gstreamer().expect("GStreamer initialises");
}

#[test]
fn x264_frames_come_out_as_h264_at_size_and_rate() {
    init();
    for (w, h, fps) in [(640u32, 360u32, 30u32), (1280, 720, 60)] {
        let frames = 12;
        let desc = pipeline::test_description(Encoder::X264, w, h, fps, frames);
        let pipe = gst::parse::launch(&desc).expect("pipeline").downcast::<gst::Pipeline>().expect("pipeline");
        let sink = pipe.by_name("sink").expect("sink").downcast::<AppSink>().expect("appsink");
        pipe.set_state(gst::State::Playing).expect("play");
        let mut got = 0;
        let mut keyframes = 0;
        while let Ok(sample) = sink.pull_sample() {
            let caps = sample.caps().expect("caps");
            let s = caps.structure(0).expect("structure");
            assert_eq!(s.name(), "video/x-h264");
            assert_eq!(s.get::<i32>("width").ok(), Some(w as i32));
            assert_eq!(s.get::<i32>("height").ok(), Some(h as i32));
            assert_eq!(s.get::<gst::Fraction>("framerate").ok(), Some(gst::Fraction::new(fps as i32, 1)));
            assert_eq!(s.get::<&str>("profile").ok(), Some("constrained-baseline"));
            let buf = sample.buffer().expect("buffer");
            if !buf.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                keyframes += 1;
            }
            assert!(buf.size() > 0);
            got += 1;
        }
        pipe.set_state(gst::State::Null).expect("stop");
        assert_eq!(got, frames, "every frame is encoded, none held back (no B-frames, zero latency)");
        assert!(keyframes >= 1, "starts with a keyframe");
    }
}

#[test]
fn nvenc_request_falls_back_to_x264_with_a_reason() {
    init();
    let chosen = encoder::choose(EncoderChoice::Nvh264enc).expect("some encoder works");
    if encoder::probe(Encoder::Nvh264).is_ok() {
        assert_eq!(chosen.encoder, Encoder::Nvh264, "NVENC works here and is chosen");
        return;
    }
    assert_ne!(chosen.encoder, Encoder::Nvh264);
    let (first, why) = &chosen.skipped[0];
    assert_eq!(*first, Encoder::Nvh264);
    assert!(!why.is_empty());
    assert_eq!(encoder::choose(EncoderChoice::X264enc).expect("x264").encoder, Encoder::X264);
}

#[test]
fn encoder_settings_follow_the_low_latency_recipe() {
    let x = Encoder::X264.fragment(8000, 60, ON_DEMAND);
    for want in [
        "speed-preset=ultrafast",
        "tune=zerolatency",
        "sliced-threads=true",
        "bframes=0",
        "bitrate=8000",
        "vbv-buf-capacity=16",
    ] {
        assert!(x.contains(want), "{want} in {x}");
    }
    let n = Encoder::Nvh264.fragment(8000, 60, ON_DEMAND);
    for want in ["preset=low-latency-hq", "rc-mode=cbr", "bitrate=8000", "gop-size=-1", "bframes=0", "zerolatency=true"]
    {
        assert!(n.contains(want), "{want} in {n}");
    }
    let p = pipeline::description(":0", Encoder::X264, 8000, 60, ON_DEMAND, None);
    for want in [
        "ximagesrc",
        "aggregate-mode=zero-latency",
        "config-interval=-1",
        "mtu=1200",
        "bundle-policy=max-bundle",
        "latency=0",
    ] {
        assert!(p.contains(want), "{want} in {p}");
    }
}

/// libvpx cannot make scrolling noise smaller than about 20 kB a frame at 720p, whatever its
/// target (`adapt::skip`): with the agent's frame budget on the encoder, what it sends stays near
/// the target because frames are skipped, counted on /metrics.
#[test]
fn an_encoder_at_its_floor_is_held_to_its_target_by_skipping_frames() {
    init();
    let (target, secs) = (3000u32, 4u64);
    let desc = format!(
        "videotestsrc is-live=true pattern=snow ! video/x-raw,format=BGRx,width=1280,height=360,framerate=60/1 \
         ! {} ! {} ! fakesink name=sink sync=false",
        pipeline::convert(Encoder::Vp8),
        Encoder::Vp8.fragment(target, 60, ON_DEMAND),
    );
    let pipe = gst::parse::launch(&desc).expect("pipeline").downcast::<gst::Pipeline>().expect("pipeline");
    let metrics = std::sync::Arc::new(vdi_agent::metrics::Metrics::new());
    let budget = std::sync::Arc::new(std::sync::Mutex::new(vdi_agent::adapt::skip::FrameBudget::new(target)));
    let enc = pipe.by_name(encoder::NAME).expect("encoder");
    vdi_agent::adapt::skip::attach(&enc, budget.clone(), metrics.clone());
    let bytes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let frames = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (b, f) = (bytes.clone(), frames.clone());
    enc.static_pad("src").expect("src").add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buf) = info.buffer() {
            b.fetch_add(buf.size(), std::sync::atomic::Ordering::Relaxed);
            f.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        gst::PadProbeReturn::Ok
    });
    pipe.set_state(gst::State::Playing).expect("play");
    std::thread::sleep(std::time::Duration::from_secs(secs));
    pipe.set_state(gst::State::Null).expect("stop");
    let kbps = bytes.load(std::sync::atomic::Ordering::Relaxed) as f64 * 8.0 / 1000.0 / secs as f64;
    let fps = frames.load(std::sync::atomic::Ordering::Relaxed) as f64 / secs as f64;
    let skipped = metrics.encode();
    assert!(kbps < f64::from(target) * 1.5, "{kbps:.0} kbit/s for a {target} kbit/s target ({fps:.1} fps)");
    assert!(fps > 5.0, "frames still come: {fps:.1} fps");
    assert!(
        skipped.lines().any(|l| l.starts_with("vdi_agent_frames_skipped_total ") && !l.ends_with(" 0")),
        "skipped frames are counted:\n{skipped}"
    );
    eprintln!("{kbps:.0} kbit/s at {fps:.1} fps for a {target} kbit/s target");
}
