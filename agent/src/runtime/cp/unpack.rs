//! A tar stream extracted into a directory of a container's filesystem, by descriptor:
//! each entry's parent is resolved inside the container's root (`RESOLVE_IN_ROOT`; missing
//! parents are made), the entry is created relative to that descriptor with O_EXCL /
//! O_NOFOLLOW, and owner, mode and times are set with AT_SYMLINK_NOFOLLOW: a symlink planted
//! in the container never leads a write out of it. As docker's extraction: an existing file
//! is replaced, a directory merged, a directory is never replaced by a non-directory (or
//! the other way round); entries leaving the destination (`..`) are refused.

use super::fsat::{io_at, mkdir_all, open_in_root, parent_in_root, relative, CpError, IdMap};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fchmodat, fstatat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

/// How extracted entries are owned.
pub struct Owners {
    /// `cp -a`: the archive's owners (else the container's root, as docker).
    pub keep: bool,
    pub ids: IdMap,
}

/// Where an archive goes: into the directory `dest`, its top entry `rename.0` renamed to
/// `rename.1` (docker's rebase when the destination path does not exist yet).
pub struct Target<'a> {
    pub dest: &'a str,
    pub rename: Option<(String, String)>,
}

/// The entry's path below the destination, rebased; `None` for the destination itself.
fn entry_path(raw: &str, t: &Target<'_>) -> Result<Option<String>, CpError> {
    let rel = relative(raw);
    if rel.split('/').any(|c| c == "..") {
        return Err(CpError::Refused(format!("archive entry {raw:?} leaves the destination (..)")));
    }
    if rel.is_empty() {
        return Ok(None);
    }
    let rel = match &t.rename {
        Some((from, to)) if rel == *from => to.clone(),
        Some((from, to)) => match rel.strip_prefix(&format!("{from}/")) {
            Some(rest) => format!("{to}/{rest}"),
            None => rel,
        },
        None => rel,
    };
    Ok(Some(rel))
}

