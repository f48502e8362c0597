//! The agent's contract: what a session Pod tells `vdi-agent` and where the cluster reaches it.
//! The renderer writes the Pod from these names, the webhook injects from them, and the agent
//! reads its settings by them, so a rename cannot split the three. Selkies-GStreamer's names are
//! kept where it has one, so existing desktop images keep working.

/// Port of the page, the signalling WebSocket and the health probes (named [`PORT_NAME`]).
pub const PORT: u16 = 8080;
/// Name of [`PORT`] in the Pod and the Service.
pub const PORT_NAME: &str = "http";
/// Port of the Prometheus metrics (kept apart from the page, never behind the Ingress).
pub const METRICS_PORT: u16 = 9090;
/// Name of [`METRICS_PORT`] in the Pod.
pub const METRICS_PORT_NAME: &str = "metrics";
/// Liveness: the agent's process answers.
pub const HEALTH_PATH: &str = "/healthz";
/// Readiness: a working encoder was found and the page can be served.
pub const READY_PATH: &str = "/readyz";
/// X display of the desktop.
pub const DISPLAY: &str = ":0";
/// PulseAudio socket of the desktop.
pub const PULSE_SERVER: &str = "unix:/run/pulse/native";

/// The environment variables the agent reads (each is also a `--flag` of the same meaning).
pub mod env {
    /// Address to listen on.
    pub const ADDR: &str = "SELKIES_ADDR";
    /// Port for the page, signalling and health.
    pub const PORT: &str = "SELKIES_PORT";
    /// X display to capture.
    pub const DISPLAY: &str = "DISPLAY";
    /// PulseAudio server.
    pub const PULSE_SERVER: &str = "PULSE_SERVER";
    /// Where a fatal error is written before the agent exits.
    pub const TERMINATION_LOG: &str = "VDI_TERMINATION_LOG";
    /// The session's name.
    pub const SESSION: &str = "VDI_SESSION";
    /// The session's user (the TURN credentials' name).
    pub const USER: &str = "VDI_USER";
    /// H.264 encoder: one of [`super::encoder::CHOICES`].
    pub const ENCODER: &str = "SELKIES_ENCODER";
    /// Codecs in the agent's order of preference.
    pub const CODECS: &str = "VDI_CODECS";
    /// Starting video bitrate, kbit/s.
    pub const VIDEO_BITRATE: &str = "SELKIES_VIDEO_BITRATE";
    /// Lowest bitrate adaptation may choose, kbit/s.
    pub const MIN_VIDEO_BITRATE: &str = "VDI_MIN_VIDEO_BITRATE";
    /// Highest bitrate adaptation may choose, kbit/s.
    pub const MAX_VIDEO_BITRATE: &str = "VDI_MAX_VIDEO_BITRATE";
    /// Frames between keyframes (0: on demand).
    pub const KEYFRAME_INTERVAL: &str = "VDI_KEYFRAME_INTERVAL";
    /// Capture frame rate.
    pub const FRAMERATE: &str = "SELKIES_FRAMERATE";
    /// Whether the screen follows the browser window.
    pub const ENABLE_RESIZE: &str = "SELKIES_ENABLE_RESIZE";
    /// Largest screen a viewer may ask for.
    pub const MAX_RESOLUTION: &str = "VDI_MAX_RESOLUTION";
    /// Basic auth user of the page.
    pub const BASIC_AUTH_USER: &str = "SELKIES_BASIC_AUTH_USER";
    /// Basic auth password of the page: always from the session Secret, never a literal.
    pub const BASIC_AUTH_PASSWORD: &str = "SELKIES_BASIC_AUTH_PASSWORD";
    /// Origins allowed to open the WebSocket.
    pub const ALLOWED_ORIGINS: &str = "VDI_ALLOWED_ORIGINS";
    /// Pages allowed to frame the client.
    pub const FRAME_ANCESTORS: &str = "VDI_FRAME_ANCESTORS";
    /// Header a trusted proxy puts the client's address in.
    pub const TRUSTED_PROXY_HEADER: &str = "VDI_TRUSTED_PROXY_HEADER";
    /// Address of the metrics listener.
    pub const METRICS_LISTEN: &str = "VDI_METRICS_LISTEN";
    /// WebSocket keep-alive period.
    pub const WS_PING_SECONDS: &str = "VDI_WS_PING_SECONDS";
    /// `none` or `browser`: whether the browser may hold frames before drawing them.
    pub const PLAYOUT_DELAY: &str = "VDI_PLAYOUT_DELAY";
    /// STUN server host.
    pub const STUN_HOST: &str = "SELKIES_STUN_HOST";
    /// STUN server port.
    pub const STUN_PORT: &str = "SELKIES_STUN_PORT";
    /// TURN server host.
    pub const TURN_HOST: &str = "SELKIES_TURN_HOST";
    /// TURN server port.
    pub const TURN_PORT: &str = "SELKIES_TURN_PORT";
    /// TURN transport: `udp` or `tcp`.
    pub const TURN_PROTOCOL: &str = "SELKIES_TURN_PROTOCOL";
    /// Whether TURN runs over TLS.
    pub const TURN_TLS: &str = "SELKIES_TURN_TLS";
    /// TURN user name (from the session Secret).
    pub const TURN_USERNAME: &str = "SELKIES_TURN_USERNAME";
    /// TURN password (from the session Secret).
    pub const TURN_PASSWORD: &str = "SELKIES_TURN_PASSWORD";
    /// TURN REST shared secret (never in a session Pod: the webhook mints per-session ones).
    pub const TURN_SHARED_SECRET: &str = "SELKIES_TURN_SHARED_SECRET";
    /// Lifetime of credentials minted from the shared secret.
    pub const TURN_CREDENTIAL_LIFETIME: &str = "VDI_TURN_CREDENTIAL_LIFETIME";
    /// Clipboard sharing: `true`, `false`, `in`, `out`.
    pub const ENABLE_CLIPBOARD: &str = "SELKIES_ENABLE_CLIPBOARD";
    /// Largest clipboard text passed either way.
    pub const CLIPBOARD_MAX_BYTES: &str = "VDI_CLIPBOARD_MAX_BYTES";
    /// Opus bitrate, bit/s.
    pub const AUDIO_BITRATE: &str = "SELKIES_AUDIO_BITRATE";
}

/// The values of [`env::ENCODER`].
pub mod encoder {
    /// NVIDIA NVENC, falling back to VA-API, then x264.
    pub const NVH264: &str = "nvh264enc";
    /// VA-API, falling back to x264.
    pub const VAH264: &str = "vah264enc";
    /// Software x264 only.
    pub const X264: &str = "x264enc";
    /// The best that works.
    pub const AUTO: &str = "auto";
    /// Every value the agent accepts.
    pub const CHOICES: &[&str] = &[NVH264, VAH264, X264, AUTO];
}
