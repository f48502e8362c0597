//! Signalling over the page's WebSocket (`/ws`): JSON text messages both ways, pings to keep it
//! open, and every other frame (binary, pong) ignored.

use axum::extract::ws::{Message, WebSocket};
use futures::{
    SinkExt, StreamExt,
    stream::{SplitSink, SplitStream},
};

use super::signalling::{self, Gone, Incoming, Signalling, ToBrowser};

/// One viewer's upgraded WebSocket.
pub struct WebSocketSignalling {
    tx: SplitSink<WebSocket, Message>,
    rx: SplitStream<WebSocket>,
}

impl WebSocketSignalling {
    /// Signalling over `socket`.
    pub fn new(socket: WebSocket) -> Self {
        let (tx, rx) = socket.split();
        Self { tx, rx }
    }
}

impl Signalling for WebSocketSignalling {
    async fn recv(&mut self) -> Option<Incoming> {
        loop {
            match self.rx.next().await? {
                Ok(Message::Text(t)) => {
                    return Some(match signalling::parse(t.as_str()) {
                        Ok(m) => Incoming::Message(m),
                        Err(e) => Incoming::Unreadable(e),
                    });
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    async fn send(&mut self, m: &ToBrowser) -> Result<(), Gone> {
        let text = serde_json::to_string(m).unwrap_or_default();
        self.tx.send(Message::Text(text.into())).await.map_err(|_| Gone)
    }

    async fn keepalive(&mut self) -> Result<(), Gone> {
        self.tx.send(Message::Ping(Default::default())).await.map_err(|_| Gone)
    }

    async fn close(&mut self) {
        let _ = self.tx.close().await;
    }
}
