//! Prometheus metrics of the agent: encoder in use, viewers, encoded frames and bytes, frames
//! dropped, round-trip time.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// The label set of a one-label family: `key="value"`.
pub fn label(key: &str, value: impl Into<String>) -> Vec<(String, String)> {
    vec![(key.to_owned(), value.into())]
}

/// All metrics of the agent.
pub struct Metrics {
    registry: Registry,
    /// 1 for the encoder in use, by name.
    pub encoder: Family<Vec<(String, String)>, Gauge>,
    /// Viewers by the codec and encoder they got.
    pub viewer_codecs: Family<Vec<(String, String)>, Counter>,
    /// Connected viewers (0 or 1).
    pub viewers: Gauge,
    /// Encoded video frames sent.
    pub frames: Counter,
    /// Encoded video bytes sent.
    pub bytes: Counter,
    /// Keyframes among the encoded frames.
    pub keyframes: Counter,
    /// Keyframe requests (PLI, FIR) from viewers.
    pub keyframe_requests: Counter,
    /// Keyframes the agent asked for because retransmission requests were refused.
    pub repair_keyframes: Counter,
    /// Viewers' retransmission requests by what became of them (see `adapt::retransmit::Verdict`).
    pub retransmission_requests: Family<Vec<(String, String)>, Counter>,
    /// Frames dropped before encoding (capture faster than encode).
    pub frames_dropped: Counter,
    /// Video bytes the pacer let go before the pacing rate allowed (a backlog past its bound).
    pub paced_early_bytes: Counter,
    /// Frames not encoded because the encoder's output was over its target (`adapt::skip`).
    pub frames_skipped: Counter,
    /// Times libvpx's rate-buffer debt was written off after the path widened (`adapt::debt`).
    pub debt_write_offs: Counter,
    /// Last round-trip time in milliseconds, from RTCP.
    pub rtt_ms: Gauge<f64, AtomicU64>,
    /// Configured bitrate in kbit/s.
    pub bitrate_kbps: Gauge<i64, AtomicI64>,
    /// Estimated path capacity in kbit/s.
    pub estimate_kbps: Gauge<i64, AtomicI64>,
    /// What the viewer received, kbit/s, from its transport-wide feedback.
    pub received_kbps: Gauge<i64, AtomicI64>,
    /// The path's capacity read from how each frame's packets arrived, kbit/s.
    pub train_capacity_kbps: Gauge<i64, AtomicI64>,
    /// Picture reduction in use (1 for its level: full, half-rate, half-rate-half-size).
    pub quality: Family<Vec<(String, String)>, Gauge>,
    /// Fraction of packets the viewer reported lost in the last interval.
    pub loss: Gauge<f64, AtomicU64>,
    /// ICE candidate type in use on the agent's side (1 for its name: host, srflx, prflx, relay).
    pub candidate: Family<Vec<(String, String)>, Gauge>,
    /// Viewer sessions started.
    pub sessions: Counter,
    /// Failed authentication attempts.
    pub auth_failures: Counter,
    /// Cursor shape changes seen.
    pub cursor_changes: Counter,
    /// Capture phase moves the viewer asked for (capture pacing).
    pub capture_phase_moves: Counter,
    /// Clipboard transfers by direction (in, out, refused).
    pub clipboard: Family<Vec<(String, String)>, Counter>,
    /// Desktop sound: 1 for `streaming` or `off` (with the reason in the log).
    pub audio: Family<Vec<(String, String)>, Gauge>,
    /// Viewer input not sent to the X server, by reason: `rate`, `queue`, `keysym`.
    pub input_dropped: Family<Vec<(String, String)>, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vdi_agent");
        let m = Self {
            registry: Registry::default(),
            encoder: Family::default(),
            viewer_codecs: Family::default(),
            viewers: Gauge::default(),
            frames: Counter::default(),
            bytes: Counter::default(),
            keyframes: Counter::default(),
            keyframe_requests: Counter::default(),
            repair_keyframes: Counter::default(),
            retransmission_requests: Family::default(),
            frames_dropped: Counter::default(),
            paced_early_bytes: Counter::default(),
            frames_skipped: Counter::default(),
            debt_write_offs: Counter::default(),
            rtt_ms: Gauge::default(),
            bitrate_kbps: Gauge::default(),
            estimate_kbps: Gauge::default(),
            received_kbps: Gauge::default(),
            train_capacity_kbps: Gauge::default(),
            quality: Family::default(),
            loss: Gauge::default(),
            candidate: Family::default(),
            sessions: Counter::default(),
            auth_failures: Counter::default(),
            cursor_changes: Counter::default(),
            capture_phase_moves: Counter::default(),
            clipboard: Family::default(),
            audio: Family::default(),
            input_dropped: Family::default(),
        };
        registry.register("encoder", "Encoder in use (1 for its name)", m.encoder.clone());
        registry.register(
            "viewer_codecs",
            "Viewers by the video codec and encoder they got (the first of the agent's preference their browser decodes)",
            m.viewer_codecs.clone(),
        );
        registry.register("viewers", "Connected viewers", m.viewers.clone());
        registry.register("encoded_frames", "Encoded video frames sent", m.frames.clone());
        registry.register("encoded_bytes", "Encoded video bytes sent", m.bytes.clone());
        // How a lossy path is repaired: the keyframes viewers asked for against those sent.
        registry.register("encoded_keyframes", "Keyframes among the encoded video frames", m.keyframes.clone());
        registry.register(
            "keyframe_requests",
            "Keyframe requests (RTCP PLI and FIR) received from viewers",
            m.keyframe_requests.clone(),
        );
        registry.register(
            "repair_keyframes",
            "Keyframes asked of the encoder because viewers' retransmission requests were refused",
            m.repair_keyframes.clone(),
        );
        registry.register(
            "retransmission_requests",
            "Lost packets viewers asked for again (RTCP NACK), by answer: resent; repeat (resent less than a round trip ago); over_budget (retransmissions had used their share of the bitrate)",
            m.retransmission_requests.clone(),
        );
        registry.register("frames_dropped", "Captured frames dropped before encoding", m.frames_dropped.clone());
        registry.register(
            "paced_early_bytes",
            "Video bytes the pacer let go before its rate allowed, their backlog past its bound",
            m.paced_early_bytes.clone(),
        );
        registry.register(
            "frames_skipped",
            "Captured frames not encoded because the encoder sent more than its target allows (an encoder at its coarsest quantizer)",
            m.frames_skipped.clone(),
        );
        registry.register(
            "debt_write_offs",
            "Times libvpx's rate-buffer debt, run up while frames were skipped, was written off once the frames' trains showed the path widened",
            m.debt_write_offs.clone(),
        );
        registry.register("rtt_milliseconds", "Round-trip time to the viewer", m.rtt_ms.clone());
        registry.register(
            "bitrate_kbps",
            "Encoder bitrate target in kbit/s (follows the adaptation)",
            m.bitrate_kbps.clone(),
        );
        registry.register("estimate_kbps", "Estimated path capacity in kbit/s", m.estimate_kbps.clone());
        registry.register(
            "received_kbps",
            "What the viewer received in kbit/s, from its transport-wide congestion control feedback",
            m.received_kbps.clone(),
        );
        registry.register(
            "train_capacity_kbps",
            "The path's capacity in kbit/s, read from how each frame's packets arrived (median over the last second)",
            m.train_capacity_kbps.clone(),
        );
        registry.register(
            "picture_quality",
            "Picture reduction for a narrow path (1 for full, half-rate or half-rate-half-size)",
            m.quality.clone(),
        );
        registry.register("packet_loss_ratio", "Fraction of packets lost, from the viewer's reports", m.loss.clone());
        registry.register("ice_candidate", "Local ICE candidate type in use (1 for its type)", m.candidate.clone());
        registry.register("sessions", "Viewer sessions started", m.sessions.clone());
        registry.register(
            "auth_failures",
            "Requests refused for wrong or missing credentials",
            m.auth_failures.clone(),
        );
        registry.register("cursor_changes", "Cursor shape changes sent to the browser", m.cursor_changes.clone());
        registry.register(
            "capture_phase_moves",
            "Capture phase moves made for the viewer's display (capture pacing)",
            m.capture_phase_moves.clone(),
        );
        registry.register(
            "clipboard_transfers",
            "Clipboard texts by direction (in, out, refused)",
            m.clipboard.clone(),
        );
        registry.register("audio", "Desktop sound (1 for streaming or off)", m.audio.clone());
        registry.register(
            "input_dropped",
            "Viewer input not sent to the X server (rate: over the rate limit, queue: the queue was full, keysym: a key that acts on the X server)",
            m.input_dropped.clone(),
        );
        Self { registry, ..m }
    }

    /// Counts one viewer by the codec and encoder it got.
    pub fn viewer_codec(&self, encoder: crate::media::encoder::Encoder) {
        let labels = vec![
            ("codec".to_owned(), encoder.codec().name().to_owned()),
            ("encoder".to_owned(), encoder.element().to_owned()),
        ];
        self.viewer_codecs.get_or_create(&labels).inc();
    }

    /// Counts one retransmission request by its answer.
    pub fn retransmission_request(&self, verdict: crate::adapt::retransmit::Verdict) {
        self.retransmission_requests.get_or_create(&label("answer", verdict.name())).inc();
    }

    /// Counts viewer input not sent to the X server (`rate`, `queue` or `keysym`).
    pub fn input_dropped(&self, reason: &'static str) {
        self.input_dropped.get_or_create(&label("reason", reason)).inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}
