//! vdi-agent: runs in each session Pod and streams its X display to the browser. Split by concern:
//! `settings` (flags and Selkies-compatible environment), `encoder` (probe and fallback chain),
//! `pipeline` (the GStreamer graph) with `convert` (the capture's colour conversion) and
//! `pacing` (the capture's phase against the viewer's display), `signalling` (the WebSocket
//! protocol), `session` (one viewer's peer connection), `channel` (one viewer's data channel,
//! `protocol` its messages), `input` (XTest) and `resize` (RandR), `desktop` with `cursor` and
//! `clipboard` (what the desktop tells the viewer outside the video), `audio` (PulseAudio to
//! Opus), `bitrate` (adaptation) with `loss` (what it reads of the path), `turn`, `http`
//! (routes, auth, the embedded client) and `metrics`.

pub mod audio;
pub mod bitrate;
pub mod channel;
pub mod clipboard;
pub mod convert;
pub mod cursor;
pub mod desktop;
pub mod encoder;
pub mod http;
pub mod input;
pub mod loss;
pub mod metrics;
pub mod pacing;
pub mod pipeline;
pub mod playout;
pub mod protocol;
pub mod resize;
pub mod session;
pub mod settings;
pub mod signalling;
pub use vdi_crds::turn;

/// GStreamer did not initialise or the agent's own elements did not register.
#[derive(Debug, thiserror::Error)]
#[error("GStreamer does not initialise: {0}")]
pub struct GstInitError(String);

/// Initialises GStreamer and registers the agent's own elements (`vdiconvert`); every pipeline
/// the agent builds needs both.
pub fn init_gstreamer() -> Result<(), GstInitError> {
    gst::init().map_err(|e| GstInitError(e.to_string()))?;
    convert::register().map_err(|e| GstInitError(e.to_string()))
}
