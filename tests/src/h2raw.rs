//! A raw HTTP/2 client for the abuse tests: frames written byte by byte over the agent's
//! unix socket, as a hostile or broken client would (huge header blocks, reset floods, a
//! peer that opens its windows and then never reads). A real client library would refuse
//! or pace most of these, which is the point of writing them by hand.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
/// RST_STREAM / GOAWAY codes.
pub const CANCEL: u32 = 0x8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut v = len.to_be_bytes()[1..].to_vec();
    v.extend([kind, flags]);
    v.extend(stream.to_be_bytes());
    v.extend(payload);
    v
}

/// An HPACK integer with an `n`-bit prefix, the prefix byte's high bits `flags`.
fn int(v: &mut Vec<u8>, flags: u8, n: u32, mut x: usize) {
    let max = (1usize << n) - 1;
    if x < max {
        v.push(flags | x as u8);
        return;
    }
    v.push(flags | max as u8);
    x -= max;
    while x >= 128 {
        v.push((x % 128) as u8 | 0x80);
        x /= 128;
    }
    v.push(x as u8);
}

fn string(v: &mut Vec<u8>, s: &[u8]) {
    int(v, 0, 7, s.len());
    v.extend(s);
}

/// A header as a literal without indexing: by static-table name index, or a new name (0).
fn literal(v: &mut Vec<u8>, index: usize, name: &[u8], value: &[u8]) {
    int(v, 0, 4, index);
    if index == 0 {
        string(v, name);
    }
    string(v, value);
}

/// The header block of a gRPC call to `path`, with `extra` metadata.
pub fn request_block(path: &str, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut v = vec![0x83, 0x86]; // :method POST, :scheme http
    literal(&mut v, 4, b"", path.as_bytes());
    literal(&mut v, 1, b"", b"localhost");
    literal(&mut v, 0, b"content-type", b"application/grpc");
    literal(&mut v, 0, b"te", b"trailers");
    for (n, val) in extra {
        literal(&mut v, 0, n.as_bytes(), val);
    }
    v
}

/// HEADERS (+ CONTINUATION frames of 16 KiB) carrying `block` on `stream`.
pub fn headers(stream: u32, block: &[u8], end_stream: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunks = block.chunks(16_384).peekable();
    let mut first = true;
    while let Some(c) = chunks.next() {
        let last = chunks.peek().is_none();
        let mut flags = if last { END_HEADERS } else { 0 };
        if first && end_stream {
            flags |= END_STREAM;
        }
        out.extend(frame(if first { HEADERS } else { CONTINUATION }, flags, stream, c));
        first = false;
    }
    out
}

/// A gRPC message (uncompressed) as the DATA frame ending `stream`.
pub fn grpc_data(stream: u32, msg: &[u8]) -> Vec<u8> {
    let mut p = vec![0];
    p.extend((msg.len() as u32).to_be_bytes());
    p.extend(msg);
    frame(DATA, END_STREAM, stream, &p)
}

/// A LogsRequest (protobuf, by hand: field 1 the id, field 2 follow).
pub fn logs_request(id: &str, follow: bool) -> Vec<u8> {
    let mut v = vec![0x0a, id.len() as u8];
    v.extend(id.as_bytes());
    if follow {
        v.extend([0x10, 1]);
    }
    v
}

/// A connection: the preface and our SETTINGS sent; `window` opens the initial stream and
/// connection windows that wide (the server may then send that much before we read).
pub fn connect(socket: &str, window: Option<u32>) -> std::io::Result<UnixStream> {
    let mut s = UnixStream::connect(socket)?;
    let mut hello = PREFACE.to_vec();
    match window {
        Some(w) => {
            let mut settings = vec![0, 4];
            settings.extend(w.to_be_bytes());
            hello.extend(frame(SETTINGS, 0, 0, &settings));
            hello.extend(frame(WINDOW_UPDATE, 0, 0, &(w - 65_535).to_be_bytes()));
        }
        None => hello.extend(frame(SETTINGS, 0, 0, &[])),
    }
    s.write_all(&hello)?;
    Ok(s)
}

/// One frame the server sent.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// The frames the server sends until it closes the connection or stays silent for `quiet`
/// (also the reason of its GOAWAY, if any, and whether the connection ended).
pub fn read_frames(s: &mut UnixStream, quiet: Duration, max: usize) -> (Vec<Frame>, bool) {
    let _ = s.set_read_timeout(Some(quiet));
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut closed = false;
    // The server's preface is a SETTINGS frame; everything is frames.
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while buf.len() >= 9 {
            let len = (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            out.push(Frame { kind: buf[3], flags: buf[4], stream, payload: buf[9..9 + len].to_vec() });
            buf.drain(..9 + len);
        }
        if out.len() >= max {
            return (out, closed);
        }
        match s.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                return (out, closed);
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                return (out, closed)
            }
            Err(_) => {
                closed = true;
                return (out, closed);
            }
        }
    }
}

/// The error code of a GOAWAY among `frames`.
pub fn goaway(frames: &[Frame]) -> Option<u32> {
    frames
        .iter()
        .find(|f| f.kind == GOAWAY && f.payload.len() >= 8)
        .map(|f| u32::from_be_bytes([f.payload[4], f.payload[5], f.payload[6], f.payload[7]]))
}
