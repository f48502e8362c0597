//! The viewer's connection: [`signalling`] (the protocol: offer, answer, candidates, the
//! browser's hello, and the `Signalling` trait the session is written against; [`websocket`]
//! carries it), [`peer`] (webrtcbin's side of them, ICE servers, retransmissions),
//! [`protocol`] (the data channel's messages) and [`channel`] (one viewer's data channel: input
//! in, desktop events out).

pub mod channel;
pub mod peer;
pub mod protocol;
pub mod signalling;
pub mod websocket;
