//! Accepting the `:authority` that real gRPC clients send over a unix socket.
//!
//! Python grpcio, grpcurl, grpc-java, grpc-swift and kubelet-era grpc-go (crictl 1.26) send
//! the socket path (`/run/agentd/agentd.sock`, or URL-encoded) as the HTTP/2 `:authority`.
//! h2 (under hyper and tonic) refuses a request whose authority is not a valid URI authority
//! with `RST_STREAM(PROTOCOL_ERROR)` (hyperium/h2 PR 487 is still open), and offers no
//! option to relax it. containerd and CRI-O accept these clients, so we must too.
//!
//! [`AuthorityFix`] wraps a unix connection on the read side. It follows the client's HTTP/2
//! frames; every header block (HEADERS + CONTINUATION) is decoded with an HPACK decoder that
//! mirrors the client's encoder (loona-hpack), its `:authority` is replaced by `localhost` when
//! it is empty, a path, or not an authority at all, and the block is encoded again by our own
//! encoder, whose state the server's decoder follows. Every block is re-encoded, whether it
//! changed or not, so the two HPACK contexts can never drift apart. All other frames (DATA,
//! SETTINGS, WINDOW_UPDATE, PING, …) pass through byte for byte, so flow control, streaming
//! and size limits behave exactly as before; the write side is untouched. The TCP + TLS
//! listener does not use this: there h2's strict checks stay.

use bytes::{Buf, BytesMut};
use loona_hpack::{Decoder, Encoder};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The smallest SETTINGS_MAX_FRAME_SIZE a peer may have: re-encoded blocks are cut to it.
const MAX_FRAME: usize = 16_384;
/// A header block (compressed, or decoded in HPACK's accounting: name + value + 32 per
/// field) larger than this many times the header list limit closes the connection, as h2
/// does (its `MAX_HEADER_LIST_ABUSE_MULTIPLIER`); between one and this many times, h2
/// answers 431 and refuses the stream itself.
const ABUSE_MULTIPLIER: usize = 4;
/// HPACK's default dynamic table size, which h2 keeps for its decoder (we never change it).
const TABLE_SIZE: usize = 4096;

/// What the value of `:authority` becomes when a client sent a socket path.
pub const LOCAL_AUTHORITY: &[u8] = b"localhost";

/// True when h2 would refuse `value`, or it names a socket rather than a host.
fn needs_rewrite(value: &[u8]) -> bool {
    value.is_empty()
        || value[0] == b'/'
        || value.len() >= 3 && value[..3].eq_ignore_ascii_case(b"%2f")
        || value.starts_with(b"unix:")
        || http::uri::Authority::try_from(value).is_err()
}

enum Stage {
    /// Matching the preface; the count of bytes matched so far.
    Preface,
    /// At a frame boundary.
    Frames,
    /// Copying the rest of a passed-through frame's payload.
    Payload(usize),
    /// Not HTTP/2 with prior knowledge: everything passes through (the server will say no).
    Passthrough,
}

/// A header block being collected across HEADERS and CONTINUATION frames.
struct Pending {
    stream: u32,
    /// END_STREAM and PRIORITY of the HEADERS frame.
    flags: u8,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
}

/// The read-side state machine, independent of any I/O (unit-tested directly).
pub struct Rewriter {
    stage: Stage,
    input: BytesMut,
    decoder: Decoder<'static>,
    encoder: Encoder<'static>,
    pending: Option<Pending>,
    /// The largest header block accepted, compressed or decoded.
    max_block: usize,
}

