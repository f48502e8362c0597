//! Following the path for one viewer: every second webrtcbin's stats become a path report, the
//! controller decides (and half a second later cuts at once if the viewer's feedback shows a
//! queue), the encoder gets its target in its own units, the frame budget, the packet
//! pacer and the retransmissions follow it, and the picture gets its quality step; pipeline
//! errors end the stream.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use gst::prelude::*;
use tokio::sync::mpsc;

use crate::{
    desktop::Desktop, link::peer::Event, media::encoder::Encoder, media::pipeline, metrics::Metrics, session::Agent,
};

/// What one stats poll needs besides webrtcbin.
pub struct Follower {
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
    /// What to ask the encoder for so that it sends the target.
    fit: Mutex<crate::adapt::bitrate::EncoderFit>,
    /// The budgets that follow the target.
    budgets: Budgets,
    /// Where the next viewer starts.
    last_path: Arc<crate::adapt::resume::LastPath>,
    /// Frames encoded and skipped counted at the previous poll.
    frames: Mutex<(u64, u64)>,
    /// When libvpx's debt from a narrow spell is written off.
    write_off: Mutex<crate::adapt::debt::WriteOff>,
    /// The share of the capture's frame rate that reaches the encoder.
    cadence: Mutex<crate::adapt::cadence::Cadence>,
}

/// What the viewer's stream may spend, shared with the probes that enforce it: the encoder's
/// frames (`skip`) and the retransmissions (`retransmit`, which also follows the round trip).
#[derive(Clone)]
pub struct Budgets {
    /// Which captured frames are encoded.
    pub frames: Arc<Mutex<crate::adapt::skip::FrameBudget>>,
    /// Which lost packets are resent.
    pub retransmissions: Arc<Mutex<crate::adapt::retransmit::Retransmissions>>,
    /// The frames' trains read from the viewer's feedback since the last decision.
    pub capacity: Arc<Mutex<crate::adapt::trains::Capacity>>,
}

impl Budgets {
    /// For a stream starting at `target_kbps`.
    pub fn new(target_kbps: u32) -> Self {
        Self {
            frames: Arc::new(Mutex::new(crate::adapt::skip::FrameBudget::new(target_kbps))),
            retransmissions: Arc::new(Mutex::new(crate::adapt::retransmit::Retransmissions::new(target_kbps))),
            capacity: Arc::default(),
        }
    }
}

/// Which reading of webrtcbin's stats a poll is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poll {
    /// The second's decision: loss, round trip, what arrived and what was sent.
    Decide,
    /// Half a second later: only a queue in the viewer's transport-wide feedback, cut at once
    /// (see [`crate::adapt::bitrate::Controller::check`]).
    Check,
}

/// Reads webrtcbin's stats: what the viewer's transport-wide feedback says arrived, and
/// round-trip time and loss from its receiver reports, feed the bitrate controller, whose target
/// goes to the encoder (corrected by `EncoderFit`) and whose picture reduction goes to the
/// capture and scaler; the candidate type of the selected pair goes to metrics.
fn poll_stats(webrtc: &gst::Element, adapt: Arc<Follower>, poll: Poll) {
    let promise = gst::Promise::with_change_func(move |reply| {
        let Ok(Some(stats)) = reply else { return };
        let now = std::time::Instant::now();
        let report = crate::adapt::stats::PathReport::from_stats(stats);
        match poll {
            Poll::Decide => decide(&adapt, report, now),
            Poll::Check => {
                let Ok(mut c) = adapt.controller.lock() else { return };
                let before = c.decision();
                let Some(d) = c.check(report.twcc) else { return };
                let at_ceiling = c.at_ceiling();
                let open = c.open();
                drop(c);
                tracing::debug!(twcc = ?report.twcc, estimate_kbps = d.estimate_kbps, "queue between decisions");
                let loss = adapt.metrics.loss.get();
                let rtt_ms = report.rtt_ms;
                adapt.apply(Applied {
                    before,
                    d,
                    at_ceiling,
                    open,
                    sent_kbps: None,
                    capacity_kbps: None,
                    acted_on_trains: false,
                    loss,
                    rtt_ms,
                    now,
                });
            }
        }
    });
    webrtc.emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
}

