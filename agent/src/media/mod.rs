//! The picture's way from the X display to RTP: [`pipeline`] builds the GStreamer graph (capture,
//! [`convert`] to the encoder's raw format, the [`encoder`] chosen by probing, the payloader with
//! the [`playout`] header extension). Everything here is per viewer; nothing reads the network.

pub mod convert;
pub mod encoder;
pub mod pipeline;
pub mod playout;
