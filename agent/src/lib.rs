//! vdi-agent: runs in each session Pod and streams its X display to the browser. Split by concern:
//! `settings` (flags and Selkies-compatible environment), `encoder` (probe and fallback chain),
//! `pipeline` (the GStreamer graph), `signalling` (the WebSocket protocol), `session` (one
//! viewer's peer connection), `channel` (one viewer's data channel, `protocol` its messages),
//! `input` (XTest) and `resize` (RandR), `desktop` with `cursor` and `clipboard` (what the desktop
//! tells the viewer outside the video), `audio` (PulseAudio to Opus), `bitrate` (adaptation),
//! `turn`, `http` (routes, auth, the embedded client) and `metrics`.

pub mod audio;
pub mod bitrate;
pub mod channel;
pub mod clipboard;
pub mod cursor;
pub mod desktop;
pub mod encoder;
pub mod http;
pub mod input;
pub mod metrics;
pub mod pipeline;
pub mod protocol;
pub mod resize;
pub mod session;
pub mod settings;
pub mod signalling;
pub mod turn;
