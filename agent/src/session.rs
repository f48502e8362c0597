//! One viewer's lifetime: a pipeline and a peer connection made for them when they connect and
//! torn down (pipeline to Null) when they leave, so an idle desktop costs no encoder time. One
//! viewer at a time: a newly authenticated viewer takes over and the previous one is told why.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use gst::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::{
    desktop::Desktop,
    link::signalling::{self, FromBrowser, ToBrowser, VERSION},
    media::encoder::{self, Codec, Encoder},
    media::pipeline,
    metrics::Metrics,
    settings::Settings,
};

/// Everything the HTTP handlers and sessions share.
pub struct Agent {
    /// Settings.
    pub settings: Settings,
    /// The H.264 (or first) encoder the probe chose: what a browser that does not say gets.
    pub encoder: Encoder,
    /// One working encoder per codec, in the agent's order of preference.
    pub encoders: Vec<Encoder>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Cursor, clipboard and what the desktop allows.
    pub desktop: Arc<Desktop>,
    current: Mutex<Option<(u64, oneshot::Sender<String>)>>,
    next_id: AtomicU64,
}

impl Agent {
    /// A new agent with no viewer.
    pub fn new(settings: Settings, encoders: Vec<Encoder>, metrics: Arc<Metrics>, desktop: Arc<Desktop>) -> Self {
        let encoder = encoders
            .iter()
            .copied()
            .find(|e| e.codec() == Codec::H264)
            .or(encoders.first().copied())
            .unwrap_or(Encoder::X264);
        Self { settings, encoder, encoders, metrics, desktop, current: Mutex::new(None), next_id: AtomicU64::new(1) }
    }

    /// The encoder for a viewer whose browser decodes `decodable`, with why, or why none.
    fn encoder_for(&self, decodable: &[Codec]) -> Result<(Encoder, String), String> {
        let names = |codecs: &mut dyn Iterator<Item = Codec>| codecs.map(Codec::name).collect::<Vec<_>>().join(", ");
        let offered = names(&mut self.encoders.iter().map(|e| e.codec()));
        let decodes = names(&mut decodable.iter().copied());
        match encoder::for_viewer(&self.encoders, decodable) {
            Some(e) => Ok((e, format!("the first of the agent's codecs ({offered}) the browser decodes ({decodes})"))),
            None => Err(format!(
                "this browser decodes none of the agent's video codecs (it decodes {decodes}; the agent has {offered})"
            )),
        }
    }

    /// Registers a new viewer, telling the previous one (if any) that it was replaced.
    fn take_over(&self) -> (u64, oneshot::Receiver<String>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let old = self.current.lock().ok().and_then(|mut cur| cur.replace((id, tx)));
        if let Some((_, stop)) = old {
            let _ = stop.send("another viewer connected and took over this desktop".into());
        }
        (id, rx)
    }

    fn leave(&self, id: u64) {
        if let Ok(mut cur) = self.current.lock()
            && cur.as_ref().is_some_and(|(c, _)| *c == id)
        {
            *cur = None;
        }
    }

    /// Ends the current viewer's session (shutdown).
    pub fn stop_all(&self, reason: &str) {
        if let Some((_, stop)) = self.current.lock().ok().and_then(|mut c| c.take()) {
            let _ = stop.send(reason.into());
        }
    }
}

enum Out {
    Msg(ToBrowser),
    Failed(String),
}

fn send_json(tx: &mpsc::UnboundedSender<Out>, m: ToBrowser) {
    let _ = tx.send(Out::Msg(m));
}

