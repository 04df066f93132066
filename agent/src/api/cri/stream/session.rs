//! One SPDY/3.1 connection, server side, the way kubelet's streaming clients use it: the
//! client opens every stream (SYN_STREAM, odd IDs) and we accept each with a SYN_REPLY;
//! then both sides send data frames, ending their half with FIN.
//!
//! A reader task decodes frames (PING is answered, GOAWAY ends the session, each stream's
//! data goes to its receiver, consumed data is given back with WINDOW_UPDATE); a writer task
//! owns the compressor and writes frames in order, so a SYN_REPLY always precedes the data
//! of its stream. Kubernetes' peers (spdystream) keep no send windows and never send
//! WINDOW_UPDATE, so our sending is paced by TCP alone: waiting on a window they never
//! open would stall every stream past 64 KiB.

use super::spdy::{Codec, Frame, Headers, Window, INITIAL_WINDOW, PROTOCOL_ERROR};
use bytes::BytesMut;
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Largest data frame we send.
const CHUNK: usize = 32 * 1024;

enum Out {
    Frame(Frame),
    Flush(oneshot::Sender<()>),
}

/// A stream the client opened.
pub struct Stream {
    pub headers: Headers,
    /// What the client sends on it, until its FIN (or a reset, or the connection's end).
    pub data: mpsc::Receiver<Vec<u8>>,
    pub out: StreamWriter,
}

impl Stream {
    pub fn header(&self, name: &str) -> Option<&str> {
        super::spdy::header(&self.headers, name)
    }
}

/// Our half of a stream.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    tx: mpsc::Sender<Out>,
}

impl StreamWriter {
    /// Sends `data` (in frames of at most 32 KiB); false once the connection is gone.
    pub async fn write(&self, data: &[u8]) -> bool {
        for c in data.chunks(CHUNK) {
            let f = Frame::Data { stream: self.id, fin: false, data: c.to_vec() };
            if self.tx.send(Out::Frame(f)).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Ends our half of the stream (an empty data frame with FIN).
    pub async fn close(&self) {
        let _ = self.tx.send(Out::Frame(Frame::Data { stream: self.id, fin: true, data: Vec::new() })).await;
    }
}

/// A served connection.
pub struct Session {
    /// Streams as the client opens them; closed when the connection ends.
    pub incoming: mpsc::Receiver<Stream>,
    /// Becomes true when the client's side of the connection has ended.
    pub gone: watch::Receiver<bool>,
    tx: mpsc::Sender<Out>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Session {
    pub fn start<IO>(io: IO) -> Session
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (tx, rx) = mpsc::channel(256);
        let (in_tx, incoming) = mpsc::channel(16);
        let (gone_tx, gone) = watch::channel(false);
        let codec = std::sync::Arc::new(std::sync::Mutex::new(Codec::new()));
        let writer = tokio::spawn(write_loop(wr, rx, std::sync::Arc::clone(&codec)));
        let reader = tokio::spawn(read_loop(rd, tx.clone(), in_tx, gone_tx, codec));
        Session { incoming, gone, tx, reader, writer }
    }

    /// Sends everything queued, then waits (at most `linger`) for the client to close the
    /// connection once it has read it all, and closes ours.
    pub async fn finish(mut self, linger: Duration) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Out::Flush(ack)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(10), done).await;
        }
        let _ = tokio::time::timeout(linger, self.gone.wait_for(|g| *g)).await;
        self.reader.abort();
        self.writer.abort();
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Out>,
    codec: std::sync::Arc<std::sync::Mutex<Codec>>,
) {
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut acks = Vec::new();
        // Everything already queued goes out in one write.
        while let Some(o) = next.take().or_else(|| rx.try_recv().ok()) {
            match o {
                Out::Frame(f) => {
                    let r = match codec.lock() {
                        Ok(mut c) => c.encode(&f, &mut buf),
                        Err(_) => return,
                    };
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "spdy: dropping a frame we cannot encode");
                    }
                }
                Out::Flush(a) => acks.push(a),
            }
            if buf.len() >= 256 * 1024 {
                break;
            }
        }
        if !buf.is_empty() {
            if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
                return;
            }
            buf.clear();
        }
        for a in acks {
            let _ = a.send(());
        }
    }
}

