//! SPDY/3.1 framing (draft-mbelshe-httpbis-spdy-00, with 3.1's session flow control), the
//! transport kubelet's streaming clients (client-go `remotecommand`/`portforward`, crictl)
//! speak after `Upgrade: SPDY/3.1`. Written here because no maintained Rust crate serves
//! SPDY/3.1 (the one crate found, spdy-mux, is a client over WebSocket transports).
//!
//! Frames: an 8-byte header, then the payload. Control frames start with the control bit,
//! version 3 and a 16-bit type; data frames with a 31-bit stream ID. Header blocks
//! (SYN_STREAM, SYN_REPLY, HEADERS) are compressed by one zlib stream per direction for the
//! whole connection, primed with SPDY/3's dictionary, each block ending in a sync flush.

use bytes::{Buf, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

pub const VERSION: u16 = 3;
pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
const FLAG_SETTINGS_CLEAR: u8 = 0x01;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status codes.
pub const PROTOCOL_ERROR: u32 = 1;
pub const INVALID_STREAM: u32 = 2;
pub const REFUSED_STREAM: u32 = 3;
pub const CANCEL: u32 = 5;
pub const FLOW_CONTROL_ERROR: u32 = 7;
/// SETTINGS_INITIAL_WINDOW_SIZE.
pub const SETTINGS_INITIAL_WINDOW_SIZE: u32 = 7;
/// The initial window of every stream and of the session (64 KiB).
pub const INITIAL_WINDOW: u32 = 65536;

/// The largest frame payload we accept (the length field allows 16 MiB - 1).
pub const MAX_FRAME: usize = (1 << 24) - 1;
/// The largest decompressed header block we accept.
const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// Header names (lowercase) and values; a name with several values appears once per value.
pub type Headers = Vec<(String, String)>;

#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Data {
        stream: u32,
        fin: bool,
        data: Vec<u8>,
    },
    SynStream {
        stream: u32,
        associated: u32,
        priority: u8,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    SynReply {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    Settings {
        clear: bool,
        entries: Vec<Setting>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        stream: u32,
        delta: u32,
    },
    /// A control frame of a type we do not handle (CREDENTIAL, or a newer one): skipped, as
    /// the spec asks.
    Unknown {
        kind: u16,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub flags: u8,
    pub id: u32,
    pub value: u32,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpdyError {
    #[error("spdy: unsupported version {0} (only 3)")]
    Version(u16),
    #[error("spdy: frame of {len} bytes is too large")]
    TooLarge { len: usize },
    #[error("spdy: malformed {what} frame ({len} bytes)")]
    Malformed { what: &'static str, len: usize },
    #[error("spdy: header block: {0}")]
    HeaderBlock(String),
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The 1423-byte dictionary of SPDY/3 (section 2.6.10.1): header names and common values,
/// each word with a 32-bit length prefix, then a run of status codes, dates and types.
pub fn dictionary() -> Vec<u8> {
    const WORDS: &[&str] = &[
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    ];
    const TAIL: &str = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505\
203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized\
403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable\
Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT\
chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,\
text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
    let mut d = Vec::with_capacity(1423);
    for w in WORDS {
        put_u32(&mut d, w.len() as u32);
        d.extend_from_slice(w.as_bytes());
    }
    d.extend_from_slice(TAIL.as_bytes());
    d
}

/// One side's framer: encodes what we send (with our compressor) and decodes what the peer
/// sends (with its decompressor). The zlib streams span the connection, so one codec per
/// connection, used in order.
pub struct Codec {
    deflate: Compress,
    inflate: Decompress,
    dict: Vec<u8>,
}

impl Default for Codec {
    fn default() -> Self {
        Self::new()
    }
}

impl Codec {
    pub fn new() -> Codec {
        let dict = dictionary();
        let mut deflate = Compress::new(Compression::default(), true);
        // A fresh zlib stream takes a dictionary; this cannot fail with the zlib backend.
        let _ = deflate.set_dictionary(&dict);
        Codec { deflate, inflate: Decompress::new(true), dict }
    }

    /// Appends the wire form of `f` to `out`.
    pub fn encode(&mut self, f: &Frame, out: &mut Vec<u8>) -> Result<(), SpdyError> {
        match f {
            Frame::Data { stream, fin, data } => {
                if data.len() > MAX_FRAME {
                    return Err(SpdyError::TooLarge { len: data.len() });
                }
                put_u32(out, stream & 0x7fff_ffff);
                put_u32(out, ((if *fin { FLAG_FIN } else { 0 } as u32) << 24) | data.len() as u32);
                out.extend_from_slice(data);
            }
            Frame::SynStream { stream, associated, priority, fin, unidirectional, headers } => {
                let mut p = Vec::new();
                put_u32(&mut p, stream & 0x7fff_ffff);
                put_u32(&mut p, associated & 0x7fff_ffff);
                p.push((priority & 0x7) << 5);
                p.push(0);
                self.compress(headers, &mut p)?;
                let flags = if *fin { FLAG_FIN } else { 0 } | if *unidirectional { FLAG_UNIDIRECTIONAL } else { 0 };
                control(out, SYN_STREAM, flags, &p)?;
            }
            Frame::SynReply { stream, fin, headers } | Frame::Headers { stream, fin, headers } => {
                let mut p = Vec::new();
                put_u32(&mut p, stream & 0x7fff_ffff);
                self.compress(headers, &mut p)?;
                let kind = if matches!(f, Frame::SynReply { .. }) { SYN_REPLY } else { HEADERS };
                control(out, kind, if *fin { FLAG_FIN } else { 0 }, &p)?;
            }
            Frame::RstStream { stream, status } => {
                let mut p = Vec::new();
                put_u32(&mut p, stream & 0x7fff_ffff);
                put_u32(&mut p, *status);
                control(out, RST_STREAM, 0, &p)?;
            }
            Frame::Settings { clear, entries } => {
                let mut p = Vec::new();
                put_u32(&mut p, entries.len() as u32);
                for e in entries {
                    put_u32(&mut p, ((e.flags as u32) << 24) | (e.id & 0x00ff_ffff));
                    put_u32(&mut p, e.value);
                }
                control(out, SETTINGS, if *clear { FLAG_SETTINGS_CLEAR } else { 0 }, &p)?;
            }
            Frame::Ping { id } => control(out, PING, 0, &id.to_be_bytes())?,
            Frame::GoAway { last_good, status } => {
                let mut p = Vec::new();
                put_u32(&mut p, last_good & 0x7fff_ffff);
                put_u32(&mut p, *status);
                control(out, GOAWAY, 0, &p)?;
            }
            Frame::WindowUpdate { stream, delta } => {
                let mut p = Vec::new();
                put_u32(&mut p, stream & 0x7fff_ffff);
                put_u32(&mut p, delta & 0x7fff_ffff);
                control(out, WINDOW_UPDATE, 0, &p)?;
            }
            Frame::Unknown { kind } => control(out, *kind, 0, &[])?,
        }
        Ok(())
    }

    /// Takes one whole frame off the front of `buf`; None while it is incomplete.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let word = u32_at(buf, 0);
        let flags = buf[4];
        let len = (u32_at(buf, 4) & 0x00ff_ffff) as usize;
        if buf.len() < 8 + len {
            buf.reserve(8 + len - buf.len());
            return Ok(None);
        }
        buf.advance(8);
        let p = buf.split_to(len);
        let fin = flags & FLAG_FIN != 0;
        if word & 0x8000_0000 == 0 {
            return Ok(Some(Frame::Data { stream: word, fin, data: p.to_vec() }));
        }
        let version = ((word >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(SpdyError::Version(version));
        }
        let kind = (word & 0xffff) as u16;
        let need = |what: &'static str, n: usize| {
            if len < n {
                Err(SpdyError::Malformed { what, len })
            } else {
                Ok(())
            }
        };
        Ok(Some(match kind {
            SYN_STREAM => {
                need("SYN_STREAM", 10)?;
                let headers = self.decompress(&p[10..])?;
                Frame::SynStream {
                    stream: u32_at(&p, 0) & 0x7fff_ffff,
                    associated: u32_at(&p, 4) & 0x7fff_ffff,
                    priority: p[8] >> 5,
                    fin,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers,
                }
            }
            SYN_REPLY | HEADERS => {
                need(if kind == SYN_REPLY { "SYN_REPLY" } else { "HEADERS" }, 4)?;
                let stream = u32_at(&p, 0) & 0x7fff_ffff;
                let headers = self.decompress(&p[4..])?;
                if kind == SYN_REPLY {
                    Frame::SynReply { stream, fin, headers }
                } else {
                    Frame::Headers { stream, fin, headers }
                }
            }
            RST_STREAM => {
                need("RST_STREAM", 8)?;
                Frame::RstStream { stream: u32_at(&p, 0) & 0x7fff_ffff, status: u32_at(&p, 4) }
            }
            SETTINGS => {
                need("SETTINGS", 4)?;
                let n = u32_at(&p, 0) as usize;
                if n.checked_mul(8).and_then(|b| b.checked_add(4)) != Some(len) {
                    return Err(SpdyError::Malformed { what: "SETTINGS", len });
                }
                let entries = (0..n)
                    .map(|i| {
                        let at = 4 + i * 8;
                        Setting { flags: p[at], id: u32_at(&p, at) & 0x00ff_ffff, value: u32_at(&p, at + 4) }
                    })
                    .collect();
                Frame::Settings { clear: flags & FLAG_SETTINGS_CLEAR != 0, entries }
            }
            PING => {
                need("PING", 4)?;
                Frame::Ping { id: u32_at(&p, 0) }
            }
            GOAWAY => {
                need("GOAWAY", 4)?;
                let status = if len >= 8 { u32_at(&p, 4) } else { 0 };
                Frame::GoAway { last_good: u32_at(&p, 0) & 0x7fff_ffff, status }
            }
            WINDOW_UPDATE => {
                need("WINDOW_UPDATE", 8)?;
                Frame::WindowUpdate { stream: u32_at(&p, 0) & 0x7fff_ffff, delta: u32_at(&p, 4) & 0x7fff_ffff }
            }
            other => Frame::Unknown { kind: other },
        }))
    }

    /// Appends `headers` as a compressed block (sync-flushed) to `out`.
    fn compress(&mut self, headers: &Headers, out: &mut Vec<u8>) -> Result<(), SpdyError> {
        let raw = header_block(headers);
        let start_in = self.deflate.total_in();
        loop {
            let done = (self.deflate.total_in() - start_in) as usize;
            out.reserve(raw.len() - done + 64);
            let before = out.len();
            self.deflate
                .compress_vec(&raw[done..], out, FlushCompress::Sync)
                .map_err(|e| SpdyError::HeaderBlock(e.to_string()))?;
            let consumed = (self.deflate.total_in() - start_in) as usize == raw.len();
            // A sync flush is complete once it returns with room to spare.
            if consumed && out.len() < out.capacity() {
                return Ok(());
            }
            if out.len() == before {
                if consumed {
                    return Ok(());
                }
                return Err(SpdyError::HeaderBlock("deflate made no progress".into()));
            }
        }
    }

    /// Inflates one header block and parses it.
    fn decompress(&mut self, block: &[u8]) -> Result<Headers, SpdyError> {
        let err = |m: String| SpdyError::HeaderBlock(m);
        let mut raw = Vec::with_capacity(block.len() * 4 + 64);
        let start_in = self.inflate.total_in();
        loop {
            let done = (self.inflate.total_in() - start_in) as usize;
            if raw.len() == raw.capacity() {
                if raw.len() >= MAX_HEADER_BLOCK {
                    return Err(err(format!("larger than {MAX_HEADER_BLOCK} bytes")));
                }
                raw.reserve(raw.len().max(256));
            }
            let before = (raw.len(), self.inflate.total_in());
            match self.inflate.decompress_vec(&block[done..], &mut raw, FlushDecompress::Sync) {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                Err(e) => match e.needs_dictionary() {
                    Some(_) => {
                        self.inflate.set_dictionary(&self.dict).map_err(|e| err(format!("dictionary: {e}")))?;
                        continue;
                    }
                    None => return Err(err(e.to_string())),
                },
            }
            let all_in = (self.inflate.total_in() - start_in) as usize == block.len();
            if all_in && raw.len() < raw.capacity() {
                break;
            }
            let stuck = (raw.len(), self.inflate.total_in()) == before;
            if stuck && all_in {
                break;
            }
            if stuck && raw.len() < raw.capacity() {
                // Input left that inflate will not take: not a whole header block.
                return Err(err("truncated or corrupt".into()));
            }
        }
        parse_header_block(&raw)
    }
}

fn control(out: &mut Vec<u8>, kind: u16, flags: u8, payload: &[u8]) -> Result<(), SpdyError> {
    if payload.len() > MAX_FRAME {
        return Err(SpdyError::TooLarge { len: payload.len() });
    }
    put_u32(out, 0x8000_0000 | ((VERSION as u32) << 16) | kind as u32);
    put_u32(out, ((flags as u32) << 24) | payload.len() as u32);
    out.extend_from_slice(payload);
    Ok(())
}

/// The uncompressed block: a count, then length-prefixed names and values (several values
/// of one name joined by NUL).
pub fn header_block(headers: &Headers) -> Vec<u8> {
    let mut names: Vec<&str> = Vec::new();
    for (n, _) in headers {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    let mut b = Vec::new();
    put_u32(&mut b, names.len() as u32);
    for n in names {
        let lower = n.to_ascii_lowercase();
        let value: Vec<&str> = headers.iter().filter(|(k, _)| k == n).map(|(_, v)| v.as_str()).collect();
        let value = value.join("\0");
        put_u32(&mut b, lower.len() as u32);
        b.extend_from_slice(lower.as_bytes());
        put_u32(&mut b, value.len() as u32);
        b.extend_from_slice(value.as_bytes());
    }
    b
}

pub fn parse_header_block(b: &[u8]) -> Result<Headers, SpdyError> {
    let bad = |m: &str| SpdyError::HeaderBlock(m.to_string());
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], SpdyError> {
        let s = b.get(at..at.checked_add(n).ok_or_else(|| bad("length overflow"))?).ok_or_else(|| bad("truncated"))?;
        at += n;
        Ok(s)
    };
    let count = u32_at(take(4)?, 0) as usize;
    let mut h = Vec::new();
    for _ in 0..count {
        let nlen = u32_at(take(4)?, 0) as usize;
        let name = String::from_utf8_lossy(take(nlen)?).to_ascii_lowercase();
        if name.is_empty() {
            return Err(bad("empty header name"));
        }
        let vlen = u32_at(take(4)?, 0) as usize;
        let value = String::from_utf8_lossy(take(vlen)?).into_owned();
        for v in value.split('\0') {
            h.push((name.clone(), v.to_string()));
        }
    }
    Ok(h)
}

/// The first value of header `name` (lowercase).
pub fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A receive window: what the peer may still send us. Data consumed is given back with
/// WINDOW_UPDATE once half the window is used, so small reads do not each cost a frame.
#[derive(Clone, Debug)]
pub struct Window {
    size: u32,
    unacked: u32,
}

impl Window {
    pub fn new(size: u32) -> Window {
        Window { size, unacked: 0 }
    }

    /// Records `n` bytes consumed; Some(delta) when a WINDOW_UPDATE is due.
    pub fn consumed(&mut self, n: u32) -> Option<u32> {
        self.unacked = self.unacked.saturating_add(n);
        if self.unacked >= self.size / 2 {
            Some(std::mem::take(&mut self.unacked))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(f: Frame) {
        let (mut tx, mut rx) = (Codec::new(), Codec::new());
        let mut wire = Vec::new();
        tx.encode(&f, &mut wire).unwrap();
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(rx.decode(&mut buf).unwrap(), Some(f));
        assert!(buf.is_empty());
    }

    #[test]
    fn dictionary_is_the_specs() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        assert_eq!(&d[..11], b"\0\0\0\x07options");
        assert!(d.ends_with(b"utf-,*,enq=0."));
        // zlib's dictionary ID (adler32) of the SPDY/3 dictionary, as every implementation
        // writes it in the first header block's zlib header.
        let mut c = Compress::new(Compression::default(), true);
        c.set_dictionary(&d).unwrap();
        let mut out = Vec::with_capacity(64);
        c.compress_vec(b"x", &mut out, FlushCompress::Sync).unwrap();
        assert_eq!(out[1] & 0x20, 0x20, "FDICT set");
        assert_eq!(&out[2..6], &[0xe3, 0xc6, 0xa7, 0xc2], "DICTID");
    }

    /// The first frames crictl 1.26.1 (client-go's spdystream) sent for `crictl exec -i`,
    /// captured on the wire: four SYN_STREAMs whose header blocks share one zlib stream.
    #[test]
    fn decodes_what_crictl_sends() {
        let wire = concat!(
            "80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff",
            "800300010000001700000003000000000000c22e555c92929907000000ffff",
            "800300010000001900000005000000000000c22ac5565c92925f5a02000000ffff",
            "800300010000001500000007000000000000c229975a5404000000ffff",
            "80030003000000080000000500000005",
            "80030007000000080000000000000000",
        );
        let mut buf = BytesMut::from(&hex::decode(wire).unwrap()[..]);
        let mut rx = Codec::new();
        for (id, kind) in [(1, "error"), (3, "stdin"), (5, "stdout"), (7, "stderr")] {
            match rx.decode(&mut buf).unwrap() {
                Some(Frame::SynStream {
                    stream, associated: 0, fin: false, unidirectional: false, headers, ..
                }) => {
                    assert_eq!(stream, id);
                    assert_eq!(headers, vec![("streamtype".to_string(), kind.to_string())]);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(rx.decode(&mut buf).unwrap(), Some(Frame::RstStream { stream: 5, status: CANCEL }));
        assert_eq!(rx.decode(&mut buf).unwrap(), Some(Frame::GoAway { last_good: 0, status: 0 }));
        assert_eq!(rx.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn control_frame_header_layout() {
        let mut c = Codec::new();
        let mut w = Vec::new();
        c.encode(&Frame::Ping { id: 7 }, &mut w).unwrap();
        // C=1, version 3, type 6; flags 0, length 4; the id.
        assert_eq!(w, [0x80, 0x03, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 7]);
        let mut w = Vec::new();
        c.encode(&Frame::RstStream { stream: 5, status: CANCEL }, &mut w).unwrap();
        assert_eq!(w, [0x80, 0x03, 0x00, 0x03, 0, 0, 0, 8, 0, 0, 0, 5, 0, 0, 0, 5]);
        let mut w = Vec::new();
        c.encode(&Frame::WindowUpdate { stream: 1, delta: 0x10000 }, &mut w).unwrap();
        assert_eq!(w, [0x80, 0x03, 0x00, 0x09, 0, 0, 0, 8, 0, 0, 0, 1, 0, 1, 0, 0]);
        let mut w = Vec::new();
        c.encode(&Frame::GoAway { last_good: 3, status: 0 }, &mut w).unwrap();
        assert_eq!(w, [0x80, 0x03, 0x00, 0x07, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 0]);
    }

    #[test]
    fn data_frame_layout() {
        let mut w = Vec::new();
        Codec::new().encode(&Frame::Data { stream: 3, fin: true, data: b"hi".to_vec() }, &mut w).unwrap();
        assert_eq!(w, [0, 0, 0, 3, 0x01, 0, 0, 2, b'h', b'i']);
    }

    #[test]
    fn every_frame_round_trips() {
        let h = vec![("streamtype".to_string(), "stdout".to_string()), ("port".into(), "80".into())];
        roundtrip(Frame::Data { stream: 1, fin: false, data: vec![1; 70000] });
        roundtrip(Frame::SynStream {
            stream: 1,
            associated: 0,
            priority: 3,
            fin: false,
            unidirectional: true,
            headers: h.clone(),
        });
        roundtrip(Frame::SynReply { stream: 1, fin: true, headers: vec![] });
        roundtrip(Frame::Headers { stream: 9, fin: false, headers: h });
        roundtrip(Frame::RstStream { stream: 1, status: REFUSED_STREAM });
        roundtrip(Frame::Settings {
            clear: true,
            entries: vec![Setting { flags: 1, id: SETTINGS_INITIAL_WINDOW_SIZE, value: 1 << 20 }],
        });
        roundtrip(Frame::Ping { id: 2 });
        roundtrip(Frame::GoAway { last_good: 7, status: 1 });
        roundtrip(Frame::WindowUpdate { stream: 0, delta: 12345 });
    }

    #[test]
    fn header_blocks_share_one_zlib_stream() {
        let (mut tx, mut rx) = (Codec::new(), Codec::new());
        let mut wire = Vec::new();
        for i in 1..=5u32 {
            let h = vec![("streamtype".to_string(), "error".to_string()), ("requestid".into(), i.to_string())];
            tx.encode(
                &Frame::SynStream {
                    stream: 2 * i - 1,
                    associated: 0,
                    priority: 0,
                    fin: false,
                    unidirectional: false,
                    headers: h,
                },
                &mut wire,
            )
            .unwrap();
        }
        let mut buf = BytesMut::from(&wire[..]);
        for i in 1..=5u32 {
            match rx.decode(&mut buf).unwrap() {
                Some(Frame::SynStream { stream, headers, .. }) => {
                    assert_eq!(stream, 2 * i - 1);
                    assert_eq!(header(&headers, "requestid"), Some(i.to_string().as_str()));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn partial_input_waits_for_the_rest() {
        let mut tx = Codec::new();
        let mut wire = Vec::new();
        tx.encode(&Frame::Data { stream: 1, fin: false, data: b"abcdef".to_vec() }, &mut wire).unwrap();
        let mut rx = Codec::new();
        let mut buf = BytesMut::from(&wire[..5]);
        assert_eq!(rx.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(&wire[5..]);
        assert!(matches!(rx.decode(&mut buf).unwrap(), Some(Frame::Data { .. })));
    }

    #[test]
    fn multi_valued_headers_are_nul_joined() {
        let h = vec![("a".to_string(), "1".to_string()), ("a".into(), "2".into())];
        let b = header_block(&h);
        assert_eq!(b, [0, 0, 0, 1, 0, 0, 0, 1, b'a', 0, 0, 0, 3, b'1', 0, b'2']);
        assert_eq!(parse_header_block(&b).unwrap(), h);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut rx = Codec::new();
        // Version 2.
        let mut buf = BytesMut::from(&[0x80u8, 0x02, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert_eq!(rx.decode(&mut buf), Err(SpdyError::Version(2)));
        // A RST_STREAM too short.
        let mut buf = BytesMut::from(&[0x80u8, 0x03, 0, 3, 0, 0, 0, 2, 0, 0][..]);
        assert!(matches!(rx.decode(&mut buf), Err(SpdyError::Malformed { .. })));
        // A SYN_STREAM whose block is not zlib.
        let mut buf = BytesMut::from(&[0x80u8, 0x03, 0, 1, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2][..]);
        assert!(matches!(rx.decode(&mut buf), Err(SpdyError::HeaderBlock(_))));
        // crictl's first SYN_STREAM with its zlib block cut short.
        let whole = hex::decode(
            "80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff",
        )
        .unwrap();
        let mut cut = whole[..30].to_vec();
        cut[7] = 22;
        assert!(matches!(Codec::new().decode(&mut BytesMut::from(&cut[..])), Err(SpdyError::HeaderBlock(_))));
        // A header block whose count lies.
        assert!(parse_header_block(&[0, 0, 0, 9]).is_err());
        assert!(parse_header_block(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn unknown_control_frames_are_skipped() {
        let mut rx = Codec::new();
        let mut buf =
            BytesMut::from(&[0x80u8, 0x03, 0, 10, 0, 0, 0, 2, 9, 9, 0x80, 0x03, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert_eq!(rx.decode(&mut buf).unwrap(), Some(Frame::Unknown { kind: 10 }));
        assert_eq!(rx.decode(&mut buf).unwrap(), Some(Frame::Ping { id: 1 }));
    }

    #[test]
    fn window_updates_come_at_half_the_window() {
        let mut w = Window::new(INITIAL_WINDOW);
        assert_eq!(w.consumed(1000), None);
        assert_eq!(w.consumed(31767), None);
        assert_eq!(w.consumed(1), Some(32768));
        assert_eq!(w.consumed(10), None);
    }
}
