//! The container log file: the shim appends framed records, the runtime reads them.
//!
//! A record is `stream: u8 | time: i64 LE (unix ns) | len: u32 LE | data`. Binary framing
//! keeps any byte the container writes (JSON lines would mangle non-UTF-8 output). Stream 0
//! is a file's first record, its generation (`data`: u64 LE), which orders rotated files
//! (`rotate.rs` writes them, `chain.rs` reads across them); files without one are
//! generation 0. `config.rs` is `--log-driver`/`--log-opt` and agentd's `[logs]` defaults.

pub mod chain;
pub mod config;
pub mod rotate;

pub use chain::Chain;
pub use config::{LogConfig, LogDefaults};
pub use rotate::{LogWriter, Rotation};

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Which stream a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

/// One log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub stream: Stream,
    pub time: i64,
    pub data: Vec<u8>,
}

const HEADER: usize = 13;
/// The stream byte of a generation record.
const META: u8 = 0;
/// Size of a generation record.
pub const META_LEN: u64 = HEADER as u64 + 8;
/// Longest data of one record; longer lines are split, as Docker does at 16 KiB.
pub const MAX_RECORD: usize = 16 * 1024;

/// Frames `data` as records, one per line (a trailing partial line is its own record),
/// into `buf`; returns where each record ends in `buf`.
pub fn frame(buf: &mut Vec<u8>, stream: Stream, time: i64, data: &[u8]) -> Vec<usize> {
    buf.reserve(data.len() + HEADER * 2);
    let mut ends = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let end =
            rest.iter().take(MAX_RECORD).position(|&b| b == b'\n').map(|i| i + 1).unwrap_or(rest.len().min(MAX_RECORD));
        let (line, tail) = rest.split_at(end);
        buf.push(stream as u8);
        buf.extend_from_slice(&time.to_le_bytes());
        buf.extend_from_slice(&(line.len() as u32).to_le_bytes());
        buf.extend_from_slice(line);
        ends.push(buf.len());
        rest = tail;
    }
    ends
}

/// Appends `data` as records, one per line (a trailing partial line is its own record).
pub fn write_records<W: Write>(w: &mut W, stream: Stream, time: i64, data: &[u8]) -> io::Result<()> {
    let mut buf = Vec::new();
    frame(&mut buf, stream, time, data);
    // One write per chunk: a reader never sees half a record as long as it stops at EOF
    // and retries (see `Reader`).
    w.write_all(&buf)
}

/// The generation record a log file starts with.
pub fn meta_record(generation: u64, time: i64) -> Vec<u8> {
    let mut buf = Vec::with_capacity(META_LEN as usize);
    buf.push(META);
    buf.extend_from_slice(&time.to_le_bytes());
    buf.extend_from_slice(&8u32.to_le_bytes());
    buf.extend_from_slice(&generation.to_le_bytes());
    buf
}

/// The generation of a log file from its first bytes: `None` while they are not all there
/// (an empty file), 0 for a file that starts with output (written before generations).
pub fn generation_of(head: &[u8]) -> Option<u64> {
    match head.first() {
        None => None,
        Some(&META) if head.len() < META_LEN as usize => None,
        Some(&META) => {
            let mut g = [0u8; 8];
            g.copy_from_slice(&head[HEADER..HEADER + 8]);
            Some(u64::from_le_bytes(g))
        }
        Some(_) => Some(0),
    }
}

