//! The new mount API (`open_tree`, `mount_setattr`, `move_mount`), which nix and libc's
//! public surface do not wrap yet: each wrapper is one `syscall(2)` with the kernel's UAPI
//! constants. Detached mounts made by a privileged process (the shim) can be attached by
//! one that is no longer privileged on the host (an init in a user namespace), without it
//! ever resolving the host path.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

// include/uapi/linux/mount.h (stable kernel ABI).
const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub(crate) fn cstr(s: &str) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{s:?} has a NUL")))
}

pub(crate) fn path_c(p: &Path) -> std::io::Result<CString> {
    cstr(&p.display().to_string())
}

pub(crate) fn fd_result(r: libc::c_long, what: &str) -> std::io::Result<OwnedFd> {
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    // SAFETY: the syscall returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

fn unit_result(r: libc::c_long, what: &str) -> std::io::Result<()> {
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

/// A detached copy of the mount at `path` (`open_tree(OPEN_TREE_CLONE)`), with the mounts
/// below it when `recursive` (like `mount --rbind`).
pub fn open_tree_clone(path: &Path, recursive: bool) -> std::io::Result<OwnedFd> {
    let p = path_c(path)?;
    let rec = if recursive { libc::AT_RECURSIVE as libc::c_uint } else { 0 };
    // SAFETY: open_tree with a valid NUL-terminated path and flags.
    let r = unsafe {
        libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, p.as_ptr(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec)
    };
    fd_result(r, &format!("open_tree {}", path.display()))
}

/// Makes the detached mount `tree` show IDs through the mapping of user namespace `userns`.
pub fn idmap(tree: &OwnedFd, userns: BorrowedFd<'_>, what: &Path) -> std::io::Result<()> {
    let attr =
        MountAttr { attr_set: MOUNT_ATTR_IDMAP, attr_clr: 0, propagation: 0, userns_fd: userns.as_raw_fd() as u64 };
    let empty = cstr("")?;
    // SAFETY: mount_setattr on our descriptor with an empty path, AT_EMPTY_PATH, and a
    // correctly sized mount_attr that outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    unit_result(r, &format!("idmapped mount of {}", what.display()))
}

/// Makes the mount at `path` and every mount below it read-only (`mount_setattr` with
/// AT_RECURSIVE; a classic remount only reaches the top one).
pub fn make_readonly_recursive(path: &Path) -> std::io::Result<()> {
    const MOUNT_ATTR_RDONLY: u64 = 1;
    let attr = MountAttr { attr_set: MOUNT_ATTR_RDONLY, attr_clr: 0, propagation: 0, userns_fd: 0 };
    let p = path_c(path)?;
    // SAFETY: mount_setattr on a NUL-terminated path with a correctly sized mount_attr.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            p.as_ptr(),
            libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    unit_result(r, &format!("make {} read-only", path.display()))
}

/// Attaches a detached mount at `target` (relative paths start at the working directory)
/// in the current mount namespace.
pub fn attach(mount: &OwnedFd, target: &Path) -> std::io::Result<()> {
    let empty = cstr("")?;
    let t = path_c(target)?;
    // SAFETY: move_mount from our descriptor (empty path) to a NUL-terminated target path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    unit_result(r, &format!("attach a mount on {}", target.display()))
}
