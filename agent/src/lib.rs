//! vdi-agent: runs in each session Pod and streams its X display to the browser.
//!
//! Start at [`session`], the story of one viewer's lifetime: it takes the browser's hello from
//! [`link`], builds the stream from [`media`], wires the [`desktop`] to the data channel, and lets
//! [`adapt`] follow the path. Around it: [`settings`] (flags and Selkies-compatible environment,
//! named by `vdi_crds::agent`), [`http`] (routes, auth, the embedded client) and [`metrics`].
//!
//! - [`media`]: capture, colour conversion, encoders and their fallback chain, the GStreamer graph.
//! - [`adapt`]: what the path reports (stats, loss), the bitrate controller, the follower that
//!   drives them every second, capture pacing.
//! - [`link`]: signalling over the WebSocket, the peer connection, the data channel's protocol
//!   and its handling.
//! - [`desktop`]: input, cursor, clipboard, resize and audio: the desktop outside the video.

pub mod adapt;
pub mod desktop;
pub mod http;
pub mod link;
pub mod media;
pub mod metrics;
pub mod session;
pub mod settings;
pub use vdi_crds::turn;

/// GStreamer did not initialise or the agent's own elements did not register.
#[derive(Debug, thiserror::Error)]
#[error("GStreamer does not initialise: {0}")]
pub struct GstInitError(String);

/// Initialises GStreamer and registers the agent's own elements (`vdiconvert`); every pipeline
/// the agent builds needs both.
pub fn init_gstreamer() -> Result<(), GstInitError> {
    gst::init().map_err(|e| GstInitError(e.to_string()))?;
    media::convert::register().map_err(|e| GstInitError(e.to_string()))?;
    media::pacer::register().map_err(|e| GstInitError(e.to_string()))
}
