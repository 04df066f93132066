//! An overlay whose read-only layers are seen through an ID mapping (`--userns`): each
//! layer gets an idmapped mount (`mount_setattr(MOUNT_ATTR_IDMAP)`, Linux 5.12+), and the
//! overlay is assembled from those detached mounts with the new mount API (`fsopen`,
//! `fsconfig("lowerdir+", fd)`, `fsmount`). Nothing is ever attached to a path on the
//! host: the result is a detached mount that the container's init moves onto its root.
//!
//! The raw syscalls are wrapped in `isolation::mountapi` (nix does not wrap them yet).

use super::RootfsSpec;
use crate::isolation::mountapi::{cstr, fd_result, idmap, open_tree_clone, path_c};
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

// include/uapi/linux/mount.h (stable kernel ABI).
pub(super) const FSOPEN_CLOEXEC: libc::c_uint = 1;
pub(super) const FSMOUNT_CLOEXEC: libc::c_uint = 1;
pub(super) const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_SET_FD: libc::c_uint = 5;
pub(super) const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
pub(super) const MOUNT_ATTR_NODEV: u64 = 0x4;

/// The kernel's own explanation of a failed fsconfig (overlayfs writes one to the fs
/// context's log, e.g. "overlayfs: failed to resolve …").
fn fs_log(fs: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    for _ in 0..8 {
        match nix::unistd::read(fs, &mut buf) {
            Ok(n) if n > 0 => {
                out.push(String::from_utf8_lossy(&buf[..n]).trim().to_string());
            }
            _ => break,
        }
    }
    out.join("; ")
}

pub(super) fn fsconfig(
    fs: &OwnedFd,
    cmd: libc::c_uint,
    key: Option<&str>,
    value: Option<&CString>,
    aux: i32,
) -> std::io::Result<()> {
    let key = key.map(cstr).transpose()?;
    let kp = key.as_ref().map_or(std::ptr::null(), |k| k.as_ptr());
    let vp = value.map_or(std::ptr::null(), |v| v.as_ptr());
    // SAFETY: fsconfig on our fs context with valid (or null) NUL-terminated strings.
    let r = unsafe { libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), cmd, kp, vp, aux) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        let log = fs_log(fs);
        let what = key.map(|k| k.to_string_lossy().into_owned()).unwrap_or_else(|| "create".into());
        return Err(std::io::Error::new(
            e.kind(),
            format!("overlay {what}: {e}{}", if log.is_empty() { String::new() } else { format!(" ({log})") }),
        ));
    }
    Ok(())
}

/// Builds the container's overlay as a detached mount (nodev: device nodes in an image
/// stay inert), its lower layers idmapped through the user namespace `userns` when given
/// (else they are taken as they are: shifted copies). The upper and work directories are
/// used as they are (the upper's owner is already the mapped root). Built by the shim as
/// the host's root, so overlayfs keeps its trusted.* xattrs (whiteouts, opaque dirs).
pub fn overlay(spec: &RootfsSpec, userns: Option<BorrowedFd<'_>>) -> std::io::Result<OwnedFd> {
    let name = cstr("overlay")?;
    // SAFETY: fsopen with a NUL-terminated filesystem name.
    let fs = fd_result(unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) }, "fsopen overlay")?;
    // The detached layer mounts must outlive the create: overlay clones them only then.
    let mut trees = Vec::with_capacity(spec.lower.len());
    match userns {
        Some(ns) => {
            for l in &spec.lower {
                let t = open_tree_clone(l, false)?;
                idmap(&t, ns, l)?;
                trees.push(t);
            }
            // Lower layers top first, like the lowerdir= list.
            for t in &trees {
                fsconfig(&fs, FSCONFIG_SET_FD, Some("lowerdir+"), None, t.as_raw_fd())?;
            }
        }
        None => {
            let lower: Vec<String> = spec.lower.iter().map(|p| p.display().to_string()).collect();
            fsconfig(&fs, FSCONFIG_SET_STRING, Some("lowerdir"), Some(&cstr(&lower.join(":"))?), 0)?;
        }
    }
    fsconfig(&fs, FSCONFIG_SET_STRING, Some("upperdir"), Some(&path_c(&spec.upper)?), 0)?;
    fsconfig(&fs, FSCONFIG_SET_STRING, Some("workdir"), Some(&path_c(&spec.work)?), 0)?;
    fsconfig(&fs, FSCONFIG_CMD_CREATE, None, None, 0)?;
    // SAFETY: fsmount on a created fs context.
    let r = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV) };
    fd_result(r, "fsmount overlay")
}

/// Why the probe found no idmapped overlays.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("prepare the probe in {}: {source}", .dir.display())]
    Prepare { dir: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Userns(#[from] crate::isolation::userns::UsernsError),
    /// The overlay itself (the message names the failing step).
    #[error(transparent)]
    Overlay(std::io::Error),
}

/// Whether this kernel builds idmapped overlays (tried once in `scratch`, which is removed):
/// `Err` says why not, and the caller falls back to shifted copies.
pub fn probe(scratch: &Path) -> Result<(), ProbeError> {
    use crate::isolation::userns::{IdMapping, IdRange, ScratchUserns};
    let _ = std::fs::remove_dir_all(scratch);
    let spec = RootfsSpec::for_container(scratch, &[scratch.join("lower")]);
    let res = (|| {
        let prepare = |source| ProbeError::Prepare { dir: scratch.to_path_buf(), source };
        std::fs::create_dir_all(scratch.join("lower")).map_err(prepare)?;
        spec.prepare().map_err(prepare)?;
        let one = vec![IdRange { container: 0, host: 100000, size: 65536 }];
        let ns = ScratchUserns::new(&IdMapping { uids: one.clone(), gids: one })?;
        overlay(&spec, Some(ns.fd())).map(drop).map_err(ProbeError::Overlay)
    })();
    let _ = std::fs::remove_dir_all(scratch);
    res
}

#[cfg(test)]
mod tests {
    #[test]
    fn idmapped_overlays_build_here() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let r = super::probe(&d.path().join("p"));
        assert!(r.is_ok(), "{r:?}");
    }
}
