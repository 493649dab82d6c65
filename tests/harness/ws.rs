//! A WebSocket client of the relay, as a browser or a stream host uses it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// One relay connection and what it received.
pub struct Ws {
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Every text frame received.
    pub seen: Vec<String>,
}

impl Ws {
    pub async fn open(url: &str) -> Ws {
        let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("WebSocket connects");
        Ws { socket, seen: vec![] }
    }

    /// Connects, then says hello and reads the welcome.
    pub async fn join(url: &str) -> (Ws, Value) {
        let mut ws = Ws::open(url).await;
        ws.send(json!({"type": "hello"})).await;
        let welcome = ws.expect("welcome").await;
        (ws, welcome)
    }

    pub async fn send(&mut self, v: Value) {
        self.socket.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn signal(&mut self, data: Value) {
        self.send(json!({"type": "signal", "data": data})).await;
    }

    pub async fn recv(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.socket.next()).await.expect("a message in time") {
                Some(Ok(Message::Text(t))) => {
                    self.seen.push(t.to_string());
                    return Some(serde_json::from_str(&t).unwrap());
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    pub async fn expect(&mut self, kind: &str) -> Value {
        let v = self.recv().await.unwrap_or_else(|| panic!("closed while waiting for {kind}"));
        assert_eq!(v["type"], kind, "{v}");
        v
    }

    pub async fn expect_signal(&mut self) -> Value {
        self.expect("signal").await["data"].clone()
    }

    /// A ping answered: everything this connection sent before (its hello, say) is handled.
    pub async fn settled(&mut self) {
        self.send(json!({"type": "ping"})).await;
        self.expect("pong").await;
    }

    /// Waits for the server's close frame (skipping anything before it): its code, if any.
    pub async fn close_code(&mut self) -> Option<CloseCode> {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.socket.next()).await.expect("in time") {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// Waits for the server to close the socket, returning what came before.
    pub async fn closed(&mut self) -> Vec<Value> {
        let mut before = vec![];
        while let Some(v) = self.recv().await {
            before.push(v);
        }
        before
    }
}
