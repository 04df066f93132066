//! Kubernetes' channel protocols over WebSocket, as kubelet serves them to clients that do
//! not speak SPDY: each message carries one channel's data, its first byte the channel. For
//! exec and attach (`v5.channel.k8s.io`, `v4.channel.k8s.io`, `channel.k8s.io`) the
//! channels are 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; v5 adds a close signal, a
//! message `[255, channel]` ending that channel (our stdout/stderr when the command exits;
//! the client's stdin when it has no more). Port-forward (`portforward_ws.rs`) has two per
//! port. The `base64.` variants (`v4.base64.channel.k8s.io`, `base64.channel.k8s.io`)
//! send text messages instead: the channel as an ASCII digit, then the data in base64. The
//! frames are tungstenite's; the HTTP handshake is done in `mod.rs` on hyper.

use super::remotecommand::{Channels, Sink};
use super::IoOptions;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::{Message, Role};
use tokio_tungstenite::WebSocketStream;

/// In the server's order; the client's preference decides. A client that offers none
/// gets `channel.k8s.io`, as from kubelet.
pub const PROTOCOLS: &[&str] =
    &["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io"];

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5: `[CLOSE, channel]` ends a channel.
pub const CLOSE: u8 = 255;

const CHUNK: usize = 32 * 1024;

/// How a subprotocol frames a channel's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Binary,
    Base64,
}

impl Codec {
    pub fn of(proto: &str) -> Codec {
        if proto.contains("base64.") {
            Codec::Base64
        } else {
            Codec::Binary
        }
    }

    pub fn encode(self, chan: u8, data: &[u8]) -> Message {
        match self {
            Codec::Binary => {
                let mut m = Vec::with_capacity(data.len() + 1);
                m.push(chan);
                m.extend_from_slice(data);
                Message::Binary(m.into())
            }
            Codec::Base64 => {
                let mut m = String::with_capacity(data.len() * 4 / 3 + 5);
                m.push(char::from(b'0'.wrapping_add(chan)));
                base64::engine::general_purpose::STANDARD.encode_string(data, &mut m);
                Message::Text(m.into())
            }
        }
    }

    /// A channel message's channel and data; None for anything else (pings, empty or
    /// undecodable messages, the other codec's frames).
    pub fn decode(self, m: &Message) -> Option<(u8, Vec<u8>)> {
        match (self, m) {
            (Codec::Binary, Message::Binary(b)) => b.split_first().map(|(&c, rest)| (c, rest.to_vec())),
            (Codec::Base64, Message::Text(t)) => {
                let (&c, rest) = t.as_bytes().split_first()?;
                let chan = c.wrapping_sub(b'0');
                match base64::engine::general_purpose::STANDARD.decode(rest) {
                    Ok(d) => Some((chan, d)),
                    Err(e) => {
                        tracing::info!(error = %e, "CRI streaming: a base64 message that does not decode; dropped");
                        None
                    }
                }
            }
            _ => None,
        }
    }
}

enum Out {
    Msg(Message),
    Flush(oneshot::Sender<()>),
}

/// Our half of one channel.
#[derive(Clone)]
pub struct WsWriter {
    chan: u8,
    v5: bool,
    codec: Codec,
    tx: mpsc::Sender<Out>,
}

impl WsWriter {
    pub async fn write(&self, d: &[u8]) -> bool {
        for c in d.chunks(CHUNK) {
            if self.tx.send(Out::Msg(self.codec.encode(self.chan, c))).await.is_err() {
                return false;
            }
        }
        true
    }

    /// v5 signals the end of the channel; the others have no way to.
    pub async fn close(&self) {
        if self.v5 {
            let _ = self.tx.send(Out::Msg(Message::Binary(vec![CLOSE, self.chan].into()))).await;
        }
    }
}

