//! vdi-agent: runs in each session Pod and streams its X display to the browser. Split by concern:
//! `settings` (flags and Selkies-compatible environment), `encoder` (probe and fallback chain),
//! `pipeline` (the GStreamer graph), `signalling` (the WebSocket protocol), `session` (one
//! viewer's peer connection), `input` (data channel to XTest), `http` (routes, auth, the embedded
//! client) and `metrics`.

pub mod bitrate;
pub mod encoder;
pub mod http;
pub mod input;
pub mod metrics;
pub mod pipeline;
pub mod session;
pub mod settings;
pub mod signalling;
pub mod turn;
