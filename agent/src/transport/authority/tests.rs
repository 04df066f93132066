use super::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// A frame as the tests see it.
#[derive(Debug, PartialEq)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    write_frame(&mut b, kind, flags, stream, payload);
    b.to_vec()
}

/// Splits what the server would read (after the preface) into frames.
fn frames(mut b: &[u8]) -> Vec<Frame> {
    assert!(b.starts_with(PREFACE), "output starts with the preface");
    b = &b[PREFACE.len()..];
    let mut out = Vec::new();
    while !b.is_empty() {
        let len = (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]);
        let stream = u32::from_be_bytes([b[5], b[6], b[7], b[8]]);
        out.push(Frame { kind: b[3], flags: b[4], stream, payload: b[9..9 + len].to_vec() });
        b = &b[9 + len..];
    }
    out
}

/// An HPACK string literal without Huffman coding (lengths < 127 only).
fn lit(s: &[u8]) -> Vec<u8> {
    assert!(s.len() < 127);
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s);
    v
}

/// A request header block as grpc-go/grpc-core write it: `:authority` (static name index 1)
/// as a literal *with incremental indexing*, so it enters the client's dynamic table.
fn request_block(authority: &[u8]) -> Vec<u8> {
    let mut b = vec![0x83, 0x86]; // :method POST, :scheme http
    b.push(0x04); // :path, literal without indexing, name index 4
    b.extend(lit(b"/agent.v1.SystemService/Version"));
    b.push(0x41); // :authority, literal with incremental indexing, name index 1
    b.extend(lit(authority));
    b.push(0x40); // content-type: application/grpc, new name, indexed
    b.extend(lit(b"content-type"));
    b.extend(lit(b"application/grpc"));
    b.push(0x40);
    b.extend(lit(b"te"));
    b.extend(lit(b"trailers"));
    b
}

/// The second request of a connection: everything from the dynamic table (newest first:
/// te=62, content-type=63, :authority=64).
fn second_request_block() -> Vec<u8> {
    let mut b = vec![0x83, 0x86, 0x04];
    b.extend(lit(b"/agent.v1.SystemService/Version"));
    b.extend([0x80 | 64, 0x80 | 63, 0x80 | 62]);
    b
}

fn client_bytes(authority: &[u8]) -> Vec<u8> {
    let mut v = PREFACE.to_vec();
    v.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    v.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &request_block(authority)));
    v.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &second_request_block()));
    v
}

fn rewrite_all(input: &[u8]) -> io::Result<Vec<u8>> {
    let mut r = Rewriter::new();
    let mut out = BytesMut::new();
    r.feed(input, &mut out)?;
    Ok(out.to_vec())
}

fn authority_of(block: &[u8], dec: &mut Decoder<'static>) -> Vec<u8> {
    dec.decode(block).expect("decode").into_iter().find(|(n, _)| n == b":authority").map(|(_, v)| v).expect("authority")
}

#[test]
fn socket_paths_and_encoded_paths_become_localhost_across_the_dynamic_table() {
    for authority in [&b"/run/agentd/agentd.sock"[..], b"%2Frun%2Fagentd%2Fagentd.sock", b"", b"unix:///x.sock"] {
        let out = rewrite_all(&client_bytes(authority)).expect("rewrite");
        let fs = frames(&out);
        assert_eq!(fs.len(), 3, "{fs:?}");
        assert_eq!(fs[0], Frame { kind: 0x4, flags: 0, stream: 0, payload: vec![] });
        let mut dec = Decoder::new();
        for (f, stream) in fs[1..].iter().zip([1, 3]) {
            assert_eq!((f.kind, f.flags, f.stream), (HEADERS, END_HEADERS | END_STREAM, stream));
            assert_eq!(authority_of(&f.payload, &mut dec), b"localhost");
        }
    }
}

