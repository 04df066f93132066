//! Reading a log across its rotated files, oldest first, and on into the current one.
//!
//! A file is finished once `<base>` is another file (or gone): the shim only writes to the
//! file at `<base>`. Its successor is the file with the next higher generation, looked up
//! by generation among `<base>.N[.gz]` … `<base>` whenever the chain moves on, so a reader
//! that fell behind several rotations goes on with the oldest file still kept (what was
//! rotated away meanwhile is lost, as with docker), and one that kept up sees each record
//! once. An open file stays readable after the shim renamed or removed it.

use super::{rotate, Reader, Record};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

type Source = Box<dyn Read + Send>;

struct Current {
    reader: Reader<Source>,
    /// (device, inode) of the file: `<base>` still being it means it may grow.
    id: Option<(u64, u64)>,
    finished: bool,
}

/// A cursor over a log's files.
pub struct Chain {
    base: PathBuf,
    cur: Option<Current>,
    switched: bool,
}

fn id_of(m: &std::fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// The log's files, oldest first: `<base>.N[.gz]` … `<base>.1[.gz]`, `<base>` (those that
/// exist; `.tmp` files of a compression in progress are not counted).
pub fn files(base: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (base.parent(), base.file_name().and_then(|n| n.to_str())) else {
        return vec![];
    };
    let mut rotated: Vec<(u32, bool, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name();
            let rest = n.to_str()?.strip_prefix(name)?.strip_prefix('.')?;
            let (k, gz) = match rest.strip_suffix(".gz") {
                Some(k) => (k, true),
                None => (rest, false),
            };
            let k: u32 = k.parse().ok()?;
            Some((k, gz, e.path()))
        })
        .collect();
    // Oldest first; of a plain file and its finished .gz (a compression ending), the plain one.
    rotated.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, _, p)| p).collect();
    if base.exists() {
        out.push(base.to_path_buf());
    }
    out
}

fn open(path: &Path) -> Option<Current> {
    let f = File::open(path).ok()?;
    let id = f.metadata().ok().map(|m| id_of(&m));
    let gz = path.extension().is_some_and(|e| e == "gz");
    let src: Source = if gz { Box::new(flate2::read::GzDecoder::new(f)) } else { Box::new(f) };
    Some(Current { reader: Reader::new(src), id: if gz { None } else { id }, finished: gz })
}

impl Chain {
    /// From the oldest record kept.
    pub fn from_start(base: &Path) -> Chain {
        Chain { base: base.to_path_buf(), cur: None, switched: false }
    }

    /// From the current end of the log (attach): only what is written from now on.
    pub fn at_end(base: &Path) -> Chain {
        let cur = (|| {
            let mut f = File::open(base).ok()?;
            let id = f.metadata().ok().map(|m| id_of(&m));
            let mut head = [0u8; super::META_LEN as usize];
            let n = f.read_at(&mut head, 0).ok()?;
            let generation = super::generation_of(&head[..n]);
            f.seek(SeekFrom::End(0)).ok()?;
            let src: Source = Box::new(f);
            Some(Current { reader: Reader::resumed(src, generation), id, finished: false })
        })();
        Chain { base: base.to_path_buf(), cur, switched: false }
    }

    /// Whether the chain moved to another file since the last call (a follower watching
    /// `<base>` for growth watches the new file).
    pub fn take_switched(&mut self) -> bool {
        std::mem::take(&mut self.switched)
    }

    /// The next record, or `None` once the current end of the log is reached.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        loop {
            let Some(cur) = self.cur.as_mut() else {
                match self.successor(None) {
                    Some(c) => {
                        self.cur = Some(c);
                        self.switched = true;
                        continue;
                    }
                    None => return Ok(None),
                }
            };
            if let Some(r) = cur.reader.next_record()? {
                return Ok(Some(r));
            }
            if !cur.finished {
                let now = std::fs::metadata(&self.base).ok().map(|m| id_of(&m));
                if now.is_some() && now == cur.id {
                    return Ok(None);
                }
                // Rotated away: what the shim wrote before moving it is there now.
                cur.finished = true;
                continue;
            }
            let after = cur.reader.peek_generation()?.or(Some(0));
            match self.successor(after) {
                Some(c) => {
                    self.cur = Some(c);
                    self.switched = true;
                }
                None => return Ok(None),
            }
        }
    }

    /// The oldest file after generation `after` (`None`: the oldest of all). `<base>` before
    /// its generation record is written counts as the newest.
    fn successor(&self, after: Option<u64>) -> Option<Current> {
        for p in files(&self.base) {
            let Some(mut c) = open(&p) else { continue };
            let g = c.reader.peek_generation().ok().flatten();
            let fits = match (after, g) {
                (None, _) => true,
                (Some(a), Some(g)) => g > a,
                (Some(_), None) => p == self.base,
            };
            if fits {
                return Some(c);
            }
        }
        None
    }
}

/// The generation of each of a log's files, oldest first (for tests and checks).
pub fn generations(base: &Path) -> Vec<Option<u64>> {
    files(base).iter().map(|p| rotate::file_generation(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{LogWriter, Rotation, Stream};
    use super::*;

    fn next_all(c: &mut Chain) -> Vec<String> {
        std::iter::from_fn(|| c.next_record().unwrap()).map(|r| String::from_utf8(r.data).unwrap()).collect()
    }

    #[test]
    fn a_follower_sees_every_line_once_across_rotations() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("log");
        let mut w = LogWriter::open(&base, Some(Rotation { max_size: 60, max_file: 5, compress: false }));
        let mut c = Chain::from_start(&base);
        let mut seen = Vec::new();
        for i in 0..30 {
            w.write(Stream::Stdout, i, format!("f{i:02}\n").as_bytes());
            // Read after every other write: the chain crosses rotations in both states.
            if i % 2 == 1 {
                seen.extend(next_all(&mut c));
            }
        }
        seen.extend(next_all(&mut c));
        assert_eq!(seen, (0..30).map(|i| format!("f{i:02}\n")).collect::<Vec<_>>());
        assert!(generations(&base).len() <= 5);
    }

    #[test]
    fn a_reader_far_behind_goes_on_with_the_oldest_kept() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("log");
        let mut w = LogWriter::open(&base, Some(Rotation { max_size: 60, max_file: 2, compress: false }));
        w.write(Stream::Stdout, 0, b"first\n");
        let mut c = Chain::from_start(&base);
        assert_eq!(next_all(&mut c), ["first\n"]);
        for i in 0..20 {
            w.write(Stream::Stdout, i, format!("b{i:02}\n").as_bytes());
        }
        let got = next_all(&mut c);
        // The rest of the file it had open (b00 went in beside "first"), then the oldest
        // file kept (b17 on: 2 files of 2 lines), consecutive to the end.
        assert_eq!(got, ["b00\n", "b17\n", "b18\n", "b19\n"]);
    }

    #[test]
    fn at_end_sees_only_new_output_and_logs_without_generations_still_read() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("log");
        // A log written before generation records.
        let mut f = File::create(&base).unwrap();
        super::super::write_records(&mut f, Stream::Stdout, 1, b"old\n").unwrap();
        drop(f);
        assert_eq!(next_all(&mut Chain::from_start(&base)), ["old\n"]);
        let mut w = LogWriter::open(&base, None);
        let mut c = Chain::at_end(&base);
        w.write(Stream::Stdout, 2, b"new\n");
        assert_eq!(next_all(&mut c), ["new\n"]);
        assert!(next_all(&mut Chain::from_start(&d.path().join("missing"))).is_empty());
    }
}
