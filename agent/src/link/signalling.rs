//! The signalling protocol on `/ws`: JSON text messages, each with `"v": 1` and a `type`. The
//! agent offers, the browser answers, ICE candidates trickle both ways.
//!
//! browser → agent first: `hello` (the video codecs it decodes), so the agent can pick the codec
//! before it offers; a browser that says nothing within `HELLO_WAIT` gets H.264.
//! agent → browser: `config` (ICE servers, encoder, codec), `offer` (SDP), `ice`, `bye` (why the
//! session ended, for example another viewer took over).
//! browser → agent: `answer` (SDP), `ice`.

use serde::{Deserialize, Serialize};

/// Protocol version.
pub const VERSION: u32 = 1;

/// One viewer's signalling connection, seen from the agent: messages from the browser in,
/// messages to it out, whatever carries them (the WebSocket of `link::websocket` in the agent; a
/// channel would do in a test). The session is written against this, not against the socket.
pub trait Signalling: Send {
    /// The browser's next message; `None` once it has gone.
    fn recv(&mut self) -> impl Future<Output = Option<Incoming>> + Send;
    /// Sends a message; `Err` once the browser has gone.
    fn send(&mut self, m: &ToBrowser) -> impl Future<Output = Result<(), Gone>> + Send;
    /// Keeps an idle connection open through proxies that close silent ones, and finds a
    /// browser that vanished without closing; `Err` once it has gone.
    fn keepalive(&mut self) -> impl Future<Output = Result<(), Gone>> + Send;
    /// Closes the connection.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// What came from the browser.
#[derive(Debug)]
pub enum Incoming {
    /// A message of the protocol.
    Message(FromBrowser),
    /// Something that is not one, and why.
    Unreadable(String),
}

/// The browser has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// How long the agent waits for the browser's `hello` before offering H.264.
pub const HELLO_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// An ICE server as `RTCIceServer` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// URLs (`stun:`, `turn:`, `turns:`).
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Messages from the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ToBrowser {
    /// Sent first.
    Config {
        /// Protocol version.
        v: u32,
        /// ICE servers for the browser's peer connection.
        #[serde(rename = "iceServers")]
        ice_servers: Vec<IceServer>,
        /// The encoder in use.
        encoder: String,
        /// The video codec this viewer gets (`H264`, `VP8`, `VP9`).
        codec: String,
    },
    /// The agent's SDP offer.
    Offer {
        /// Protocol version.
        v: u32,
        /// SDP text.
        sdp: String,
    },
    /// A local ICE candidate.
    Ice {
        /// Protocol version.
        v: u32,
        /// Candidate line.
        candidate: String,
        /// m-line index.
        #[serde(rename = "sdpMLineIndex")]
        sdp_mline_index: u32,
    },
    /// The session ends.
    Bye {
        /// Protocol version.
        v: u32,
        /// Why.
        reason: String,
    },
}

/// Messages from the browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FromBrowser {
    /// What the browser decodes, before the agent offers.
    Hello {
        /// Protocol version.
        v: u32,
        /// Video codecs as `RTCRtpReceiver.getCapabilities` names them (`video/VP8` or `VP8`).
        #[serde(default)]
        codecs: Vec<String>,
    },
    /// The browser's SDP answer.
    Answer {
        /// Protocol version.
        v: u32,
        /// SDP text.
        sdp: String,
    },
    /// A remote ICE candidate.
    Ice {
        /// Protocol version.
        v: u32,
        /// Candidate line (empty at the end of candidates).
        candidate: String,
        /// m-line index.
        #[serde(rename = "sdpMLineIndex", default)]
        sdp_mline_index: u32,
    },
}

/// Parses one browser message; the error says what was wrong.
pub fn parse(text: &str) -> Result<FromBrowser, String> {
    let msg: FromBrowser = serde_json::from_str(text).map_err(|e| format!("not a signalling message: {e}"))?;
    let v = match &msg {
        FromBrowser::Hello { v, .. } | FromBrowser::Answer { v, .. } | FromBrowser::Ice { v, .. } => *v,
    };
    if v != VERSION {
        return Err(format!("protocol version {v} is not supported (this agent speaks {VERSION})"));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_versions() {
        let m = parse(
            r#"{"v":1,"type":"ice","candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMLineIndex":0}"#,
        );
        assert!(matches!(m, Ok(FromBrowser::Ice { .. })));
        assert!(parse(r#"{"v":2,"type":"answer","sdp":"x"}"#).is_err());
        assert!(parse("garbage").is_err());
        let out = serde_json::to_string(&ToBrowser::Bye { v: 1, reason: "replaced".into() }).expect("json");
        assert_eq!(out, r#"{"type":"bye","v":1,"reason":"replaced"}"#);
    }
}