/// Runs one viewer's session on an upgraded WebSocket until either side ends it.
pub async fn run(agent: Arc<Agent>, socket: WebSocket) {
    let (id, mut stop) = agent.take_over();
    agent.metrics.viewers.inc();
    agent.metrics.sessions.inc();
    tracing::info!(viewer = id, "viewer connected");
    let (mut ws_tx, mut ws_rx) = socket.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Out>();
    // One TURN credential pair per session, minted now; the browser gets only this pair.
    let turn = agent.settings.turn_credentials();
    let decodable = hello(&mut ws_rx).await;
    let chosen = agent.encoder_for(&decodable).inspect(|(encoder, why)| {
        tracing::info!(viewer = id, codec = encoder.codec().name(), encoder = encoder.element(), reason = %why, "codec chosen");
        agent.metrics.viewer_codec(*encoder);
    });
    let started = chosen.and_then(|(encoder, _)| {
        start_pipeline(&agent, id, encoder, turn.as_ref(), out_tx.clone()).map(|stream| (encoder, stream))
    });
    let reason = match started {
        Err(e) => {
            tracing::error!(viewer = id, error = %e, "cannot start the stream");
            let _ = ws_tx
                .send(text(&ToBrowser::Bye { v: VERSION, reason: format!("the stream could not start: {e}") }))
                .await;
            e
        }
        Ok((encoder, stream)) => {
            let _ = ws_tx
                .send(text(&ToBrowser::Config {
                    v: VERSION,
                    ice_servers: agent.settings.ice_servers(turn.as_ref()),
                    encoder: encoder.element().into(),
                    codec: encoder.codec().name().into(),
                }))
                .await;
            // Pings keep an idle socket open through proxies that close silent connections (an
            // Ingress's read timeout) and find a viewer that vanished without closing.
            let mut ping = tokio::time::interval(agent.settings.ws_ping_interval());
            ping.tick().await;
            let reason = loop {
                tokio::select! {
                    why = &mut stop => break why.unwrap_or_else(|_| "the agent is shutting down".into()),
                    _ = ping.tick() => if ws_tx.send(Message::Ping(Default::default())).await.is_err() {
                        break "the viewer went away".into()
                    },
                    out = out_rx.recv() => match out {
                        Some(Out::Msg(m)) => if ws_tx.send(text(&m)).await.is_err() { break "the viewer went away".into() },
                        Some(Out::Failed(e)) => break e,
                        None => break "the stream ended".into(),
                    },
                    incoming = ws_rx.next() => match incoming {
                        Some(Ok(Message::Text(t))) => match signalling::parse(t.as_str()) {
                            Ok(m) => stream.handle(m),
                            Err(e) => tracing::warn!(viewer = id, error = %e, "bad signalling message"),
                        },
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break "the viewer closed the connection".into(),
                        Some(Ok(_)) => {}
                    },
                }
            };
            let _ = ws_tx.send(text(&ToBrowser::Bye { v: VERSION, reason: reason.clone() })).await;
            stream.stop();
            reason
        }
    };
    let _ = ws_tx.close().await;
    agent.desktop.detach(id);
    agent.leave(id);
    agent.metrics.viewers.dec();
    tracing::info!(viewer = id, %reason, "viewer session ended");
}