#[test]
fn a_real_authority_is_kept() {
    for authority in [&b"localhost"[..], b"example.com:443", b"127.0.0.1:7443", b"[::1]:80"] {
        let out = rewrite_all(&client_bytes(authority)).expect("rewrite");
        let fs = frames(&out);
        let mut dec = Decoder::new();
        assert_eq!(authority_of(&fs[1].payload, &mut dec), authority);
        assert_eq!(authority_of(&fs[2].payload, &mut dec), authority);
    }
}

#[test]
fn byte_by_byte_input_gives_the_same_output_and_data_passes_unchanged() {
    let mut input = client_bytes(b"/run/a.sock");
    let data = frame(0x0, 0x1, 1, &[0, 0, 0, 0, 5, 1, 2, 3, 4, 5]);
    input.extend(&data);
    input.extend(frame(0x8, 0, 0, &[0, 0, 1, 0])); // WINDOW_UPDATE
    let whole = rewrite_all(&input).expect("rewrite");
    let mut r = Rewriter::new();
    let mut out = BytesMut::new();
    for b in &input {
        r.feed(std::slice::from_ref(b), &mut out).expect("feed");
    }
    assert_eq!(out.to_vec(), whole);
    let fs = frames(&whole);
    assert_eq!(fs[3], Frame { kind: 0, flags: 1, stream: 1, payload: data[9..].to_vec() });
    assert_eq!(fs[4].kind, 0x8);
}

#[test]
fn padding_is_dropped_priority_kept_and_continuations_joined() {
    let block = request_block(b"/run/a.sock");
    let (a, b) = block.split_at(10);
    let mut payload = vec![3u8]; // pad length
    payload.extend([0x80, 0, 0, 5, 42]); // exclusive dependency on stream 5, weight 42
    payload.extend(a);
    payload.extend([0, 0, 0]); // padding
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, PADDED | PRIORITY | END_STREAM, 7, &payload));
    input.extend(frame(CONTINUATION, END_HEADERS, 7, b));
    let fs = frames(&rewrite_all(&input).expect("rewrite"));
    assert_eq!(fs.len(), 1, "{fs:?}");
    assert_eq!((fs[0].kind, fs[0].flags, fs[0].stream), (HEADERS, PRIORITY | END_STREAM | END_HEADERS, 7));
    assert_eq!(&fs[0].payload[..5], &[0x80, 0, 0, 5, 42]);
    assert_eq!(authority_of(&fs[0].payload[5..], &mut Decoder::new()), b"localhost");
}

#[test]
fn a_large_block_is_cut_into_frames_the_server_accepts() {
    let mut block = request_block(b"/run/a.sock");
    // x-big: 40 000 bytes, literal without indexing, new name.
    block.push(0x00);
    block.extend(lit(b"x-big"));
    block.extend([0x7f, 0xc1, 0xb7, 0x02]); // length 40 000 as a 7-bit prefix integer
    block.extend(std::iter::repeat_n(b'a', 40_000));
    let mut input = PREFACE.to_vec();
    let (a, rest) = block.split_at(16_000);
    let (b, c) = rest.split_at(16_000);
    input.extend(frame(HEADERS, 0, 1, a));
    input.extend(frame(CONTINUATION, 0, 1, b));
    input.extend(frame(CONTINUATION, END_HEADERS, 1, c));
    let fs = frames(&rewrite_all(&input).expect("rewrite"));
    assert!(fs.len() >= 3, "{}", fs.len());
    assert!(fs.iter().all(|f| f.payload.len() <= MAX_FRAME));
    assert_eq!(fs[0].kind, HEADERS);
    assert!(fs[1..].iter().all(|f| f.kind == CONTINUATION));
    assert!(fs[..fs.len() - 1].iter().all(|f| f.flags & END_HEADERS == 0));
    assert_eq!(fs[fs.len() - 1].flags, END_HEADERS);
    let joined: Vec<u8> = fs.iter().flat_map(|f| f.payload.clone()).collect();
    let headers = Decoder::new().decode(&joined).expect("decode");
    assert!(headers.iter().any(|(n, v)| n == b"x-big" && v.len() == 40_000));
    assert!(headers.iter().any(|(n, v)| n == b":authority" && v == b"localhost"));
}

