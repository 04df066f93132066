//! COPY and ADD: the sources are staged into a fresh directory (owner, mode; archives unpacked for ADD), hashed for
//! the cache key, and the staged tree becomes the step's layer. Nothing is ever written through a symlink.

use super::cache::{self, CacheEntry};
use super::context::sources;
use super::state::State;
use super::{failed, invalid};
use crate::build::path::clean_rel;
use crate::runtime::{Result, Runtime, RuntimeError};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Makes `dir` (inside `stage`) a real directory, component by component: a symlink an
/// earlier source put on the way is replaced, never followed (it could point at the host).
fn stage_dir(stage: &Path, dir: &Path) -> std::io::Result<()> {
    let rel = dir.strip_prefix(stage).map_err(|_| std::io::Error::other("path outside the staging directory"))?;
    let mut cur = stage.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match cur.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                std::fs::remove_file(&cur)?;
                std::fs::create_dir(&cur)?;
            }
            Err(_) => std::fs::create_dir(&cur)?,
        }
    }
    Ok(())
}

/// Copies `src` (file, symlink or directory tree) to `dst` inside `stage`, owned by
/// `owner`, with `chmod`. Nothing is ever written through a symlink.
fn copy_tree(
    stage: &Path,
    src: &Path,
    dst: &Path,
    owner: Option<(u32, u32)>,
    chmod: Option<u32>,
) -> std::io::Result<()> {
    let m = src.symlink_metadata()?;
    if let Some(parent) = dst.parent() {
        stage_dir(stage, parent)?;
    }
    if dst.symlink_metadata().is_ok_and(|d| !d.is_dir() || !m.is_dir()) {
        if dst.symlink_metadata().is_ok_and(|d| d.is_dir()) {
            std::fs::remove_dir_all(dst)?;
        } else {
            std::fs::remove_file(dst)?;
        }
    }
    let ft = m.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(src)?;
        let _ = std::fs::remove_file(dst);
        std::os::unix::fs::symlink(target, dst)?;
    } else if ft.is_dir() {
        stage_dir(stage, dst)?;
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(chmod.unwrap_or(m.mode() & 0o7777)))?;
        let mut entries: Vec<_> = std::fs::read_dir(src)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            copy_tree(stage, &e.path(), &dst.join(e.file_name()), owner, chmod)?;
        }
    } else if ft.is_file() {
        std::fs::copy(src, dst)?;
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(chmod.unwrap_or(m.mode() & 0o7777)))?;
    } else {
        // Devices, fifos, sockets: not something a build context carries.
        return Ok(());
    }
    let (uid, gid) = owner.unwrap_or((0, 0));
    std::os::unix::fs::lchown(dst, Some(uid), Some(gid))?;
    Ok(())
}