/// The codecs the browser decodes, from its `hello`; a browser that says nothing within
/// `HELLO_WAIT` (a page from before codecs were chosen per viewer) decodes H.264.
async fn hello(ws_rx: &mut (impl futures::Stream<Item = Result<Message, axum::Error>> + Unpin)) -> Vec<Codec> {
    let first = tokio::time::timeout(signalling::HELLO_WAIT, async {
        loop {
            match ws_rx.next().await {
                Some(Ok(Message::Text(t))) => return signalling::parse(t.as_str()).ok(),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    match first {
        Ok(Some(FromBrowser::Hello { codecs, .. })) => {
            let mut out: Vec<Codec> = codecs.iter().filter_map(|c| Codec::from_name(c)).collect();
            out.dedup();
            out
        }
        _ => vec![Codec::H264],
    }
}

fn text(m: &ToBrowser) -> Message {
    Message::Text(serde_json::to_string(m).unwrap_or_default().into())
}

/// A running stream.
struct Stream {
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
}

impl Stream {
    fn handle(&self, m: FromBrowser) {
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

    fn stop(&self) {
        let _lifecycle = LIFECYCLE.lock();
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Held while a pipeline starts or stops, so no two do at once. `ximagesrc` (Xlib with XShm)
/// corrupted the heap when one viewer's pipeline stopped while the next one's started: 300
/// signalling sockets opened and dropped back to back aborted the agent (`malloc(): unaligned
/// tcache chunk detected`) every time, with or without data channel, probes or UPnP, and never
/// with `videotestsrc` in its place or with 300 ms between the sockets (Xlib's XInitThreads did
/// not help). With this lock, 1,800 ran clean. Starting takes milliseconds, so a viewer waits for nothing it would notice.
static LIFECYCLE: Mutex<()> = Mutex::new(());

fn start_pipeline(
    agent: &Arc<Agent>,
    id: u64,
    encoder: Encoder,
    turn: Option<&crate::turn::Credentials>,
    out: mpsc::UnboundedSender<Out>,
) -> Result<Stream, String> {
    let _lifecycle = LIFECYCLE.lock();
    let s = &agent.settings;
    let audio = agent.desktop.features.audio.then(|| (s.pulse_server.as_deref().unwrap_or_default(), s.audio_bitrate));
    let desc = pipeline::description(&s.display, encoder, s.video_bitrate, s.framerate, s.keyframe_interval, audio);
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| format!("cannot build the pipeline: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the pipeline description is not a pipeline".to_owned())?;
    let webrtc = pipeline.by_name(pipeline::WEBRTC).ok_or("webrtcbin missing from the pipeline")?;
    pipeline::same_stream(&webrtc);
    if let Some(pay) = pipeline.by_name(pipeline::PAY) {
        crate::media::extensions::attach_twcc(&pay);
        if s.playout_delay == crate::media::playout::PlayoutDelay::None {
            crate::media::playout::attach(&pay);
        }
    }
    request_retransmissions(&webrtc);
    configure_ice(&webrtc, s, turn);

    // Offer when webrtcbin is ready to negotiate.
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
                            let _ = tx.send(Out::Failed(format!("cannot write the offer: {e}")));
                        }
                    }
                }
                None => {
                    let _ = tx.send(Out::Failed("webrtcbin produced no offer".into()));
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

    // The input channel exists before negotiation so it is part of the offer; webrtcbin accepts
    // data channels only once it is out of the NULL state.
    pipeline.set_state(gst::State::Ready).map_err(|e| format!("cannot prepare the pipeline: {e}"))?;
    let options = gst::Structure::builder("config").field("ordered", true).build();
    let channel =
        webrtc.emit_by_name::<Option<gst_webrtc::WebRTCDataChannel>>("create-data-channel", &[&"input", &options]);
    match channel {
        Some(ch) => {
            let capture = pipeline.by_name(crate::adapt::pacing::CAPTURE).map(|c| c.downgrade()).unwrap_or_default();
            crate::link::channel::attach(&ch, id, &s.display, agent.desktop.clone(), capture)
        }
        None => tracing::warn!("webrtcbin could not create the input data channel; the desktop will be view-only"),
    }

    count_frames(&pipeline, agent);
    crate::adapt::pacing::restamp(&pipeline);

    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    let tx = out;
    let weak = webrtc.downgrade();
    let controller = Arc::new(Mutex::new(crate::adapt::bitrate::Controller::new(
        s.min_video_bitrate,
        s.max_video_bitrate,
        s.video_bitrate,
    )));
    follow_capture_size(&pipeline, controller.clone(), s.framerate);
    let adapt = Arc::new(Adapt {
        metrics: agent.metrics.clone(),
        controller,
        pipeline: pipeline.downgrade(),
        fps: s.framerate,
        desktop: agent.desktop.clone(),
        sent: Mutex::new((std::time::Instant::now(), agent.metrics.bytes.get())),
        loss: Mutex::new(crate::adapt::loss::LossMeter::default()),
        keyframes_on_demand: s.keyframe_interval == crate::media::encoder::ON_DEMAND,
        encoder,
    });
    tokio::spawn(async move {
        let mut messages = bus.stream();
        let mut stats = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                msg = messages.next() => {
                    let Some(msg) = msg else { break };
                    if let gst::MessageView::Error(e) = msg.view() {
                        let details = e.debug().map(|d| format!(" ({d})")).unwrap_or_default();
                        tracing::error!(error = %e.error(), %details, "pipeline error");
                        let _ = tx.send(Out::Failed(format!("pipeline error: {}{details}", e.error())));
                        break;
                    }
                }
                _ = stats.tick() => {
                    let Some(webrtc) = weak.upgrade() else { break };
                    poll_stats(&webrtc, adapt.clone());
                }
            }
        }
    });

    pipeline.set_state(gst::State::Playing).map_err(|e| format!("cannot start the pipeline: {e}"))?;
    Ok(Stream { pipeline, webrtc })
}

/// Lost video packets are asked for again (NACK) and resent (RTX): on a path with random loss a
/// missing packet otherwise costs a frozen picture until the next keyframe.
fn request_retransmissions(webrtc: &gst::Element) {
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
}

/// A halved picture stays half of the capture when the capture's size changes (a resize).
fn follow_capture_size(pipeline: &gst::Pipeline, controller: Arc<Mutex<crate::adapt::bitrate::Controller>>, fps: u32) {
    let Some(pad) = pipeline.by_name(pipeline::RATE).and_then(|r| r.static_pad("src")) else { return };
    let weak = pipeline.downgrade();
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(e)) = &info.data
            && e.type_() == gst::EventType::Caps
            && let (Some(p), Ok(c)) = (weak.upgrade(), controller.lock())
            && c.decision().quality.half_size()
        {
            let q = c.decision().quality;
            drop(c);
            // Not from the streaming thread holding the caps event: set the caps afterwards.
            p.call_async(move |p| {
                if let Ok(p) = p.clone().downcast::<gst::Pipeline>() {
                    pipeline::apply_quality(&p, q, fps);
                }
            });
        }
        gst::PadProbeReturn::Ok
    });
}

