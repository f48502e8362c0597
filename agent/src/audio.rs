//! Desktop sound: the monitor of PulseAudio's default sink, encoded as Opus with low-delay
//! settings (10 ms frames, stereo) and sent in the viewer's peer connection next to the video,
//! on the same pipeline clock so the browser keeps them in sync. Without a reachable PulseAudio
//! the agent streams video alone and says why, once.

use std::time::Duration;

use gst::prelude::*;

/// The audio branch of a viewer's pipeline, ending at webrtcbin's next sink pad.
pub fn fragment(server: &str, bitrate_bps: u32, webrtc: &str) -> String {
    format!(
        "pulsesrc server=\"{server}\" device=@DEFAULT_MONITOR@ provide-clock=false do-timestamp=true \
           buffer-time=20000 latency-time=10000 \
         ! audio/x-raw,rate=48000,channels=2 \
         ! queue leaky=downstream max-size-time=60000000 max-size-buffers=0 max-size-bytes=0 \
         ! audioconvert ! audioresample \
         ! opusenc frame-size=10 audio-type=restricted-lowdelay bitrate={bitrate_bps} \
         ! rtpopuspay pt=111 \
         ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 \
         ! {webrtc}."
    )
}

/// Checks that PulseAudio at `server` answers and its default sink's monitor delivers samples.
pub fn probe(server: &str) -> Result<(), String> {
    let desc = format!(
        "pulsesrc server=\"{server}\" device=@DEFAULT_MONITOR@ num-buffers=2 ! audio/x-raw,rate=48000,channels=2 ! fakesink"
    );
    let pipeline = gst::parse::launch(&desc).map_err(|e| format!("cannot build the probe: {e}"))?;
    let bus = pipeline.bus().ok_or("the probe has no bus")?;
    pipeline.set_state(gst::State::Playing).map_err(|_| format!("PulseAudio at {server} does not answer"))?;
    let result = match bus.timed_pop_filtered(
        gst::ClockTime::from_mseconds(Duration::from_secs(3).as_millis() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    ) {
        Some(msg) => match msg.view() {
            gst::MessageView::Eos(_) => Ok(()),
            gst::MessageView::Error(e) => Err(format!("PulseAudio at {server}: {}", e.error())),
            _ => Err("unexpected message".into()),
        },
        None => Err(format!("PulseAudio at {server} delivered no sound within 3 s")),
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}
