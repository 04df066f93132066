//! The shim's side of a log: records appended to `<base>`, which is rotated when it would
//! grow past `max_size` — `<base>` becomes `<base>.1`, `<base>.1` becomes `<base>.2`… and
//! the oldest beyond `max_file` files is removed (`max_file` 1: the file is replaced), like
//! docker's json-file driver. With `compress`, `<base>.1` is gzipped in a thread beside the
//! relay (into `<base>.1.gz.tmp`, renamed to `<base>.1.gz`); the next rotation waits for it.
//! Every file starts with its generation record, so readers (`chain.rs`) can follow from a
//! file to the next however many rotations happened meanwhile.
//!
//! A file holds at most `max_size` bytes, or one record alone when that record is larger.

use super::{frame, generation_of, meta_record, Appender, Stream, META_LEN};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// How a log file is rotated.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rotation {
    pub max_size: u64,
    /// Files kept, the current one included (at least 1).
    pub max_file: u32,
    pub compress: bool,
}

/// `<base>.<k>`, or `<base>.<k>.gz`.
pub fn rotated(base: &Path, k: u32, gz: bool) -> PathBuf {
    let mut s = base.as_os_str().to_os_string();
    s.push(format!(".{k}{}", if gz { ".gz" } else { "" }));
    PathBuf::from(s)
}

/// The generation of the file at `path` (gzipped when it ends in `.gz`), if it can be told.
pub fn file_generation(path: &Path) -> Option<u64> {
    let f = std::fs::File::open(path).ok()?;
    let mut head = Vec::with_capacity(META_LEN as usize);
    let mut r: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    r.by_ref().take(META_LEN).read_to_end(&mut head).ok()?;
    generation_of(&head)
}

/// Appends a container's output to its log, rotating it.
pub struct LogWriter {
    base: PathBuf,
    rotation: Option<Rotation>,
    out: Appender,
    generation: u64,
    compressing: Option<std::thread::JoinHandle<()>>,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

impl LogWriter {
    /// Opens `base` for appending (a container started again goes on where it was); a new
    /// file gets the generation after the newest rotated one.
    pub fn open(base: &Path, rotation: Option<Rotation>) -> LogWriter {
        let mut out = Appender::open(base);
        let generation = if out.is_empty() {
            let newest = (1..=rotation.map(|r| r.max_file).unwrap_or(1))
                .flat_map(|k| [rotated(base, k, false), rotated(base, k, true)])
                .filter_map(|p| file_generation(&p))
                .max();
            let g = newest.map(|g| g + 1).unwrap_or(0);
            let meta = meta_record(g, now());
            out.write(meta.len(), |f| f.write_all(&meta));
            g
        } else {
            file_generation(base).unwrap_or(0)
        };
        LogWriter { base: base.to_path_buf(), rotation, out, generation, compressing: None }
    }

    /// Appends `data` as records, rotating between records where the file would outgrow
    /// its size; false when (some of) the output was dropped (no space).
    pub fn write(&mut self, stream: Stream, time: i64, data: &[u8]) -> bool {
        let mut buf = Vec::new();
        let ends = frame(&mut buf, stream, time, data);
        let Some(rot) = self.rotation else {
            return self.out.write(buf.len(), |f| f.write_all(&buf));
        };
        let mut ok = true;
        let (mut from, mut start) = (0, 0);
        // The file's size once the records from `from` on are written.
        let mut size = self.out.len();
        for end in ends {
            let n = (end - start) as u64;
            if size + n > rot.max_size && size > META_LEN {
                ok &= self.flush(&buf[from..start]);
                self.rotate(rot);
                size = self.out.len();
                from = start;
            }
            size += n;
            start = end;
        }
        ok & self.flush(&buf[from..])
    }

    fn flush(&mut self, chunk: &[u8]) -> bool {
        chunk.is_empty() || self.out.write(chunk.len(), |f| f.write_all(chunk))
    }

