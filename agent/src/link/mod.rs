//! The viewer's connection outside the media: [`signalling`] (the WebSocket's offer, answer and
//! candidates, and the browser's hello), [`protocol`] (the data channel's messages) and
//! [`channel`] (one viewer's data channel: input in, desktop events out).

pub mod channel;
pub mod protocol;
pub mod signalling;
