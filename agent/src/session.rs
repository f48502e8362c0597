//! One viewer's lifetime: a pipeline and a peer connection made for them when they connect and
//! torn down (pipeline to Null) when they leave, so an idle desktop costs no encoder time. One
//! viewer at a time: a newly authenticated viewer takes over and the previous one is told why.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use gst::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::{
    adapt,
    desktop::Desktop,
    link::{
        peer::{self, Event, Peer},
        signalling::{self, FromBrowser, Incoming, Signalling, ToBrowser, VERSION},
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
    /// The last viewer's path, where the next one starts if it comes back soon.
    pub last_path: Arc<adapt::resume::LastPath>,
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
        Self {
            settings,
            encoder,
            encoders,
            metrics,
            desktop,
            last_path: Arc::default(),
            current: Mutex::new(None),
            next_id: AtomicU64::new(1),
        }
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

/// Runs one viewer's session over its signalling connection until either side ends it.
pub async fn run(agent: Arc<Agent>, mut sig: impl Signalling) {
    let (id, mut stop) = agent.take_over();
    agent.metrics.viewers.inc();
    agent.metrics.sessions.inc();
    tracing::info!(viewer = id, "viewer connected");
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Event>();
    // One TURN credential pair per session, minted now; the browser gets only this pair.
    let turn = agent.settings.turn_credentials();
    let decodable = hello(&mut sig).await;
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
            let _ = sig.send(&ToBrowser::Bye { v: VERSION, reason: format!("the stream could not start: {e}") }).await;
            e
        }
        Ok((encoder, stream)) => {
            let config = ToBrowser::Config {
                v: VERSION,
                ice_servers: agent.settings.ice_servers(turn.as_ref()),
                encoder: encoder.element().into(),
                codec: encoder.codec().name().into(),
            };
            let _ = sig.send(&config).await;
            let mut keepalive = tokio::time::interval(agent.settings.ws_ping_interval());
            keepalive.tick().await;
            let reason = loop {
                tokio::select! {
                    why = &mut stop => break why.unwrap_or_else(|_| "the agent is shutting down".into()),
                    _ = keepalive.tick() => if sig.keepalive().await.is_err() { break "the viewer went away".into() },
                    out = out_rx.recv() => match out {
                        Some(Event::Send(m)) => if sig.send(&m).await.is_err() { break "the viewer went away".into() },
                        Some(Event::Failed(e)) => break e,
                        None => break "the stream ended".into(),
                    },
                    incoming = sig.recv() => match incoming {
                        Some(Incoming::Message(m)) => stream.handle(m),
                        Some(Incoming::Unreadable(e)) => tracing::warn!(viewer = id, error = %e, "bad signalling message"),
                        None => break "the viewer closed the connection".into(),
                    },
                }
            };
            let _ = sig.send(&ToBrowser::Bye { v: VERSION, reason: reason.clone() }).await;
            stream.stop();
            reason
        }
    };
    sig.close().await;
    agent.desktop.detach(id);
    agent.leave(id);
    agent.metrics.viewers.dec();
    tracing::info!(viewer = id, %reason, "viewer session ended");
}

/// The codecs the browser decodes, from its `hello`; a browser that says nothing within
/// `HELLO_WAIT` (a page from before codecs were chosen per viewer) decodes H.264.
async fn hello(sig: &mut impl Signalling) -> Vec<Codec> {
    match tokio::time::timeout(signalling::HELLO_WAIT, sig.recv()).await {
        Ok(Some(Incoming::Message(FromBrowser::Hello { codecs, .. }))) => {
            let mut out: Vec<Codec> = codecs.iter().filter_map(|c| Codec::from_name(c)).collect();
            out.dedup();
            out
        }
        _ => vec![Codec::H264],
    }
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
    let start = agent.last_path.start(s.video_bitrate, std::time::Instant::now());
    if start != s.video_bitrate {
        tracing::info!(viewer = id, start_kbps = start, "starting where the last viewer's path was");
    }
    let desc = pipeline::description(&s.display, encoder, start, s.framerate, s.keyframe_interval, audio);
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
    let budgets = adapt::follow::Budgets::new(start);
    let enc = pipeline.by_name(crate::media::encoder::NAME);
    peer::retransmit(&webrtc, enc.as_ref(), budgets.retransmissions.clone(), agent.metrics.clone());
    if let Some(enc) = &enc {
        adapt::skip::attach(enc, budgets.frames.clone(), agent.metrics.clone());
    }
    if let Some(pad) = pipeline.by_name(pipeline::PACER).and_then(|p| p.static_pad("src")) {
        adapt::trains::attach(&pad, budgets.capacity.clone());
    }
    peer::configure_ice(&webrtc, s, turn);
    peer::negotiate(&webrtc, out.clone());
    pipeline.set_state(gst::State::Ready).map_err(|e| format!("cannot prepare the pipeline: {e}"))?;
    peer::open_input_channel(&webrtc, &pipeline, id, &s.display, agent.desktop.clone());
    pipeline::count_frames(&pipeline, &agent.metrics);
    adapt::pacing::restamp(&pipeline);
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    adapt::follow::start(&webrtc, bus, adapt::follow::Follower::new(agent, &pipeline, encoder, start, budgets), out);
    pipeline.set_state(gst::State::Playing).map_err(|e| format!("cannot start the pipeline: {e}"))?;
    Ok(Peer::new(pipeline, webrtc))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::link::signalling::Gone;

    /// A browser that says `said` and then stays silent (or, with `leaves`, goes away).
    struct Scripted {
        said: VecDeque<Incoming>,
        leaves: bool,
        sent: Vec<ToBrowser>,
    }

    impl Signalling for Scripted {
        async fn recv(&mut self) -> Option<Incoming> {
            match self.said.pop_front() {
                Some(m) => Some(m),
                None if self.leaves => None,
                None => std::future::pending().await,
            }
        }
        async fn send(&mut self, m: &ToBrowser) -> Result<(), Gone> {
            self.sent.push(m.clone());
            Ok(())
        }
        async fn keepalive(&mut self) -> Result<(), Gone> {
            Ok(())
        }
        async fn close(&mut self) {}
    }

    fn browser(said: Vec<Incoming>, leaves: bool) -> Scripted {
        Scripted { said: said.into(), leaves, sent: Vec::new() }
    }

    #[tokio::test(start_paused = true)]
    async fn the_codecs_come_from_the_browsers_hello_else_h264() {
        let hello_msg = |codecs: &[&str]| {
            Incoming::Message(FromBrowser::Hello { v: VERSION, codecs: codecs.iter().map(|c| c.to_string()).collect() })
        };
        let said = vec![hello_msg(&["VP8", "vp8", "video/VP9", "AV1"])];
        assert_eq!(hello(&mut browser(said, false)).await, [Codec::Vp8, Codec::Vp9]);
        // A page from before the hello, a browser that leaves, and one that sends junk first.
        assert_eq!(hello(&mut browser(vec![], false)).await, [Codec::H264]);
        assert_eq!(hello(&mut browser(vec![], true)).await, [Codec::H264]);
        let junk = vec![Incoming::Unreadable("not JSON".into()), hello_msg(&["VP8"])];
        assert_eq!(hello(&mut browser(junk, false)).await, [Codec::H264]);
    }
}
