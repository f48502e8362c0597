//! The GStreamer graph of one viewer: X capture → I420 → encoder → RTP (zero-latency
//! aggregation, SPS/PPS with every IDR, MTU 1200) → webrtcbin (max-bundle, latency 0).

use crate::encoder::Encoder;

/// Name of the webrtcbin element in the pipeline.
pub const WEBRTC: &str = "webrtc";

/// The pipeline description for one viewer.
pub fn description(display: &str, encoder: Encoder, bitrate_kbps: u32, fps: u32) -> String {
    format!(
        "ximagesrc display-name={display} use-damage=false show-pointer=true \
         ! video/x-raw,framerate={fps}/1 \
         ! queue leaky=downstream max-size-buffers=1 max-size-bytes=0 max-size-time=0 \
         ! videoconvert n-threads=2 ! video/x-raw,format=I420 \
         ! {} \
         ! rtph264pay config-interval=-1 aggregate-mode=zero-latency mtu=1200 pt=96 \
         ! application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000 \
         ! webrtcbin name={WEBRTC} bundle-policy=max-bundle latency=0",
        encoder.fragment(bitrate_kbps, fps)
    )
}

/// The same encode chain from a test source into an appsink, for tests and the probe.
pub fn test_description(encoder: Encoder, width: u32, height: u32, fps: u32, frames: u32) -> String {
    format!(
        "videotestsrc num-buffers={frames} is-live=false ! video/x-raw,width={width},height={height},framerate={fps}/1 \
         ! videoconvert ! video/x-raw,format=I420 ! {} ! h264parse ! appsink name=sink sync=false",
        encoder.fragment(2000, fps)
    )
}