/// Appends `data` in the CRI log format kubelet reads (`kubectl logs`):
/// `<RFC 3339 nano time> <stdout|stderr> <F|P> <line>\n`, `P` marking a partial line
/// (no newline yet, or longer than [`MAX_RECORD`]).
pub fn write_cri<W: Write>(w: &mut W, stream: Stream, time: i64, data: &[u8]) -> io::Result<()> {
    let ts = chrono::DateTime::from_timestamp_nanos(time).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let name = if stream == Stream::Stdout { "stdout" } else { "stderr" };
    let mut buf = Vec::with_capacity(data.len() + 48);
    let mut rest = data;
    while !rest.is_empty() {
        let nl = rest.iter().take(MAX_RECORD).position(|&b| b == b'\n');
        let (line, tail, tag) = match nl {
            Some(i) => (&rest[..i], &rest[i + 1..], "F"),
            None => {
                let end = rest.len().min(MAX_RECORD);
                (&rest[..end], &rest[end..], "P")
            }
        };
        buf.extend_from_slice(format!("{ts} {name} {tag} ").as_bytes());
        buf.extend_from_slice(line);
        buf.push(b'\n');
        rest = tail;
    }
    w.write_all(&buf)
}

/// How long an appender whose write failed (a full disk) drops output before it tries again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// An append-only log the shim writes while it drains the container's output. A write that
/// fails (no space) never blocks or stops the draining: the partial record is cut off again
/// (readers never see half a record), output is dropped for [`RETRY_AFTER`], then writing
/// resumes — the log stops growing while the disk is full and grows again once it is not.
pub struct Appender {
    file: Option<File>,
    /// Length of the file after the last complete write.
    len: u64,
    paused_until: Option<Instant>,
    /// Bytes dropped since the log last accepted a write.
    pub dropped: u64,
}

impl Appender {
    /// Opens (creating) `path` for appending; a file that cannot be opened drops everything.
    pub fn open(path: &Path) -> Appender {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).ok();
        let len = file.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.len()).unwrap_or(0);
        Appender { file, len, paused_until: None, dropped: 0 }
    }

    /// Length of the file after the last complete write.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes what `put` makes of the file; false when the output was dropped.
    pub fn write(&mut self, size: usize, put: impl FnOnce(&mut File) -> io::Result<()>) -> bool {
        let Some(f) = self.file.as_mut() else {
            return false;
        };
        if self.paused_until.is_some_and(|t| Instant::now() < t) {
            self.dropped += size as u64;
            return false;
        }
        match put(f) {
            Ok(()) => {
                self.paused_until = None;
                self.dropped = 0;
                self.len = f.metadata().map(|m| m.len()).unwrap_or(self.len + size as u64);
                true
            }
            Err(_) => {
                // Cut a partial record off (shrinking needs no space); appends go to the end.
                let _ = f.set_len(self.len);
                self.paused_until = Some(Instant::now() + RETRY_AFTER);
                self.dropped += size as u64;
                false
            }
        }
    }
}

/// Reads records from a growing file, tolerating a record that is still being written.
pub struct Reader<R> {
    inner: R,
    pending: Vec<u8>,
    /// The file's generation, once its first record was read (or given).
    generation: Option<u64>,
    /// Whether anything was read yet (a first record that is output: generation 0).
    started: bool,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Reader<R> {
        Reader { inner, pending: Vec::new(), generation: None, started: false }
    }

    /// A reader positioned after the start of a file whose generation is known.
    pub fn resumed(inner: R, generation: Option<u64>) -> Reader<R> {
        Reader { inner, pending: Vec::new(), generation, started: true }
    }

    /// The file's generation, once known.
    pub fn generation(&self) -> Option<u64> {
        self.generation
    }

    /// Reads the file's first record if needed to tell its generation (`None`: nothing
    /// there yet).
    pub fn peek_generation(&mut self) -> io::Result<Option<u64>> {
        while self.generation.is_none() && !self.started && self.pending.len() < META_LEN as usize {
            if !self.fill()? {
                break;
            }
            if self.pending.first().is_some_and(|&b| b != META) {
                break;
            }
        }
        if self.generation.is_none() && !self.started {
            return Ok(generation_of(&self.pending));
        }
        Ok(self.generation)
    }

    fn fill(&mut self) -> io::Result<bool> {
        let mut buf = [0u8; 64 * 1024];
        let n = self.inner.read(&mut buf)?;
        self.pending.extend_from_slice(&buf[..n]);
        Ok(n > 0)
    }

