//! The RTP `playout-delay` header extension with a minimum and maximum of zero on every video
//! packet: Chromium then draws each frame as soon as it is decoded instead of holding it in its
//! jitter buffer and pacing it to its own render cadence (about 7 ms held and a third of the
//! frames never shown, measured before this; see the README's latency table). A remote desktop
//! answers the hand that drives it, so smoothing is the wrong trade.
//!
//! The extension goes on the payloader, so every SDP the agent offers carries it
//! (`a=extmap:N http://www.webrtc.org/experiments/rtp-hdrext/playout-delay`) whatever the encoder.
//! A browser that does not know it (Firefox) leaves it out of its answer and ignores the bytes.
//! GStreamer 1.22 has no element for it, hence this small subclass.

use gst::{glib, prelude::*};
use gst_rtp::prelude::*;

/// The extension's URI, as browsers name it in SDP.
pub const URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/// How long the browser may hold frames before drawing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlayoutDelay {
    /// Minimum and maximum 0: every frame drawn on arrival (the default).
    None,
    /// No extension: the browser chooses (jitter buffer and render smoothing).
    Browser,
}

mod imp {
    use gst::glib;
    use gst_rtp::subclass::prelude::*;

    /// Writes `min = max = 0` (two 12-bit fields in units of 10 ms: three zero bytes).
    #[derive(Default)]
    pub struct ZeroPlayoutDelay;

    #[glib::object_subclass]
    impl ObjectSubclass for ZeroPlayoutDelay {
        const NAME: &'static str = "VdiZeroPlayoutDelay";
        type Type = super::ZeroPlayoutDelay;
        type ParentType = gst_rtp::RTPHeaderExtension;
    }

    impl ObjectImpl for ZeroPlayoutDelay {}
    impl GstObjectImpl for ZeroPlayoutDelay {}

    impl ElementImpl for ZeroPlayoutDelay {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: std::sync::LazyLock<gst::subclass::ElementMetadata> = std::sync::LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "RTP playout-delay header extension (zero)",
                    "Network/Extension/RTPHeader",
                    "Asks the receiver to draw every frame as soon as it is decoded",
                    "vdi",
                )
            });
            Some(&META)
        }
    }

    impl RTPHeaderExtensionImpl for ZeroPlayoutDelay {
        const URI: &'static str = super::URI;

        fn supported_flags(&self) -> gst_rtp::RTPHeaderExtensionFlags {
            gst_rtp::RTPHeaderExtensionFlags::ONE_BYTE | gst_rtp::RTPHeaderExtensionFlags::TWO_BYTE
        }

        fn max_size(&self, _input: &gst::BufferRef) -> usize {
            super::SIZE
        }

        fn write(
            &self,
            _input: &gst::BufferRef,
            _flags: gst_rtp::RTPHeaderExtensionFlags,
            _output: &gst::BufferRef,
            data: &mut [u8],
        ) -> Result<usize, gst::LoggableError> {
            let field = data
                .get_mut(..super::SIZE)
                .ok_or_else(|| gst::loggable_error!(gst::CAT_RUST, "no room for the playout-delay extension"))?;
            field.fill(0);
            Ok(super::SIZE)
        }

        fn read(
            &self,
            _flags: gst_rtp::RTPHeaderExtensionFlags,
            _data: &[u8],
            _output: &mut gst::BufferRef,
        ) -> Result<(), gst::LoggableError> {
            // The agent only sends video; what a receiver would do with the value is not ours.
            Ok(())
        }
    }
}

/// Bytes of the extension's payload.
const SIZE: usize = 3;

glib::wrapper! {
    /// The extension, ready for a payloader's `add-extension`.
    pub struct ZeroPlayoutDelay(ObjectSubclass<imp::ZeroPlayoutDelay>)
        @extends gst_rtp::RTPHeaderExtension, gst::Element, gst::Object;
}

/// Puts the zero playout delay on every packet `payloader` sends, under
/// [`super::extensions::PLAYOUT_DELAY_ID`]. Must run before the payloader negotiates (the id goes
/// into its caps, and from there into the offer).
pub fn attach(payloader: &gst::Element) {
    let ext: ZeroPlayoutDelay = glib::Object::new();
    ext.set_id(super::extensions::PLAYOUT_DELAY_ID);
    payloader.emit_by_name::<()>("add-extension", &[&ext]);
}

#[cfg(test)]
mod tests {
    use gst_rtp::prelude::*;

    use super::*;

    /// Every packet the payloader sends carries the extension with min = max = 0, and its caps
    /// name it (what webrtcbin turns into the offer's `a=extmap`).
    #[test]
    fn every_packet_carries_a_zero_playout_delay() {
        gst::init().expect("gstreamer");
        let pipeline = gst::parse::launch(
            "videotestsrc num-buffers=3 ! video/x-raw,width=64,height=64 ! x264enc tune=zerolatency \
             ! rtph264pay name=pay mtu=300 ! appsink name=sink sync=false",
        )
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
        let pay = pipeline.by_name("pay").expect("pay");
        attach(&pay);
        let sink = pipeline.by_name("sink").expect("sink").downcast::<gst_app::AppSink>().expect("appsink");
        pipeline.set_state(gst::State::Playing).expect("playing");
        let mut packets = 0;
        while let Ok(sample) = sink.pull_sample() {
            if packets == 0 {
                let caps = sample.caps().expect("caps");
                let s = caps.structure(0).expect("structure");
                assert_eq!(
                    s.get::<String>(&format!("extmap-{}", super::super::extensions::PLAYOUT_DELAY_ID)).as_deref(),
                    Ok(URI),
                    "{caps}"
                );
            }
            let buffer = sample.buffer().expect("buffer");
            let rtp = gst_rtp::RTPBuffer::from_buffer_readable(buffer).expect("an RTP packet");
            assert_eq!(
                rtp.extension_onebyte_header(super::super::extensions::PLAYOUT_DELAY_ID as u8, 0),
                Some(&[0u8, 0, 0][..]),
                "packet {packets}"
            );
            packets += 1;
        }
        pipeline.set_state(gst::State::Null).expect("null");
        assert!(packets >= 3, "{packets} packets");
    }
}
