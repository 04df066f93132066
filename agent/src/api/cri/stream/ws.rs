//! The remote command protocol over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`), as
//! kubelet serves it to clients that do not speak SPDY: binary messages whose first byte is
//! the channel — 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize — and the rest its data. v5
//! adds a close signal: a message `[255, channel]` ends that channel (our stdout/stderr
//! when the command exits; the client's stdin when it has no more). The frames are
//! tungstenite's; the HTTP handshake is done in `mod.rs` on hyper.

use super::remotecommand::{Channels, Sink};
use super::IoOptions;
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::{Message, Role};
use tokio_tungstenite::WebSocketStream;

/// In the server's order; the client's preference decides.
pub const PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5: `[CLOSE, channel]` ends a channel.
pub const CLOSE: u8 = 255;

const CHUNK: usize = 32 * 1024;

enum Out {
    Msg(Message),
    Flush(oneshot::Sender<()>),
}

/// Our half of one channel.
#[derive(Clone)]
pub struct WsWriter {
    chan: u8,
    v5: bool,
    tx: mpsc::Sender<Out>,
}

impl WsWriter {
    pub async fn write(&self, d: &[u8]) -> bool {
        for c in d.chunks(CHUNK) {
            let mut m = Vec::with_capacity(c.len() + 1);
            m.push(self.chan);
            m.extend_from_slice(c);
            if self.tx.send(Out::Msg(Message::Binary(m.into()))).await.is_err() {
                return false;
            }
        }
        true
    }

    /// v5 signals the end of the channel; v4 has no way to.
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
    tx: mpsc::Sender<Out>,
    stdin: Option<mpsc::Receiver<Vec<u8>>>,
    resize: Option<mpsc::Receiver<Vec<u8>>>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl WsConn {
    pub async fn start<IO>(io: IO, proto: &str) -> WsConn
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let v5 = proto == "v5.channel.k8s.io";
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
        let (in_tx, stdin) = mpsc::channel(64);
        let (rs_tx, resize) = mpsc::channel(16);
        let (gone_tx, gone) = watch::channel(false);
        let reader = tokio::spawn(async move {
            let (mut in_tx, mut rs_tx) = (Some(in_tx), Some(rs_tx));
            while let Some(Ok(m)) = stream.next().await {
                let data = match m {
                    Message::Binary(b) => b,
                    Message::Close(_) => break,
                    // Pings are answered by tungstenite; text is not part of these protocols.
                    _ => continue,
                };
                let Some((&chan, rest)) = data.split_first() else { continue };
                match chan {
                    STDIN => {
                        if let Some(t) = &in_tx {
                            if t.send(rest.to_vec()).await.is_err() {
                                in_tx = None;
                            }
                        }
                    }
                    RESIZE => {
                        if let Some(t) = &rs_tx {
                            if t.send(rest.to_vec()).await.is_err() {
                                rs_tx = None;
                            }
                        }
                    }
                    CLOSE if v5 => match rest.first() {
                        Some(&STDIN) => in_tx = None,
                        Some(&RESIZE) => rs_tx = None,
                        _ => {}
                    },
                    _ => {}
                }
            }
            let _ = gone_tx.send(true);
        });
        WsConn { gone, v5, tx, stdin: Some(stdin), resize: Some(resize), reader, writer }
    }

    /// Every channel `o` calls for (they need no opening here).
    pub fn channels(&mut self, o: IoOptions) -> Channels {
        let w = |chan| Some(Sink::Ws(WsWriter { chan, v5: self.v5, tx: self.tx.clone() }));
        // Channels not asked for are dropped: what the client sends on them is discarded.
        let (stdin, resize) = (self.stdin.take(), self.resize.take());
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
        let conn = WsConn::start(server, proto).await;
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
}