    /// Moves the files one place up, drops the oldest, starts a new `base`.
    fn rotate(&mut self, rot: Rotation) {
        if let Some(h) = self.compressing.take() {
            let _ = h.join();
        }
        let keep = rot.max_file.max(1);
        let gone = |p: &Path, what: &str| {
            if let Err(e) = std::fs::remove_file(p) {
                if e.kind() != io::ErrorKind::NotFound {
                    eprintln!("agent-shim: log rotation: {what} {}: {e}", p.display());
                }
            }
        };
        let moved = |a: &Path, b: &Path| {
            if let Err(e) = std::fs::rename(a, b) {
                if e.kind() != io::ErrorKind::NotFound {
                    eprintln!("agent-shim: log rotation: renaming {} to {}: {e}", a.display(), b.display());
                }
            }
        };
        if keep == 1 {
            gone(&self.base, "removing");
        } else {
            for gz in [false, true] {
                gone(&rotated(&self.base, keep - 1, gz), "removing");
                for k in (1..keep - 1).rev() {
                    moved(&rotated(&self.base, k, gz), &rotated(&self.base, k + 1, gz));
                }
            }
            moved(&self.base, &rotated(&self.base, 1, false));
        }
        self.generation += 1;
        // The old file is closed here, which wakes its followers (inotify IN_CLOSE_WRITE).
        self.out = Appender::open(&self.base);
        let meta = meta_record(self.generation, now());
        self.out.write(meta.len(), |f| f.write_all(&meta));
        if rot.compress && keep > 1 {
            let plain = rotated(&self.base, 1, false);
            self.compressing = std::thread::Builder::new()
                .name("log-gzip".into())
                .spawn(move || {
                    if let Err(e) = gzip(&plain) {
                        eprintln!("agent-shim: log rotation: compressing {}: {e}", plain.display());
                    }
                })
                .map_err(|e| eprintln!("agent-shim: log rotation: no thread to compress: {e}"))
                .ok();
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if let Some(h) = self.compressing.take() {
            let _ = h.join();
        }
    }
}

/// `<path>` → `<path>.gz` (complete before it appears under that name), then `<path>` goes.
fn gzip(path: &Path) -> io::Result<()> {
    let mut gz = path.as_os_str().to_os_string();
    gz.push(".gz");
    let gz = PathBuf::from(gz);
    let mut tmp = gz.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let res = (|| {
        let mut src = std::fs::File::open(path)?;
        let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&tmp)?, flate2::Compression::fast());
        io::copy(&mut src, &mut enc)?;
        enc.finish()?.sync_all()?;
        std::fs::rename(&tmp, &gz)?;
        std::fs::remove_file(path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::super::{Chain, Reader};
    use super::*;

    fn files(dir: &Path) -> Vec<(String, u64)> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
            .collect();
        v.sort();
        v
    }

    fn lines(base: &Path) -> Vec<String> {
        let mut c = Chain::from_start(base);
        std::iter::from_fn(|| c.next_record().unwrap()).map(|r| String::from_utf8(r.data).unwrap()).collect()
    }

    #[test]
    fn rotation_keeps_max_file_files_of_max_size_and_every_newest_line() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("log");
        let rot = Rotation { max_size: 100, max_file: 3, compress: false };
        let mut w = LogWriter::open(&base, Some(rot));
        // 10-byte lines, 23 bytes framed: 3 per file after the 21-byte generation record.
        for i in 0..40 {
            assert!(w.write(Stream::Stdout, i, format!("line {i:04}\n").as_bytes()));
        }
        let f = files(d.path());
        assert_eq!(f.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["log", "log.1", "log.2"]);
        assert!(f.iter().all(|(_, len)| *len <= 100), "{f:?}");
        let got = lines(&base);
        let want: Vec<String> = (40 - got.len()..40).map(|i| format!("line {i:04}\n")).collect();
        assert_eq!(got, want);
        assert!(got.len() >= 7, "{got:?}");
        assert_eq!(file_generation(&base), Some(13));
        // Started again: appends to the current file, same generation.
        drop(w);
        let mut w = LogWriter::open(&base, Some(rot));
        assert_eq!(w.generation, 13);
        assert!(w.write(Stream::Stderr, 99, b"again\n"));
        assert_eq!(lines(&base).last().unwrap(), "again\n");
    }

    #[test]
    fn one_chunk_is_split_between_files_and_a_big_record_stands_alone() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("log");
        let mut w = LogWriter::open(&base, Some(Rotation { max_size: 64, max_file: 2, compress: false }));
        let chunk: String = (0..6).map(|i| format!("l{i}\n")).collect();
        w.write(Stream::Stdout, 1, chunk.as_bytes());
        assert!(files(d.path()).iter().all(|(_, l)| *l <= 64));
        w.write(Stream::Stdout, 2, &[b'x'; 200]);
        let f = files(d.path());
        assert_eq!(f[0], ("log".to_string(), META_LEN + 13 + 200), "{f:?}");
        let mut r = Reader::new(std::fs::File::open(&base).unwrap());
        assert_eq!(r.next_record().unwrap().unwrap().data.len(), 200);
    }

    #[test]
    fn max_file_one_replaces_the_file() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("log");
        let mut w = LogWriter::open(&base, Some(Rotation { max_size: 50, max_file: 1, compress: false }));
        for i in 0..10 {
            w.write(Stream::Stdout, i, format!("n{i}\n").as_bytes());
        }
        assert_eq!(files(d.path()).len(), 1);
        assert_eq!(lines(&base).last().unwrap(), "n9\n");
    }

    #[test]
    fn compressed_files_are_read_in_order() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("log");
        let mut w = LogWriter::open(&base, Some(Rotation { max_size: 80, max_file: 4, compress: true }));
        for i in 0..30 {
            w.write(Stream::Stdout, i, format!("c{i:02}\n").as_bytes());
        }
        drop(w);
        let names: Vec<_> = files(d.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["log", "log.1.gz", "log.2.gz", "log.3.gz"]);
        let got = lines(&base);
        let first: usize = got[0][1..3].parse().unwrap();
        assert_eq!(got, (first..30).map(|i| format!("c{i:02}\n")).collect::<Vec<_>>());
    }
}
