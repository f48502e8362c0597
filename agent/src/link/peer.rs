//! The peer connection of one viewer: webrtcbin's offer and ICE candidates go out as signalling
//! messages, the browser's answer and candidates come in, lost video packets are asked for again
//! and resent within a budget,
//! and ICE uses the session's STUN and TURN servers (never UPnP).

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use gst::prelude::*;
use tokio::sync::mpsc;

use super::signalling::{FromBrowser, ToBrowser, VERSION};
use crate::{
    adapt::retransmit::{Retransmissions, Verdict},
    desktop::Desktop,
    media::pipeline,
    metrics::Metrics,
    settings::Settings,
};

/// What the peer connection has for the viewer's signalling socket.
pub enum Event {
    /// A message to send.
    Send(ToBrowser),
    /// The stream cannot go on: why.
    Failed(String),
}

fn send_json(tx: &mpsc::UnboundedSender<Event>, m: ToBrowser) {
    let _ = tx.send(Event::Send(m));
}

/// Offers when webrtcbin is ready to negotiate, and trickles its ICE candidates.
pub fn negotiate(webrtc: &gst::Element, out: mpsc::UnboundedSender<Event>) {
    let tx = out.clone();
    webrtc.connect("on-negotiation-needed", false, move |values| {
        let webrtc = values.first()?.get::<gst::Element>().ok()?;
        let weak = webrtc.downgrade();
        let tx = tx.clone();
        let promise = gst::Promise::with_change_func(move |reply| {
            let Some(webrtc) = weak.upgrade() else { return };
            let offer = reply
                .ok()
                .flatten()
                .and_then(|r| r.value("offer").ok())
                .and_then(|v| v.get::<gst_webrtc::WebRTCSessionDescription>().ok());
            match offer {
                Some(offer) => {
                    webrtc.emit_by_name::<()>("set-local-description", &[&offer, &None::<gst::Promise>]);
                    match offer.sdp().as_text() {
                        Ok(sdp) => send_json(&tx, ToBrowser::Offer { v: VERSION, sdp }),
                        Err(e) => {
                            let _ = tx.send(Event::Failed(format!("cannot write the offer: {e}")));
                        }
                    }
                }
                None => {
                    let _ = tx.send(Event::Failed("webrtcbin produced no offer".into()));
                }
            }
        });
        webrtc.emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
        None
    });

    let tx = out.clone();
    webrtc.connect("on-ice-candidate", false, move |values| {
        let mline = values.get(1)?.get::<u32>().ok()?;
        let candidate = values.get(2)?.get::<String>().ok()?;
        send_json(&tx, ToBrowser::Ice { v: VERSION, candidate, sdp_mline_index: mline });
        None
    });
}

/// Opens the ordered data channel "input" (part of the offer, so made before negotiating;
/// webrtcbin accepts data channels only once out of the NULL state) and hands it to `link::channel`.
pub fn open_input_channel(
    webrtc: &gst::Element,
    pipeline: &gst::Pipeline,
    id: u64,
    display: &str,
    desktop: Arc<Desktop>,
) {
    let options = gst::Structure::builder("config").field("ordered", true).build();
    let channel =
        webrtc.emit_by_name::<Option<gst_webrtc::WebRTCDataChannel>>("create-data-channel", &[&"input", &options]);
    match channel {
        Some(ch) => {
            let capture = pipeline.by_name(crate::adapt::pacing::CAPTURE).map(|c| c.downgrade()).unwrap_or_default();
            super::channel::attach(&ch, id, display, desktop, capture)
        }
        None => tracing::warn!("webrtcbin could not create the input data channel; the desktop will be view-only"),
    }
}

/// A running stream and its peer connection.
pub struct Peer {
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
}

impl Peer {
    /// The stream of `pipeline`, negotiated by `webrtc`.
    pub fn new(pipeline: gst::Pipeline, webrtc: gst::Element) -> Self {
        Self { pipeline, webrtc }
    }

