//! The picture's way from the X display to RTP: [`pipeline`] builds the GStreamer graph (capture,
//! [`convert`] to the encoder's raw format, the [`encoder`] chosen by probing, the payloader with
//! its header [`extensions`]: TWCC and [`playout`] delay, and the [`pacer`] that spreads its
//! packets). Everything here is per viewer; nothing reads the network. [`cost`] runs the same
//! capture, conversion and encoders with no viewer, to tell what each encoder costs on a machine.

pub mod convert;
pub mod cost;
pub mod encoder;
pub mod extensions;
pub mod pacer;
pub mod pipeline;
pub mod playout;
