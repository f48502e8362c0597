//! The viewer's connection: [`signalling`] (the WebSocket's offer, answer and candidates, and
//! the browser's hello), [`peer`] (webrtcbin's side of them, ICE servers, retransmissions),
//! [`protocol`] (the data channel's messages) and [`channel`] (one viewer's data channel: input
//! in, desktop events out).

pub mod channel;
pub mod peer;
pub mod protocol;
pub mod signalling;