fn configure_ice(webrtc: &gst::Element, s: &Settings, turn: Option<&crate::turn::Credentials>) {
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

/// Counts encoded frames and bytes at the payloader's input, and frames the leaky queue drops.
fn count_frames(pipeline: &gst::Pipeline, agent: &Arc<Agent>) {
    let elements: Vec<gst::Element> = pipeline.iterate_elements().into_iter().flatten().collect();
    for e in elements {
        let factory = e.factory().map(|f| f.name().to_string()).unwrap_or_default();
        if e.name() == pipeline::PAY {
            if let Some(pad) = e.static_pad("sink") {
                let m = agent.metrics.clone();
                pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                    if let Some(buf) = info.buffer() {
                        m.frames.inc();
                        m.bytes.inc_by(buf.size() as u64);
                    }
                    gst::PadProbeReturn::Ok
                });
            }
        } else if factory == "queue" {
            let m = agent.metrics.clone();
            e.connect("overrun", false, move |_| {
                m.frames_dropped.inc();
                None
            });
        }
    }
}

/// What one stats poll needs besides webrtcbin.
struct Adapt {
    metrics: Arc<Metrics>,
    controller: Arc<Mutex<crate::adapt::bitrate::Controller>>,
    pipeline: gst::glib::WeakRef<gst::Pipeline>,
    fps: u32,
    desktop: Arc<Desktop>,
    /// Encoded bytes counted at the previous poll, and when.
    sent: Mutex<(std::time::Instant, u64)>,
    /// The loss of each poll interval.
    loss: Mutex<crate::adapt::loss::LossMeter>,
    /// Keyframes only on demand (no periodic ones): a lossy path then gets one per poll.
    keyframes_on_demand: bool,
    /// The viewer's encoder (its bitrate's units).
    encoder: Encoder,
}