/// A served WebSocket connection.
pub struct WsConn {
    pub gone: watch::Receiver<bool>,
    v5: bool,
    codec: Codec,
    tx: mpsc::Sender<Out>,
    inbound: HashMap<u8, mpsc::Receiver<Vec<u8>>>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl WsConn {
    /// Serves `proto` on `io`; what the client sends on channels `inbound` is kept for
    /// [`WsConn::take`], on other channels dropped.
    pub async fn start<IO>(io: IO, proto: &str, inbound: &[u8]) -> WsConn
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (v5, codec) = (proto == "v5.channel.k8s.io", Codec::of(proto));
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::channel::<Out>(256);
        let writer = tokio::spawn(async move {
            while let Some(o) = rx.recv().await {
                match o {
                    Out::Msg(m) => {
                        if sink.feed(m).await.is_err() {
                            return;
                        }
                        if rx.is_empty() && sink.flush().await.is_err() {
                            return;
                        }
                    }
                    Out::Flush(a) => {
                        let _ = sink.flush().await;
                        let _ = a.send(());
                    }
                }
            }
            let _ = sink.close().await;
        });
        let mut senders = HashMap::new();
        let mut receivers = HashMap::new();
        for &c in inbound {
            let (t, r) = mpsc::channel(64);
            senders.insert(c, t);
            receivers.insert(c, r);
        }
        let (gone_tx, gone) = watch::channel(false);
        let reader = tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                if let Message::Close(_) = m {
                    break;
                }
                // Pings are answered by tungstenite.
                let Some((chan, data)) = codec.decode(&m) else { continue };
                if chan == CLOSE && v5 {
                    if let Some(c) = data.first() {
                        senders.remove(c);
                    }
                    continue;
                }
                if let Some(t) = senders.get(&chan) {
                    if t.send(data).await.is_err() {
                        senders.remove(&chan);
                    }
                }
            }
            let _ = gone_tx.send(true);
        });
        WsConn { gone, v5, codec, tx, inbound: receivers, reader, writer }
    }

    /// What the client sends on `chan` (once).
    pub fn take(&mut self, chan: u8) -> Option<mpsc::Receiver<Vec<u8>>> {
        self.inbound.remove(&chan)
    }

    /// Our half of `chan`.
    pub fn writer(&self, chan: u8) -> WsWriter {
        WsWriter { chan, v5: self.v5, codec: self.codec, tx: self.tx.clone() }
    }

    /// Every channel `o` calls for (they need no opening here).
    pub fn channels(&mut self, o: IoOptions) -> Channels {
        // Channels not asked for are dropped: what the client sends on them is discarded.
        let (stdin, resize) = (self.take(STDIN), self.take(RESIZE));
        let w = |chan| Some(Sink::Ws(self.writer(chan)));
        Channels {
            error: w(ERROR),
            stdout: if o.stdout { w(STDOUT) } else { None },
            stderr: if o.stderr && !o.tty { w(STDERR) } else { None },
            stdin: if o.stdin { stdin } else { None },
            resize: if o.tty { resize } else { None },
        }
    }

    /// Sends what is queued and a Close, waits (at most `linger`) for the client's, and ends.
    pub async fn finish(self, linger: Duration) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Out::Flush(ack)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(10), done).await;
        }
        let _ = self.tx.send(Out::Msg(Message::Close(None))).await;
        let mut gone = self.gone.clone();
        let _ = tokio::time::timeout(linger, gone.wait_for(|g| *g)).await;
        self.reader.abort();
        self.writer.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair(proto: &str) -> (WsConn, WebSocketStream<tokio::io::DuplexStream>) {
        let (client, server) = tokio::io::duplex(1 << 16);
        let conn = WsConn::start(server, proto, &[STDIN, RESIZE]).await;
        (conn, WebSocketStream::from_raw_socket(client, Role::Client, None).await)
    }

    async fn next(ws: &mut WebSocketStream<tokio::io::DuplexStream>) -> Vec<u8> {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
            Some(Ok(Message::Binary(b))) => b.to_vec(),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn v5_channels_carry_a_prefix_byte_and_a_close_signal() {
        let (mut conn, mut ws) = pair("v5.channel.k8s.io").await;
        let o = IoOptions { stdin: true, stdout: true, stderr: true, tty: false };
        let mut ch = conn.channels(o);
        ws.send(Message::Binary(vec![STDIN, b'h', b'i'].into())).await.unwrap();
        ws.send(Message::Binary(vec![CLOSE, STDIN].into())).await.unwrap();
        let mut stdin = ch.stdin.take().unwrap();
        assert_eq!(stdin.recv().await.as_deref(), Some(&b"hi"[..]));
        assert_eq!(stdin.recv().await, None, "the close signal ends stdin");
        assert!(ch.resize.is_none(), "no resize channel without a tty");

        let Some(Sink::Ws(out)) = ch.stdout.take() else { panic!("stdout") };
        assert!(out.write(b"out").await);
        out.close().await;
        let Some(Sink::Ws(err)) = ch.stderr.take() else { panic!("stderr") };
        assert!(err.write(&vec![9u8; CHUNK + 1]).await);
        assert_eq!(next(&mut ws).await, b"\x01out");
        assert_eq!(next(&mut ws).await, [CLOSE, STDOUT]);
        let first = next(&mut ws).await;
        assert_eq!((first[0], first.len()), (STDERR, CHUNK + 1), "at most 32 KiB a message");
        assert_eq!(next(&mut ws).await, [STDERR, 9]);

        conn.finish(Duration::from_secs(1)).await;
        assert!(matches!(ws.next().await, Some(Ok(Message::Close(_)))));
    }

    #[tokio::test]
    async fn v4_has_no_close_signal_and_a_tty_has_no_stderr() {
        let (mut conn, mut ws) = pair("v4.channel.k8s.io").await;
        let o = IoOptions { stdin: false, stdout: true, stderr: false, tty: true };
        let mut ch = conn.channels(o);
        assert!(ch.stdin.is_none() && ch.stderr.is_none());
        let mut resize = ch.resize.take().unwrap();
        ws.send(Message::Binary(b"\x04{\"Width\":80,\"Height\":24}".to_vec().into())).await.unwrap();
        assert_eq!(resize.recv().await.as_deref(), Some(&b"{\"Width\":80,\"Height\":24}"[..]));
        let Some(Sink::Ws(out)) = ch.stdout.take() else { panic!("stdout") };
        out.close().await;
        assert!(out.write(b"x").await);
        assert_eq!(next(&mut ws).await, b"\x01x", "nothing was sent for the close");
        drop(ws);
        tokio::time::timeout(Duration::from_secs(5), conn.gone.wait_for(|g| *g)).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn base64_channels_are_text_with_a_digit_and_base64_data() {
        let (mut conn, mut ws) = pair("v4.base64.channel.k8s.io").await;
        let mut ch = conn.channels(IoOptions { stdin: true, stdout: true, stderr: false, tty: false });
        ws.send(Message::Text("0aGk=".into())).await.unwrap();
        ws.send(Message::Binary(vec![STDIN, b'x'].into())).await.unwrap();
        ws.send(Message::Text("0!!".into())).await.unwrap();
        ws.send(Message::Text("0b2s=".into())).await.unwrap();
        let mut stdin = ch.stdin.take().unwrap();
        assert_eq!(stdin.recv().await.as_deref(), Some(&b"hi"[..]));
        assert_eq!(stdin.recv().await.as_deref(), Some(&b"ok"[..]), "binary and undecodable messages are dropped");
        let Some(Sink::Ws(out)) = ch.stdout.take() else { panic!("stdout") };
        assert!(out.write(b"\x00\xffout").await);
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => assert_eq!(t.as_str(), "1AP9vdXQ="),
            other => panic!("{other:?}"),
        }
        assert_eq!(Codec::of("base64.channel.k8s.io"), Codec::Base64);
        assert_eq!(Codec::of("channel.k8s.io"), Codec::Binary);
    }
}