    /// Applies the browser's answer or ICE candidate.
    pub fn handle(&self, m: FromBrowser) {
        match m {
            FromBrowser::Answer { sdp, .. } => match gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()) {
                Ok(msg) => {
                    let desc = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, msg);
                    self.webrtc.emit_by_name::<()>("set-remote-description", &[&desc, &None::<gst::Promise>]);
                }
                Err(e) => tracing::warn!(error = %e, "the answer's SDP does not parse"),
            },
            FromBrowser::Hello { .. } => tracing::debug!("a second hello ignored"),
            FromBrowser::Ice { candidate, sdp_mline_index, .. } => {
                if !candidate.is_empty() {
                    self.webrtc.emit_by_name::<()>("add-ice-candidate", &[&sdp_mline_index, &candidate]);
                }
            }
        }
    }

    /// Stops the pipeline (the peer connection goes with it).
    pub fn stop(&self) {
        let _lifecycle = pipeline::LIFECYCLE.lock();
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Lost video packets are asked for again (NACK) and resent (RTX): on a path with random loss a
/// missing packet otherwise costs a frozen picture until the next keyframe. Resent only as
/// `budget` allows (see [`crate::adapt::retransmit`]): the viewer's requests reach webrtcbin's
/// retransmitter as upstream events, and those refused are dropped on its source pad. A refusal
/// asks the encoder `enc` for a keyframe (as often as the budget says), which repairs the picture.
pub fn retransmit(
    webrtc: &gst::Element,
    enc: Option<&gst::Element>,
    budget: Arc<Mutex<Retransmissions>>,
    metrics: Arc<Metrics>,
) {
    for pad in webrtc.sink_pads() {
        let is_video = pad
            .peer()
            .map(|p| p.query_caps(None))
            .and_then(|c| c.structure(0).and_then(|s| s.get::<&str>("media").ok()).map(|m| m == "video"));
        if is_video == Some(true)
            && pad.find_property("transceiver").is_some()
            && let Some(t) = pad.property::<Option<gst_webrtc::WebRTCRTPTransceiver>>("transceiver")
        {
            t.set_property("do-nack", true);
        }
    }
    let Some(bin) = webrtc.downcast_ref::<gst::Bin>() else { return };
    let enc = enc.map(|e| e.downgrade());
    // The retransmitter is made once the browser's answer is applied, deep inside webrtcbin.
    bin.connect_deep_element_added(move |_, _, element| {
        let is_rtx = element.factory().is_some_and(|f| f.name() == "rtprtxsend");
        let Some(src) = element.static_pad("src").filter(|_| is_rtx) else { return };
        let (budget, metrics, enc) = (budget.clone(), metrics.clone(), enc.clone());
        src.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            let seq = match &info.data {
                Some(gst::PadProbeData::Event(e)) => e
                    .structure()
                    .filter(|s| s.name() == "GstRTPRetransmissionRequest")
                    .and_then(|s| s.get::<u32>("seqnum").ok()),
                _ => None,
            };
            let Some(seq) = seq else { return gst::PadProbeReturn::Ok };
            let now = Instant::now();
            let (verdict, repair) = budget.lock().map_or((Verdict::Resend, false), |mut b| {
                let v = b.request(seq as u16, now);
                (v, v == Verdict::OverBudget && b.repair(now))
            });
            metrics.retransmission_request(verdict);
            if let Some(enc) = enc.as_ref().and_then(|e| e.upgrade()).filter(|_| repair) {
                metrics.repair_keyframes.inc();
                crate::media::encoder::force_keyframe(&enc);
            }
            match verdict {
                Verdict::Resend => gst::PadProbeReturn::Ok,
                // Answered here, and consumed: GStreamer 1.22 unreferences an upstream event
                // dropped by a probe twice (a CRITICAL per refusal; fixed in 1.24.8).
                _ => {
                    info.data = None;
                    gst::PadProbeReturn::Handled
                }
            }
        });
    });
}

/// STUN and TURN servers for webrtcbin (the session's own TURN credentials), and no UPnP.
pub fn configure_ice(webrtc: &gst::Element, s: &Settings, turn: Option<&crate::turn::Credentials>) {
    no_upnp(webrtc);
    if let Some(h) = &s.stun_host {
        webrtc.set_property_from_str("stun-server", &format!("stun://{h}:{}", s.stun_port));
    }
    if let (Some(h), Some(c)) = (&s.turn_host, turn) {
        let scheme = if s.turn_tls { "turns" } else { "turn" };
        // webrtcbin wants the credentials in the URL, percent-encoded (minted names contain ':').
        let enc = |v: &str| -> String {
            v.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        };
        let url = format!(
            "{scheme}://{}:{}@{h}:{}?transport={}",
            enc(&c.username),
            enc(&c.password),
            s.turn_port,
            s.turn_protocol
        );
        if !webrtc.emit_by_name::<bool>("add-turn-server", &[&url]) {
            tracing::warn!(host = %h, "webrtcbin refused the TURN server");
        }
    }
}

/// Turns off libnice's UPnP: it asks the LAN's router to map ports, which has no meaning in a
/// cluster, sends SSDP multicast from the Pod and starts a gupnp-igd thread and HTTP listener
/// for every viewer (with viewers coming and going quickly, their ports collided: "Unable to
/// listen on 127.0.0.1:… Address already in use" in the log). Set before candidates are
/// gathered, so none of it starts.
fn no_upnp(webrtc: &gst::Element) {
    use gst::glib::prelude::*;
    let agent = webrtc
        .find_property("ice-agent")
        .and_then(|_| webrtc.property::<Option<gst::glib::Object>>("ice-agent"))
        .filter(|ice| ice.find_property("agent").is_some())
        .and_then(|ice| ice.property::<Option<gst::glib::Object>>("agent"))
        .filter(|nice| nice.find_property("upnp").is_some());
    match agent {
        Some(nice) => nice.set_property("upnp", false),
        None => tracing::warn!("libnice's UPnP could not be turned off: this webrtcbin hides its ICE agent"),
    }
}