impl Default for Rewriter {
    fn default() -> Self {
        Self::new()
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Rewriter {
    /// A rewriter for the default `[limits] max_header_list_size`.
    pub fn new() -> Rewriter {
        Self::with_header_list_limit(super::limits::Limits::default().max_header_list_size as usize)
    }

    /// A rewriter for a server whose SETTINGS_MAX_HEADER_LIST_SIZE is `max_header_list`.
    pub fn with_header_list_limit(max_header_list: usize) -> Rewriter {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(TABLE_SIZE);
        Rewriter {
            stage: Stage::Preface,
            input: BytesMut::new(),
            decoder,
            encoder: Encoder::new(),
            pending: None,
            max_block: max_header_list.saturating_mul(ABUSE_MULTIPLIER),
        }
    }

    /// Takes bytes the client sent and appends what the server should read to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut BytesMut) -> io::Result<()> {
        self.input.extend_from_slice(data);
        loop {
            match self.stage {
                Stage::Passthrough => {
                    out.extend_from_slice(&self.input.split());
                    return Ok(());
                }
                Stage::Preface => {
                    let n = self.input.len().min(PREFACE.len());
                    if self.input[..n] != PREFACE[..n] {
                        self.stage = Stage::Passthrough;
                        continue;
                    }
                    if n < PREFACE.len() {
                        return Ok(());
                    }
                    out.extend_from_slice(&self.input.split_to(PREFACE.len()));
                    self.stage = Stage::Frames;
                }
                Stage::Payload(left) => {
                    let n = left.min(self.input.len());
                    out.extend_from_slice(&self.input.split_to(n));
                    if n < left {
                        self.stage = Stage::Payload(left - n);
                        return Ok(());
                    }
                    self.stage = Stage::Frames;
                }
                Stage::Frames => {
                    if self.input.len() < FRAME_HEADER {
                        return Ok(());
                    }
                    let h = &self.input[..FRAME_HEADER];
                    let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
                    let (kind, flags) = (h[3], h[4]);
                    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                    if kind != HEADERS && kind != CONTINUATION {
                        if self.pending.is_some() {
                            return Err(bad(format!(
                                "HTTP/2 frame of type {kind} inside a header block (CONTINUATION expected)"
                            )));
                        }
                        out.extend_from_slice(&self.input.split_to(FRAME_HEADER));
                        self.stage = Stage::Payload(len);
                        continue;
                    }
                    if len > self.max_block {
                        return Err(bad(format!(
                            "HTTP/2 header frame of {len} bytes is over {} bytes ([limits] max_header_list_size × {ABUSE_MULTIPLIER})",
                            self.max_block
                        )));
                    }
                    if self.input.len() < FRAME_HEADER + len {
                        return Ok(());
                    }
                    self.input.advance(FRAME_HEADER);
                    let payload = self.input.split_to(len);
                    self.header_frame(kind, flags, stream, &payload, out)?;
                }
            }
        }
    }

    fn header_frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8], out: &mut BytesMut) -> io::Result<()> {
        if kind == HEADERS {
            if self.pending.is_some() {
                return Err(bad("HTTP/2 HEADERS inside another header block".into()));
            }
            let mut p = payload;
            let mut pad = 0;
            if flags & PADDED != 0 {
                let Some((&n, rest)) = p.split_first() else { return Err(bad("HTTP/2 HEADERS: no pad length".into())) };
                pad = usize::from(n);
                p = rest;
            }
            let mut priority = None;
            if flags & PRIORITY != 0 {
                if p.len() < 5 {
                    return Err(bad("HTTP/2 HEADERS: short priority field".into()));
                }
                let mut pr = [0u8; 5];
                pr.copy_from_slice(&p[..5]);
                priority = Some(pr);
                p = &p[5..];
            }
            if pad > p.len() {
                return Err(bad("HTTP/2 HEADERS: padding longer than the frame".into()));
            }
            self.pending = Some(Pending {
                stream,
                flags: flags & (END_STREAM | PRIORITY),
                priority,
                fragment: p[..p.len() - pad].to_vec(),
            });
        } else {
            let Some(pending) = self.pending.as_mut().filter(|p| p.stream == stream) else {
                return Err(bad(format!("HTTP/2 CONTINUATION on stream {stream} without a header block")));
            };
            if pending.fragment.len() + payload.len() > self.max_block {
                return Err(bad(format!(
                    "HTTP/2 header block is over {} bytes ([limits] max_header_list_size × {ABUSE_MULTIPLIER})",
                    self.max_block
                )));
            }
            pending.fragment.extend_from_slice(payload);
        }
        if flags & END_HEADERS != 0 {
            if let Some(p) = self.pending.take() {
                self.emit(p, out)?;
            }
        }
        Ok(())
    }

    /// Decodes a whole block, fixes `:authority`, and writes it as HEADERS (+ CONTINUATION).
    fn emit(&mut self, p: Pending, out: &mut BytesMut) -> io::Result<()> {
        // Decoded with a running size, kept only up to the bound: references into the
        // dynamic table make a small block decode into a huge list (an HPACK bomb). The whole
        // block is still decoded, so the decoder's table stays the client's.
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut size = 0usize;
        let max = self.max_block;
        self.decoder
            .decode_with_cb(&p.fragment, |n, v| {
                size = size.saturating_add(n.len() + v.len() + 32);
                if size <= max {
                    headers.push((n.into_owned(), v.into_owned()));
                }
            })
            .map_err(|e| bad(format!("HTTP/2 header block: HPACK: {e:?}")))?;
        if size > max {
            return Err(bad(format!(
                "HTTP/2 header list of {size} bytes decoded is over {max} ([limits] max_header_list_size × {ABUSE_MULTIPLIER})"
            )));
        }
        for (name, value) in headers.iter_mut() {
            if name.as_slice() == b":authority" && needs_rewrite(value) {
                *value = LOCAL_AUTHORITY.to_vec();
            }
        }
        let block = self.encoder.encode(headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));
        let mut first = Vec::with_capacity(block.len() + 5);
        if let Some(pr) = p.priority {
            first.extend_from_slice(&pr);
        }
        let room = MAX_FRAME - first.len();
        let (head, mut rest) = block.split_at(block.len().min(room));
        first.extend_from_slice(head);
        let mut flags = p.flags;
        if rest.is_empty() {
            flags |= END_HEADERS;
        }
        write_frame(out, HEADERS, flags, p.stream, &first);
        while !rest.is_empty() {
            let (chunk, more) = rest.split_at(rest.len().min(MAX_FRAME));
            rest = more;
            write_frame(out, CONTINUATION, if rest.is_empty() { END_HEADERS } else { 0 }, p.stream, chunk);
        }
        Ok(())
    }
}

fn write_frame(out: &mut BytesMut, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A connection whose client-sent header blocks go through a [`Rewriter`]; writes pass
/// straight to the socket.
pub struct AuthorityFix<S> {
    inner: S,
    rewriter: Rewriter,
    out: BytesMut,
    scratch: Box<[u8]>,
    eof: bool,
}

impl<S> AuthorityFix<S> {
    /// Wraps `inner` for a server whose header lists are limited to `max_header_list` bytes.
    pub fn new(inner: S, max_header_list: usize) -> Self {
        AuthorityFix {
            inner,
            rewriter: Rewriter::with_header_list_limit(max_header_list),
            out: BytesMut::new(),
            scratch: vec![0u8; 16 * 1024].into_boxed_slice(),
            eof: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.out.is_empty() {
                let n = buf.remaining().min(this.out.len());
                buf.put_slice(&this.out[..n]);
                this.out.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut rb = ReadBuf::new(&mut this.scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                this.eof = true;
                continue;
            }
            let Self { rewriter, out, .. } = this;
            if let Err(e) = rewriter.feed(rb.filled(), out) {
                tracing::warn!(error = %e, "closing a unix-socket client connection");
                return Poll::Ready(Err(e));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected for AuthorityFix<S> {
    type ConnectInfo = S::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests;
