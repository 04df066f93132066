//! `commit`: a container's writable layer becomes a new layer on top of its image.
//! Overlay whiteouts (0:0 character devices) and opaque directories (xattr) are written
//! back as OCI whiteouts (`.wh.name`, `.wh..wh..opq`), so the layer means the same thing
//! in any runtime.

use super::{io_at, ImageError, ImageRecord, ImageStore, Layer};
use crate::image::reference::Reference;
use sha2::{Digest, Sha256};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

pub(crate) fn is_opaque(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else { return false };
    let mut buf = [0u8; 4];
    // SAFETY: both strings are NUL-terminated; buf is large enough for "y".
    let n =
        unsafe { libc::lgetxattr(c.as_ptr(), c"trusted.overlay.opaque".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    n == 1 && buf[0] == b'y'
}

fn empty_entry<W: std::io::Write>(ar: &mut tar::Builder<W>, name: &Path) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    ar.append_data(&mut h, name, std::io::empty())
}

/// Files the runtime writes into every container (like docker's bind mounts): they describe
/// that one container's network, not the image, and are never part of a layer.
pub(crate) const RUNTIME_FILES: &[&str] = &["etc/hosts", "etc/resolv.conf", "etc/hostname"];

/// A directory that holds nothing but runtime files (it only exists because of them).
pub(crate) fn only_runtime_files(dir: &Path, rel: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else { return false };
    let mut any = false;
    for e in rd.flatten() {
        any = true;
        let r = rel.join(e.file_name());
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        let skip = RUNTIME_FILES.iter().any(|f| Path::new(f) == r) || (is_dir && only_runtime_files(&e.path(), &r));
        if !skip {
            return false;
        }
    }
    any && !is_opaque(dir)
}

/// One entry with its header built here: owners shifted back through `map` (a `--userns`
/// container's files belong to host IDs of its range; the layer records the IDs the
/// container saw), and device nodes and FIFOs written as such.
fn append_owned<W: std::io::Write>(
    ar: &mut tar::Builder<W>,
    path: &Path,
    rel: &Path,
    m: &std::fs::Metadata,
    map: Option<&crate::isolation::userns::IdMapping>,
) -> std::io::Result<()> {
    use crate::isolation::userns::OVERFLOW_ID;
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(m, tar::HeaderMode::Complete);
    if let Some(map) = map {
        h.set_uid(u64::from(map.container_uid(m.uid()).unwrap_or(OVERFLOW_ID)));
        h.set_gid(u64::from(map.container_gid(m.gid()).unwrap_or(OVERFLOW_ID)));
    }
    let ft = m.file_type();
    if ft.is_char_device() || ft.is_block_device() {
        h.set_entry_type(if ft.is_char_device() { tar::EntryType::Char } else { tar::EntryType::Block });
        let rdev = m.rdev();
        h.set_device_major(libc::major(rdev))?;
        h.set_device_minor(libc::minor(rdev))?;
    } else if ft.is_fifo() {
        h.set_entry_type(tar::EntryType::Fifo);
    }
    if m.file_type().is_symlink() {
        let target = std::fs::read_link(path)?;
        ar.append_link(&mut h, rel, target)
    } else if m.is_file() {
        // The container may still run and swap the file for a symlink to a host file:
        // never follow one, and describe what was actually opened.
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
        let now = f.metadata()?;
        if !now.is_file() {
            return Err(std::io::Error::other(format!("{} changed while being committed", rel.display())));
        }
        h.set_size(now.len());
        h.set_cksum();
        ar.append_data(&mut h, rel, std::io::Read::take(f, now.len()))
    } else {
        h.set_size(0);
        ar.append_data(&mut h, rel, std::io::empty())
    }
}

/// Writes the upper dir as an OCI layer tar; with `map`, owners are shifted back from
/// host IDs to the container's.
fn layer_tar<W: std::io::Write>(
    upper: &Path,
    out: W,
    map: Option<&crate::isolation::userns::IdMapping>,
) -> std::io::Result<W> {
    let mut ar = tar::Builder::new(out);
    ar.follow_symlinks(false);
    ar.mode(tar::HeaderMode::Complete);
    let mut stack = vec![upper.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = path.strip_prefix(upper).unwrap_or(&path).to_path_buf();
            let m = path.symlink_metadata()?;
            if RUNTIME_FILES.iter().any(|f| Path::new(f) == rel) || (m.is_dir() && only_runtime_files(&path, &rel)) {
                continue;
            }
            if m.file_type().is_char_device() && m.rdev() == 0 {
                let name = rel.file_name().map(|n| format!(".wh.{}", n.to_string_lossy())).unwrap_or_default();
                empty_entry(&mut ar, &rel.with_file_name(name))?;
                continue;
            }
            let special = {
                let t = m.file_type();
                t.is_char_device() || t.is_block_device() || t.is_fifo()
            };
            // Regular files too: opened without following symlinks (see append_owned).
            if map.is_some() || special || m.is_file() {
                append_owned(&mut ar, &path, &rel, &m, map)?;
            } else {
                ar.append_path_with_name(&path, &rel)?;
            }
            if m.is_dir() {
                if is_opaque(&path) {
                    empty_entry(&mut ar, &rel.join(".wh..wh..opq"))?;
                }
                stack.push(path);
            }
        }
    }
    ar.into_inner()
}