/// The second's decision from `report`, read at `now`.
fn decide(adapt: &Follower, report: crate::adapt::stats::PathReport, now: std::time::Instant) {
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
        m.candidate.get_or_create(&crate::metrics::label("type", t)).set(1);
    }
    let Some(loss) = loss else { return }; // No receiver report yet.
    m.loss.set(loss);
    let sent_kbps = adapt.sent.lock().ok().map(|mut last| {
        let bytes = m.bytes.get();
        let secs = now.duration_since(last.0).as_secs_f64().max(0.001);
        let kbps = bytes.saturating_sub(last.1) as f64 * 8.0 / 1000.0 / secs;
        *last = (now, bytes);
        kbps
    });
    let capacity_kbps = adapt.budgets.capacity.lock().ok().and_then(|mut c| c.take());
    if let Some(c) = capacity_kbps {
        m.train_capacity_kbps.set(c.round() as i64);
    }
    let (before, d, at_ceiling, open, acted_on_trains) = match adapt.controller.lock() {
        Ok(mut c) => {
            let before = c.decision();
            let d =
                c.update(crate::adapt::bitrate::Feedback { loss, rtt_ms, sent_kbps, twcc: report.twcc, capacity_kbps });
            (before, d, c.at_ceiling(), c.open(), c.acted_on_trains())
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
        ?capacity_kbps,
        estimate_kbps = d.estimate_kbps,
        target_kbps = d.target_kbps,
        quality = d.quality.name(),
        "path feedback"
    );
    adapt.apply(Applied { before, d, at_ceiling, open, sent_kbps, capacity_kbps, acted_on_trains, loss, rtt_ms, now });
    // On a lossy path a packet that retransmission could not save leaves the picture broken
    // until a keyframe, and the browser's own request for one (PLI) comes late: without periodic
    // keyframes, 1 % loss on 6 Mbit/s took the viewer from 57 to 17 decoded frames a second. One
    // a second while loss lasts heals that; a clean path still gets none.
    if adapt.keyframes_on_demand
        && loss > 0.0
        && let Some(enc) = adapt.pipeline.upgrade().and_then(|p| p.by_name(crate::media::encoder::NAME))
    {
        crate::media::encoder::force_keyframe(&enc);
    }
}

/// A decision and what it was made from, to be applied.
struct Applied {
    before: crate::adapt::bitrate::Decision,
    d: crate::adapt::bitrate::Decision,
    at_ceiling: bool,
    open: bool,
    sent_kbps: Option<f64>,
    /// The frames' trains read for this decision (none between decisions).
    capacity_kbps: Option<f64>,
    /// Whether the decision forgot a congestion or jumped on the trains' word.
    acted_on_trains: bool,
    loss: f64,
    rtt_ms: Option<f64>,
    now: std::time::Instant,
}

impl Follower {
    /// The budgets, the pacer, the encoder and the picture follow decision `a.d`; the viewer's
    /// overlay and the metrics show it.
    fn apply(&self, a: Applied) {
        let Applied { before, d, at_ceiling, open, sent_kbps, capacity_kbps, acted_on_trains, loss, rtt_ms, now } = a;
        let owed = at_ceiling || open;
        let m = &self.metrics;
        if let Ok(mut r) = self.budgets.retransmissions.lock() {
            r.follow(d.target_kbps, rtt_ms.map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0)), now);
        }
        self.last_path.remember(d.target_kbps, now);
        if let Ok(mut f) = self.budgets.frames.lock() {
            f.set_target(d.target_kbps, at_ceiling, now);
        }
        m.bitrate_kbps.set(i64::from(d.target_kbps));
        m.estimate_kbps.set(i64::from(d.estimate_kbps));
        m.quality.clear();
        m.quality.get_or_create(&crate::metrics::label("level", d.quality.name())).set(1);
        // The trains' last reading, whether or not this decision took one: shown to the viewer,
        // and the pacer's bound for a bursty encoder.
        let trains = self.budgets.capacity.lock().ok().and_then(|c| c.last());
        self.desktop.send(&crate::link::protocol::ToViewer::Stats {
            target: d.target_kbps,
            estimate: d.estimate_kbps,
            quality: d.quality.name(),
            loss,
            rtt: rtt_ms,
            capacity: trains.map(|c| c.round() as u32),
        });
        let Some(pipeline) = self.pipeline.upgrade() else { return };
        if let Some(pacer) =
            pipeline.by_name(pipeline::PACER).and_then(|p| p.downcast::<crate::media::pacer::VdiPacer>().ok())
        {
            // A bursty encoder's keyframes are paced no faster than the path (see `media::pacer`).
            pacer.set_target(d.target_kbps, trains.filter(|_| self.encoder.bursty()));
            let early = pacer.take_early();
            m.paced_early_bytes.inc_by(early);
            if early > 0 {
                tracing::debug!(early_bytes = early, "paced early");
            }
        }
        if let Some(enc) = pipeline.by_name(crate::media::encoder::NAME) {
            let mut write_off = false;
            let setting = match self.frames.lock() {
                Ok(mut last) => {
                    let counts = (m.frames.get(), m.frames_skipped.get());
                    let (encoded, skipped) = (counts.0.saturating_sub(last.0), counts.1.saturating_sub(last.1));
                    *last = counts;
                    // While frames are skipped the frame budget, not the setting, decides what is
                    // sent: such an interval says nothing of how the encoder meets its setting.
                    // (libvpx at its coarsest quantizer read as 1.6 times over, and after the link
                    // widened its setting stayed at 60 % of the target for seconds.)
                    let fit = self.fit.lock().map_or(d.target_kbps, |mut f| {
                        f.setting(d.target_kbps, sent_kbps.filter(|_| skipped == 0), owed)
                    });
                    // libvpx's debt from a narrow spell goes once the trains show the path
                    // widened; the skipped frames then were the narrow spell's, and the setting
                    // is the fit's whole (libvpx's buffer restarts full at it).
                    write_off = self.encoder.keeps_rate_debt()
                        && self.write_off.lock().is_ok_and(|mut w| w.due(acted_on_trains, capacity_kbps, skipped, now));
                    let setting =
                        if write_off { fit } else { crate::adapt::skip::encoder_setting(fit, encoded, skipped) };
                    // The interval's frames were captured at the rate of the quality step before
                    // this decision. Made up for only where the viewer is owed the whole target,
                    // as the fit's raise is: everywhere, frames twice the size took the capture
                    // from 39-52 to 24-46 frames a second on the narrowed link (batch 14C).
                    let share = self
                        .cadence
                        .lock()
                        .map_or(1.0, |mut c| c.update(counts.0 + counts.1, before.quality.fps(self.fps), now));
                    let setting = match owed && self.encoder.sizes_frames_by_caps_rate() {
                        true => crate::adapt::cadence::compensate(setting, share),
                        false => setting,
                    };
                    tracing::debug!(
                        target_kbps = d.target_kbps,
                        fit_kbps = fit,
                        encoded,
                        skipped,
                        share,
                        setting_kbps = setting,
                        "encoder setting"
                    );
                    setting
                }
                Err(_) => d.target_kbps,
            };
            self.encoder.set_bitrate(&enc, setting);
            if write_off && self.encoder.reset_rate_buffer(&enc, setting) {
                tracing::info!(?capacity_kbps, setting_kbps = setting, "libvpx's debt written off: the path widened");
                m.debt_write_offs.inc();
            }
        }
        if d.quality != before.quality {
            tracing::info!(quality = d.quality.name(), estimate_kbps = d.estimate_kbps, "picture adapted to the path");
            pipeline::apply_quality(&pipeline, d.quality, self.fps);
        }
    }
}

