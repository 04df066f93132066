//! Unpacks one layer tar (plain, gzip or zstd) into a directory, faithfully and safely:
//! ownership, modes, mtimes, xattrs, links and device nodes are kept; OCI whiteouts become
//! overlayfs whiteouts; entries that would land outside the directory are refused.

use sha2::{Digest, Sha256};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {0:?} escapes the layer root")]
    Escape(String),
    #[error("reading layer: {0}")]
    Io(#[from] io::Error),
    #[error("unpacking layer entry {path:?}: {}", chain(.err))]
    Entry { path: String, err: io::Error },
    #[error("layer is larger than the limit of {0} bytes uncompressed (images.max_layer_size)")]
    TooLarge(u64),
}

/// An I/O error with the errors it wraps (the tar crate's "failed to unpack `path`" hides
/// why: a bad header field, a permission, a full disk).
fn chain(e: &io::Error) -> String {
    agent_proto::chunks::error_chain(e)
}

/// Default bound on a layer's uncompressed size: a decompression bomb stops here.
pub const DEFAULT_MAX_LAYER: u64 = 32 << 30;

/// The result of unpacking a layer.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// `sha256:<hex>` of the uncompressed tar stream.
    pub diff_id: String,
    /// Bytes of regular-file content unpacked.
    pub size: u64,
}

/// A reader that hashes everything read through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    /// Uncompressed bytes read so far, and the most allowed.
    read: u64,
    max: u64,
}

/// Marks the error `Hashing` returns when the limit is passed.
#[derive(Debug)]
struct OverLimit;

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("layer size limit")
    }
}

impl std::error::Error for OverLimit {}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            return Err(io::Error::other(OverLimit));
        }
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Whether `OverLimit` is somewhere in the chain. The tar reader wraps our error, and an
/// `io::Error`'s `source()` skips the error it carries, so look inside each one too.
fn over_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.is::<OverLimit>() {
        return true;
    }
    if let Some(inner) = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
        if over_limit(inner) {
            return true;
        }
    }
    e.source().is_some_and(over_limit)
}

/// Wraps `r` in the right decompressor, chosen by its magic bytes.
pub fn decompress<'a, R: Read + 'a>(r: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut b = BufReader::with_capacity(256 * 1024, r);
    let head = b.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(b)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let d = ruzstd::decoding::StreamingDecoder::new(b)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
        Ok(Box::new(d))
    } else {
        Ok(Box::new(b))
    }
}

/// Checks that a tar path stays inside the root: relative, no `..`.
fn safe_relative(p: &Path) -> Result<PathBuf, UnpackError> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return Err(UnpackError::Escape(p.display().to_string())),
        }
    }
    Ok(out)
}

/// Checks that no existing ancestor of `rel` under `root` is a symlink, so that an
/// entry cannot be written through a link planted by an earlier entry.
fn no_symlink_ancestors(root: &Path, rel: &Path) -> Result<(), UnpackError> {
    let mut cur = root.to_path_buf();
    let mut comps = rel.components().peekable();
    while let Some(c) = comps.next() {
        if comps.peek().is_none() {
            break;
        }
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => return Err(UnpackError::Escape(rel.display().to_string())),
            _ => {}
        }
    }
    Ok(())
}

fn mknod_whiteout(path: &Path) -> io::Result<()> {
    use nix::sys::stat::{mknod, Mode, SFlag};
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path)?,
        Ok(_) => std::fs::remove_file(path)?,
        Err(_) => {}
    }
    mknod(path, SFlag::S_IFCHR, Mode::empty(), 0).map_err(io::Error::from)
}

