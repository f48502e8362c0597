//! RTP header extensions on the video payloader, each under an id of its own (GStreamer 1.22's
//! payloaders cannot list the ids already taken); webrtcbin turns them into the offer's
//! `a=extmap` lines, and a browser that does not answer one simply ignores it.
//! - transport-wide sequence numbers (TWCC): the browser reports when each packet arrived, which
//!   rtpsession turns into the received rate and the delay gradient that `adapt` reads;
//! - playout delay min = max = 0 (`playout`): the browser draws each frame on arrival.

use gst::prelude::*;
use gst_rtp::prelude::*;

/// URI of the transport-wide congestion control extension.
pub const TWCC_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// Its one-byte header id.
pub const TWCC_ID: u32 = 1;
/// The playout-delay extension's id.
pub const PLAYOUT_DELAY_ID: u32 = 2;

/// Adds transport-wide sequence numbers to every video packet (`rtphdrexttwcc`, in
/// gst-plugins-good's rtpmanager). Without it the bitrate follows loss alone.
pub fn attach_twcc(payloader: &gst::Element) {
    let Some(ext) = gst_rtp::RTPHeaderExtension::create_from_uri(TWCC_URI) else {
        tracing::warn!(
            "no transport-wide congestion control extension (gst-plugins-good's rtpmanager); the bitrate follows loss alone"
        );
        return;
    };
    ext.set_id(TWCC_ID);
    payloader.emit_by_name::<()>("add-extension", &[&ext]);
}
