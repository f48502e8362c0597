//! One viewer's lifetime: a pipeline and a peer connection made for them when they connect and
//! torn down (pipeline to Null) when they leave, so an idle desktop costs no encoder time. One
//! viewer at a time: a newly authenticated viewer takes over and the previous one is told why.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use gst::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::{
    adapt,
    desktop::Desktop,
    link::{
        peer::{self, Event, Peer},
        signalling::{self, FromBrowser, ToBrowser, VERSION},
    },
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

/// Runs one viewer's session on an upgraded WebSocket until either side ends it.
pub async fn run(agent: Arc<Agent>, socket: WebSocket) {
    let (id, mut stop) = agent.take_over();
    agent.metrics.viewers.inc();
    agent.metrics.sessions.inc();
    tracing::info!(viewer = id, "viewer connected");
    let (mut ws_tx, mut ws_rx) = socket.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Event>();
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
                        Some(Event::Send(m)) => if ws_tx.send(text(&m)).await.is_err() { break "the viewer went away".into() },
                        Some(Event::Failed(e)) => break e,
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

/// Builds and starts `encoder`'s stream for viewer `id`: the pipeline with its RTP header
/// extensions, the peer connection and its input channel, frame counting, capture pacing and
/// the path follower; what the browser must hear goes out through `out`.
fn start_pipeline(
    agent: &Arc<Agent>,
    id: u64,
    encoder: Encoder,
    turn: Option<&crate::turn::Credentials>,
    out: mpsc::UnboundedSender<Event>,
) -> Result<Peer, String> {
    let _lifecycle = pipeline::LIFECYCLE.lock();
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
    peer::request_retransmissions(&webrtc);
    peer::configure_ice(&webrtc, s, turn);
    peer::negotiate(&webrtc, out.clone());
    pipeline.set_state(gst::State::Ready).map_err(|e| format!("cannot prepare the pipeline: {e}"))?;
    peer::open_input_channel(&webrtc, &pipeline, id, &s.display, agent.desktop.clone());
    pipeline::count_frames(&pipeline, &agent.metrics);
    adapt::pacing::restamp(&pipeline);
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    adapt::follow::start(&webrtc, bus, adapt::follow::Follower::new(agent, &pipeline, encoder), out);
    pipeline.set_state(gst::State::Playing).map_err(|e| format!("cannot start the pipeline: {e}"))?;
    Ok(Peer::new(pipeline, webrtc))
}