impl Follower {
    /// For `agent`'s viewer of `pipeline`, encoded by `encoder`, starting at `start_kbps`.
    pub fn new(agent: &Agent, pipeline: &gst::Pipeline, encoder: Encoder, start_kbps: u32, budgets: Budgets) -> Self {
        let s = &agent.settings;
        let controller = crate::adapt::bitrate::Controller::new(s.min_video_bitrate, s.max_video_bitrate, start_kbps);
        let controller = Arc::new(Mutex::new(if encoder.bursty() { controller.bursty() } else { controller }));
        follow_capture_size(pipeline, controller.clone(), s.framerate);
        Self {
            metrics: agent.metrics.clone(),
            controller,
            pipeline: pipeline.downgrade(),
            fps: s.framerate,
            desktop: agent.desktop.clone(),
            sent: Mutex::new((std::time::Instant::now(), agent.metrics.bytes.get())),
            loss: Mutex::new(crate::adapt::loss::LossMeter::default()),
            keyframes_on_demand: s.keyframe_interval == crate::media::encoder::ON_DEMAND,
            encoder,
            fit: Mutex::new(crate::adapt::bitrate::EncoderFit::default()),
            budgets,
            last_path: agent.last_path.clone(),
            frames: Mutex::new((agent.metrics.frames.get(), agent.metrics.frames_skipped.get())),
            write_off: Mutex::default(),
            cadence: Mutex::default(),
        }
    }
}

/// Polls `webrtc`'s stats every second for `follower` and watches `bus` for errors (which end
/// the stream through `tx`), until the pipeline goes.
pub fn start(webrtc: &gst::Element, bus: gst::Bus, follower: Follower, tx: mpsc::UnboundedSender<Event>) {
    let weak = webrtc.downgrade();
    let adapt = Arc::new(follower);
    tokio::spawn(async move {
        let mut messages = bus.stream();
        // Twice a second: the decision, and half a second later the check for a queue.
        let mut stats = tokio::time::interval(Duration::from_millis(500));
        let mut poll = Poll::Check;
        loop {
            tokio::select! {
                msg = messages.next() => {
                    let Some(msg) = msg else { break };
                    if let gst::MessageView::Error(e) = msg.view() {
                        let details = e.debug().map(|d| format!(" ({d})")).unwrap_or_default();
                        tracing::error!(error = %e.error(), %details, "pipeline error");
                        let _ = tx.send(Event::Failed(format!("pipeline error: {}{details}", e.error())));
                        break;
                    }
                }
                _ = stats.tick() => {
                    let Some(webrtc) = weak.upgrade() else { break };
                    poll = if poll == Poll::Decide { Poll::Check } else { Poll::Decide };
                    poll_stats(&webrtc, adapt.clone(), poll);
                }
            }
        }
    });
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