/// A reader that fails once more than `left` bytes were asked of it: an `ADD`ed archive
/// is bounded like an image layer (`[images] max_layer_size`).
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other("the archive is larger than images.max_layer_size uncompressed"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn is_archive(p: &Path) -> bool {
    let n = p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    [".tar", ".tar.gz", ".tgz", ".tar.zst"].iter().any(|s| n.ends_with(s))
}

/// `--chown` as numeric IDs (names would need the image's /etc/passwd; root is known).
fn owner(chown: &Option<String>, line: usize) -> Result<Option<(u32, u32)>> {
    let Some(c) = chown else { return Ok(None) };
    let (u, g) = c.split_once(':').unwrap_or((c, c));
    let id = |s: &str| -> Result<u32> {
        if s == "root" {
            return Ok(0);
        }
        s.parse().map_err(|_| invalid(line, format!("--chown={c}: use numeric uid[:gid] (or root)")))
    };
    Ok(Some((id(u)?, id(g)?)))
}

impl Runtime {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn copy_step(
        &self,
        ctx: &Path,
        st: &State,
        srcs: &[String],
        dest: &str,
        chown: &Option<String>,
        chmod: Option<u32>,
        line: usize,
        add: bool,
        text: &str,
        no_cache: bool,
    ) -> Result<(CacheEntry, bool)> {
        let owner = owner(chown, line)?;
        let dest_abs = if dest.starts_with('/') { dest.to_string() } else { format!("{}/{dest}", st.workdir()) };
        let dest_rel = clean_rel(&dest_abs).unwrap_or_default();
        let mut files = Vec::new();
        for s in srcs {
            if s.contains("://") {
                return Err(invalid(
                    line,
                    format!("{s:?}: sources from URLs are not supported; download into the context"),
                ));
            }
            files.extend(sources(ctx, s, line)?);
        }
        let to_dir = dest.ends_with('/') || files.len() > 1;
        let images = Arc::clone(&self.images);
        let stage_root = images.temp_dir()?;
        let stage = stage_root.join("rootfs");
        let state_key = st.key();
        let max_bytes = self.images.max_layer_size();
        let text = text.to_string();
        let res = tokio::task::spawn_blocking(move || -> Result<String> {
            let io = |e: std::io::Error| failed(line, e);
            std::fs::create_dir_all(&stage).map_err(io)?;
            let target = stage.join(&dest_rel);
            for f in &files {
                let m = f.symlink_metadata().map_err(io)?;
                if m.is_dir() {
                    copy_tree(&stage, f, &target, owner, chmod).map_err(io)?;
                } else if add && m.is_file() && is_archive(f) {
                    stage_dir(&stage, &target).map_err(io)?;
                    let r = std::fs::File::open(f).map_err(io)?;
                    let r = Bounded { inner: crate::image::unpack::decompress(r).map_err(io)?, left: max_bytes };
                    let mut ar = tar::Archive::new(r);
                    ar.set_preserve_permissions(true);
                    for e in ar.entries().map_err(io)? {
                        e.map_err(io)?.unpack_in(&target).map_err(io)?;
                    }
                } else {
                    let name = f.file_name().map(PathBuf::from).unwrap_or_default();
                    let into_dir = to_dir || target.symlink_metadata().is_ok_and(|m| m.is_dir());
                    let to = if into_dir { target.join(name) } else { target.clone() };
                    copy_tree(&stage, f, &to, owner, chmod).map_err(io)?;
                }
            }
            let inputs = cache::tree_hash(&stage).map_err(io)?;
            Ok(cache::copy_key(&state_key, &text, &inputs))
        })
        .await
        .map_err(|e| RuntimeError::Internal(e.to_string()))?;
        let out = match res {
            Ok(key) => {
                if let Some(e) = (!no_cache).then(|| self.cache_get(&key)).flatten() {
                    Ok((e, true))
                } else {
                    let images = Arc::clone(&self.images);
                    let stage = stage_root.join("rootfs");
                    let layer = tokio::task::spawn_blocking(move || images.layer_from_dir(&stage, None))
                        .await
                        .map_err(|e| RuntimeError::Internal(e.to_string()))??;
                    let e = CacheEntry::made_now(layer);
                    self.cache_put(&key, &e);
                    Ok((e, false))
                }
            }
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_dir_all(&stage_root);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::glob::Glob;
    use crate::build::path::clean_rel;

    #[test]
    fn bounded_reader_stops_at_the_limit() {
        use std::io::Read;
        let mut ok = Bounded { inner: &b"12345"[..], left: 5 };
        let mut out = Vec::new();
        assert!(ok.read_to_end(&mut out).is_ok());
        let mut over = Bounded { inner: &b"123456"[..], left: 5 };
        let e = over.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("max_layer_size"), "{e}");
    }

    #[test]
    fn paths_and_globs() {
        assert_eq!(clean_rel("/a/./b/../c"), Some(PathBuf::from("a/c")));
        assert_eq!(clean_rel("../x"), None);
        assert_eq!(clean_rel("a/../../x"), None);
        let wild_match = |pat: &str, name: &str| Glob::component(pat).unwrap().matches(name);
        assert!(wild_match("*.txt", "a.txt"));
        assert!(wild_match("a?c*", "abcdef"));
        assert!(!wild_match("*.txt", "a.tx"));
        assert!(is_archive(Path::new("x/y.tar.gz")));
        assert!(!is_archive(Path::new("x/y.gz")));
        assert_eq!(owner(&Some("1000:1000".into()), 1).unwrap(), Some((1000, 1000)));
        assert_eq!(owner(&Some("root".into()), 1).unwrap(), Some((0, 0)));
        assert!(owner(&Some("bob".into()), 1).is_err());
    }
}
