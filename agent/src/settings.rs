//! Settings: every one a flag and an environment variable, with Selkies-GStreamer's names where
//! they exist so existing desktop images keep working.

use std::net::IpAddr;

use clap::{Parser, ValueEnum};
use vdi_crds::agent::{self as contract, env};

/// Which encoder to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncoderChoice {
    /// NVIDIA NVENC; falls back to VA-API, then x264, when it cannot open an encode session.
    Nvh264enc,
    /// VA-API on /dev/dri; falls back to x264.
    Vah264enc,
    /// Software x264 only.
    X264enc,
    /// The best that works: nvh264enc, vah264enc, x264enc.
    Auto,
}

/// Frames per second unless `SELKIES_FRAMERATE` says otherwise.
pub const FRAMERATE: u32 = 60;
/// The highest bitrate the adaptation may choose unless `VDI_MAX_VIDEO_BITRATE` says otherwise,
/// kbit/s: where a stream on a clean path ends up.
pub const MAX_VIDEO_BITRATE: u32 = 12000;

/// Streams an X11 desktop to the browser over WebRTC.
///
/// Serves the web client at /, signalling at /ws (WebSocket), /healthz, /readyz and /metrics on
/// one port. HTTP Basic auth protects the page and the WebSocket; /healthz, /readyz and /metrics
/// stay open (they carry no desktop content). The agent refuses to start without a password.
#[derive(Debug, Clone, Parser)]
#[command(name = "vdi-agent", version, max_term_width = 100)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = env::ADDR, default_value = "0.0.0.0")]
    pub addr: IpAddr,
    /// Port for the page, signalling, health and metrics.
    #[arg(long, env = env::PORT, default_value_t = contract::PORT)]
    pub port: u16,
    /// X display to capture and inject input into.
    #[arg(long, env = env::DISPLAY, default_value = contract::DISPLAY)]
    pub display: String,
    /// Where a fatal error is written before the agent exits, so the cluster shows it (the
    /// session's status says Failed with it). Written only when the file exists: Kubernetes
    /// creates it in every container.
    #[arg(long, env = env::TERMINATION_LOG, default_value = "/dev/termination-log")]
    pub termination_log: std::path::PathBuf,
    /// Video encoder: nvh264enc (falls back to x264enc with a warning), vah264enc, x264enc, auto.
    #[arg(long, env = env::ENCODER, value_enum, default_value = "nvh264enc")]
    pub encoder: EncoderChoice,
    /// Video codecs in the agent's order of preference, comma-separated: each viewer gets the
    /// first its browser decodes (h264, vp8, vp9). Firefox without its OpenH264 plugin (Debian's,
    /// offline) decodes no H.264.
    #[arg(long, env = env::CODECS, value_enum, value_delimiter = ',', default_value = "h264,vp8,vp9")]
    pub codecs: Vec<crate::media::encoder::Codec>,
    /// Video bitrate in kbit/s.
    #[arg(long, env = env::VIDEO_BITRATE, default_value_t = 8000, value_parser = clap::value_parser!(u32).range(100..=100_000))]
    pub video_bitrate: u32,
    /// Frames between keyframes; 0 (the default) sends one only when a viewer needs it: when it
    /// connects and when its decoder reports a lost picture (PLI). VA-API allows at most 1024.
    #[arg(long, env = env::KEYFRAME_INTERVAL, default_value_t = 0)]
    pub keyframe_interval: u32,
    /// Lowest bitrate the adaptation may choose, in kbit/s.
    #[arg(long, env = env::MIN_VIDEO_BITRATE, default_value_t = 4000)]
    pub min_video_bitrate: u32,
    /// Highest bitrate the adaptation may choose, in kbit/s.
    #[arg(long, env = env::MAX_VIDEO_BITRATE, default_value_t = MAX_VIDEO_BITRATE)]
    pub max_video_bitrate: u32,
    /// Frames per second.
    #[arg(long, env = env::FRAMERATE, default_value_t = FRAMERATE, value_parser = clap::value_parser!(u32).range(1..=240))]
    pub framerate: u32,
    /// User name for HTTP Basic auth.
    #[arg(long, env = env::BASIC_AUTH_USER, default_value = "user")]
    pub basic_auth_user: String,
    /// Password for HTTP Basic auth (mandatory; in the Pod it comes from the session Secret).
    #[arg(long, env = env::BASIC_AUTH_PASSWORD, hide_env_values = true)]
    pub basic_auth_password: Option<Secret>,
    /// Origins besides the page's own that may open the signalling socket (a portal that embeds
    /// the desktop, `https://portal.example.com`), comma-separated. Default: none.
    #[arg(long, env = env::ALLOWED_ORIGINS, value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// CSP `frame-ancestors` sources allowed to frame the page (`https://portal.example.com`),
    /// comma-separated. Default: none (`'none'`, and `X-Frame-Options: DENY`).
    #[arg(long, env = env::FRAME_ANCESTORS, value_delimiter = ',')]
    pub frame_ancestors: Vec<String>,
    /// Header a trusted reverse proxy sets with the client's address (`X-Forwarded-For`): failed
    /// sign-ins are then limited per client instead of per proxy. Only set it when every request
    /// comes through that proxy (a client could otherwise name any address).
    #[arg(long, env = env::TRUSTED_PROXY_HEADER)]
    pub trusted_proxy_header: Option<String>,
    /// Address for `/metrics` (Prometheus), apart from the page's port so it is never behind the
    /// session's URL.
    #[arg(long, env = env::METRICS_LISTEN, default_value_t = std::net::SocketAddr::from(([0, 0, 0, 0], contract::METRICS_PORT)))]
    pub metrics_listen: std::net::SocketAddr,
    /// Seconds between WebSocket pings on the signalling socket (an idle socket behind an
    /// Ingress is otherwise closed after its read timeout).
    #[arg(long, env = env::WS_PING_SECONDS, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ws_ping_seconds: u64,
    /// How long the browser may hold video frames before drawing them: `none` (each frame drawn
    /// as soon as it is decoded: the RTP playout-delay header extension with minimum and maximum
    /// 0 on every video packet) or `browser` (no extension: the browser's jitter buffer and
    /// render smoothing decide).
    #[arg(long, env = env::PLAYOUT_DELAY, value_enum, default_value = "none")]
    pub playout_delay: crate::media::playout::PlayoutDelay,
    /// Resize the X screen to the browser window (RandR).
    #[arg(long, env = env::ENABLE_RESIZE, default_value_t = false, action = clap::ArgAction::Set)]
    pub enable_resize: bool,
    /// STUN server host (for example stun.l.google.com); none by default.
    #[arg(long, env = env::STUN_HOST)]
    pub stun_host: Option<String>,
    /// STUN server port.
    #[arg(long, env = env::STUN_PORT, default_value_t = 3478)]
    pub stun_port: u16,
    /// TURN server host; none by default.
    #[arg(long, env = env::TURN_HOST)]
    pub turn_host: Option<String>,
    /// TURN server port.
    #[arg(long, env = env::TURN_PORT, default_value_t = 3478)]
    pub turn_port: u16,
    /// TURN transport: udp or tcp.
    #[arg(long, env = env::TURN_PROTOCOL, default_value = "udp", value_parser = ["udp", "tcp"])]
    pub turn_protocol: String,
    /// TURN over TLS (turns:).
    #[arg(long, env = env::TURN_TLS, default_value_t = false, action = clap::ArgAction::Set)]
    pub turn_tls: bool,
    /// Static TURN user name (long-term credentials).
    #[arg(long, env = env::TURN_USERNAME)]
    pub turn_username: Option<String>,
    /// Static TURN password (long-term credentials).
    #[arg(long, env = env::TURN_PASSWORD, hide_env_values = true)]
    pub turn_password: Option<Secret>,
    /// TURN REST shared secret (coturn `static-auth-secret`): the agent mints short-lived
    /// credentials per viewer and never sends the secret anywhere. Takes precedence over the
    /// static user name and password.
    #[arg(long, env = env::TURN_SHARED_SECRET, hide_env_values = true)]
    pub turn_shared_secret: Option<Secret>,
    /// Lifetime of minted TURN credentials, in seconds.
    #[arg(long, env = env::TURN_CREDENTIAL_LIFETIME, default_value_t = 4 * 3600)]
    pub turn_credential_lifetime: u64,
    /// The session this agent streams (the renderer sets it); in the log's first lines.
    #[arg(long, env = env::SESSION)]
    pub session: Option<String>,
    /// Who the minted TURN credentials are for (the session's user; shown in coturn's logs).
    #[arg(long, env = env::USER, default_value = "vdi")]
    pub turn_user: String,
    /// Largest screen the browser may ask for when resizing, WIDTHxHEIGHT.
    #[arg(long, env = env::MAX_RESOLUTION, default_value = "2560x1600", value_parser = parse_size)]
    pub max_resolution: (u32, u32),
    /// Clipboard sharing: true (both ways), false, in (browser to desktop only), out (desktop to
    /// browser only).
    #[arg(long, env = env::ENABLE_CLIPBOARD, value_enum, default_value = "true")]
    pub enable_clipboard: crate::desktop::clipboard::Direction,
    /// Largest clipboard text, in bytes; larger text is refused with a message.
    #[arg(long, env = env::CLIPBOARD_MAX_BYTES, default_value_t = 1 << 20)]
    pub clipboard_max_bytes: usize,
    /// PulseAudio server for desktop sound (the monitor of the default sink); without one, or
    /// when it does not answer, the agent streams video alone.
    #[arg(long, env = env::PULSE_SERVER)]
    pub pulse_server: Option<String>,
    /// Opus bitrate for desktop sound, in bit/s.
    #[arg(long, env = env::AUDIO_BITRATE, default_value_t = 128_000, value_parser = clap::value_parser!(u32).range(6000..=510_000))]
    pub audio_bitrate: u32,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| format!("`{s}` is not WIDTHxHEIGHT"))?;
    let n = |v: &str| v.trim().parse::<u32>().map_err(|e| format!("`{s}`: {e}"));
    Ok((n(w)?, n(h)?))
}

