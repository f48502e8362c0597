//! `vdiconvert`: the capture's BGRx → NV12 (or I420) for the encoder, with the SIMD converters
//! of `dcv-color-primitives` (AVX2/SSE2 chosen at run time; the library Amazon DCV streams with).
//!
//! Why not `videoconvert`: at 1080p60 it spent a third of the agent's CPU (4.3 ms a frame on this
//! machine even without dithering or a chroma filter) where this takes 1.1 ms; see the README's
//! latency section. NV12 is what x264 works in internally and what NVENC and VA-API read, so no
//! encoder re-packs the chroma. Chroma is the average of each 2×2 block.
//!
//! The matrix is the one GStreamer assumes for caps without colorimetry (BT.709 above 576 lines,
//! BT.601 below), so the encoder signals what was used and colours match `videoconvert`'s.

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

/// The element's factory name.
pub const ELEMENT: &str = "vdiconvert";

glib::wrapper! {
    /// BGRx/BGRA → NV12/I420 video filter.
    pub struct VdiConvert(ObjectSubclass<imp::VdiConvert>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Makes `vdiconvert` available to `gst::parse::launch` in this process (idempotent).
pub fn register() -> Result<(), glib::BoolError> {
    gst::Element::register(None, ELEMENT, gst::Rank::NONE, VdiConvert::static_type())
}

mod imp {
    use std::sync::{LazyLock, Mutex};

    use dcv_color_primitives as dcp;

    use super::*;

    const SINK_FORMATS: [gst_video::VideoFormat; 2] = [gst_video::VideoFormat::Bgrx, gst_video::VideoFormat::Bgra];
    const SRC_FORMATS: [gst_video::VideoFormat; 2] = [gst_video::VideoFormat::Nv12, gst_video::VideoFormat::I420];

    /// What `set_info` decided for the negotiated caps.
    #[derive(Clone, Copy)]
    struct Plan {
        pixel_format: dcp::PixelFormat,
        color_space: dcp::ColorSpace,
        num_planes: u32,
    }

    #[derive(Default)]
    pub struct VdiConvert {
        plan: Mutex<Option<Plan>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for VdiConvert {
        const NAME: &'static str = "VdiConvert";
        type Type = super::VdiConvert;
        type ParentType = gst_video::VideoFilter;
    }

    impl ObjectImpl for VdiConvert {}
    impl GstObjectImpl for VdiConvert {}

    fn caps_of(formats: &[gst_video::VideoFormat]) -> gst::Caps {
        gst_video::VideoCapsBuilder::new().format_list(formats.iter().copied()).build()
    }

    impl ElementImpl for VdiConvert {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "vdi colour converter",
                    "Filter/Converter/Video",
                    "BGRx/BGRA to NV12/I420 with SIMD (dcv-color-primitives)",
                    "vdi",
                )
            });
            Some(&META)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let src = gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps_of(&SRC_FORMATS),
                );
                let sink = gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps_of(&SINK_FORMATS),
                );
                vec![src.expect("static caps make a valid template"), sink.expect("static caps make a valid template")]
            });
            TEMPLATES.as_ref()
        }
    }

    impl BaseTransformImpl for VdiConvert {
        const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::NeverInPlace;
        const PASSTHROUGH_ON_SAME_CAPS: bool = false;
        const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

        /// Same size, rate and aspect on both sides; only the format (and the colour fields that
        /// belong to it) changes.
        fn transform_caps(
            &self,
            direction: gst::PadDirection,
            caps: &gst::Caps,
            filter: Option<&gst::Caps>,
        ) -> Option<gst::Caps> {
            let formats: &[gst_video::VideoFormat] =
                if direction == gst::PadDirection::Sink { &SRC_FORMATS } else { &SINK_FORMATS };
            let list = gst::List::new(formats.iter().map(|f| f.to_str()));
            let mut other = caps.clone();
            for s in other.make_mut().iter_mut() {
                s.set("format", &list);
                s.remove_fields(["colorimetry", "chroma-site"]);
            }
            Some(match filter {
                Some(filter) => filter.intersect_with_mode(&other, gst::CapsIntersectMode::First),
                None => other,
            })
        }
    }

    impl VideoFilterImpl for VdiConvert {
        fn set_info(
            &self,
            _incaps: &gst::Caps,
            _in_info: &gst_video::VideoInfo,
            _outcaps: &gst::Caps,
            out_info: &gst_video::VideoInfo,
        ) -> Result<(), gst::LoggableError> {
            let colorimetry = out_info.colorimetry();
            let full = colorimetry.range() == gst_video::VideoColorRange::Range0_255;
            let color_space = match (colorimetry.matrix(), full) {
                (gst_video::VideoColorMatrix::Bt709, false) => dcp::ColorSpace::Bt709,
                (gst_video::VideoColorMatrix::Bt709, true) => dcp::ColorSpace::Bt709FR,
                (gst_video::VideoColorMatrix::Bt601, false) => dcp::ColorSpace::Bt601,
                (gst_video::VideoColorMatrix::Bt601, true) => dcp::ColorSpace::Bt601FR,
                (other, _) => {
                    return Err(gst::loggable_error!(gst::CAT_RUST, "vdiconvert: unsupported colour matrix {other:?}"));
                }
            };
            let (pixel_format, num_planes) = match out_info.format() {
                gst_video::VideoFormat::Nv12 => (dcp::PixelFormat::Nv12, 2),
                gst_video::VideoFormat::I420 => (dcp::PixelFormat::I420, 3),
                other => return Err(gst::loggable_error!(gst::CAT_RUST, "vdiconvert: unsupported output {other:?}")),
            };
            let plan = Plan { pixel_format, color_space, num_planes };
            *self.plan.lock().unwrap_or_else(|p| p.into_inner()) = Some(plan);
            Ok(())
        }

        fn transform_frame(
            &self,
            inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
            outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            let Some(plan) = *self.plan.lock().unwrap_or_else(|p| p.into_inner()) else {
                return Err(gst::FlowError::NotNegotiated);
            };
            // BGRx is BGRA whose alpha nobody reads; the YUV side never looks at it.
            let src_format = dcp::ImageFormat {
                pixel_format: dcp::PixelFormat::Bgra,
                color_space: dcp::ColorSpace::Rgb,
                num_planes: 1,
            };
            let src_stride = [usize::try_from(inframe.plane_stride()[0]).map_err(|_| gst::FlowError::NotSupported)?];
            let src = inframe.plane_data(0).map_err(|_| gst::FlowError::Error)?;
            let dst_format = dcp::ImageFormat {
                pixel_format: plan.pixel_format,
                color_space: plan.color_space,
                num_planes: plan.num_planes,
            };
            let planes = plan.num_planes as usize;
            let mut dst_strides = [0usize; 3];
            for (i, stride) in outframe.plane_stride().iter().take(planes).enumerate() {
                dst_strides[i] = usize::try_from(*stride).map_err(|_| gst::FlowError::NotSupported)?;
            }
            let (width, height) = (inframe.width(), inframe.height());
            let [p0, p1, p2, _] = outframe.planes_data_mut();
            let mut all = [p0, p1, p2];
            let result = dcp::convert_image(
                width,
                height,
                &src_format,
                Some(&src_stride),
                &[src],
                &dst_format,
                Some(&dst_strides[..planes]),
                &mut all[..planes],
            );
            result.map(|()| gst::FlowSuccess::Ok).map_err(|e| {
                gst::element_imp_error!(self, gst::CoreError::Failed, ["colour conversion failed: {e:?}"]);
                gst::FlowError::Error
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() {
        crate::init_gstreamer().expect("GStreamer initialises");
    }

    /// Converts one BGRx frame of `colour` (B, G, R) through the element and returns the first
    /// pixel's Y, U, V and the output caps.
    fn convert(width: u32, height: u32, format: &str, bgr: [u8; 3]) -> (u8, u8, u8, gst::Caps) {
        init();
        let pipeline = gst::parse::launch(&format!(
            "appsrc name=src ! {ELEMENT} ! video/x-raw,format={format} ! appsink name=sink sync=false"
        ))
        .expect("pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
        let src = pipeline.by_name("src").and_then(|e| e.downcast::<gst_app::AppSrc>().ok()).expect("appsrc");
        let sink = pipeline.by_name("sink").and_then(|e| e.downcast::<gst_app::AppSink>().ok()).expect("appsink");
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Bgrx, width, height)
            .fps(gst::Fraction::new(30, 1))
            .build()
            .expect("video info");
        src.set_caps(Some(&info.to_caps().expect("caps")));
        let mut data = vec![0u8; info.size()];
        for row in 0..height as usize {
            for col in 0..width as usize {
                let at = row * info.stride()[0] as usize + col * 4;
                data[at..at + 3].copy_from_slice(&bgr);
            }
        }
        pipeline.set_state(gst::State::Playing).expect("plays");
        src.push_buffer(gst::Buffer::from_mut_slice(data)).expect("pushed");
        src.end_of_stream().expect("eos");
        let sample = sink.pull_sample().expect("a frame comes out");
        let caps = sample.caps().expect("caps").to_owned();
        let out_info = gst_video::VideoInfo::from_caps(&caps).expect("video caps");
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(sample.buffer().expect("buffer"), &out_info)
            .expect("readable frame");
        let y = frame.plane_data(0).expect("Y")[0];
        let (u, v) = if out_info.format() == gst_video::VideoFormat::Nv12 {
            let uv = frame.plane_data(1).expect("UV");
            (uv[0], uv[1])
        } else {
            (frame.plane_data(1).expect("U")[0], frame.plane_data(2).expect("V")[0])
        };
        drop(frame);
        pipeline.set_state(gst::State::Null).expect("stops");
        (y, u, v, caps)
    }

    fn near(got: (u8, u8, u8), want: (u8, u8, u8)) -> bool {
        let d = |a: u8, b: u8| (i16::from(a) - i16::from(b)).abs() <= 1;
        d(got.0, want.0) && d(got.1, want.1) && d(got.2, want.2)
    }

    #[test]
    fn hd_frames_become_bt709_limited_range_nv12() {
        // BT.709 limited range: white 235/128/128, black 16/128/128, pure red 63/102/240.
        for (bgr, want) in
            [([255, 255, 255], (235, 128, 128)), ([0, 0, 0], (16, 128, 128)), ([0, 0, 255], (63, 102, 240))]
        {
            let (y, u, v, caps) = convert(1280, 720, "NV12", bgr);
            assert!(near((y, u, v), want), "{bgr:?} → {:?}, want {want:?}", (y, u, v));
            let s = caps.structure(0).expect("structure");
            assert_eq!(s.get::<&str>("format").ok(), Some("NV12"));
            assert_eq!((s.get::<i32>("width").ok(), s.get::<i32>("height").ok()), (Some(1280), Some(720)));
            let info = gst_video::VideoInfo::from_caps(&caps).expect("info");
            assert_eq!(info.colorimetry().matrix(), gst_video::VideoColorMatrix::Bt709);
        }
    }

    #[test]
    fn sd_frames_use_bt601_and_odd_sizes_and_i420_work() {
        // BT.601 limited range pure red: 81/90/240.
        let (y, u, v, caps) = convert(641, 479, "I420", [0, 0, 255]);
        assert!(near((y, u, v), (81, 90, 240)), "{:?}", (y, u, v));
        let info = gst_video::VideoInfo::from_caps(&caps).expect("info");
        assert_eq!(info.colorimetry().matrix(), gst_video::VideoColorMatrix::Bt601);
        assert_eq!((info.width(), info.height()), (641, 479));
    }
}
