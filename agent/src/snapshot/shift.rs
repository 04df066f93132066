//! Shifted copies of layers: the fallback for `--userns` where the kernel cannot idmap an
//! overlay's layers. A layer is copied once per ID mapping (`cp -a`, which keeps hard
//! links, xattrs such as overlay's opaque marker, device nodes and sparse files, better
//! than a hand-written copy would) and every entry is re-owned into the mapping.
//! Copies are kept in `<root>/layers-shifted/<mapping>/<hex>` and shared by every
//! container with that mapping; they go when the last such container goes.

use crate::isolation::userns::IdMapping;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a shifted copy of a layer cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ShiftError {
    #[error("create {}: {source}", .dir.display())]
    Create { dir: PathBuf, source: std::io::Error },
    #[error("cp: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("copy {} for --userns: {stderr}", .layer.display())]
    Copy { layer: PathBuf, stderr: String },
    #[error("shift the owners of {}: {source}", .layer.display())]
    Reown { layer: PathBuf, source: std::io::Error },
    #[error("rename into {}: {source}", .dest.display())]
    Rename { dest: PathBuf, source: std::io::Error },
}

/// Where shifted copies for `map` live under the agent's root.
pub fn mapping_dir(root: &Path, map: &IdMapping) -> PathBuf {
    root.join("layers-shifted").join(map.key())
}

/// The shifted copy of `layer` (named `name`) for `map`, made if missing.
pub fn shifted_layer(root: &Path, map: &IdMapping, layer: &Path, name: &str) -> Result<PathBuf, ShiftError> {
    let dir = mapping_dir(root, map);
    let dest = dir.join(name);
    if dest.exists() {
        return Ok(dest);
    }
    std::fs::create_dir_all(&dir).map_err(|source| ShiftError::Create { dir: dir.clone(), source })?;
    // Built beside and renamed: a crash mid-copy leaves only a .tmp, never a half layer.
    // Each copy has its own (two starts of one mapping may copy one layer at once).
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("{name}.tmp-{}-{seq}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg(layer)
        .arg(&tmp)
        .output()
        .map_err(ShiftError::Spawn)?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(ShiftError::Copy { layer: layer.to_path_buf(), stderr });
    }
    if let Err(source) = reown(layer, &tmp, map) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(ShiftError::Reown { layer: layer.to_path_buf(), source });
    }
    match std::fs::rename(&tmp, &dest) {
        Ok(()) => Ok(dest),
        // Another start made it meanwhile: use theirs.
        Err(_) if dest.exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dest)
        }
        Err(source) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(ShiftError::Rename { dest, source })
        }
    }
}

/// Gives every entry under `copy` the owner of its twin under `src`, shifted into `map`.
/// Owners are read from the source, so a hard link seen twice is shifted once.
fn reown(src: &Path, copy: &Path, map: &IdMapping) -> std::io::Result<()> {
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let s = src.join(&rel);
        let m = std::fs::symlink_metadata(&s)?;
        let d = copy.join(&rel);
        let (uid, gid) = map.shift_in(m.uid(), m.gid());
        std::os::unix::fs::lchown(&d, Some(uid), Some(gid))?;
        // chown clears set-uid/set-gid bits: put the mode back.
        if !m.file_type().is_symlink() && m.mode() & 0o6000 != 0 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
        if m.is_dir() {
            for e in std::fs::read_dir(&s)? {
                stack.push(rel.join(e?.file_name()));
            }
        }
    }
    Ok(())
}

/// At agent start: removes half-made copies (a crash mid-copy) and the copies of mappings
/// no container has any more (a crash between the last removal and its clean-up).
pub fn sweep(root: &Path, in_use: &[IdMapping]) {
    let keep: Vec<String> = in_use.iter().map(IdMapping::key).collect();
    let Ok(rd) = std::fs::read_dir(root.join("layers-shifted")) else { return };
    for m in rd.flatten() {
        let name = m.file_name().to_string_lossy().into_owned();
        if !keep.contains(&name) {
            let _ = std::fs::remove_dir_all(m.path());
            continue;
        }
        for l in std::fs::read_dir(m.path()).into_iter().flatten().flatten() {
            if l.file_name().to_string_lossy().contains(".tmp-") {
                let _ = std::fs::remove_dir_all(l.path());
            }
        }
    }
}

/// Removes the shifted copies made for `map`.
pub fn remove_mapping(root: &Path, map: &IdMapping) {
    let _ = std::fs::remove_dir_all(mapping_dir(root, map));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolation::userns::IdRange;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copies_are_reowned_into_the_mapping() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (chown)");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let layer = d.path().join("layer");
        std::fs::create_dir_all(layer.join("bin")).unwrap();
        std::fs::write(layer.join("bin/su"), "x").unwrap();
        std::fs::set_permissions(layer.join("bin/su"), std::fs::Permissions::from_mode(0o4755)).unwrap();
        std::fs::hard_link(layer.join("bin/su"), layer.join("bin/su2")).unwrap();
        std::fs::write(layer.join("home"), "y").unwrap();
        std::os::unix::fs::lchown(layer.join("home"), Some(1000), Some(70000)).unwrap();
        std::os::unix::fs::symlink("bin/su", layer.join("link")).unwrap();
        let map = IdMapping {
            uids: vec![IdRange { container: 0, host: 300000, size: 65536 }],
            gids: vec![IdRange { container: 0, host: 400000, size: 65536 }],
        };
        let out = shifted_layer(d.path(), &map, &layer, "abc").unwrap();
        let md = |p: &str| std::fs::symlink_metadata(out.join(p)).unwrap();
        assert_eq!((md("bin/su").uid(), md("bin/su").gid()), (300000, 400000));
        assert_eq!(md("bin/su").mode() & 0o7777, 0o4755);
        assert_eq!(md("bin/su").ino(), md("bin/su2").ino());
        assert_eq!((md("home").uid(), md("home").gid()), (301000, 65534));
        assert_eq!(md("link").uid(), 300000);
        assert_eq!(md("").uid(), 300000);
        // Made once, then reused.
        assert_eq!(shifted_layer(d.path(), &map, &layer, "abc").unwrap(), out);
        // A half-made copy and an unused mapping are swept at start; the rest stays.
        std::fs::create_dir_all(mapping_dir(d.path(), &map).join("abc.tmp-1-0")).unwrap();
        let other = IdMapping { uids: vec![IdRange { container: 0, host: 1, size: 1 }], gids: vec![] };
        std::fs::create_dir_all(mapping_dir(d.path(), &other).join("x")).unwrap();
        sweep(d.path(), std::slice::from_ref(&map));
        assert!(out.exists());
        assert!(!mapping_dir(d.path(), &map).join("abc.tmp-1-0").exists());
        assert!(!mapping_dir(d.path(), &other).exists());
        remove_mapping(d.path(), &map);
        assert!(!out.exists());
    }
}
