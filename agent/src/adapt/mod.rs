//! Following the path: [`stats`] turns webrtcbin's statistics into a typed report, [`loss`]
//! measures what was lost per interval, [`bitrate`] decides the encoder's target and the
//! picture's quality step, [`pacing`] moves capture's phase against the viewer's display, and
//! [`retransmit`] decides which lost packets are resent, [`skip`] which captured frames are
//! encoded (both with a [`bucket`]), [`cadence`] how far the capture falls short of its frame
//! rate (what x264's setting makes up for), [`trains`] reads the path's capacity from how each frame's
//! packets arrive, [`debt`] when libvpx's rate-buffer debt from a narrow spell is written off
//! (once the trains show the path widened), and [`resume`] where a viewer who comes back starts.
//! Each is driven by plain values in its unit tests; [`follow`] is where they meet GStreamer:
//! every second it reads the stats and sets the encoder and the picture.

pub mod bitrate;
pub mod bucket;
pub mod cadence;
pub mod debt;
pub mod follow;
pub mod loss;
pub mod pacing;
pub mod resume;
pub mod retransmit;
pub mod skip;
pub mod stats;
pub mod trains;
