//! Byte streams between a blocking thread (tar, file copies) and an async gRPC stream:
//! a `Write` that sends fixed-size chunks over a channel and a `Read` over received chunks.
//! The agent (cp, export) and agentctl (cp) both use them.

use std::io::{self, Cursor, Read, Write};
use tokio::sync::mpsc;

/// The size of one chunk sent by [`ChunkWriter`].
pub const CHUNK: usize = 256 * 1024;

/// A `Write` on a blocking thread that sends what it is given in chunks of [`CHUNK`]
/// bytes, each wrapped by `wrap` (a stream message or a `Result`). A closed receiver is a
/// `BrokenPipe` error saying `gone`.
pub struct ChunkWriter<T, F: Fn(Vec<u8>) -> T> {
    buf: Vec<u8>,
    tx: mpsc::Sender<T>,
    wrap: F,
    gone: &'static str,
}

impl<T, F: Fn(Vec<u8>) -> T> ChunkWriter<T, F> {
    /// A writer sending to `tx`; `gone` names who went away when the receiver is closed.
    pub fn new(tx: mpsc::Sender<T>, wrap: F, gone: &'static str) -> Self {
        ChunkWriter { buf: Vec::with_capacity(CHUNK), tx, wrap, gone }
    }
}

impl<T, F: Fn(Vec<u8>) -> T> Write for ChunkWriter<T, F> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.blocking_send((self.wrap)(chunk)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, self.gone))
    }
}

/// A `Read` on a blocking thread over chunks received from a channel; the end of the
/// channel is the end of the stream.
pub struct ChunkReader {
    rx: mpsc::Receiver<Vec<u8>>,
    cur: Cursor<Vec<u8>>,
}

impl ChunkReader {
    /// A reader of what is sent to `rx`.
    pub fn new(rx: mpsc::Receiver<Vec<u8>>) -> ChunkReader {
        ChunkReader { rx, cur: Cursor::new(Vec::new()) }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.cur.read(out)?;
            if n > 0 || out.is_empty() {
                return Ok(n);
            }
            match self.rx.blocking_recv() {
                Some(c) => self.cur = Cursor::new(c),
                None => return Ok(0),
            }
        }
    }
}

/// An error with the errors it wraps, each once ("a: b: c"): many libraries' top message
/// hides the cause (tar's "failed to unpack", hyper's "transport error").
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg = format!("{msg}: {t}");
        }
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_is_read_back_in_chunks() {
        let (tx, rx) = mpsc::channel::<Vec<u8>>(4);
        let data: Vec<u8> = (0..CHUNK * 2 + 17).map(|i| i as u8).collect();
        let want = data.clone();
        let w = std::thread::spawn(move || {
            let mut w = ChunkWriter::new(tx, |c| c, "gone");
            w.write_all(&data).unwrap();
            w.flush().unwrap();
        });
        let mut got = Vec::new();
        ChunkReader::new(rx).read_to_end(&mut got).unwrap();
        w.join().unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn a_closed_receiver_is_a_broken_pipe_naming_who_left() {
        let (tx, rx) = mpsc::channel::<Vec<u8>>(1);
        drop(rx);
        let mut w = ChunkWriter::new(tx, |c| c, "the client went away");
        let e = w.write_all(&vec![0; CHUNK]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(e.to_string(), "the client went away");
    }

    #[test]
    fn the_chain_names_each_cause_once() {
        #[derive(Debug)]
        struct Outer(io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("failed to unpack")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(io::Error::other("No space left on device"));
        assert_eq!(error_chain(&e), "failed to unpack: No space left on device");
    }
}