/// Extracts `input` into `root` at `target`.
pub fn unpack(input: impl Read, root: &OwnedFd, target: &Target<'_>, owners: &Owners) -> Result<(), CpError> {
    let dest = relative(target.dest);
    let mut ar = tar::Archive::new(input);
    let entries = ar.entries().map_err(|err| CpError::Io { what: "read", path: "archive".into(), err })?;
    // Directories' times are set at the end: their entries change them.
    let mut dirs: Vec<(String, i64)> = Vec::new();
    for e in entries {
        let mut e = e.map_err(|err| CpError::Io { what: "read", path: "archive".into(), err })?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let Some(rel) = entry_path(&raw, target)? else { continue };
        let full = if dest.is_empty() { rel.clone() } else { format!("{dest}/{rel}") };
        let shown = format!("/{full}");
        let parent_path = full.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
        let parent = match parent_in_root(root, &full) {
            Ok((p, _)) => p,
            Err(Errno::ENOENT) => mkdir_all(root, &parent_path)?,
            Err(e) => return Err(io_at("open", &shown)(e)),
        };
        let name = full.rsplit('/').next().unwrap_or(&full).to_string();
        let h = e.header().clone();
        let t = h.entry_type();
        let is_dir = t.is_dir();
        match fstatat(parent.as_fd(), name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let was_dir = st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits();
                match (was_dir, is_dir) {
                    (true, true) => {}
                    (true, false) => {
                        return Err(CpError::Refused(format!(
                            "cannot overwrite directory {shown:?} with non-directory"
                        )))
                    }
                    (false, true) => {
                        return Err(CpError::Refused(format!(
                            "cannot overwrite non-directory {shown:?} with directory"
                        )))
                    }
                    (false, false) => unlinkat(parent.as_fd(), name.as_str(), UnlinkatFlags::NoRemoveDir)
                        .map_err(io_at("replace", &shown))?,
                }
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(io_at("stat", &shown)(e)),
        }
        let mode = Mode::from_bits_truncate(h.mode().unwrap_or(0o644) & 0o7777);
        match t {
            tar::EntryType::Directory => {
                match nix::sys::stat::mkdirat(parent.as_fd(), name.as_str(), Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(io_at("mkdir", &shown)(e)),
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = nix::fcntl::openat(
                    parent.as_fd(),
                    name.as_str(),
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(io_at("create", &shown))?;
                let mut f = std::fs::File::from(fd);
                std::io::copy(&mut e, &mut f).map_err(|err| CpError::Io { what: "write", path: shown.clone(), err })?;
            }
            tar::EntryType::Symlink => {
                let target = e.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                symlinkat(target.as_str(), parent.as_fd(), name.as_str()).map_err(io_at("symlink", &shown))?;
            }
            tar::EntryType::Link => {
                let raw_target =
                    e.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                let Some(trel) = entry_path(&raw_target, target)? else {
                    return Err(CpError::Refused(format!("hard link {shown:?} to the destination itself")));
                };
                let tfull = if dest.is_empty() { trel } else { format!("{dest}/{trel}") };
                let (tparent, tname) = parent_in_root(root, &tfull).map_err(io_at("link to", &tfull))?;
                linkat(tparent.as_fd(), tname.as_str(), parent.as_fd(), name.as_str(), AtFlags::empty())
                    .map_err(io_at("link", &shown))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let kind = match t {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let dev = libc::makedev(
                    h.device_major().ok().flatten().unwrap_or(0),
                    h.device_minor().ok().flatten().unwrap_or(0),
                );
                mknodat(parent.as_fd(), name.as_str(), kind, mode, dev).map_err(io_at("mknod", &shown))?;
            }
            // pax/GNU long-name records are read by the tar crate itself; others are skipped.
            _ => continue,
        }
        let (uid, gid) = if owners.keep { (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32) } else { (0, 0) };
        let (uid, gid) = (owners.ids.host_uid(uid), owners.ids.host_gid(gid));
        fchownat(
            parent.as_fd(),
            name.as_str(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(io_at("chown", &shown))?;
        if t == tar::EntryType::Link {
            continue;
        }
        let mtime = h.mtime().unwrap_or(0) as i64;
        if t != tar::EntryType::Symlink {
            // After the chown, which clears set-id bits.
            fchmodat(parent.as_fd(), name.as_str(), mode, FchmodatFlags::NoFollowSymlink)
                .map_err(io_at("chmod", &shown))?;
        }
        if is_dir {
            dirs.push((full.clone(), mtime));
        } else {
            let ts = TimeSpec::new(mtime, 0);
            utimensat(parent.as_fd(), name.as_str(), &ts, &ts, UtimensatFlags::NoFollowSymlink)
                .map_err(io_at("set times of", &shown))?;
        }
    }
    for (full, mtime) in dirs.iter().rev() {
        if let Ok((p, n)) = parent_in_root(root, full) {
            let ts = TimeSpec::new(*mtime, 0);
            let _ = utimensat(p.as_fd(), n.as_str(), &ts, &ts, UtimensatFlags::NoFollowSymlink);
        }
    }
    Ok(())
}

/// Whether `path` (inside `root`) is an existing directory, something else, or nothing.
pub fn kind_of(root: &OwnedFd, path: &str) -> Result<Option<bool>, CpError> {
    match open_in_root(root, path, OFlag::O_PATH, true) {
        Ok(fd) => {
            let st = nix::sys::stat::fstat(&fd).map_err(io_at("stat", path))?;
            Ok(Some(st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits()))
        }
        Err(Errno::ENOENT) => Ok(None),
        Err(Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(io_at("stat", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_rebased_and_dotdot_refused() {
        let t = Target { dest: "/tmp", rename: Some(("src".into(), "dst".into())) };
        assert_eq!(entry_path("src", &t).unwrap().as_deref(), Some("dst"));
        assert_eq!(entry_path("./src/a/b", &t).unwrap().as_deref(), Some("dst/a/b"));
        assert_eq!(entry_path("srcx/a", &t).unwrap().as_deref(), Some("srcx/a"));
        assert_eq!(entry_path("./", &t).unwrap(), None);
        assert!(entry_path("a/../../etc/passwd", &t).is_err());
    }
}