#[test]
fn protocol_violations_close_the_connection() {
    let mut input = PREFACE.to_vec();
    input.extend(frame(CONTINUATION, END_HEADERS, 1, &[0x83]));
    assert!(rewrite_all(&input).is_err());
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, 0, 1, &[0x83]));
    input.extend(frame(0x0, 0, 1, &[]));
    assert!(rewrite_all(&input).is_err());
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, END_HEADERS, 1, &[0xff, 0xff, 0xff, 0x7f])); // index out of range
    assert!(rewrite_all(&input).is_err());
}

#[test]
fn what_is_not_http2_passes_through() {
    let input = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut r = Rewriter::new();
    let mut out = BytesMut::new();
    r.feed(input, &mut out).expect("feed");
    assert_eq!(&out[..], &input[..]);
}

/// Serves `client` to a real h2 server, through the fix or not; the authorities it got.
async fn serve(client: Vec<u8>, fix: bool) -> Vec<String> {
    let (mut c, s) = tokio::io::duplex(1 << 16);
    let server = async move {
        let mut got = Vec::new();
        let conn = if fix {
            h2::server::handshake(Box::new(AuthorityFix::new(s, 16 * 1024)) as Box<dyn Io>).await
        } else {
            h2::server::handshake(Box::new(s) as Box<dyn Io>).await
        };
        let mut conn = conn.expect("handshake");
        while let Some(Ok((req, _respond))) = conn.accept().await {
            got.push(req.uri().authority().map(|a| a.to_string()).unwrap_or_default());
            if got.len() == 2 {
                break;
            }
        }
        got
    };
    c.write_all(&client).await.expect("write");
    tokio::time::timeout(Duration::from_secs(2), server).await.unwrap_or_default()
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[tokio::test]
async fn h2_refuses_a_socket_path_and_serves_it_through_the_fix() {
    let bytes = client_bytes(b"/run/agentd/agentd.sock");
    assert!(serve(bytes.clone(), false).await.is_empty(), "h2 itself refuses the path");
    assert_eq!(serve(bytes, true).await, ["localhost", "localhost"]);
    let bytes = client_bytes(b"127.0.0.1:7443");
    assert_eq!(serve(bytes, true).await, ["127.0.0.1:7443", "127.0.0.1:7443"]);
}

#[test]
fn an_hpack_bomb_closes_the_connection_before_it_is_decoded_into_memory() {
    // A 4000-byte value enters the dynamic table, then 3000 one-byte references to it: a
    // 3 KB block that would decode into 12 MB.
    let value = vec![b'v'; 4000];
    let mut b = vec![0x83, 0x86, 0x04];
    b.extend(lit(b"/agent.v1.SystemService/Version"));
    b.extend([0x40, 1, b'x', 0x7f]); // new name "x", value length 4000: 7-bit prefix full, then a varint
    let mut rest = 4000 - 127;
    while rest >= 128 {
        b.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    b.push(rest as u8);
    b.extend(&value);
    b.extend(std::iter::repeat_n(0x80 | 62, 3000));
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &b));
    let e = rewrite_all(&input).unwrap_err().to_string();
    assert!(e.contains("decoded is over 65536"), "{e}");
    // Under the limit, the same block with ten references passes.
    let mut ok = b[..b.len() - 3000].to_vec();
    ok.extend(std::iter::repeat_n(0x80 | 62, 10));
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &ok));
    assert!(rewrite_all(&input).is_ok());
    // A block larger than the bound is refused from its frame header.
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, END_HEADERS, 1, &vec![0u8; 70_000]));
    let e = rewrite_all(&input).unwrap_err().to_string();
    assert!(e.contains("header frame of 70000 bytes"), "{e}");
}