/// Reads webrtcbin's stats: round-trip time and loss from the viewer's receiver reports feed the
/// bitrate controller, whose target goes to the encoder and whose picture reduction goes to the
/// capture and scaler; the candidate type of the selected pair goes to metrics.
fn poll_stats(webrtc: &gst::Element, adapt: Arc<Adapt>) {
    let promise = gst::Promise::with_change_func(move |reply| {
        let Ok(Some(stats)) = reply else { return };
        let report = crate::adapt::stats::PathReport::from_stats(stats);
        let (rtt_ms, fraction, lost) = (report.rtt_ms, report.fraction_lost, report.packets_lost);
        let loss = match (report.sent, adapt.loss.lock()) {
            (Some(sent), Ok(mut meter)) => {
                meter.update(crate::adapt::loss::Counts { sent, resent: report.resent, lost, fraction })
            }
            _ => fraction,
        };
        let m = &adapt.metrics;
        if let Some(r) = rtt_ms {
            m.rtt_ms.set(r);
        }
        if let Some(t) = report.twcc {
            m.received_kbps.set(t.recv_kbps.round() as i64);
        }
        if let Some(t) = report.candidate {
            m.candidate.clear();
            m.candidate.get_or_create(&vec![("type".to_owned(), t)]).set(1);
        }
        let Some(loss) = loss else { return }; // No receiver report yet.
        m.loss.set(loss);
        let sent_kbps = adapt.sent.lock().ok().map(|mut last| {
            let (now, bytes) = (std::time::Instant::now(), m.bytes.get());
            let secs = now.duration_since(last.0).as_secs_f64().max(0.001);
            let kbps = bytes.saturating_sub(last.1) as f64 * 8.0 / 1000.0 / secs;
            *last = (now, bytes);
            kbps
        });
        let (before, d) = match adapt.controller.lock() {
            Ok(mut c) => {
                (c.decision(), c.update(crate::adapt::bitrate::Feedback { loss, rtt_ms, sent_kbps, twcc: report.twcc }))
            }
            Err(_) => return,
        };
        tracing::debug!(
            loss,
            ?fraction,
            ?lost,
            ?rtt_ms,
            ?sent_kbps,
            sent = report.sent,
            resent = report.resent,
            twcc = ?report.twcc,
            estimate_kbps = d.estimate_kbps,
            target_kbps = d.target_kbps,
            quality = d.quality.name(),
            "path feedback"
        );
        m.bitrate_kbps.set(i64::from(d.target_kbps));
        m.estimate_kbps.set(i64::from(d.estimate_kbps));
        m.quality.clear();
        m.quality.get_or_create(&vec![("level".to_owned(), d.quality.name().to_owned())]).set(1);
        adapt.desktop.send(&crate::link::protocol::ToViewer::Stats {
            target: d.target_kbps,
            estimate: d.estimate_kbps,
            quality: d.quality.name(),
            loss,
            rtt: rtt_ms,
        });
        let Some(pipeline) = adapt.pipeline.upgrade() else { return };
        if let Some(enc) = pipeline.by_name("enc") {
            adapt.encoder.set_bitrate(&enc, d.target_kbps);
            // On a lossy path a packet that retransmission could not save leaves the picture
            // broken until a keyframe, and the browser's own request for one (PLI) comes late:
            // without periodic keyframes, 1 % loss on 6 Mbit/s took the viewer from 57 to 17
            // decoded frames a second. One a second while loss lasts heals that; a clean path
            // still gets none.
            if adapt.keyframes_on_demand && loss > 0.0 {
                enc.send_event(gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build());
            }
        }
        if d.quality != before.quality {
            tracing::info!(quality = d.quality.name(), estimate_kbps = d.estimate_kbps, "picture adapted to the path");
            pipeline::apply_quality(&pipeline, d.quality, adapt.fps);
        }
    });
    webrtc.emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
}