impl Settings {
    /// Time between WebSocket pings.
    pub fn ws_ping_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.ws_ping_seconds)
    }

    /// The password, or the message the agent exits with.
    pub fn password(&self) -> Result<&str, &'static str> {
        match self.basic_auth_password.as_ref().map(Secret::expose) {
            Some(p) if !p.is_empty() => Ok(p),
            _ => Err(
                "SELKIES_BASIC_AUTH_PASSWORD (or --basic-auth-password) is not set; vdi-agent never runs without a password",
            ),
        }
    }

    /// TURN credentials for one viewer session: minted from the shared secret when there is one,
    /// else the static pair, else none.
    pub fn turn_credentials(&self) -> Option<crate::turn::Credentials> {
        self.turn_host.as_ref()?;
        if let Some(secret) = self.turn_shared_secret.as_ref().map(Secret::expose).filter(|s| !s.is_empty()) {
            let lifetime = std::time::Duration::from_secs(self.turn_credential_lifetime);
            return Some(crate::turn::mint_now(secret.as_bytes(), &self.turn_user, lifetime));
        }
        match (&self.turn_username, self.turn_password.as_ref().map(Secret::expose)) {
            (Some(u), Some(p)) => Some(crate::turn::Credentials { username: u.clone(), password: p.to_owned() }),
            _ => None,
        }
    }

    /// The TURN URL (`turn:host:port?transport=udp`), when a TURN host is set.
    pub fn turn_url(&self) -> Option<String> {
        let h = self.turn_host.as_ref()?;
        let scheme = if self.turn_tls { "turns" } else { "turn" };
        Some(format!("{scheme}:{h}:{}?transport={}", self.turn_port, self.turn_protocol))
    }

    /// ICE servers for the browser, with this session's TURN credentials.
    pub fn ice_servers(&self, turn: Option<&crate::turn::Credentials>) -> Vec<crate::link::signalling::IceServer> {
        let mut out = Vec::new();
        if let Some(h) = &self.stun_host {
            out.push(crate::link::signalling::IceServer {
                urls: vec![format!("stun:{h}:{}", self.stun_port)],
                username: None,
                credential: None,
            });
        }
        if let (Some(url), Some(c)) = (self.turn_url(), turn) {
            out.push(crate::link::signalling::IceServer {
                urls: vec![url],
                username: Some(c.username.clone()),
                credential: Some(c.password.clone()),
            });
        }
        out
    }
}

/// A setting that must never be printed: its `Debug` says `<redacted>`, so `{settings:?}` in a log
/// or a panic message shows no password or shared secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod secret_tests {
    use clap::Parser;

    /// Every secret setting is redacted in the settings' Debug.
    #[test]
    fn debug_shows_no_secret() {
        let s = super::Settings::parse_from([
            "vdi-agent",
            "--basic-auth-password",
            "pw-9f3a",
            "--turn-password",
            "turn-77c1",
            "--turn-shared-secret",
            "shared-5d20",
        ]);
        let shown = format!("{s:?}");
        for secret in ["pw-9f3a", "turn-77c1", "shared-5d20"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(s.password(), Ok("pw-9f3a"));
    }
}

#[cfg(test)]
mod contract_tests {
    use clap::ValueEnum;
    use vdi_crds::agent::encoder;

    /// The encoder names the renderer accepts are exactly those the agent parses.
    #[test]
    fn the_agent_parses_every_encoder_the_renderer_writes() {
        let ours: Vec<String> = super::EncoderChoice::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
            .collect();
        assert_eq!(ours, encoder::CHOICES);
    }
}
