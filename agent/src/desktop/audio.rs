//! Desktop sound: the monitor of PulseAudio's default sink, encoded as Opus with low-delay
//! settings (10 ms frames, stereo) and sent in the viewer's peer connection next to the video,
//! on the same pipeline clock so the browser keeps them in sync. Without a reachable PulseAudio
//! the agent streams video alone and says why, once.

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

/// Checks that PulseAudio at `server` answers and the default sink's monitor can be recorded: the
/// recording stream is opened (which is where an unreachable server or a missing monitor fails),
/// not waited on for samples. A null sink with nothing playing renders its first block of silence
/// only after its idle latency (2 s), which a viewer does not notice but a start-up probe did.
pub fn probe(server: &str) -> Result<(), String> {
    let desc =
        format!("pulsesrc server=\"{server}\" device=@DEFAULT_MONITOR@ ! audio/x-raw,rate=48000,channels=2 ! fakesink");
    let pipeline = gst::parse::launch(&desc).map_err(|e| format!("cannot build the probe: {e}"))?;
    let bus = pipeline.bus().ok_or("the probe has no bus")?;
    let opened = pipeline.set_state(gst::State::Paused);
    // The state change is synchronous for pulsesrc; an error during it is on the bus already.
    let error = bus.timed_pop_filtered(gst::ClockTime::from_mseconds(50), &[gst::MessageType::Error]);
    let _ = pipeline.set_state(gst::State::Null);
    match (opened, error) {
        (_, Some(msg)) => match msg.view() {
            gst::MessageView::Error(e) => Err(format!("PulseAudio at {server}: {}", e.error())),
            _ => Err(format!("PulseAudio at {server} does not answer")),
        },
        (Err(_), None) => Err(format!("PulseAudio at {server} does not answer")),
        (Ok(_), None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    /// A server that is not there is refused, and named: the agent then streams video alone.
    #[test]
    fn an_unreachable_server_is_refused() {
        crate::init_gstreamer().expect("gstreamer");
        let err = super::probe("unix:/nonexistent/pulse/native").expect_err("no server there");
        assert!(err.contains("unix:/nonexistent/pulse/native"), "{err}");
    }
}