    /// The next complete record, or `None` at the current end of the file.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        loop {
            if self.pending.len() >= HEADER {
                let len = u32::from_le_bytes([self.pending[9], self.pending[10], self.pending[11], self.pending[12]])
                    as usize;
                if self.pending.len() >= HEADER + len {
                    let kind = self.pending[0];
                    let first = !self.started;
                    self.started = true;
                    if kind == META {
                        if len == 8 {
                            self.generation = generation_of(&self.pending[..META_LEN as usize]);
                        }
                        self.pending.drain(..HEADER + len);
                        continue;
                    }
                    if first {
                        self.generation = Some(0);
                    }
                    let stream = if kind == 2 { Stream::Stderr } else { Stream::Stdout };
                    let mut t = [0u8; 8];
                    t.copy_from_slice(&self.pending[1..9]);
                    let data = self.pending[HEADER..HEADER + len].to_vec();
                    self.pending.drain(..HEADER + len);
                    return Ok(Some(Record { stream, time: i64::from_le_bytes(t), data }));
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cri_format_marks_partial_lines() {
        let mut out = Vec::new();
        write_cri(&mut out, Stream::Stdout, 1_500_000_000_123_456_789, b"one\ntwo").unwrap();
        write_cri(&mut out, Stream::Stderr, 0, b"three\n").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2017-07-14T02:40:00.123456789Z stdout F one\n2017-07-14T02:40:00.123456789Z stdout P two\n\
             1970-01-01T00:00:00.000000000Z stderr F three\n"
        );
    }

    use super::*;

    #[test]
    fn lines_round_trip_and_partial_records_wait() {
        let mut f = Vec::new();
        write_records(&mut f, Stream::Stdout, 7, b"a\nbc\nd").unwrap();
        write_records(&mut f, Stream::Stderr, 8, &[0xff, b'\n']).unwrap();
        let mut r = Reader::new(&f[..f.len() - 1]);
        let got: Vec<_> = std::iter::from_fn(|| r.next_record().unwrap()).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].data, b"a\n");
        assert_eq!(got[1].data, b"bc\n");
        assert_eq!(got[2].data, b"d");
        let mut r = Reader::new(&f[..]);
        let all: Vec<_> = std::iter::from_fn(|| r.next_record().unwrap()).collect();
        assert_eq!(all[3], Record { stream: Stream::Stderr, time: 8, data: vec![0xff, b'\n'] });
    }

    #[test]
    fn a_full_device_drops_output_and_never_fails() {
        // /dev/full answers every write with ENOSPC.
        let mut a = Appender::open(Path::new("/dev/full"));
        assert!(!a.write(3, |f| write_records(f, Stream::Stdout, 1, b"ab\n")));
        assert!(!a.write(3, |f| write_records(f, Stream::Stdout, 1, b"cd\n")));
        assert_eq!(a.dropped, 6);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let mut a = Appender::open(&p);
        assert!(a.write(3, |f| write_records(f, Stream::Stdout, 1, b"ab\n")));
        // A write that fails half-way is cut off again.
        assert!(!a.write(3, |f| {
            f.write_all(&[1, 2, 3])?;
            Err(io::Error::from_raw_os_error(libc::ENOSPC))
        }));
        let mut r = Reader::new(std::fs::File::open(&p).unwrap());
        assert_eq!(r.next_record().unwrap().unwrap().data, b"ab\n");
        assert!(r.next_record().unwrap().is_none());
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 16);
    }

    #[test]
    fn long_lines_are_split() {
        let mut f = Vec::new();
        write_records(&mut f, Stream::Stdout, 1, &vec![b'x'; MAX_RECORD + 10]).unwrap();
        let mut r = Reader::new(&f[..]);
        assert_eq!(r.next_record().unwrap().unwrap().data.len(), MAX_RECORD);
        assert_eq!(r.next_record().unwrap().unwrap().data.len(), 10);
    }
}
