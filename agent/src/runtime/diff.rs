//! `diff`: what changed in a container's writable layer against its image, with docker's
//! rules (moby `pkg/archive/changes.go` for overlay): a whiteout (a 0:0 character device)
//! is a deletion (D); an opaque directory that exists in a lower layer is a deletion (its
//! new contents follow as additions); anything else in the writable layer is an addition
//! (A) unless its path exists in an image layer (C), where a directory whose size, mode and
//! mtime are unchanged is left out; the parent of an addition or deletion is listed as
//! changed (C) once. The runtime's own files (/etc/hosts, resolv.conf, hostname, as `commit`
//! leaves them out) are not changes. Read from the host's copy of the writable layer (lstat
//! only: nothing in it is followed), so it works whether the container runs or not.

use super::{Result, Runtime, RuntimeError};
use crate::image::commit::{is_opaque, only_runtime_files, RUNTIME_FILES};
use std::collections::HashSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What happened to a path (docker's API numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

/// One changed path, absolute in the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// The changes of `upper` over `lowers` (top first).
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> std::io::Result<Vec<Change>> {
    let mut out = Vec::new();
    let mut changed_dirs: HashSet<String> = HashSet::new();
    walk(upper, upper, lowers, &mut out, &mut changed_dirs)?;
    Ok(out)
}

fn in_lowers(lowers: &[PathBuf], rel: &Path) -> Option<std::fs::Metadata> {
    lowers.iter().find_map(|l| l.join(rel).symlink_metadata().ok())
}

fn walk(
    upper: &Path,
    dir: &Path,
    lowers: &[PathBuf],
    out: &mut Vec<Change>,
    changed_dirs: &mut HashSet<String>,
) -> std::io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<Vec<_>>>()?;
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let path = e.path();
        let rel = path.strip_prefix(upper).unwrap_or(&path).to_path_buf();
        let m = path.symlink_metadata()?;
        if RUNTIME_FILES.iter().any(|f| Path::new(f) == rel) || (m.is_dir() && only_runtime_files(&path, &rel)) {
            continue;
        }
        let shown = format!("/{}", rel.display());
        let lower = in_lowers(lowers, &rel);
        let kind = if is_whiteout(&m) || (m.is_dir() && is_opaque(&path) && lower.is_some()) {
            Some(ChangeKind::Deleted)
        } else {
            match &lower {
                None => Some(ChangeKind::Added),
                Some(l) if l.is_dir() && m.is_dir() => {
                    let same = l.size() == m.size()
                        && l.mode() == m.mode()
                        && l.mtime() == m.mtime()
                        && l.mtime_nsec() == m.mtime_nsec();
                    (!same).then_some(ChangeKind::Modified)
                }
                Some(_) => Some(ChangeKind::Modified),
            }
        };
        if let Some(kind) = kind {
            if matches!(kind, ChangeKind::Added | ChangeKind::Deleted) {
                let parent = Path::new(&shown).parent().map(|p| p.display().to_string()).unwrap_or_default();
                if parent != "/" && !parent.is_empty() && changed_dirs.insert(parent.clone()) {
                    out.push(Change { path: parent, kind: ChangeKind::Modified });
                }
            }
            if m.is_dir() {
                changed_dirs.insert(shown.clone());
            }
            out.push(Change { path: shown, kind });
        }
        if m.is_dir() {
            walk(upper, &path, lowers, out, changed_dirs)?;
        }
    }
    Ok(())
}

impl Runtime {
    /// The container's changes (`docker diff`), any state.
    pub fn diff(&self, name: &str) -> Result<Vec<Change>> {
        let rec = self.resolve(name)?;
        let spec = self.rootfs_spec(&rec);
        changes(&spec.upper, &spec.lower).map_err(|err| RuntimeError::Io {
            what: "read the writable layer",
            path: spec.upper.clone(),
            err,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_changed_and_deleted_like_docker() {
        let d = tempfile::tempdir().unwrap();
        let (up, low) = (d.path().join("upper"), d.path().join("lower"));
        for p in ["etc", "usr/lib", "var/empty"] {
            std::fs::create_dir_all(low.join(p)).unwrap();
        }
        std::fs::write(low.join("etc/passwd"), "root").unwrap();
        std::fs::write(low.join("etc/gone"), "x").unwrap();
        std::fs::create_dir_all(up.join("etc")).unwrap();
        std::fs::create_dir_all(up.join("new/dir")).unwrap();
        std::fs::write(up.join("etc/passwd"), "root\nme").unwrap();
        std::fs::write(up.join("etc/hostname"), "runtime's").unwrap();
        std::fs::write(up.join("new/dir/f"), "f").unwrap();
        let wh = std::ffi::CString::new(up.join("etc/gone").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path; a 0:0 character device is overlay's whiteout.
        let made = unsafe { libc::mknod(wh.as_ptr(), libc::S_IFCHR | 0o600, 0) } == 0;
        let got: Vec<String> = changes(&up, std::slice::from_ref(&low))
            .unwrap()
            .into_iter()
            .map(|c| format!("{} {}", ["C", "A", "D"][c.kind as usize], c.path))
            .collect();
        let mut want = vec!["C /etc"];
        if made {
            want.push("D /etc/gone");
        }
        want.extend(["C /etc/passwd", "A /new", "A /new/dir", "A /new/dir/f"]);
        // /etc's mtime differs from the lower's: it is listed, as docker lists it.
        assert_eq!(got, want);
    }

    #[test]
    fn an_opaque_directory_hiding_an_image_directory_is_deleted_then_its_contents_added() {
        let d = tempfile::tempdir().unwrap();
        let (up, low) = (d.path().join("upper"), d.path().join("lower"));
        std::fs::create_dir_all(low.join("var/cache/old")).unwrap();
        std::fs::create_dir_all(up.join("var/cache")).unwrap();
        std::fs::write(up.join("var/cache/new"), "n").unwrap();
        let c = std::ffi::CString::new(up.join("var/cache").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: NUL-terminated strings and a one-byte value.
        let set =
            unsafe { libc::lsetxattr(c.as_ptr(), c"trusted.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0) } == 0;
        if !set {
            eprintln!("SKIP opaque directories: trusted.* xattrs need CAP_SYS_ADMIN");
            return;
        }
        let got: Vec<String> = changes(&up, std::slice::from_ref(&low))
            .unwrap()
            .into_iter()
            .map(|c| format!("{} {}", ["C", "A", "D"][c.kind as usize], c.path))
            .collect();
        assert!(got.contains(&"D /var/cache".to_string()), "{got:?}");
        assert!(got.contains(&"A /var/cache/new".to_string()), "{got:?}");
        assert!(!got.iter().any(|l| l.contains("old")), "{got:?}");
    }
}
