//! A container's root filesystem for the agent's own use (cp, export), as a detached overlay
//! mount (`fsopen`/`fsmount`: never attached to a path, gone when its descriptor closes;
//! nothing to unmount, nothing to leak).
//!
//! Read-only, the container's writable layer is the top *lower* layer (its whiteouts and
//! opaque directories apply as in any lower layer), so no upper or work directory is
//! mounted twice: safe beside a running container. Writable, the container's own upper and
//! work directories are used: only while it does not run (the runtime holds its lifecycle
//! lock, so it cannot start meanwhile).

use super::idmap::{
    fsconfig, FSCONFIG_CMD_CREATE, FSCONFIG_SET_STRING, FSMOUNT_CLOEXEC, FSOPEN_CLOEXEC, MOUNT_ATTR_NODEV,
};
use super::RootfsSpec;
use crate::isolation::mountapi::{cstr, fd_result, path_c};
use std::os::fd::{AsRawFd, OwnedFd};

const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// The merged root of `spec` as a detached mount (nodev).
pub fn detached(spec: &RootfsSpec, writable: bool) -> std::io::Result<OwnedFd> {
    let name = cstr("overlay")?;
    // SAFETY: fsopen with a NUL-terminated filesystem name.
    let fs = fd_result(unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) }, "fsopen overlay")?;
    let mut lower: Vec<String> = spec.lower.iter().map(|p| p.display().to_string()).collect();
    if !writable {
        lower.insert(0, spec.upper.display().to_string());
    }
    fsconfig(&fs, FSCONFIG_SET_STRING, Some("lowerdir"), Some(&cstr(&lower.join(":"))?), 0)?;
    if writable {
        fsconfig(&fs, FSCONFIG_SET_STRING, Some("upperdir"), Some(&path_c(&spec.upper)?), 0)?;
        fsconfig(&fs, FSCONFIG_SET_STRING, Some("workdir"), Some(&path_c(&spec.work)?), 0)?;
    }
    fsconfig(&fs, FSCONFIG_CMD_CREATE, None, None, 0)?;
    let attrs = MOUNT_ATTR_NODEV | if writable { 0 } else { MOUNT_ATTR_RDONLY };
    // SAFETY: fsmount on a created fs context.
    let r = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) };
    fd_result(r, "fsmount overlay")
}