struct Open {
    data: Option<mpsc::Sender<Vec<u8>>>,
    window: Window,
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    tx: mpsc::Sender<Out>,
    incoming: mpsc::Sender<Stream>,
    gone: watch::Sender<bool>,
    codec: std::sync::Arc<std::sync::Mutex<Codec>>,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut streams: HashMap<u32, Open> = HashMap::new();
    let mut session = Window::new(INITIAL_WINDOW);
    let mut last_id = 0u32;
    let send = |f: Frame| {
        let tx = tx.clone();
        async move { tx.send(Out::Frame(f)).await.is_ok() }
    };
    'conn: loop {
        loop {
            let f = match codec.lock() {
                Ok(mut c) => c.decode(&mut buf),
                Err(_) => break 'conn,
            };
            let f = match f {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(error = %e, "spdy: closing a connection that sent a bad frame");
                    let _ = send(Frame::GoAway { last_good: last_id, status: 1 }).await;
                    break 'conn;
                }
            };
            match f {
                Frame::SynStream { stream, fin, unidirectional, headers, .. } => {
                    // Client streams are odd and increasing.
                    if stream % 2 == 0 || stream <= last_id {
                        let _ = send(Frame::RstStream { stream, status: PROTOCOL_ERROR }).await;
                        continue;
                    }
                    last_id = stream;
                    let (dtx, data) = mpsc::channel(64);
                    let open = Open { data: (!fin).then_some(dtx), window: Window::new(INITIAL_WINDOW) };
                    streams.insert(stream, open);
                    let fin = unidirectional;
                    if !send(Frame::SynReply { stream, fin, headers: Vec::new() }).await {
                        break 'conn;
                    }
                    let s = Stream { headers, data, out: StreamWriter { id: stream, tx: tx.clone() } };
                    if incoming.send(s).await.is_err() {
                        // Nobody takes streams any more: refuse it.
                        let _ = send(Frame::RstStream { stream, status: super::spdy::REFUSED_STREAM }).await;
                    }
                }
                Frame::Data { stream, fin, data } => {
                    let n = data.len() as u32;
                    let Some(open) = streams.get_mut(&stream) else {
                        let _ = send(Frame::RstStream { stream, status: super::spdy::INVALID_STREAM }).await;
                        continue;
                    };
                    if !data.is_empty() {
                        if let Some(d) = &open.data {
                            if d.send(data).await.is_err() {
                                open.data = None;
                            }
                        }
                        if let Some(delta) = open.window.consumed(n) {
                            let _ = send(Frame::WindowUpdate { stream, delta }).await;
                        }
                        if let Some(delta) = session.consumed(n) {
                            let _ = send(Frame::WindowUpdate { stream: 0, delta }).await;
                        }
                    }
                    if fin {
                        open.data = None;
                    }
                }
                Frame::RstStream { stream, .. } => {
                    streams.remove(&stream);
                }
                Frame::Ping { id } => {
                    // Only the client's (odd) pings are answered; ours would be even.
                    if id % 2 == 1 && !send(Frame::Ping { id }).await {
                        break 'conn;
                    }
                }
                Frame::GoAway { .. } => break 'conn,
                Frame::Headers { stream, fin: true, .. } => {
                    if let Some(o) = streams.get_mut(&stream) {
                        o.data = None;
                    }
                }
                Frame::SynReply { .. }
                | Frame::Headers { .. }
                | Frame::Settings { .. }
                | Frame::WindowUpdate { .. }
                | Frame::Unknown { .. } => {}
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    drop(streams);
    drop(incoming);
    let _ = gone.send(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn next(rx: &mut Codec, io: &mut tokio::io::DuplexStream, buf: &mut BytesMut) -> Frame {
        loop {
            if let Some(f) = rx.decode(buf).unwrap() {
                return f;
            }
            let n = tokio::time::timeout(Duration::from_secs(5), io.read_buf(buf)).await.unwrap().unwrap();
            assert!(n > 0, "the server closed the connection");
        }
    }

    fn syn(stream: u32, kind: &str, fin: bool) -> Frame {
        let headers = vec![("streamtype".to_string(), kind.to_string())];
        Frame::SynStream { stream, associated: 0, priority: 0, fin, unidirectional: false, headers }
    }

    #[tokio::test]
    async fn a_client_stream_is_accepted_fed_and_answered() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut sess = Session::start(server);
        let (mut tx, mut rx, mut buf) = (Codec::new(), Codec::new(), BytesMut::new());
        let mut w = Vec::new();
        tx.encode(&syn(1, "stdin", false), &mut w).unwrap();
        tx.encode(&Frame::Data { stream: 1, fin: false, data: b"abc".to_vec() }, &mut w).unwrap();
        tx.encode(&Frame::Data { stream: 1, fin: true, data: Vec::new() }, &mut w).unwrap();
        tx.encode(&Frame::Ping { id: 1 }, &mut w).unwrap();
        tx.encode(&syn(2, "even", false), &mut w).unwrap();
        client.write_all(&w).await.unwrap();

        let mut s = sess.incoming.recv().await.expect("a stream");
        assert_eq!(s.header("streamtype"), Some("stdin"));
        assert_eq!(s.data.recv().await.as_deref(), Some(&b"abc"[..]));
        assert_eq!(s.data.recv().await, None, "FIN ends the client's half");
        assert_eq!(
            next(&mut rx, &mut client, &mut buf).await,
            Frame::SynReply { stream: 1, fin: false, headers: vec![] }
        );
        assert_eq!(next(&mut rx, &mut client, &mut buf).await, Frame::Ping { id: 1 });
        assert_eq!(next(&mut rx, &mut client, &mut buf).await, Frame::RstStream { stream: 2, status: PROTOCOL_ERROR });

        assert!(s.out.write(&vec![7u8; 40_000]).await);
        s.out.close().await;
        let mut got = Vec::new();
        loop {
            match next(&mut rx, &mut client, &mut buf).await {
                Frame::Data { stream: 1, fin, data } => {
                    assert!(data.len() <= CHUNK);
                    got.extend(data);
                    if fin {
                        break;
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, vec![7u8; 40_000]);
        drop(client);
        tokio::time::timeout(Duration::from_secs(5), sess.gone.wait_for(|g| *g)).await.unwrap().unwrap();
        assert!(sess.incoming.recv().await.is_none());
    }

    #[tokio::test]
    async fn consumed_data_is_given_back_with_window_updates() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut sess = Session::start(server);
        let (mut tx, mut rx, mut buf) = (Codec::new(), Codec::new(), BytesMut::new());
        let mut w = Vec::new();
        tx.encode(&syn(1, "data", false), &mut w).unwrap();
        for _ in 0..2 {
            tx.encode(&Frame::Data { stream: 1, fin: false, data: vec![0; 20_000] }, &mut w).unwrap();
        }
        client.write_all(&w).await.unwrap();
        let mut s = sess.incoming.recv().await.unwrap();
        s.data.recv().await.unwrap();
        s.data.recv().await.unwrap();
        assert!(matches!(next(&mut rx, &mut client, &mut buf).await, Frame::SynReply { stream: 1, .. }));
        assert_eq!(next(&mut rx, &mut client, &mut buf).await, Frame::WindowUpdate { stream: 1, delta: 40_000 });
        assert_eq!(next(&mut rx, &mut client, &mut buf).await, Frame::WindowUpdate { stream: 0, delta: 40_000 });
    }
}