impl ImageStore {
    /// Makes a layer of `dir` (overlay whiteouts written as OCI ones), stored uncompressed
    /// (blob digest = diff ID) and unpacked into the store.
    /// With `map`, the directory is a `--userns` container's and its owners are shifted back.
    pub fn layer_from_dir(
        &self,
        dir: &Path,
        map: Option<&crate::isolation::userns::IdMapping>,
    ) -> Result<Layer, ImageError> {
        let tmp = self.temp_dir()?;
        let res = (|| {
            let tar_path = tmp.join("layer.tar");
            let f = std::fs::File::create(&tar_path).map_err(io_at(&tar_path))?;
            layer_tar(dir, std::io::BufWriter::new(f), map)
                .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
                .map_err(io_at(dir))?;
            let diff_id = super::archive::file_digest(&tar_path)?;
            crate::crash::point("commit.after_layer");
            let size = self.ensure_layer(&tar_path, &diff_id)?;
            self.put_blob(&tar_path, &diff_id)?;
            Ok(Layer { diff_id, size })
        })();
        let _ = std::fs::remove_dir_all(&tmp);
        res
    }

    /// The config document of an image, as JSON.
    pub fn config_json(&self, img: &ImageRecord) -> Result<serde_json::Value, ImageError> {
        let cpath = self.blob_path(&img.id);
        let raw = std::fs::read(&cpath).map_err(io_at(&cpath))?;
        serde_json::from_slice(&raw).map_err(|e| ImageError::BadArchive(format!("image config {}: {e}", img.id)))
    }

    /// Stores `cfg` as a config blob and saves the image it describes: `layers` (bottom
    /// first) kept alive by `layer_blobs`, tagged `tags`.
    pub fn save_config(
        &self,
        cfg: &serde_json::Value,
        layers: Vec<Layer>,
        layer_blobs: Vec<String>,
        tags: Vec<String>,
    ) -> Result<ImageRecord, ImageError> {
        let bytes = serde_json::to_vec(cfg).map_err(|e| ImageError::BadArchive(e.to_string()))?;
        let parsed = oci_spec::image::ImageConfiguration::from_reader(&bytes[..])
            .map_err(|e| ImageError::BadArchive(format!("image config: {e}")))?;
        if parsed.rootfs().diff_ids().len() != layers.len() {
            return Err(ImageError::BadArchive("image config and layers disagree".into()));
        }
        let id = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        let p = self.blob_path(&id);
        if !p.exists() {
            std::fs::write(&p, &bytes).map_err(io_at(&p))?;
        }
        let mut blobs = vec![id.clone()];
        blobs.extend(layer_blobs);
        self.save(ImageRecord {
            id,
            tags,
            digest: String::new(),
            created_at: super::archive::created_at(&parsed),
            config: super::archive::image_config(&parsed, &bytes),
            layers,
            blobs,
            architecture: parsed.architecture().to_string(),
            os: parsed.os().to_string(),
        })
    }

    /// The layer blobs of an image (bottom first).
    pub fn layer_blobs(img: &ImageRecord) -> Vec<String> {
        img.blobs[img.blobs.len().saturating_sub(img.layers.len())..].to_vec()
    }

    /// Makes a new image from `base` plus the writable layer `upper`, tagged `tag`.
    /// `map`: the container's `--userns` mapping, if it has one.
    pub fn commit(
        &self,
        base_id: &str,
        upper: &Path,
        tag: &str,
        container: &str,
        map: Option<&crate::isolation::userns::IdMapping>,
    ) -> Result<ImageRecord, ImageError> {
        let base = self.resolve(base_id)?;
        let tag = Reference::parse(tag)?.to_string();
        let layer = self.layer_from_dir(upper, map)?;
        let mut cfg = self.config_json(&base)?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        cfg["created"] = now.clone().into();
        if let Some(ids) = cfg["rootfs"]["diff_ids"].as_array_mut() {
            ids.push(layer.diff_id.clone().into());
        }
        let step = serde_json::json!({ "created": now, "created_by": format!("agentctl commit {container}") });
        match cfg["history"].as_array_mut() {
            Some(h) => h.push(step),
            None => cfg["history"] = serde_json::json!([step]),
        }
        let mut blobs = Self::layer_blobs(&base);
        blobs.push(layer.diff_id.clone());
        let mut layers = base.layers.clone();
        layers.push(layer);
        self.save_config(&cfg, layers, blobs, vec![tag])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_nodes_and_shifted_owners_reach_the_layer() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (mknod, chown)");
            return;
        }
        use crate::isolation::userns::{IdMapping, IdRange};
        let d = tempfile::tempdir().unwrap();
        let dev = d.path().join("zero");
        nix::sys::stat::mknod(
            &dev,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 5),
        )
        .unwrap();
        std::fs::write(d.path().join("f"), "x").unwrap();
        std::os::unix::fs::lchown(d.path().join("f"), Some(501000), Some(501001)).unwrap();
        let map = IdMapping {
            uids: vec![IdRange { container: 0, host: 500000, size: 65536 }],
            gids: vec![IdRange { container: 0, host: 500000, size: 65536 }],
        };
        for m in [None, Some(&map)] {
            let tar = layer_tar(d.path(), Vec::new(), m).unwrap();
            let mut ar = tar::Archive::new(tar.as_slice());
            let mut seen = Vec::new();
            for e in ar.entries().unwrap() {
                let e = e.unwrap();
                let h = e.header();
                seen.push((
                    e.path().unwrap().display().to_string(),
                    h.entry_type(),
                    h.device_major().unwrap(),
                    h.device_minor().unwrap(),
                    h.uid().unwrap(),
                ));
            }
            let zero = seen.iter().find(|s| s.0 == "zero").unwrap();
            assert_eq!((zero.1, zero.2, zero.3), (tar::EntryType::Char, Some(1), Some(5)), "{seen:?}");
            let f = seen.iter().find(|s| s.0 == "f").unwrap();
            assert_eq!(f.4, if m.is_some() { 1000 } else { 501000 });
        }
    }
}