fn set_opaque(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: both strings are NUL-terminated and live across the call.
    let r = unsafe { libc::lsetxattr(c.as_ptr(), c"trusted.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Unpacks the (possibly compressed) layer stream `r` into `dest`, which must exist.
pub fn unpack_layer<R: Read>(r: R, dest: &Path) -> Result<Unpacked, UnpackError> {
    unpack_layer_limited(r, dest, DEFAULT_MAX_LAYER)
}

/// Like [`unpack_layer`], refusing a layer whose uncompressed stream exceeds `max` bytes.
pub fn unpack_layer_limited<R: Read>(r: R, dest: &Path, max: u64) -> Result<Unpacked, UnpackError> {
    match unpack_inner(r, dest, max) {
        Err(UnpackError::Io(e)) | Err(UnpackError::Entry { err: e, .. }) if over_limit(&e) => {
            Err(UnpackError::TooLarge(max))
        }
        other => other,
    }
}

/// A device node or FIFO, made as the layer says (the tar crate would write an empty
/// regular file instead). The device cgroup decides whether a container may open it, and
/// under `--userns` the root is mounted nodev.
fn special_file<R: Read>(entry: &tar::Entry<'_, R>, path: &Path) -> io::Result<()> {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    let h = entry.header();
    let et = h.entry_type();
    let kind = if et.is_character_special() {
        SFlag::S_IFCHR
    } else if et.is_block_special() {
        SFlag::S_IFBLK
    } else {
        SFlag::S_IFIFO
    };
    let dev = if kind == SFlag::S_IFIFO {
        0
    } else {
        makedev(u64::from(h.device_major()?.unwrap_or(0)), u64::from(h.device_minor()?.unwrap_or(0)))
    };
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path)?,
        Ok(_) => std::fs::remove_file(path)?,
        Err(_) => {}
    }
    let mode = Mode::from_bits_truncate(h.mode()? & 0o7777);
    mknod(path, kind, mode, dev)?;
    // mknod honours the umask: set the mode exactly.
    nix::sys::stat::fchmodat(nix::fcntl::AT_FDCWD, path, mode, nix::sys::stat::FchmodatFlags::FollowSymlink)?;
    let (uid, gid) = (h.uid()? as u32, h.gid()? as u32);
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    Ok(())
}

fn unpack_inner<R: Read>(r: R, dest: &Path, max: u64) -> Result<Unpacked, UnpackError> {
    let mut hashing = Hashing { inner: decompress(r)?, hash: Sha256::new(), read: 0, max };
    let mut size = 0u64;
    {
        let mut ar = tar::Archive::new(&mut hashing);
        ar.set_preserve_permissions(true);
        ar.set_preserve_ownerships(true);
        ar.set_preserve_mtime(true);
        ar.set_unpack_xattrs(true);
        ar.set_overwrite(true);
        for entry in ar.entries()? {
            let mut entry = entry?;
            let raw = entry.path()?.into_owned();
            let rel = safe_relative(&raw)?;
            if rel.as_os_str().is_empty() {
                continue;
            }
            no_symlink_ancestors(dest, &rel)?;
            let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
            let werr = |err| UnpackError::Entry { path: raw.display().to_string(), err };
            if name == ".wh..wh..opq" {
                set_opaque(&dest.join(&parent)).map_err(werr)?;
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.") {
                std::fs::create_dir_all(dest.join(&parent)).map_err(werr)?;
                mknod_whiteout(&dest.join(&parent).join(hidden)).map_err(werr)?;
                continue;
            }
            if let Some(link) = entry.link_name()? {
                let et = entry.header().entry_type();
                if et.is_hard_link() {
                    let l = safe_relative(&link)?;
                    no_symlink_ancestors(dest, &l)?;
                }
            }
            let et = entry.header().entry_type();
            if et.is_character_special() || et.is_block_special() || et.is_fifo() {
                special_file(&entry, &dest.join(&rel)).map_err(werr)?;
                continue;
            }
            size += entry.header().size().unwrap_or(0);
            let ok = entry.unpack_in(dest).map_err(werr)?;
            if !ok {
                return Err(UnpackError::Escape(raw.display().to_string()));
            }
            // A layer half on disk: the test hook's point of a crash mid-unpack.
            crate::crash::point("unpack.mid_layer");
        }
    }
    // The tar reader may stop before the stream's padding: hash it too.
    io::copy(&mut hashing, &mut io::sink())?;
    Ok(Unpacked { diff_id: format!("sha256:{}", hex::encode(hashing.hash.finalize())), size })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            b.append_data(&mut h, p, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn device_nodes_and_fifos_are_made_as_such() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (mknod)");
            return;
        }
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let mut b = tar::Builder::new(Vec::new());
        for (p, kind) in [("dev/zero", tar::EntryType::Char), ("run/pipe", tar::EntryType::Fifo)] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(0);
            h.set_mode(0o620);
            h.set_uid(7);
            h.set_gid(8);
            h.set_device_major(1).unwrap();
            h.set_device_minor(5).unwrap();
            b.append_data(&mut h, p, std::io::empty()).unwrap();
        }
        let t = b.into_inner().unwrap();
        let d = tempfile::tempdir().unwrap();
        unpack_layer(t.as_slice(), d.path()).unwrap();
        let z = std::fs::symlink_metadata(d.path().join("dev/zero")).unwrap();
        assert!(z.file_type().is_char_device());
        assert_eq!((z.rdev(), z.mode() & 0o7777, z.uid(), z.gid()), (nix::sys::stat::makedev(1, 5), 0o620, 7, 8));
        assert!(std::fs::symlink_metadata(d.path().join("run/pipe")).unwrap().file_type().is_fifo());
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 4 << 20];
        let t = tar_of(&[("big", &zeros)]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &t).unwrap();
        let small = gz.finish().unwrap();
        assert!(small.len() < 64 * 1024, "4 MiB of zeros compress to a few KiB");
        let d = tempfile::tempdir().unwrap();
        let e = unpack_layer_limited(small.as_slice(), d.path(), 1 << 20).unwrap_err();
        assert!(matches!(e, UnpackError::TooLarge(1048576)), "{e}");
        assert!(e.to_string().contains("larger than the limit of 1048576 bytes"), "{e}");
        assert!(unpack_layer_limited(small.as_slice(), tempfile::tempdir().unwrap().path(), 8 << 20).is_ok());
    }

    #[test]
    fn diff_id_is_hash_of_uncompressed_stream() {
        let t = tar_of(&[("a/b.txt", b"hello")]);
        let want = format!("sha256:{}", hex::encode(Sha256::digest(&t)));
        let d = tempfile::tempdir().unwrap();
        let u = unpack_layer(t.as_slice(), d.path()).unwrap();
        assert_eq!(u.diff_id, want);
        assert_eq!(std::fs::read(d.path().join("a/b.txt")).unwrap(), b"hello");
        // gzip gives the same diff id
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &t).unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let u2 = unpack_layer(gz.finish().unwrap().as_slice(), d2.path()).unwrap();
        assert_eq!(u2.diff_id, want);
        // and so does zstd
        let zst = ruzstd::encoding::compress_to_vec(t.as_slice(), ruzstd::encoding::CompressionLevel::Fastest);
        assert_eq!(&zst[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        let d3 = tempfile::tempdir().unwrap();
        let u3 = unpack_layer(zst.as_slice(), d3.path()).unwrap();
        assert_eq!(u3.diff_id, want);
        assert_eq!(std::fs::read(d3.path().join("a/b.txt")).unwrap(), b"hello");
    }

    #[test]
    fn refuses_parent_escape() {
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        let mut raw = Vec::new();
        {
            // tar::Builder refuses "..", so write the name into the header by hand.
            let name = b"../evil";
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_cksum();
            raw.extend_from_slice(h.as_bytes());
            let mut block = [0u8; 512];
            block[0] = b'x';
            raw.extend_from_slice(&block);
            raw.extend_from_slice(&[0u8; 1024]);
        }
        let d = tempfile::tempdir().unwrap();
        let inner = d.path().join("root");
        std::fs::create_dir(&inner).unwrap();
        let e = unpack_layer(raw.as_slice(), &inner).unwrap_err();
        assert!(matches!(e, UnpackError::Escape(_)), "{e}");
        assert!(!d.path().join("evil").exists());
    }

    #[test]
    fn an_entry_error_says_why() {
        // A header whose uid field is empty: tar's own message only says "failed to unpack".
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "data/blob0", &b"x"[..]).unwrap();
        let d = tempfile::tempdir().unwrap();
        let e = unpack_layer(b.into_inner().unwrap().as_slice(), d.path()).unwrap_err().to_string();
        assert!(e.contains("data/blob0") && e.contains("when getting uid"), "{e}");
    }

    #[test]
    fn entries_without_parent_directory_entries() {
        let d = tempfile::tempdir().unwrap();
        unpack_layer(tar_of(&[("a/b/c", b"x")]).as_slice(), d.path()).unwrap();
        assert_eq!(std::fs::read(d.path().join("a/b/c")).unwrap(), b"x");
    }
}
